#include "store/registry.h"

#include <charconv>

namespace ingot::store {

Status DriverRegistry::Register(std::string driver, StoreFactory factory) {
  auto [it, added] = factories_.emplace(std::move(driver), std::move(factory));
  if (!added) return AlreadyExists("store driver '" + it->first + "' is registered twice");
  return Status::Ok();
}

Result<std::unique_ptr<Store>> DriverRegistry::Build(const StoreConfig& config) const {
  auto it = factories_.find(config.driver);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [name, _] : factories_) known += (known.empty() ? "" : ", ") + name;
    return InvalidArgument("store '" + config.id + "': unknown driver '" + config.driver +
                           "' (known: " + known + ")");
  }
  auto store = it->second(config);
  if (!store.ok()) return store.status().WithContext("store '" + config.id + "'");
  return store;
}

std::vector<std::string> DriverRegistry::drivers() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : factories_) out.push_back(name);
  return out;
}

Result<std::unique_ptr<StoreSet>> BuildStoreSet(const DriverRegistry& registry,
                                                const std::vector<StoreConfig>& configs) {
  if (configs.empty()) return InvalidArgument("no store is configured");
  int defaults = 0;
  bool writable = false;
  for (const StoreConfig& c : configs) {
    defaults += c.is_default ? 1 : 0;
    writable |= !c.read_only;
    if (c.is_default && c.read_only) {
      return InvalidArgument("store '" + c.id + "' cannot be both the default and read-only");
    }
  }
  if (defaults > 1) return InvalidArgument("more than one store is marked default");
  if (!writable) return InvalidArgument("every store is read-only: uploads would have nowhere to go");
  // Without a marked default, the first writable store is.
  bool first_writable_done = defaults > 0;
  auto set = std::make_unique<StoreSet>();
  for (const StoreConfig& c : configs) {
    if (c.id.empty()) return InvalidArgument("a store needs an id");
    INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Store> store, registry.Build(c));
    if (store->id() != c.id) return Internal("store '" + c.id + "': driver reported another id");
    StoreDescription d{.id = c.id,
                       .driver = c.driver,
                       .description = c.description,
                       .is_default = c.is_default || (!first_writable_done && !c.read_only),
                       .read_only = c.read_only,
                       .weight = c.weight,
                       .properties = c.options};
    first_writable_done |= d.is_default;
    INGOT_RETURN_IF_ERROR(set->Add(std::move(store), std::move(d)));
  }
  return set;
}

Result<uint64_t> UintOption(const StoreConfig& config, const std::string& key, uint64_t fallback) {
  auto it = config.options.find(key);
  if (it == config.options.end()) return fallback;
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return InvalidArgument("option " + key + ": expected a non-negative integer, not '" + s + "'");
  }
  return v;
}

Status CheckOptions(const StoreConfig& config, std::initializer_list<std::string_view> known) {
  for (const auto& [key, _] : config.options) {
    bool ok = false;
    for (std::string_view k : known) ok |= key == k;
    if (!ok) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return InvalidArgument("unknown option '" + key + "' for driver " + config.driver +
                             " (known: " + list + ")");
    }
  }
  return Status::Ok();
}

}  // namespace ingot::store
