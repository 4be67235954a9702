#include "config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>

#include "fetch/fetch.h"
#include "iscsi/wire.h"

namespace ingot::config {
namespace {

template <typename T>
Status Read(const toml::table& t, std::string_view section, std::string_view key, T& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  std::string where = std::string(section) + "." + std::string(key);
  if constexpr (std::is_same_v<T, std::string>) {
    auto v = n->value<std::string>();
    if (!v) return InvalidArgument("config " + where + ": expected a string");
    out = *v;
  } else if constexpr (std::is_same_v<T, bool>) {
    auto v = n->value<bool>();
    if (!v) return InvalidArgument("config " + where + ": expected true or false");
    out = *v;
  } else if constexpr (std::is_same_v<T, std::vector<uint32_t>>) {
    const toml::array* a = n->as_array();
    if (a == nullptr) return InvalidArgument("config " + where + ": expected a list of numbers");
    out.clear();
    for (const auto& e : *a) {
      auto v = e.value<int64_t>();
      if (!v || *v < 0 || *v > 65535) {
        return InvalidArgument("config " + where + ": expected a list of port numbers");
      }
      out.push_back(static_cast<uint32_t>(*v));
    }
  } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
    const toml::table* tt = n->as_table();
    if (tt == nullptr) return InvalidArgument("config " + where + ": expected a table of strings");
    out.clear();
    for (const auto& [k, v] : *tt) {
      auto s = v.template value<std::string>();
      if (!s) return InvalidArgument("config " + where + "." + std::string(k.str()) +
                                     ": expected a string");
      out[std::string(k.str())] = *s;
    }
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    const toml::array* a = n->as_array();
    if (a == nullptr) return InvalidArgument("config " + where + ": expected a list of strings");
    out.clear();
    for (const auto& e : *a) {
      auto v = e.value<std::string>();
      if (!v) return InvalidArgument("config " + where + ": expected a list of strings");
      out.push_back(*v);
    }
  } else {
    auto v = n->value<int64_t>();
    if (!v || *v < 0) return InvalidArgument("config " + where + ": expected a non-negative integer");
    out = static_cast<T>(*v);
  }
  return Status::Ok();
}

Status CheckKeys(const toml::table& t, std::string_view section,
                 std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (auto kk : known) ok |= (k.str() == kk);
    if (!ok) {
      return InvalidArgument("config: unknown key '" + std::string(section) + "." +
                             std::string(k.str()) + "'");
    }
  }
  return Status::Ok();
}

// One [[stores]] entry: the fixed keys, then every other key as a driver option (strings, integers
// and booleans are kept as text; the driver parses and checks them).
Status ReadStore(const toml::table& t, int n, store::StoreConfig& out) {
  std::string where = "config stores[" + std::to_string(n) + "]";
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (key == "name" || key == "driver" || key == "description") {
      auto s = v.value<std::string>();
      if (!s) return InvalidArgument(where + "." + key + ": expected a string");
      (key == "name" ? out.id : key == "driver" ? out.driver : out.description) = *s;
    } else if (key == "default" || key == "read_only") {
      auto b = v.value<bool>();
      if (!b) return InvalidArgument(where + "." + key + ": expected true or false");
      (key == "default" ? out.is_default : out.read_only) = *b;
    } else if (key == "weight") {
      auto i = v.value<int64_t>();
      if (!i) return InvalidArgument(where + ".weight: expected an integer");
      out.weight = static_cast<int>(*i);
    } else if (auto s = v.value<std::string>(); s && v.is_string()) {
      out.options[key] = *s;
    } else if (v.is_integer()) {
      out.options[key] = std::to_string(*v.value<int64_t>());
    } else if (v.is_boolean()) {
      out.options[key] = *v.value<bool>() ? "true" : "false";
    } else {
      return InvalidArgument(where + "." + key + ": expected a string, integer or boolean");
    }
  }
  if (out.id.empty()) return InvalidArgument(where + ": missing 'name'");
  if (out.driver.empty()) return InvalidArgument(where + ": missing 'driver'");
  return Status::Ok();
}

}  // namespace

std::vector<store::StoreConfig> Config::Stores() const {
  if (!stores.empty()) return stores;
  return {store::StoreConfig{.id = "file",
                             .driver = "file",
                             .description = "embedded file store",
                             .is_default = true,
                             .options = {{"path", data_dir + "/images"}}}};
}

