#include "build/records.h"

#include "catalog/sql/backend.h"

namespace ingot::build {

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

using catalog::sql::Backend;
using catalog::sql::Session;
using catalog::sql::Value;

// Never edit a shipped step: add one. The text is the same for SQLite and PostgreSQL.
const std::vector<const char*> kSteps = {
    "CREATE TABLE build_records ("
    "  kind TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  seq BIGINT NOT NULL,"  // insertion order: lists come oldest first, as IMS lists them
    "  doc TEXT NOT NULL,"
    "  PRIMARY KEY (kind, id, deleted))",
};

std::string NotFoundText(Kind kind, const std::string& id) {
  return std::string(KindName(kind)) + " " + id + " not found";
}

class SqlBuildRepository : public BuildRepository {
 public:
  explicit SqlBuildRepository(std::shared_ptr<Backend> db) : db_(std::move(db)) {}

  Status Put(Kind kind, const std::string& id, const boost::json::object& doc) override {
    std::string text = boost::json::serialize(doc);
    return db_->Write([&](Session& s) -> Status {
      return s.Exec("INSERT INTO build_records (kind, id, deleted, seq, doc) VALUES (?, ?, 0, "
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM build_records), ?) "
                    "ON CONFLICT (kind, id, deleted) DO UPDATE SET doc = excluded.doc",
                    {std::string(KindName(kind)), id, text})
          .status();
    });
  }

  Result<boost::json::object> Get(Kind kind, const std::string& id, bool deleted) override {
    std::optional<std::string> text;
    INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
      INGOT_ASSIGN_OR_RETURN(
          auto r, s.Query("SELECT doc FROM build_records WHERE kind = ? AND id = ? AND deleted = ?",
                          {std::string(KindName(kind)), id, Flag(deleted)}));
      INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
      if (row) text = r->Text(0);
      return Status::Ok();
    }));
    if (!text) return NotFound(NotFoundText(kind, id));
    return Parse(*text);
  }

  Result<std::vector<boost::json::object>> List(Kind kind, bool deleted) override {
    std::vector<boost::json::object> out;
    INGOT_RETURN_IF_ERROR(db_->Read([&](Session& s) -> Status {
      INGOT_ASSIGN_OR_RETURN(
          auto r, s.Query("SELECT doc FROM build_records WHERE kind = ? AND deleted = ? "
                          "ORDER BY seq, id",
                          {std::string(KindName(kind)), Flag(deleted)}));
      for (;;) {
        INGOT_ASSIGN_OR_RETURN(bool row, r->Next());
        if (!row) break;
        INGOT_ASSIGN_OR_RETURN(auto doc, Parse(r->Text(0)));
        out.push_back(std::move(doc));
      }
      return Status::Ok();
    }));
    return out;
  }

  Status SetDeleted(Kind kind, const std::string& id, bool deleted) override {
    return Change(kind, id,
                  "UPDATE build_records SET deleted = ? WHERE kind = ? AND id = ? AND deleted = ?",
                  {Flag(deleted), std::string(KindName(kind)), id, Flag(!deleted)});
  }

  Status Remove(Kind kind, const std::string& id, bool deleted) override {
    return Change(kind, id, "DELETE FROM build_records WHERE kind = ? AND id = ? AND deleted = ?",
                  {std::string(KindName(kind)), id, Flag(deleted)});
  }

 private:
  static Value Flag(bool b) { return int64_t{b ? 1 : 0}; }

  // One statement that must change the record: kNotFound when it changed nothing.
  Status Change(Kind kind, const std::string& id, const char* sql, std::vector<Value> args) {
    return db_->Write([&](Session& s) -> Status {
      INGOT_ASSIGN_OR_RETURN(int64_t changed, s.Exec(sql, args));
      if (changed == 0) return NotFound(NotFoundText(kind, id));
      return Status::Ok();
    });
  }

  static Result<boost::json::object> Parse(const std::string& text) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return Corruption("a build record is not a JSON object");
    return std::move(v.as_object());
  }

  std::shared_ptr<Backend> db_;
};

}  // namespace

Result<std::unique_ptr<BuildRepository>> OpenBuildRepository(std::shared_ptr<Backend> db) {
  INGOT_RETURN_IF_ERROR(catalog::sql::MigrateComponent(*db, "build", kSteps));
  return std::unique_ptr<BuildRepository>(new SqlBuildRepository(std::move(db)));
}

}  // namespace ingot::build
