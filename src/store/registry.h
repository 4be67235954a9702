// Store drivers by name, and the StoreSet built from configuration through them.
//
// A driver is a factory from a StoreConfig to a Store. It owns the meaning of its options: it turns
// the untyped `options` into its own typed options struct (store/file/file_store.h:
// FileStoreOptions) and refuses an unknown or malformed key, naming it. Drivers are registered
// explicitly by the composition root (exe/), never by static initialisers, so what a binary can
// talk to is visible in one place.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store_set.h"

namespace ingot::store {

// One configured store ([[stores]] in the TOML configuration).
struct StoreConfig {
  std::string id;           // the store's name: what locations name; unique
  std::string driver;       // "file", ...
  std::string description;  // shown by /v2/info/stores
  bool is_default = false;  // where uploads go unless the client names a store
  bool read_only = false;   // serves what it holds; takes no new images
  int weight = 0;           // Glance's store weight: preference when reading a multi-location image
  std::map<std::string, std::string> options;  // driver options, as written
};

using StoreFactory = std::function<Result<std::unique_ptr<Store>>(const StoreConfig&)>;

class DriverRegistry {
 public:
  // kAlreadyExists when `driver` is already registered.
  Status Register(std::string driver, StoreFactory factory);
  // kInvalidArgument naming the store and the known drivers when `config.driver` is unknown; the
  // driver's own error (with the store id prepended) when its options are refused.
  Result<std::unique_ptr<Store>> Build(const StoreConfig& config) const;
  std::vector<std::string> drivers() const;

 private:
  std::map<std::string, StoreFactory> factories_;
};

// Builds every configured store. Names must be unique and non-empty; at most one store is the
// default (the first writable one is, when none says so), and the default is writable.
// kInvalidArgument naming the offending store otherwise.
Result<std::unique_ptr<StoreSet>> BuildStoreSet(const DriverRegistry& registry,
                                                const std::vector<StoreConfig>& configs);

// Reads a non-negative integer option; kInvalidArgument naming the store and key when malformed.
Result<uint64_t> UintOption(const StoreConfig& config, const std::string& key, uint64_t fallback);
// kInvalidArgument naming the first option not in `known`.
Status CheckOptions(const StoreConfig& config, std::initializer_list<std::string_view> known);

}  // namespace ingot::store
