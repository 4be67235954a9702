#include "catalog/image.h"

#include <array>
#include <initializer_list>
#include <utility>

namespace ingot::catalog {
namespace {

constexpr std::array<std::pair<ImageStatus, std::string_view>, 9> kStatusNames = {{
    {ImageStatus::kQueued, "queued"},
    {ImageStatus::kSaving, "saving"},
    {ImageStatus::kActive, "active"},
    {ImageStatus::kKilled, "killed"},
    {ImageStatus::kDeleted, "deleted"},
    {ImageStatus::kPendingDelete, "pending_delete"},
    {ImageStatus::kDeactivated, "deactivated"},
    {ImageStatus::kUploading, "uploading"},
    {ImageStatus::kImporting, "importing"},
}};

constexpr std::array<std::pair<Visibility, std::string_view>, 4> kVisibilityNames = {{
    {Visibility::kPublic, "public"},
    {Visibility::kPrivate, "private"},
    {Visibility::kShared, "shared"},
    {Visibility::kCommunity, "community"},
}};

constexpr std::array<std::pair<MemberStatus, std::string_view>, 3> kMemberStatusNames = {{
    {MemberStatus::kPending, "pending"},
    {MemberStatus::kAccepted, "accepted"},
    {MemberStatus::kRejected, "rejected"},
}};

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& table, E e) {
  for (const auto& [value, name] : table) {
    if (value == e) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> Parse(const std::array<std::pair<E, std::string_view>, N>& table,
                       std::string_view s) {
  for (const auto& [value, name] : table) {
    if (name == s) return value;
  }
  return std::nullopt;
}

bool OneOf(ImageStatus to, std::initializer_list<ImageStatus> targets) {
  for (ImageStatus t : targets) {
    if (t == to) return true;
  }
  return false;
}

}  // namespace

std::string_view StatusName(ImageStatus s) { return NameOf(kStatusNames, s); }
std::optional<ImageStatus> ParseStatus(std::string_view s) { return Parse(kStatusNames, s); }
std::string_view VisibilityName(Visibility v) { return NameOf(kVisibilityNames, v); }
std::optional<Visibility> ParseVisibility(std::string_view s) { return Parse(kVisibilityNames, s); }
std::string_view MemberStatusName(MemberStatus s) { return NameOf(kMemberStatusNames, s); }
std::optional<MemberStatus> ParseMemberStatus(std::string_view s) {
  return Parse(kMemberStatusNames, s);
}

bool CanTransition(ImageStatus from, ImageStatus to) {
  using S = ImageStatus;
  switch (from) {
    // `saving` may fall back to `queued` so that a failed upload can be retried (Glance deprecated
    // `killed` for v2); `uploading`/`importing` fall back to `queued` when an import is abandoned.
    case S::kQueued:
      return OneOf(to, {S::kSaving, S::kUploading, S::kImporting, S::kActive, S::kDeleted});
    case S::kSaving:
      return OneOf(to, {S::kActive, S::kKilled, S::kDeleted, S::kQueued});
    case S::kUploading:
      return OneOf(to, {S::kImporting, S::kQueued, S::kDeleted});
    case S::kImporting:
      return OneOf(to, {S::kActive, S::kDeleted, S::kQueued});
    case S::kActive:
      return OneOf(to, {S::kPendingDelete, S::kDeleted, S::kDeactivated});
    case S::kKilled:
      return OneOf(to, {S::kDeleted});
    // A delayed delete can be undone (glance-manage's scrubber restore) back to `active`.
    case S::kPendingDelete:
      return OneOf(to, {S::kDeleted, S::kActive});
    case S::kDeactivated:
      return OneOf(to, {S::kActive, S::kDeleted});
    case S::kDeleted:
      return false;
  }
  return false;
}

bool IsVisible(const Image& image, const Viewer& viewer, std::optional<MemberStatus> membership) {
  if (viewer.is_admin) return true;
  // Glance treats an ownerless image (created with no project, e.g. under noauth) as everyone's.
  if (!image.owner.has_value()) return true;
  if (image.visibility == Visibility::kPublic || image.visibility == Visibility::kCommunity) {
    return true;
  }
  if (!viewer.project.has_value()) return false;
  if (*viewer.project == *image.owner) return true;
  // Members see a shared image whatever their status, so they can accept or reject it.
  return image.visibility == Visibility::kShared && membership.has_value();
}

}  // namespace ingot::catalog
