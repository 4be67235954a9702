// Per-project quotas as Glance's unified limits (glance/quota/keystone.py), with Glance's names:
//
//   image_size_total       MiB of image data a project keeps in the stores (each copy counts)
//   image_stage_total      MiB of data a project has staged for import
//   image_count_total      images a project owns (any status but deleted)
//   image_count_uploading  images a project is uploading, staging or importing at once
//
// The limits come from a LimitSource: Keystone's unified limits (auth/keystone/limits.h) or
// Ingot's own configuration ([quotas]). A limit of -1, or one that is absent, is unlimited.
//
// Checks happen before any byte is stored: creating an image past image_count_total, or an upload
// or stage that would cross a limit by its declared length, is refused with kTooLarge (413). For
// bytes whose length is not declared, Allowance() gives the most the upload may still take; the
// ingest pass stops there (kTooLarge) and the upload leaves nothing behind.
//
// Thread safety: every method may be called concurrently. Two concurrent uploads may each see the
// other's bytes as not yet counted: like Glance, the check is against usage at the time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "catalog/repository.h"
#include "common/result.h"

namespace ingot::service {

inline constexpr const char* kImageSizeTotal = "image_size_total";
inline constexpr const char* kImageStageTotal = "image_stage_total";
inline constexpr const char* kImageCountTotal = "image_count_total";
inline constexpr const char* kImageCountUploading = "image_count_uploading";

class LimitSource {
 public:
  virtual ~LimitSource() = default;
  // The project's limits by name (absent or -1: unlimited). kUnavailable when they cannot be read
  // (a quota check then fails closed: 503).
  virtual Result<std::map<std::string, int64_t>> LimitsFor(const std::string& project) = 0;
};

// Limits from Ingot's configuration: `defaults` for every project, `projects` overriding them.
std::unique_ptr<LimitSource> MakeConfiguredLimits(
    std::map<std::string, int64_t> defaults,
    std::map<std::string, std::map<std::string, int64_t>> projects);

struct QuotaUsage {
  int64_t limit = -1;  // -1: unlimited
  int64_t usage = 0;
};

struct ProjectUsage {
  uint64_t stored_bytes = 0;   // image_size_total's usage, in bytes
  uint64_t staged_bytes = 0;   // image_stage_total's usage, in bytes
  int64_t images = 0;          // image_count_total
  int64_t uploading = 0;       // image_count_uploading
};

class Quotas {
 public:
  Quotas(catalog::ImageRepository& repo, LimitSource& limits);

  // GET /v2/info/usage: every limit with the project's usage (sizes in MiB, as Glance).
  Result<std::map<std::string, QuotaUsage>> Usage(const std::string& project);
  // Before creating an image owned by `project`.
  Status CheckCreate(const std::optional<std::string>& project);
  // Before an upload (or an import into the stores, `staged` false) or a stage (`staged` true) of
  // `declared` bytes (nullopt: unknown): kTooLarge when the project is at its uploading count or
  // the bytes would cross the size limit. OK carries how many bytes the transfer may still take
  // (nullopt: no limit).
  Result<std::optional<uint64_t>> Allowance(const std::optional<std::string>& project,
                                            std::optional<uint64_t> declared, bool staged);

  Result<ProjectUsage> Count(const std::string& project);

 private:
  catalog::ImageRepository& repo_;
  LimitSource& limits_;
};

}  // namespace ingot::service
