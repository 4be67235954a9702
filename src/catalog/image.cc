#include "catalog/image.h"

#include <array>
#include <cstdlib>
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

// One row per event. `idempotent` events answer OK without a change on an image already where they
// lead (Glance's deactivate/reactivate do).
struct TransitionRow {
  ImageEvent event;
  std::string_view name;
  std::initializer_list<ImageStatus> from;
  ImageStatus to;
  bool idempotent;
  Code refusal;
  std::string_view verb;  // for "Not allowed to <verb> image in status 'x'"; empty: Glance's generic text
};

using S = ImageStatus;
// The transition table. `saving` falls back to `queued` so a failed upload can be retried (Glance
// deprecated `killed` in v2); `uploading`/`importing` fall back when an import is abandoned.
const TransitionRow kTransitions[] = {
    {ImageEvent::kStartUpload, "start_upload", {S::kQueued}, S::kSaving, false, Code::kConflict, ""},
    {ImageEvent::kFinishUpload, "finish_upload", {S::kSaving}, S::kActive, false, Code::kConflict, ""},
    {ImageEvent::kAbortUpload, "abort_upload", {S::kSaving}, S::kQueued, false, Code::kConflict, ""},
    {ImageEvent::kStage, "stage", {S::kQueued}, S::kUploading, false, Code::kConflict, ""},
    {ImageEvent::kStartImport, "start_import", {S::kQueued, S::kUploading}, S::kImporting, false,
     Code::kConflict, ""},
    {ImageEvent::kFinishImport, "finish_import", {S::kImporting}, S::kActive, false, Code::kConflict,
     ""},
    {ImageEvent::kAbortImport, "abort_import", {S::kUploading, S::kImporting}, S::kQueued, false,
     Code::kConflict, ""},
    {ImageEvent::kDeactivate, "deactivate", {S::kActive}, S::kDeactivated, true,
     Code::kPermissionDenied, "deactivate"},
    {ImageEvent::kReactivate, "reactivate", {S::kDeactivated}, S::kActive, true,
     Code::kPermissionDenied, "reactivate"},
    {ImageEvent::kDelete, "delete",
     {S::kQueued, S::kSaving, S::kActive, S::kKilled, S::kPendingDelete, S::kDeactivated,
      S::kUploading, S::kImporting},
     S::kDeleted, false, Code::kConflict, ""},
};

const TransitionRow& RowFor(ImageEvent e) {
  for (const TransitionRow& row : kTransitions) {
    if (row.event == e) return row;
  }
  std::abort();  // every event has a row (image_test.cc walks them all)
}

bool Contains(std::initializer_list<ImageStatus> set, ImageStatus s) {
  for (ImageStatus t : set) {
    if (t == s) return true;
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

std::string_view EventName(ImageEvent e) { return RowFor(e).name; }

Status Transition(Image& image, ImageEvent event) {
  const TransitionRow& row = RowFor(event);
  if (Contains(row.from, image.status_)) {
    image.status_ = row.to;
    return Status::Ok();
  }
  if (row.idempotent && image.status_ == row.to) return Status::Ok();
  std::string from(StatusName(image.status_));
  if (!row.verb.empty()) {
    return Status(row.refusal,
                  "Not allowed to " + std::string(row.verb) + " image in status '" + from + "'");
  }
  return Status(row.refusal, "Image status transition from " + from + " to " +
                                 std::string(StatusName(row.to)) + " is not allowed");
}

bool CanTransition(ImageStatus from, ImageStatus to) {
  for (const TransitionRow& row : kTransitions) {
    if (row.to == to && Contains(row.from, from)) return true;
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
