// Metadata definitions in the catalog database (component "metadefs" of catalog::sqlite::Database:
// its own tables and migrations, beside the images').
#pragma once

#include <memory>

#include "catalog/sqlite/database.h"
#include "metadefs/repository.h"

namespace ingot::metadefs {

class SqliteRepository final : public Repository {
 public:
  // Brings the component's tables up to date (Database::Migrate) and returns the repository.
  static Result<std::unique_ptr<SqliteRepository>> Open(
      std::shared_ptr<catalog::sqlite::Database> db);

  Status AddNamespace(const NamespaceTree& tree) override;
  Result<Namespace> GetNamespace(std::string_view name) override;
  Result<std::vector<Namespace>> ListNamespaces(const NamespaceFilter& filter, NamespaceSort sort,
                                                bool ascending) override;
  Status SaveNamespace(std::string_view current, const Namespace& ns) override;
  Status RemoveNamespace(std::string_view name) override;
  Result<std::vector<ResourceType>> ListResourceTypes() override;
  Result<std::vector<Association>> ListAssociations(std::string_view ns) override;
  Status AddAssociation(std::string_view ns, const Association& a) override;
  Status RemoveAssociation(std::string_view ns, std::string_view resource_type) override;
  Result<std::vector<Item>> ListItems(std::string_view ns, ItemKind kind) override;
  Result<Item> GetItem(std::string_view ns, ItemKind kind, std::string_view name) override;
  Status AddItems(std::string_view ns, ItemKind kind, std::span<const Item> items,
                  bool replace) override;
  Status SaveItem(std::string_view ns, ItemKind kind, std::string_view current,
                  const Item& item) override;
  Status RemoveItem(std::string_view ns, ItemKind kind, std::string_view name) override;
  Status RemoveItems(std::string_view ns, ItemKind kind) override;
  Result<bool> WasLoaded(std::string_view source) override;
  Status MarkLoaded(std::string_view source, int64_t at) override;

 private:
  explicit SqliteRepository(std::shared_ptr<catalog::sqlite::Database> db) : db_(std::move(db)) {}
  std::shared_ptr<catalog::sqlite::Database> db_;
};

}  // namespace ingot::metadefs
