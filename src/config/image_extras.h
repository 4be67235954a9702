// The sections of ingotd's configuration for metadata definitions, the image cache and property
// protections, under Glance's names where Glance has them:
//   [metadefs] definitions_dir, load
//   [cache]    enabled, dir, max_size, cache_local_stores, prefetch_delay_ms, sweep_interval_ms
//   [images]   property_protection_file, property_protection_rule_format (the rest of [images] is
//              config.cc's)
// LoadConfigText calls ReadImageExtras.
#pragma once

#include <cstdint>
#include <string>

#include <toml++/toml.h>

#include "common/result.h"

namespace ingot::config {

struct MetadefsSection {
  bool load = true;             // load the shipped (or definitions_dir's) definitions at start
  std::string definitions_dir;  // "" = the definitions embedded in ingotd (etc/metadefs)
};

struct CacheSection {
  bool enabled = true;
  std::string dir;                       // "" = <data_dir>/cache
  uint64_t max_size = 10ull << 30;       // Glance's image_cache_max_size (10 GiB)
  bool cache_local_stores = false;       // read-through caching of file-store images too
  int64_t prefetch_delay_ms = 1000;      // a queued image waits this long before it is fetched
  // How often cached images are checked against the catalog and the deleted or deactivated ones
  // dropped (other nodes sharing the catalog change images behind this node's back); 0: never.
  int64_t sweep_interval_ms = 60000;
};

struct ProtectionSection {
  std::string property_protection_file;                // "" = no protections
  std::string property_protection_rule_format = "roles";  // roles | policies
};

struct ImageExtras {
  MetadefsSection metadefs;
  CacheSection cache;
  ProtectionSection protections;
};

// The [images] keys read here (config.cc accepts them in [images]).
inline constexpr const char* kImageExtrasImagesKeys[] = {"property_protection_file",
                                                          "property_protection_rule_format"};

Status ReadImageExtras(const toml::table& doc, ImageExtras& out);

}  // namespace ingot::config
