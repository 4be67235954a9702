#include "config/image_extras.h"

#include <set>

namespace ingot::config {
namespace {

Status Unknown(const toml::table& t, std::string_view section, const std::set<std::string>& known) {
  for (const auto& [k, v] : t) {
    if (!known.count(std::string(k.str()))) {
      return InvalidArgument("config " + std::string(section) + ": unknown key '" +
                             std::string(k.str()) + "'");
    }
  }
  return Status::Ok();
}

template <typename T>
Status Get(const toml::table& t, std::string_view sec, std::string_view key, T& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  if constexpr (std::is_same_v<T, bool>) {
    if (auto v = n->value<bool>()) {
      out = *v;
      return Status::Ok();
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = n->value<std::string>()) {
      out = *v;
      return Status::Ok();
    }
  } else {
    if (auto v = n->value<int64_t>(); v && *v >= 0) {
      out = static_cast<T>(*v);
      return Status::Ok();
    }
  }
  return InvalidArgument("config " + std::string(sec) + "." + std::string(key) +
                         ": wrong type or value");
}

}  // namespace

Status ReadImageExtras(const toml::table& doc, ImageExtras& out) {
  if (const toml::table* s = doc["metadefs"].as_table()) {
    INGOT_RETURN_IF_ERROR(Unknown(*s, "metadefs", {"load", "definitions_dir"}));
    INGOT_RETURN_IF_ERROR(Get(*s, "metadefs", "load", out.metadefs.load));
    INGOT_RETURN_IF_ERROR(Get(*s, "metadefs", "definitions_dir", out.metadefs.definitions_dir));
  }
  if (const toml::table* s = doc["cache"].as_table()) {
    INGOT_RETURN_IF_ERROR(
        Unknown(*s, "cache",
                {"enabled", "dir", "max_size", "cache_local_stores", "prefetch_delay_ms",
                 "sweep_interval_ms"}));
    INGOT_RETURN_IF_ERROR(Get(*s, "cache", "enabled", out.cache.enabled));
    INGOT_RETURN_IF_ERROR(Get(*s, "cache", "dir", out.cache.dir));
    INGOT_RETURN_IF_ERROR(Get(*s, "cache", "max_size", out.cache.max_size));
    INGOT_RETURN_IF_ERROR(Get(*s, "cache", "cache_local_stores", out.cache.cache_local_stores));
    INGOT_RETURN_IF_ERROR(Get(*s, "cache", "prefetch_delay_ms", out.cache.prefetch_delay_ms));
    INGOT_RETURN_IF_ERROR(Get(*s, "cache", "sweep_interval_ms", out.cache.sweep_interval_ms));
  }
  if (const toml::table* s = doc["images"].as_table()) {
    auto& p = out.protections;
    INGOT_RETURN_IF_ERROR(
        Get(*s, "images", "property_protection_file", p.property_protection_file));
    INGOT_RETURN_IF_ERROR(
        Get(*s, "images", "property_protection_rule_format", p.property_protection_rule_format));
    if (p.property_protection_rule_format != "roles" &&
        p.property_protection_rule_format != "policies") {
      return InvalidArgument(
          "config images.property_protection_rule_format: must be \"roles\" or \"policies\"");
    }
  }
  return Status::Ok();
}

}  // namespace ingot::config
