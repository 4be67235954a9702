// The builder's files that every node must be able to read: recipe archives, image artifacts and
// finished jobs' logs. They live under the build directory; with a store configured ([build]
// store: the Swift or S3 store every node of a cluster shares) each file is also put there once it
// is complete, and a node that lacks one fetches it from there the first time it is asked for. So
// any node serves any build's artifacts, and a job another node takes over reads its recipe.
//
// Store keys name what they hold, so the scrubber can ask the builder's records whether an object
// is still wanted (OwnerOf): "ims-recipe-<recipe id>", "ims-artifact-<image id>-<name>",
// "ims-log-<job id>". A name too long for a key is replaced by its SHA-256 prefix.
//
// Threads: every method may be called from any thread. Concurrent fetches of one file each write
// their own temporary file and rename it into place: readers never see a partial file.
#pragma once

#include <optional>
#include <string>

#include "build/records.h"
#include "common/result.h"

namespace ingot::store {
class Store;
}

namespace ingot::build {

class Shelf {
 public:
  // `store` may be null: the files stay in `dir` only (one node).
  Shelf(std::string dir, store::Store* store) : dir_(std::move(dir)), store_(store) {}

  bool shared() const { return store_ != nullptr; }
  // `rel` is "recipes/<id>.tgz", "artifacts/<image id>/<name>" or "jobs/<id>/log".
  std::string LocalPath(const std::string& rel) const { return dir_ + "/" + rel; }
  // The file `rel` is complete here: puts it in the store, replacing what was there. OK at once
  // without a store.
  Status Publish(const std::string& rel);
  // The local path of `rel`, fetched from the store first when it is not here (or always, when
  // `fresh`: for files that change, such as a log another node finished). kNotFound when neither
  // has it.
  Result<std::string> Fetch(const std::string& rel, bool fresh = false);

  // The store key of `rel`; nullopt for a path the shelf never holds.
  static std::optional<std::string> KeyOf(const std::string& rel);
  // Which record a shelf key belongs to; nullopt for keys that are not the shelf's.
  struct Owner {
    Kind kind;
    std::string id;
  };
  static std::optional<Owner> OwnerOf(const std::string& key);
  // For the scrubber: whether the record a shelf key belongs to still exists (live or deleted;
  // purging it lets its files go). False for keys that are not the shelf's.
  static Result<bool> StillWanted(BuildRepository& records, const std::string& key);

 private:
  const std::string dir_;
  store::Store* const store_;
};

}  // namespace ingot::build
