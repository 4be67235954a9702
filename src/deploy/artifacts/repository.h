// The deploy engine's records: plan scripts, build plans, golden images, deployment plans, OS
// volumes and tasks, each kept as the JSON document the Image Streamer API shows (fields are added
// between API versions; clients read them as documents), with kind, id and name as columns. SQLite
// component "deploy" of the catalog database.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::catalog::sqlite {
class Database;
}

namespace ingot::deploy::artifacts {

// kArtifactBundle, kBackup: bundle_service.h's records (artifact bundles and backups).
enum class Kind {
  kPlanScript, kBuildPlan, kGoldenImage, kDeploymentPlan, kOsVolume, kTask, kArtifactBundle, kBackup
};
std::string_view KindName(Kind kind);  // "plan_script", ... (the column value)

struct Record {
  Kind kind;
  std::string id;
  boost::json::object doc;  // its "name" is the name column (unique per kind, tasks excepted)
};

// Thread-safe; every call is one transaction.
class DeployRepository {
 public:
  virtual ~DeployRepository() = default;
  // Inserts or replaces the records, all or none. kAlreadyExists naming the name when another
  // record of the kind has it (tasks' names are not unique).
  virtual Status Put(const std::vector<Record>& records) = 0;
  Status Put(Record r) { return Put(std::vector<Record>{std::move(r)}); }
  // Removes every record of the `cleared` kinds, then puts `records`, in one transaction (a
  // backup's restore).
  virtual Status Replace(const std::vector<Kind>& cleared, const std::vector<Record>& records) = 0;
  // kNotFound "<kind> <id> not found".
  virtual Result<boost::json::object> Get(Kind kind, const std::string& id) = 0;
  virtual Result<std::optional<boost::json::object>> FindByName(Kind kind,
                                                                const std::string& name) = 0;
  // Oldest first.
  virtual Result<std::vector<boost::json::object>> List(Kind kind) = 0;
  // kNotFound when absent.
  virtual Status Remove(Kind kind, const std::string& id) = 0;
};

Result<std::unique_ptr<DeployRepository>> OpenSqliteDeployRepository(
    std::shared_ptr<catalog::sqlite::Database> db);

}  // namespace ingot::deploy::artifacts
