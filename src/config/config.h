// ingotd's configuration: embedded defaults, then a TOML file (--config), then command-line flags.
// Every key is documented in the README ("Configuration"). Read by the composition root (exe/), which
// hands each layer its own options; no library below reads this struct.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/registry.h"

namespace ingot::config {

struct Config {
  // [server]
  std::string listen = "127.0.0.1:9292";
  int io_threads = 1;
  int worker_threads = 64;
  int header_timeout_ms = 30000;
  int idle_timeout_ms = 60000;
  int io_timeout_ms = 60000;
  std::string public_url;  // base for Location headers; default http://<listen>
  // Slow clients and admission (http::ServerOptions says what each means).
  int64_t min_data_rate = 1024;  // bytes/s
  int min_rate_grace_ms = 10000;
  int buffered_body_deadline_ms = 30000;
  int streamed_body_deadline_ms = 0;  // none: the minimum rate bounds an upload
  int max_streamed_bodies = 32;
  int max_connections = 8192;
  int max_connections_per_client = 1024;
  int max_requests_in_flight = 1024;
  int max_requests_in_flight_per_client = 512;
  int retry_after_seconds = 1;

  // [storage]
  std::string data_dir = "./ingot-data";
  // [[stores]]: name, driver, description, default, read_only, weight, then the driver's options. None
  // configured: one file store "file" under <data_dir>/images (see Stores()).
  std::vector<store::StoreConfig> stores;

  // [auth]
  std::string auth = "noauth";  // noauth | tokens
  std::string tokens_file;
  std::string noauth_project = "ingot-dev";

  // [images]
  uint64_t size_cap = 1ull << 40;
  std::string hash_algo = "sha512";
  std::vector<std::string> disk_formats = {"ami", "ari", "aki",   "vhd", "vhdx", "vmdk",
                                           "raw", "qcow2", "vdi", "iso", "ploop", "gpt"};
  std::vector<std::string> container_formats = {"ami", "ari",    "aki",   "bare",
                                                "ovf", "ova", "docker", "compressed"};
  int property_quota = 128;
  int tag_quota = 128;
  int member_quota = 128;

  // [import]: Glance's interoperable import (service::ImportOptions says what each means).
  std::vector<std::string> import_methods = {"glance-direct", "web-download", "copy-image",
                                             "glance-download"};
  std::string staging_dir;  // default <data_dir>/staging
  uint64_t staging_cap = 1ull << 40;
  int import_workers = 2;
  std::string node_name;  // this node in task leases (default: a new id per start)
  int task_lease_ms = 30000;
  int task_ttl_hours = 48;
  bool require_image_format_match = true;
  std::string convert_to;  // "" or "raw"
  bool keep_original = false;  // a converted image's original kept as an image of its own
  bool decompress = true;
  int import_max_redirects = 5;
  int import_connect_timeout_ms = 10000;
  int import_stall_timeout_ms = 60000;
  std::map<std::string, std::string> glance_regions;  // [import.glance_regions] name = "URL"
  std::map<std::string, std::string> inject;          // [import.inject] key = "value"
  std::vector<std::string> inject_ignore_roles = {"admin"};
  // [import_filtering_opts]: Glance's names and defaults.
  std::vector<std::string> allowed_schemes = {"http", "https"};
  std::vector<std::string> disallowed_schemes;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> disallowed_hosts;
  std::vector<uint32_t> allowed_ports = {80, 443};
  std::vector<uint32_t> disallowed_ports;

  // [boot]: the boot service's southbound listener (api/boot/southbound.h). "" turns it off.
  std::string boot_listen = "127.0.0.1:9090";
  std::string boot_root;  // the tree served as '/'; default <data_dir>/boot (created if missing)
  // The same tree over TFTP (read-only; RFC 1350 with blksize, tsize, timeout, windowsize). "" (the
  // default) turns it off; operators use ":69" on the provisioning NIC.
  std::string tftp_listen;

  // [log]
  std::string log_level = "info";

  // The configured stores, or the embedded default.
  std::vector<store::StoreConfig> Stores() const;
};

// Parses TOML text over `config`; `origin` names it in errors. The file reader below and the fuzz
// target use it.
Status LoadConfigText(std::string_view text, const std::string& origin, Config& config);

// Reads a TOML file over `config`. kInvalidArgument naming the key for a bad value or unknown key.
Status LoadConfigFile(const std::string& path, Config& config);

// Parses "host:port" ("[::1]:9292" for IPv6). kInvalidArgument if malformed.
Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen);

}  // namespace ingot::config
