// The stores this instance keeps image bytes in, by id. Every catalog::Location names its store;
// uploads go to the default store unless the client names another, and download, delete and repair
// use the store the location names.
//
// Built once at start (registry.h: BuildStoreSet) and immutable afterwards: every method may be
// called from many threads at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace ingot::store {

// What /v2/info/stores tells about a store.
struct StoreDescription {
  std::string id;
  std::string driver;
  std::string description;
  bool is_default = false;
  bool read_only = false;
  int weight = 0;
  std::map<std::string, std::string> properties;  // driver options shown to admins (detail)
};

class StoreSet {
 public:
  // kAlreadyExists for a duplicate id. The first store added is the default until one added with
  // is_default says otherwise.
  Status Add(std::unique_ptr<Store> store, StoreDescription description);

  // nullptr when no store has that id.
  Store* Find(std::string_view id) const;
  // The store to write a new image to: the default for an empty id. kNotFound ("Store for
  // identifier x not found") when the id names no store; kPermissionDenied ("Store x is read-only")
  // for a read-only one.
  Result<Store*> ForWriting(std::string_view id) const;
  Store& default_store() const;
  // 0 and false for an unknown id.
  int WeightOf(std::string_view id) const;
  bool IsReadOnly(std::string_view id) const;
  size_t size() const { return entries_.size(); }
  // In configuration order.
  std::vector<StoreDescription> Describe() const;
  std::vector<Store*> stores() const;

 private:
  struct Entry {
    std::unique_ptr<Store> store;
    StoreDescription description;
  };
  std::vector<Entry> entries_;
  size_t default_index_ = 0;
};

}  // namespace ingot::store
