// The catalog's domain: an image record, its status machine and the rules of the catalog.
// Plain data and pure functions; persistence is behind repository.h, authorization at the API edge.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::catalog {

// Glance's image statuses (glance/domain/__init__.py, valid_state_targets).
enum class ImageStatus {
  kQueued,
  kSaving,
  kActive,
  kKilled,
  kDeleted,
  kPendingDelete,
  kDeactivated,
  kUploading,
  kImporting,
};

enum class Visibility { kPublic, kPrivate, kShared, kCommunity };

std::string_view StatusName(ImageStatus s);  // "queued", "saving", ...
std::optional<ImageStatus> ParseStatus(std::string_view s);
std::string_view VisibilityName(Visibility v);  // "public", ...
std::optional<Visibility> ParseVisibility(std::string_view s);

// Glance's transition table: may an image in `from` move to `to`?
bool CanTransition(ImageStatus from, ImageStatus to);

// Where an image's bytes live in a store.
struct Location {
  std::string store;   // store id from the configuration ("file", ...)
  std::string key;     // the store's own name for the object (for the file store, a path under it)
};

struct Image {
  std::string id;                            // lower-case UUID
  std::optional<std::string> name;
  ImageStatus status = ImageStatus::kQueued;
  Visibility visibility = Visibility::kShared;  // Glance's default since Ocata
  bool is_protected = false;
  bool os_hidden = false;
  std::optional<std::string> owner;          // project id
  std::optional<std::string> disk_format;
  std::optional<std::string> container_format;
  std::optional<uint64_t> size;
  std::optional<uint64_t> virtual_size;
  uint64_t min_disk = 0;                     // GiB
  uint64_t min_ram = 0;                      // MiB
  std::optional<std::string> checksum;       // MD5 hex
  std::optional<std::string> os_hash_algo;
  std::optional<std::string> os_hash_value;
  int64_t created_at = 0;                    // microseconds since the epoch
  int64_t updated_at = 0;
  std::set<std::string> tags;
  std::map<std::string, std::string> properties;  // free-form extra properties
  std::vector<Location> locations;
  int64_t version = 0;                       // optimistic concurrency; bumped by every save
};

}  // namespace ingot::catalog
