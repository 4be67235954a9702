// The boot content's records in the catalog database (catalog::sqlite::Database), under migration
// component "boot_content": tables boot_isos, boot_trees, boot_files, boot_publications. Never
// touches another component's tables.
#pragma once

#include <memory>

#include "boot/content.h"
#include "catalog/sqlite/database.h"

namespace ingot::boot {

class SqliteContentRepository final : public ContentRepository {
 public:
  // Migrates the component's tables; kCorruption for a schema newer than this build.
  static Result<std::unique_ptr<SqliteContentRepository>> Open(
      std::shared_ptr<catalog::sqlite::Database> db);

  Status PutIso(const Iso& iso) override;
  Status InsertIso(const Iso& iso) override;
  Result<std::optional<Iso>> GetIso(const std::string& name) override;
  Result<std::vector<Iso>> ListIsos() override;
  Status DeleteIso(const std::string& name) override;

  Status InsertTree(const OsTree& tree) override;
  Status UpdateTree(const OsTree& tree) override;
  Result<std::optional<OsTree>> GetTree(const std::string& name,
                                        const std::string& version) override;
  Result<std::vector<OsTree>> ListTrees() override;
  Status DeleteTree(const std::string& id) override;

  Status PutFile(const BootFile& file) override;
  Result<std::optional<BootFile>> GetFile(FileSpace space, const std::string& name) override;
  Result<std::vector<BootFile>> ListFiles(FileSpace space) override;
  Status DeleteFile(FileSpace space, const std::string& name) override;

  Status InsertPublication(const Publication& p) override;
  Result<std::vector<Publication>> ListPublications() override;
  Status DeletePublication(const std::string& name) override;

 private:
  explicit SqliteContentRepository(std::shared_ptr<catalog::sqlite::Database> db)
      : db_(std::move(db)) {}
  std::shared_ptr<catalog::sqlite::Database> db_;
};

}  // namespace ingot::boot