Status LoadConfigFile(const std::string& path, Config& c) {
  std::string text;
  {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return InvalidArgument("config " + path + ": cannot be read");
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return LoadConfigText(text, path, c);
}

Status LoadConfigText(std::string_view text, const std::string& path, Config& c) {
  toml::table doc;
  try {
    doc = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return InvalidArgument("config " + path + ": " + std::string(e.description()) + " at line " +
                           std::to_string(e.source().begin.line));
  }
  INGOT_RETURN_IF_ERROR(CheckKeys(doc, "", {"server", "storage", "stores", "auth", "images", "import",
                                                "import_filtering_opts", "boot", "log",
                                                "machines", "proxydhcp", "deploy",
                                                "catalog", "scrubber",
                                                "keystone_authtoken", "policy", "quotas",
                                                "metadefs", "cache", "build"}));
  INGOT_RETURN_IF_ERROR(ReadAuthSections(doc, c.auth_sections));
  INGOT_RETURN_IF_ERROR(ReadImageExtras(doc, c.image_extras));
  if (auto* arr = doc["stores"].as_array()) {
    c.stores.clear();
    int n = 0;
    for (const auto& node : *arr) {
      const toml::table* t = node.as_table();
      if (t == nullptr) return InvalidArgument("config stores: expected [[stores]] tables");
      store::StoreConfig sc;
      INGOT_RETURN_IF_ERROR(ReadStore(*t, n++, sc));
      c.stores.push_back(std::move(sc));
    }
  } else if (doc.contains("stores")) {
    return InvalidArgument("config stores: expected [[stores]] tables");
  }
  if (auto* s = doc["server"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(
        *s, "server",
        {"listen", "io_threads", "worker_threads", "header_timeout_ms", "idle_timeout_ms",
         "io_timeout_ms", "public_url", "min_data_rate", "min_rate_grace_ms",
         "buffered_body_deadline_ms", "streamed_body_deadline_ms", "max_streamed_bodies",
         "max_connections", "max_connections_per_client", "max_requests_in_flight",
         "max_requests_in_flight_per_client", "retry_after_seconds"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "listen", c.listen));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "io_threads", c.io_threads));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "worker_threads", c.worker_threads));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "header_timeout_ms", c.header_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "idle_timeout_ms", c.idle_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "io_timeout_ms", c.io_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "public_url", c.public_url));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "min_data_rate", c.min_data_rate));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "min_rate_grace_ms", c.min_rate_grace_ms));
    INGOT_RETURN_IF_ERROR(
        Read(*s, "server", "buffered_body_deadline_ms", c.buffered_body_deadline_ms));
    INGOT_RETURN_IF_ERROR(
        Read(*s, "server", "streamed_body_deadline_ms", c.streamed_body_deadline_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "max_streamed_bodies", c.max_streamed_bodies));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "max_connections", c.max_connections));
    INGOT_RETURN_IF_ERROR(
        Read(*s, "server", "max_connections_per_client", c.max_connections_per_client));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "max_requests_in_flight", c.max_requests_in_flight));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "max_requests_in_flight_per_client",
                               c.max_requests_in_flight_per_client));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "retry_after_seconds", c.retry_after_seconds));
  }
  if (auto* s = doc["storage"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "storage", {"data_dir"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "storage", "data_dir", c.data_dir));
  }
  if (auto* s = doc["auth"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "auth", {"mode", "tokens_file", "noauth_project"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "auth", "mode", c.auth));
    INGOT_RETURN_IF_ERROR(Read(*s, "auth", "tokens_file", c.tokens_file));
    INGOT_RETURN_IF_ERROR(Read(*s, "auth", "noauth_project", c.noauth_project));
  }
  if (auto* s = doc["images"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "images",
                                    {"size_cap", "hash_algo", "disk_formats", "container_formats",
                                     "property_quota", "tag_quota", "member_quota",
                                     "show_multiple_locations", "show_image_direct_url",
                                     "upload_lease_s",
                                     kImageExtrasImagesKeys[0], kImageExtrasImagesKeys[1]}));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "size_cap", c.size_cap));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "hash_algo", c.hash_algo));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "disk_formats", c.disk_formats));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "container_formats", c.container_formats));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "property_quota", c.property_quota));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "tag_quota", c.tag_quota));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "member_quota", c.member_quota));
    INGOT_RETURN_IF_ERROR(
        Read(*s, "images", "show_multiple_locations", c.show_multiple_locations));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "show_image_direct_url", c.show_image_direct_url));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "upload_lease_s", c.upload_lease_s));
    if (c.upload_lease_s < 3) return InvalidArgument("config images.upload_lease_s: at least 3");
  }
  if (auto* s = doc["import"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(
        *s, "import",
        {"methods", "staging_dir", "staging_cap", "workers", "node_name", "task_lease_ms",
         "task_ttl_hours", "require_image_format_match", "convert_to", "keep_original", "decompress",
         "max_redirects",
         "connect_timeout_ms", "inject", "inject_ignore_roles",
         "stall_timeout_ms", "glance_regions", "glance_download_properties"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "methods", c.import_methods));
    for (const auto& m : c.import_methods) {
      if (m != "glance-direct" && m != "web-download" && m != "copy-image" &&
          m != "glance-download") {
        return InvalidArgument("config import.methods: unknown method '" + m + "'");
      }
    }
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "staging_dir", c.staging_dir));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "staging_cap", c.staging_cap));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "workers", c.import_workers));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "node_name", c.node_name));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "task_lease_ms", c.task_lease_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "task_ttl_hours", c.task_ttl_hours));
    INGOT_RETURN_IF_ERROR(
        Read(*s, "import", "require_image_format_match", c.require_image_format_match));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "convert_to", c.convert_to));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "keep_original", c.keep_original));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "decompress", c.decompress));
    if (!c.convert_to.empty() && c.convert_to != "raw") {
      return InvalidArgument("config import.convert_to: only \"raw\" (or \"\") is supported, not '" +
                             c.convert_to + "'");
    }
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "max_redirects", c.import_max_redirects));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "connect_timeout_ms", c.import_connect_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "stall_timeout_ms", c.import_stall_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "glance_regions", c.glance_regions));
    INGOT_RETURN_IF_ERROR(
        Read(*s, "import", "glance_download_properties", c.glance_download_properties));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "inject", c.inject));
    INGOT_RETURN_IF_ERROR(Read(*s, "import", "inject_ignore_roles", c.inject_ignore_roles));
  }
  if (auto* s = doc["import_filtering_opts"].as_table()) {
    const char* sec = "import_filtering_opts";
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, sec,
                                    {"allowed_schemes", "disallowed_schemes", "allowed_hosts",
                                     "disallowed_hosts", "allowed_ports", "disallowed_ports",
                                     "allowed_networks"}));
    INGOT_RETURN_IF_ERROR(Read(*s, sec, "allowed_schemes", c.allowed_schemes));
    INGOT_RETURN_IF_ERROR(Read(*s, sec, "disallowed_schemes", c.disallowed_schemes));
    INGOT_RETURN_IF_ERROR(Read(*s, sec, "allowed_hosts", c.allowed_hosts));
    INGOT_RETURN_IF_ERROR(Read(*s, sec, "disallowed_hosts", c.disallowed_hosts));
    INGOT_RETURN_IF_ERROR(Read(*s, sec, "allowed_ports", c.allowed_ports));
    INGOT_RETURN_IF_ERROR(Read(*s, sec, "disallowed_ports", c.disallowed_ports));
    INGOT_RETURN_IF_ERROR(Read(*s, sec, "allowed_networks", c.allowed_networks));
    for (const std::string& network : c.allowed_networks) {
      if (Status ok = fetch::CheckNetwork(network); !ok.ok()) {
        return InvalidArgument("config import_filtering_opts.allowed_networks: " + ok.message());
      }
    }
  }
  if (auto* s = doc["build"].as_table()) {
    INGOT_RETURN_IF_ERROR(
        CheckKeys(*s, "build", {"enabled", "dir", "mirror", "max_jobs", "job_timeout_s", "ssh_listen",
                                "ssh_host", "store", "job_lease_s"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "enabled", c.build_enabled));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "dir", c.build_dir));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "mirror", c.build_mirror));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "max_jobs", c.build_max_jobs));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "job_timeout_s", c.build_job_timeout_s));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "ssh_listen", c.build_ssh_listen));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "ssh_host", c.build_ssh_host));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "store", c.build_store));
    INGOT_RETURN_IF_ERROR(Read(*s, "build", "job_lease_s", c.build_job_lease_s));
    if (c.build_job_lease_s < 3) return InvalidArgument("config build.job_lease_s: at least 3");
  }
  if (auto* s = doc["boot"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "boot",
                                    {"listen", "root", "tftp_listen", "content_dir",
                                     "local_dirs", "rackhd_listen", "firmware_dir"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "boot", "firmware_dir", c.boot_firmware_dir));
    INGOT_RETURN_IF_ERROR(Read(*s, "boot", "content_dir", c.boot_content_dir));
    INGOT_RETURN_IF_ERROR(Read(*s, "boot", "local_dirs", c.boot_local_dirs));
    INGOT_RETURN_IF_ERROR(Read(*s, "boot", "rackhd_listen", c.boot_rackhd_listen));
    if (!c.boot_rackhd_listen.empty()) {
      if (auto l = ParseListen(c.boot_rackhd_listen); !l.ok()) {
        return InvalidArgument("config boot.rackhd_listen: " + l.status().message());
      }
    }
    INGOT_RETURN_IF_ERROR(Read(*s, "boot", "tftp_listen", c.tftp_listen));
    if (!c.tftp_listen.empty()) {
      if (auto l = ParseListen(c.tftp_listen); !l.ok()) {
        return InvalidArgument("config boot.tftp_listen: " + l.status().message());
      }
    }
    INGOT_RETURN_IF_ERROR(Read(*s, "boot", "listen", c.boot_listen));
    INGOT_RETURN_IF_ERROR(Read(*s, "boot", "root", c.boot_root));
    if (!c.boot_listen.empty()) {
      if (auto l = ParseListen(c.boot_listen); !l.ok()) {
        return InvalidArgument("config boot.listen: " + l.status().message());
      }
    }
  }
  if (auto* s = doc["machines"].as_table()) {
    MachinesConfig& m = c.machines;
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "machines",
                                    {"enabled", "holding_retry_seconds", "public_url",
                                     "signing_cert", "signing_key", "signing_chain"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "machines", "enabled", m.enabled));
    INGOT_RETURN_IF_ERROR(Read(*s, "machines", "holding_retry_seconds", m.holding_retry_seconds));
    INGOT_RETURN_IF_ERROR(Read(*s, "machines", "public_url", m.public_url));
    INGOT_RETURN_IF_ERROR(Read(*s, "machines", "signing_cert", m.signing_cert));
    INGOT_RETURN_IF_ERROR(Read(*s, "machines", "signing_key", m.signing_key));
    INGOT_RETURN_IF_ERROR(Read(*s, "machines", "signing_chain", m.signing_chain));
    if (m.signing_cert.empty() != m.signing_key.empty()) {
      return InvalidArgument("config machines: signing_cert and signing_key go together");
    }
    if (m.holding_retry_seconds < 1 || m.holding_retry_seconds > 3600) {
      return InvalidArgument("config machines.holding_retry_seconds: 1 to 3600");
    }
  }
  if (auto* s = doc["proxydhcp"].as_table()) {
    ProxyDhcpConfig& d = c.proxydhcp;
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "proxydhcp",
                                    {"enabled", "listen", "interface", "port", "pxe_port",
                                     "server_address", "bios_bootfile", "uefi_bootfile",
                                     "arm64_bootfile"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "enabled", d.enabled));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "listen", d.listen));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "interface", d.interface));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "port", d.port));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "pxe_port", d.pxe_port));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "server_address", d.server_address));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "bios_bootfile", d.bios_bootfile));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "uefi_bootfile", d.uefi_bootfile));
    INGOT_RETURN_IF_ERROR(Read(*s, "proxydhcp", "arm64_bootfile", d.arm64_bootfile));
    if (d.port < 1 || d.port > 65534 || d.pxe_port > 65535) {
      return InvalidArgument("config proxydhcp.port / pxe_port: a UDP port");
    }
  }
  if (auto* s = doc["catalog"].as_table()) {
    CatalogConfig& k = c.catalog;
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "catalog",
                                    {"driver", "dsn", "pool_size", "sslmode", "sslrootcert",
                                     "sslcert", "sslkey", "password_file", "connect_timeout_s",
                                     "statement_timeout_ms"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "driver", k.driver));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "dsn", k.dsn));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "pool_size", k.pool_size));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "sslmode", k.sslmode));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "sslrootcert", k.sslrootcert));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "sslcert", k.sslcert));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "sslkey", k.sslkey));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "password_file", k.password_file));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "connect_timeout_s", k.connect_timeout_s));
    INGOT_RETURN_IF_ERROR(Read(*s, "catalog", "statement_timeout_ms", k.statement_timeout_ms));
    if (k.driver != "sqlite" && k.driver != "postgres") {
      return InvalidArgument("config catalog.driver: expected \"sqlite\" or \"postgres\", not \"" +
                             k.driver + "\"");
    }
    if (k.driver == "postgres" && k.dsn.empty()) {
      return InvalidArgument("config catalog.dsn: driver \"postgres\" needs a dsn");
    }
    static const char* const kSslModes[] = {"", "disable", "allow", "prefer", "require",
                                            "verify-ca", "verify-full"};
    if (std::find(std::begin(kSslModes), std::end(kSslModes), k.sslmode) == std::end(kSslModes)) {
      return InvalidArgument("config catalog.sslmode: expected disable, allow, prefer, require, "
                             "verify-ca or verify-full");
    }
  }
  if (auto* s = doc["scrubber"].as_table()) {
    ScrubberConfig& k = c.scrubber;
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "scrubber",
                                    {"enabled", "interval_s", "grace_s", "rehash_mib", "lease_s"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "scrubber", "enabled", k.enabled));
    INGOT_RETURN_IF_ERROR(Read(*s, "scrubber", "interval_s", k.interval_s));
    INGOT_RETURN_IF_ERROR(Read(*s, "scrubber", "grace_s", k.grace_s));
    INGOT_RETURN_IF_ERROR(Read(*s, "scrubber", "rehash_mib", k.rehash_mib));
    INGOT_RETURN_IF_ERROR(Read(*s, "scrubber", "lease_s", k.lease_s));
    if (k.interval_s < 1) return InvalidArgument("config scrubber.interval_s: at least 1");
    if (k.lease_s < 3) return InvalidArgument("config scrubber.lease_s: at least 3");
    if (k.rehash_mib > (int64_t{1} << 40)) {
      return InvalidArgument("config scrubber.rehash_mib: at most 2^40");
    }
  }
  if (auto* s = doc["deploy"].as_table()) {
    INGOT_RETURN_IF_ERROR(
        CheckKeys(*s, "deploy", {"nbd_listen", "volumes_dir", "iscsi_listen", "iscsi_iqn"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "deploy", "nbd_listen", c.nbd_listen));
    INGOT_RETURN_IF_ERROR(Read(*s, "deploy", "volumes_dir", c.volumes_dir));
    INGOT_RETURN_IF_ERROR(Read(*s, "deploy", "iscsi_listen", c.iscsi_listen));
    INGOT_RETURN_IF_ERROR(Read(*s, "deploy", "iscsi_iqn", c.iscsi_iqn));
    if (!c.nbd_listen.empty()) {
      if (auto l = ParseListen(c.nbd_listen); !l.ok()) {
        return InvalidArgument("config deploy.nbd_listen: " + l.status().message());
      }
    }
    if (!c.iscsi_listen.empty()) {
      if (auto l = ParseListen(c.iscsi_listen); !l.ok()) {
        return InvalidArgument("config deploy.iscsi_listen: " + l.status().message());
      }
    }
    // Room for ":" and a 128-byte volume name within iSCSI's 223-byte names.
    if (!iscsi::ValidIscsiName(c.iscsi_iqn) || c.iscsi_iqn.size() > 94 ||
        c.iscsi_iqn.back() == ':') {
      return InvalidArgument("config deploy.iscsi_iqn: '" + c.iscsi_iqn +
                             "' is not an iSCSI name prefix of at most 94 bytes "
                             "(iqn.YYYY-MM.reversed.domain[:more])");
    }
  }
  if (auto* s = doc["log"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "log", {"level"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "log", "level", c.log_level));
  }
  return Status::Ok();
}

Result<std::pair<std::string, uint16_t>> ParseListen(const std::string& listen) {
  std::string host;
  std::string port;
  if (!listen.empty() && listen[0] == '[') {
    auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return InvalidArgument("--listen '" + listen + "': expected [ADDR]:PORT");
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) return InvalidArgument("--listen '" + listen + "': expected HOST:PORT");
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || p != port.data() + port.size() || value > 65535 || host.empty()) {
    return InvalidArgument("--listen '" + listen + "': expected HOST:PORT with PORT 0-65535");
  }
  return std::make_pair(host, static_cast<uint16_t>(value));
}

}  // namespace ingot::config
