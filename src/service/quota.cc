#include "service/quota.h"

#include "catalog/list_query.h"

namespace ingot::service {
namespace {

constexpr int64_t kMiB = 1 << 20;

class ConfiguredLimits final : public LimitSource {
 public:
  ConfiguredLimits(std::map<std::string, int64_t> defaults,
                   std::map<std::string, std::map<std::string, int64_t>> projects)
      : defaults_(std::move(defaults)), projects_(std::move(projects)) {}
  Result<std::map<std::string, int64_t>> LimitsFor(const std::string& project) override {
    std::map<std::string, int64_t> out = defaults_;
    if (auto it = projects_.find(project); it != projects_.end()) {
      for (const auto& [k, v] : it->second) out[k] = v;
    }
    return out;
  }

 private:
  const std::map<std::string, int64_t> defaults_;
  const std::map<std::string, std::map<std::string, int64_t>> projects_;
};

int64_t LimitOf(const std::map<std::string, int64_t>& limits, const char* name) {
  auto it = limits.find(name);
  return it == limits.end() ? -1 : it->second;
}

// oslo.limit's wording, which Glance returns in the 413's body.
Status OverLimit(const std::string& project, const char* resource, int64_t limit, int64_t usage,
                 int64_t delta) {
  return TooLarge("Project " + project + " is over a limit for [Resource " + resource +
                  " is over limit of " + std::to_string(limit) + " due to current usage " +
                  std::to_string(usage) + " and delta " + std::to_string(delta) + "]");
}

bool Uploading(catalog::ImageStatus s) {
  return s == catalog::ImageStatus::kSaving || s == catalog::ImageStatus::kUploading ||
         s == catalog::ImageStatus::kImporting;
}

// Whole MiB, rounded up, as a byte count is shown against a MiB limit.
int64_t MiB(uint64_t bytes) { return static_cast<int64_t>((bytes + kMiB - 1) / kMiB); }

}  // namespace

std::unique_ptr<LimitSource> MakeConfiguredLimits(
    std::map<std::string, int64_t> defaults,
    std::map<std::string, std::map<std::string, int64_t>> projects) {
  return std::make_unique<ConfiguredLimits>(std::move(defaults), std::move(projects));
}

Quotas::Quotas(catalog::ImageRepository& repo, LimitSource& limits)
    : repo_(repo), limits_(limits) {}

Result<ProjectUsage> Quotas::Count(const std::string& project) {
  ProjectUsage u;
  // Every image the project owns, hidden ones too, page by page through the repository's own
  // query (one home for listing; a dialect can answer it with an index on owner).
  for (const char* hidden : {"false", "true"}) {
    std::optional<std::string> marker;
    do {
      std::vector<std::pair<std::string, std::string>> params = {
          {"owner", project},        {"visibility", "all"}, {"member_status", "all"},
          {"os_hidden", hidden},     {"limit", std::to_string(catalog::kMaxListLimit)}};
      if (marker) params.emplace_back("marker", *marker);
      INGOT_ASSIGN_OR_RETURN(catalog::ListQuery q, catalog::ParseListQuery(params));
      INGOT_ASSIGN_OR_RETURN(catalog::ImagePage page,
                             repo_.List(q, catalog::Viewer{.project = project, .is_admin = true}));
      for (const catalog::Image& im : page.images) {
        if (im.owner != project) continue;
        ++u.images;
        if (Uploading(im.status())) ++u.uploading;
        if (im.size) {
          if (!im.locations.empty()) {
            u.stored_bytes += *im.size * im.locations.size();
          } else if (im.status() == catalog::ImageStatus::kUploading ||
                     im.status() == catalog::ImageStatus::kImporting) {
            u.staged_bytes += *im.size;
          }
        }
      }
      marker = page.next_marker;
    } while (marker);
  }
  return u;
}

Result<std::map<std::string, QuotaUsage>> Quotas::Usage(const std::string& project) {
  INGOT_ASSIGN_OR_RETURN(auto limits, limits_.LimitsFor(project));
  INGOT_ASSIGN_OR_RETURN(ProjectUsage u, Count(project));
  return std::map<std::string, QuotaUsage>{
      {kImageSizeTotal, {LimitOf(limits, kImageSizeTotal), MiB(u.stored_bytes)}},
      {kImageStageTotal, {LimitOf(limits, kImageStageTotal), MiB(u.staged_bytes)}},
      {kImageCountTotal, {LimitOf(limits, kImageCountTotal), u.images}},
      {kImageCountUploading, {LimitOf(limits, kImageCountUploading), u.uploading}}};
}

Status Quotas::CheckCreate(const std::optional<std::string>& project) {
  if (!project) return Status::Ok();  // an image without an owner belongs to no project's quota
  INGOT_ASSIGN_OR_RETURN(auto limits, limits_.LimitsFor(*project));
  int64_t limit = LimitOf(limits, kImageCountTotal);
  if (limit < 0) return Status::Ok();
  INGOT_ASSIGN_OR_RETURN(ProjectUsage u, Count(*project));
  if (u.images + 1 > limit) return OverLimit(*project, kImageCountTotal, limit, u.images, 1);
  return Status::Ok();
}

Result<std::optional<uint64_t>> Quotas::Allowance(const std::optional<std::string>& project,
                                                  std::optional<uint64_t> declared, bool staged) {
  if (!project) return std::optional<uint64_t>();
  INGOT_ASSIGN_OR_RETURN(auto limits, limits_.LimitsFor(*project));
  const char* size_name = staged ? kImageStageTotal : kImageSizeTotal;
  int64_t uploading_limit = LimitOf(limits, kImageCountUploading);
  int64_t size_limit = LimitOf(limits, size_name);
  if (uploading_limit < 0 && size_limit < 0) return std::optional<uint64_t>();
  INGOT_ASSIGN_OR_RETURN(ProjectUsage u, Count(*project));
  // The image being sent is already counted as uploading (its status moved first) or not yet: the
  // caller checks before the move, so +1.
  if (uploading_limit >= 0 && u.uploading + 1 > uploading_limit) {
    return OverLimit(*project, kImageCountUploading, uploading_limit, u.uploading, 1);
  }
  if (size_limit < 0) return std::optional<uint64_t>();
  const uint64_t used = staged ? u.staged_bytes : u.stored_bytes;
  const uint64_t limit_bytes = static_cast<uint64_t>(size_limit) * kMiB;
  if (used >= limit_bytes && size_limit >= 0 && (declared.value_or(1) > 0)) {
    return OverLimit(*project, size_name, size_limit, MiB(used),
                     declared ? MiB(*declared) : 0);
  }
  const uint64_t left = limit_bytes - used;
  if (declared && *declared > left) {
    return OverLimit(*project, size_name, size_limit, MiB(used), MiB(*declared));
  }
  return std::optional<uint64_t>(left);
}

}  // namespace ingot::service
