#include "service/config.h"

#include <toml++/toml.h>

#include <charconv>
#include <set>

namespace ingot::service {
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

}  // namespace

Status LoadConfigFile(const std::string& path, Config& c) {
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return InvalidArgument("config " + path + ": " + std::string(e.description()) + " at line " +
                           std::to_string(e.source().begin.line));
  }
  INGOT_RETURN_IF_ERROR(CheckKeys(doc, "", {"server", "storage", "auth", "images", "log"}));
  if (auto* s = doc["server"].as_table()) {
    INGOT_RETURN_IF_ERROR(CheckKeys(*s, "server",
                                    {"listen", "io_threads", "worker_threads", "header_timeout_ms",
                                     "idle_timeout_ms", "io_timeout_ms", "public_url"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "listen", c.listen));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "io_threads", c.io_threads));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "worker_threads", c.worker_threads));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "header_timeout_ms", c.header_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "idle_timeout_ms", c.idle_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "io_timeout_ms", c.io_timeout_ms));
    INGOT_RETURN_IF_ERROR(Read(*s, "server", "public_url", c.public_url));
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
                                     "property_quota", "tag_quota"}));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "size_cap", c.size_cap));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "hash_algo", c.hash_algo));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "disk_formats", c.disk_formats));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "container_formats", c.container_formats));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "property_quota", c.property_quota));
    INGOT_RETURN_IF_ERROR(Read(*s, "images", "tag_quota", c.tag_quota));
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

}  // namespace ingot::service
