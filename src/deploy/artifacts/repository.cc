#include "deploy/artifacts/repository.h"

#include "catalog/sqlite/database.h"

namespace ingot::deploy::artifacts {

using catalog::sqlite::Connection;
using catalog::sqlite::Database;

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kPlanScript: return "plan_script";
    case Kind::kBuildPlan: return "build_plan";
    case Kind::kGoldenImage: return "golden_image";
    case Kind::kDeploymentPlan: return "deployment_plan";
    case Kind::kOsVolume: return "os_volume";
    case Kind::kTask: return "task";
    case Kind::kArtifactBundle: return "artifact_bundle";
    case Kind::kBackup: return "backup";
  }
  return "?";
}

namespace {

// Never edit a shipped step: add one.
constexpr const char* kSteps[] = {
    "CREATE TABLE deploy_records ("
    "  kind TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  name TEXT,"          // NULL for tasks; unique per kind otherwise
    "  seq INTEGER NOT NULL,"  // insertion order: lists come oldest first, as Image Streamer's
    "  doc TEXT NOT NULL,"
    "  PRIMARY KEY (kind, id))",
    "CREATE UNIQUE INDEX deploy_records_name ON deploy_records (kind, name)",
};

Result<boost::json::object> Parse(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return Corruption("a deploy record is not a JSON object");
  return std::move(v.as_object());
}

class SqliteDeployRepository : public DeployRepository {
 public:
  explicit SqliteDeployRepository(std::shared_ptr<Database> db) : db_(std::move(db)) {}

  Status Put(const std::vector<Record>& records) override {
    return db_->Write([&](Connection& c) { return PutIn(c, records); });
  }

  Status Replace(const std::vector<Kind>& cleared, const std::vector<Record>& records) override {
    return db_->Write([&](Connection& c) -> Status {
      for (Kind k : cleared) {
        INGOT_ASSIGN_OR_RETURN(auto st, c.Prepare("DELETE FROM deploy_records WHERE kind = ?"));
        INGOT_RETURN_IF_ERROR(st.BindAll({std::string(KindName(k))}));
        INGOT_RETURN_IF_ERROR(st.Run());
      }
      return PutIn(c, records);
    });
  }

  static Status PutIn(Connection& c, const std::vector<Record>& records) {
    {
      for (const Record& r : records) {
        std::optional<std::string> name;
        if (r.kind != Kind::kTask) {
          if (const auto* n = r.doc.if_contains("name"); n != nullptr && n->is_string()) {
            name = std::string(n->as_string());
          }
          if (name) {
            INGOT_ASSIGN_OR_RETURN(auto q, c.Prepare(
                "SELECT id FROM deploy_records WHERE kind = ? AND name = ? AND id != ?"));
            INGOT_RETURN_IF_ERROR(q.BindAll({std::string(KindName(r.kind)), *name, r.id}));
            INGOT_ASSIGN_OR_RETURN(bool taken, q.Step());
            if (taken) return AlreadyExists("the name '" + *name + "' is taken");
          }
        }
        INGOT_ASSIGN_OR_RETURN(auto st, c.Prepare(
            "INSERT INTO deploy_records (kind, id, name, seq, doc) VALUES (?, ?, ?, "
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM deploy_records), ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name, doc = excluded.doc"));
        INGOT_RETURN_IF_ERROR(st.Bind(1, std::string(KindName(r.kind))));
        INGOT_RETURN_IF_ERROR(st.Bind(2, r.id));
        if (name) {
          INGOT_RETURN_IF_ERROR(st.Bind(3, *name));
        } else {
          INGOT_RETURN_IF_ERROR(st.Bind(3, nullptr));
        }
        INGOT_RETURN_IF_ERROR(st.Bind(4, boost::json::serialize(r.doc)));
        INGOT_RETURN_IF_ERROR(st.Run());
      }
      return Status::Ok();
    }
  }

  Result<boost::json::object> Get(Kind kind, const std::string& id) override {
    std::optional<std::string> text;
    INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(auto st,
                             c.Prepare("SELECT doc FROM deploy_records WHERE kind = ? AND id = ?"));
      INGOT_RETURN_IF_ERROR(st.BindAll({std::string(KindName(kind)), id}));
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (row) text = st.Text(0);
      return Status::Ok();
    }));
    if (!text) return NotFound(std::string(KindName(kind)) + " " + id + " not found");
    return Parse(*text);
  }

  Result<std::optional<boost::json::object>> FindByName(Kind kind,
                                                        const std::string& name) override {
    std::optional<std::string> text;
    INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(
          auto st, c.Prepare("SELECT doc FROM deploy_records WHERE kind = ? AND name = ?"));
      INGOT_RETURN_IF_ERROR(st.BindAll({std::string(KindName(kind)), name}));
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (row) text = st.Text(0);
      return Status::Ok();
    }));
    if (!text) return std::optional<boost::json::object>();
    INGOT_ASSIGN_OR_RETURN(auto doc, Parse(*text));
    return std::optional<boost::json::object>(std::move(doc));
  }

  Result<std::vector<boost::json::object>> List(Kind kind) override {
    std::vector<boost::json::object> out;
    INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(
          auto st, c.Prepare("SELECT doc FROM deploy_records WHERE kind = ? ORDER BY seq"));
      INGOT_RETURN_IF_ERROR(st.BindAll({std::string(KindName(kind))}));
      for (;;) {
        INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
        if (!row) break;
        INGOT_ASSIGN_OR_RETURN(auto doc, Parse(st.Text(0)));
        out.push_back(std::move(doc));
      }
      return Status::Ok();
    }));
    return out;
  }

  Status Remove(Kind kind, const std::string& id) override {
    return db_->Write([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(auto st,
                             c.Prepare("DELETE FROM deploy_records WHERE kind = ? AND id = ?"));
      INGOT_RETURN_IF_ERROR(st.BindAll({std::string(KindName(kind)), id}));
      INGOT_RETURN_IF_ERROR(st.Run());
      if (c.Changes() == 0) return NotFound(std::string(KindName(kind)) + " " + id + " not found");
      return Status::Ok();
    });
  }

 private:
  std::shared_ptr<Database> db_;
};

}  // namespace

Result<std::unique_ptr<DeployRepository>> OpenSqliteDeployRepository(
    std::shared_ptr<Database> db) {
  INGOT_RETURN_IF_ERROR(db->Migrate("deploy", kSteps));
  return std::unique_ptr<DeployRepository>(new SqliteDeployRepository(std::move(db)));
}

}  // namespace ingot::deploy::artifacts
