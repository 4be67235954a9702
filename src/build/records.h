// The image builder's records, as Cray IMS keeps them: recipes, images, jobs and public keys. IMS
// stores each record as one JSON document (its records are JSON files), clients read them as such,
// and fields are added between versions; Ingot keeps them the same way — one document per record,
// with its kind, id and deleted flag as columns — in the catalog's database: the embedded SQLite
// file, or the PostgreSQL database every node of a cluster shares (so any node answers for any
// record, and a build one node started can be taken over by another).
//
// Deleting is soft (IMS's /deleted/ collections): a deleted record moves out of its collection and
// can be undeleted or purged.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::catalog::sql {
class Backend;
}

namespace ingot::build {

enum class Kind { kRecipe, kImage, kJob, kPublicKey };
std::string_view KindName(Kind kind);  // "recipe", "image", "job", "public_key"

// Job statuses, IMS's words.
inline constexpr const char* kCreating = "creating";
inline constexpr const char* kFetchingRecipe = "fetching_recipe";
inline constexpr const char* kFetchingImage = "fetching_image";
inline constexpr const char* kWaitingForRepos = "waiting_for_repos";
inline constexpr const char* kBuildingImage = "building_image";
inline constexpr const char* kPackagingArtifacts = "packaging_artifacts";
inline constexpr const char* kWaitingOnUser = "waiting_on_user";
inline constexpr const char* kSuccess = "success";
inline constexpr const char* kError = "error";
bool IsFinished(std::string_view status);

// Thread-safe; every call is one transaction.
class BuildRepository {
 public:
  virtual ~BuildRepository() = default;
  // Inserts or replaces the live record `id`.
  virtual Status Put(Kind kind, const std::string& id, const boost::json::object& doc) = 0;
  // The record (live, or deleted when `deleted`); kNotFound otherwise.
  virtual Result<boost::json::object> Get(Kind kind, const std::string& id,
                                          bool deleted = false) = 0;
  // Every live (or deleted) record of `kind`, oldest first.
  virtual Result<std::vector<boost::json::object>> List(Kind kind, bool deleted = false) = 0;
  // Live -> deleted (soft delete), deleted -> live (undelete). kNotFound when not in that state.
  virtual Status SetDeleted(Kind kind, const std::string& id, bool deleted) = 0;
  // Removes the record for good (live or deleted as asked). kNotFound when absent.
  virtual Status Remove(Kind kind, const std::string& id, bool deleted) = 0;
};

// The records in the catalog's database (SQLite or PostgreSQL; component "build"), migrated.
Result<std::unique_ptr<BuildRepository>> OpenBuildRepository(
    std::shared_ptr<catalog::sql::Backend> db);

}  // namespace ingot::build
