#include "build/records.h"

#include "catalog/sqlite/database.h"

namespace ingot::build {

using catalog::sqlite::Connection;
using catalog::sqlite::Database;

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kRecipe: return "recipe";
    case Kind::kImage: return "image";
    case Kind::kJob: return "job";
    case Kind::kPublicKey: return "public_key";
  }
  return "?";
}

bool IsFinished(std::string_view status) { return status == kSuccess || status == kError; }

namespace {

// Never edit a shipped step: add one.
constexpr const char* kSteps[] = {
    "CREATE TABLE build_records ("
    "  kind TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  seq INTEGER NOT NULL,"  // insertion order: lists come oldest first, as IMS lists them
    "  doc TEXT NOT NULL,"
    "  PRIMARY KEY (kind, id, deleted))",
};

class SqliteBuildRepository : public BuildRepository {
 public:
  explicit SqliteBuildRepository(std::shared_ptr<Database> db) : db_(std::move(db)) {}

  Status Put(Kind kind, const std::string& id, const boost::json::object& doc) override {
    std::string text = boost::json::serialize(doc);
    return db_->Write([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(auto st, c.Prepare(
          "INSERT INTO build_records (kind, id, deleted, seq, doc) VALUES (?, ?, 0, "
          " (SELECT COALESCE(MAX(seq), 0) + 1 FROM build_records), ?) "
          "ON CONFLICT (kind, id, deleted) DO UPDATE SET doc = excluded.doc"));
      INGOT_RETURN_IF_ERROR(st.BindAll({std::string(KindName(kind)), id, text}));
      return st.Run();
    });
  }

  Result<boost::json::object> Get(Kind kind, const std::string& id, bool deleted) override {
    std::optional<std::string> text;
    INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(
          auto st, c.Prepare("SELECT doc FROM build_records WHERE kind = ? AND id = ? AND deleted = ?"));
      INGOT_RETURN_IF_ERROR(
          st.BindAll({std::string(KindName(kind)), id, static_cast<int64_t>(deleted)}));
      INGOT_ASSIGN_OR_RETURN(bool row, st.Step());
      if (row) text = st.Text(0);
      return Status::Ok();
    }));
    if (!text) return NotFound(std::string(KindName(kind)) + " " + id + " not found");
    return Parse(*text);
  }

  Result<std::vector<boost::json::object>> List(Kind kind, bool deleted) override {
    std::vector<boost::json::object> out;
    INGOT_RETURN_IF_ERROR(db_->Read([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(auto st, c.Prepare(
          "SELECT doc FROM build_records WHERE kind = ? AND deleted = ? ORDER BY seq"));
      INGOT_RETURN_IF_ERROR(st.BindAll({std::string(KindName(kind)), static_cast<int64_t>(deleted)}));
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

  Status SetDeleted(Kind kind, const std::string& id, bool deleted) override {
    return db_->Write([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(auto st, c.Prepare(
          "UPDATE build_records SET deleted = ? WHERE kind = ? AND id = ? AND deleted = ?"));
      INGOT_RETURN_IF_ERROR(st.BindAll({static_cast<int64_t>(deleted), std::string(KindName(kind)),
                                        id, static_cast<int64_t>(!deleted)}));
      INGOT_RETURN_IF_ERROR(st.Run());
      if (c.Changes() == 0) return NotFound(std::string(KindName(kind)) + " " + id + " not found");
      return Status::Ok();
    });
  }

  Status Remove(Kind kind, const std::string& id, bool deleted) override {
    return db_->Write([&](Connection& c) -> Status {
      INGOT_ASSIGN_OR_RETURN(
          auto st, c.Prepare("DELETE FROM build_records WHERE kind = ? AND id = ? AND deleted = ?"));
      INGOT_RETURN_IF_ERROR(
          st.BindAll({std::string(KindName(kind)), id, static_cast<int64_t>(deleted)}));
      INGOT_RETURN_IF_ERROR(st.Run());
      if (c.Changes() == 0) return NotFound(std::string(KindName(kind)) + " " + id + " not found");
      return Status::Ok();
    });
  }

 private:
  static Result<boost::json::object> Parse(const std::string& text) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return Corruption("a build record is not a JSON object");
    return std::move(v.as_object());
  }

  std::shared_ptr<Database> db_;
};

}  // namespace

Result<std::unique_ptr<BuildRepository>> OpenSqliteBuildRepository(std::shared_ptr<Database> db) {
  INGOT_RETURN_IF_ERROR(db->Migrate("build", kSteps));
  return std::unique_ptr<BuildRepository>(new SqliteBuildRepository(std::move(db)));
}

}  // namespace ingot::build
