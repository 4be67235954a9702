#include "api/boot/machines.h"

#include <boost/json.hpp>

#include "api/errors.h"
#include "api/v2/documents.h"
#include "boot/machines_json.h"
#include "boot/machines_signer.h"
#include "common/log.h"
#include "http/router.h"

namespace ingot::api::boot {
namespace json = boost::json;
using http::Response;
using ingot::boot::Machine;
using ingot::boot::MachineState;
using ingot::boot::Profile;
using ingot::boot::RenderContext;

namespace {

Response Text(int status, std::string body, std::string_view type = "text/plain; charset=utf-8") {
  Response r;
  r.status = status;
  r.headers.Set("Content-Type", std::string(type));
  // A machine's script changes when an operator assigns it: never cached.
  r.headers.Set("Cache-Control", "no-store");
  r.headers.Set("X-Content-Type-Options", "nosniff");
  r.body = std::move(body);
  r.route = "boot.machines";
  return r;
}

Response Problem(int status, std::string_view message) {
  return Text(status, std::to_string(status) + " " + std::string(ReasonPhrase(status)) + "\n" +
                          std::string(message) + "\n");
}

// The caller's address without the port ("127.0.0.1:5123" -> "127.0.0.1", "[::1]:5" -> "::1").
std::string AddressOf(std::string_view remote) {
  if (!remote.empty() && remote.front() == '[') {
    size_t close = remote.find(']');
    return std::string(remote.substr(1, close == std::string_view::npos ? 0 : close - 1));
  }
  size_t colon = remote.rfind(':');
  if (colon != std::string_view::npos && remote.find(':') == colon) remote = remote.substr(0, colon);
  return std::string(remote);
}

// The base URL the machine used to reach us, from its Host header (checked: a host name or
// address and a port, nothing that could break out of a URL or a script line).
std::string BaseUrl(const http::Request& req, const std::string& fallback) {
  auto host = req.headers.Get("Host");
  if (host && !host->empty() && host->size() <= 255 &&
      std::all_of(host->begin(), host->end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '-' ||
               c == '[' || c == ']';
      })) {
    return "http://" + std::string(*host);
  }
  return fallback.empty() ? std::string("http://127.0.0.1") : fallback;
}

std::string Query(std::string_view key, const std::string& value) {
  std::string out = std::string(key) + "=";
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == ':' || c == '-' || c == '.' || c == '_') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string Param(const http::Request& req, std::string_view name) {
  auto v = req.QueryValue(name);
  return v ? std::string(*v) : std::string();
}

Result<Response> JsonOk(int status, json::value v) { return JsonResponse(status, v); }

}  // namespace

RenderContext MachineRoutes::ContextFor(const Machine& m, const std::optional<Profile>& p,
                                        const std::string& base_url) const {
  RenderContext ctx;
  ctx.base_url = base_url;
  ctx.holding_retry_seconds = options_.holding_retry_seconds;
  ctx.signed_assets = options_.signer != nullptr;
  std::string q;
  if (!m.mac.empty()) q = Query("mac", m.mac);
  if (!m.uuid.empty()) q += (q.empty() ? "" : "&") + Query("uuid", m.uuid);
  ctx.identity_query = q;
  if (p && p->os && options_.os_tree) {
    ctx.os = options_.os_tree(p->os->name, p->os->version, base_url);
  }
  return ctx;
}

bool MachineRoutes::SouthboundBlocks(const http::Request& req, const BootPath& path) const {
  const std::vector<std::string>& parts = path.components;
  if (parts.empty()) return false;
  if (options_.signer != nullptr && req.path.size() > 4 && req.path.ends_with(".sig")) return true;
  if (parts.size() == 1 && (parts[0] == "boot.ipxe" || parts[0] == "boot.grub")) return true;
  return parts[0] == "nocloud" || parts[0] == "metadata" || parts[0] == "latest" ||
         parts[0] == "openstack" || parts[0] == "2009-04-04";
}

std::optional<Response> MachineRoutes::Southbound(const http::Request& req, const BootPath& path) {
  if (!SouthboundBlocks(req, path)) return std::nullopt;  // none of ours (a file of the tree)
  const std::vector<std::string_view> parts(path.components.begin(), path.components.end());
  if (parts.empty()) return std::nullopt;
  const bool read = req.method == "GET" || req.method == "HEAD";
  if (options_.signer != nullptr && req.path.size() > 4 && req.path.ends_with(".sig")) {
    if (!read) return Problem(405, "");
    return Signature(req);
  }
  if (parts.size() == 1 && (parts[0] == "boot.ipxe" || parts[0] == "boot.grub")) {
    if (!read) return Problem(405, "");
    return Script(req, parts[0] == "boot.grub");
  }
  if (parts[0] == "nocloud") {
    if (!read) return Problem(405, "");
    return NoCloud(req, parts);
  }
  if (parts[0] == "metadata" && parts.size() >= 3) {
    if (!read) return Problem(405, "");
    auto m = service_.MachineById(parts[1]);
    if (!m.ok()) return Problem(404, "no such machine");
    return Metadata(req, *m, {parts.begin() + 2, parts.end()});
  }
  // EC2/OpenStack paths without a machine id: the machine that last booted from this address.
  if ((parts[0] == "latest" || parts[0] == "openstack" || parts[0] == "2009-04-04") && read) {
    auto m = service_.MachineByAddress(AddressOf(req.remote_address));
    if (!m.ok() || !*m) return std::nullopt;  // not a machine we know: the file tree answers
    return Metadata(req, **m, parts);
  }
  return std::nullopt;
}

Response MachineRoutes::Script(const http::Request& req, bool grub) {
  const std::string base = BaseUrl(req, options_.southbound_url);
  ingot::boot::BootRequest br{.mac = Param(req, "mac"),
                              .uuid = Param(req, "uuid"),
                              .serial = Param(req, "serial"),
                              .hostname = Param(req, "hostname"),
                              .arch = Param(req, "arch"),
                              .address = AddressOf(req.remote_address)};
  if (br.mac.empty() && br.uuid.empty()) {
    RenderContext ctx;
    ctx.base_url = base;
    if (grub) {
      return Text(200, "# Ingot: tell the boot service who this machine is\nconfigfile (http," +
                           base.substr(7) + ")/boot.grub?mac=${net_default_mac}\n");
    }
    return Text(200, ingot::boot::IdentifyIpxe(ctx));
  }
  auto resolved = service_.Identify(br);
  if (!resolved.ok()) {
    if (resolved.status().code() == Code::kInvalidArgument) {
      return Problem(400, resolved.status().message());
    }
    log::Error("boot.machine_error", {{"mac", br.mac}, {"error", resolved.status().ToString()}});
    return Problem(500, "");
  }
  const Machine& m = resolved->machine;
  RenderContext ctx = ContextFor(m, resolved->profile, base);
  if (!resolved->profile) {
    log::Info("boot.machine_holding",
              {{"id", m.id}, {"mac", m.mac}, {"uuid", m.uuid}, {"state", StateName(m.state)}});
    return Text(200, grub ? ingot::boot::HoldingGrub(m, ctx) : ingot::boot::HoldingIpxe(m, ctx));
  }
  const Profile& p = *resolved->profile;
  auto script = grub ? ingot::boot::RenderGrub(m, p, ctx) : ingot::boot::RenderIpxe(m, p, ctx);
  if (!script.ok()) {
    log::Warn("boot.machine_render_failed",
              {{"id", m.id}, {"profile", p.name}, {"error", script.status().message()}});
    if (grub) {
      return Text(200, "echo \"Ingot: this machine's boot script could not be rendered\"\n");
    }
    return Text(200, ingot::boot::ErrorIpxe(script.status().message(), ctx));
  }
  log::Info("boot.machine_script", {{"id", m.id},
                                    {"mac", m.mac},
                                    {"profile", p.name},
                                    {"why", ingot::boot::WhyName(resolved->why)},
                                    {"format", grub ? "grub" : "ipxe"}});
  return Text(200, std::move(*script));
}

std::optional<Response> MachineRoutes::NoCloud(const http::Request& req,
                                               const std::vector<std::string_view>& parts) {
  if (parts.size() == 2) return Text(200, "meta-data\nuser-data\nvendor-data\n");
  if (parts.size() != 3) return Problem(404, "");
  auto m = service_.MachineById(parts[1]);
  if (!m.ok()) return Problem(404, "no such machine");
  auto r = service_.Resolve(*m);
  if (!r.ok()) return Problem(500, "");
  RenderContext ctx = ContextFor(*m, r->profile, BaseUrl(req, options_.southbound_url));
  const Profile* p = r->profile ? &*r->profile : nullptr;
  Result<std::string> doc = std::string();
  if (parts[2] == "meta-data") {
    doc = ingot::boot::NoCloudMetaData(*m);
  } else if (parts[2] == "user-data") {
    doc = ingot::boot::NoCloudUserData(*m, p, ctx);
  } else if (parts[2] == "vendor-data") {
    doc = ingot::boot::NoCloudVendorData(*m, p, ctx);
  } else {
    return Problem(404, "");
  }
  if (!doc.ok()) {
    log::Warn("boot.machine_render_failed", {{"id", m->id}, {"error", doc.status().message()}});
    return Problem(500, "the document could not be rendered; the boot service's log says why");
  }
  return Text(200, std::move(*doc));
}

std::optional<Response> MachineRoutes::Metadata(const http::Request& req, const Machine& m,
                                                const std::vector<std::string_view>& rest) {
  auto user_data = [&]() -> Response {
    auto r = service_.Resolve(m);
    if (!r.ok()) return Problem(500, "");
    RenderContext ctx = ContextFor(m, r->profile, BaseUrl(req, options_.southbound_url));
    auto doc = ingot::boot::NoCloudUserData(m, r->profile ? &*r->profile : nullptr, ctx);
    if (!doc.ok()) return Problem(500, "the user-data could not be rendered");
    if (doc->empty()) return Problem(404, "");
    return Text(200, std::move(*doc));
  };
  if (rest.empty()) return Problem(404, "");
  if (rest[0] == "openstack") {
    if (rest.size() == 1) return Text(200, "latest\n");
    if (rest.size() == 2) return Text(200, "meta_data.json\nuser_data\n");
    if (rest.size() == 3 && rest[2] == "meta_data.json") {
      return Text(200, ingot::boot::OpenStackMetaData(m), "application/json");
    }
    if (rest.size() == 3 && rest[2] == "user_data") return user_data();
    return Problem(404, "");
  }
  // EC2: /{version}/meta-data/[KEY], /{version}/user-data; any version answers alike.
  if (rest.size() == 1) return Text(200, "meta-data\nuser-data\n");
  if (rest[1] == "user-data" && rest.size() == 2) return user_data();
  if (rest[1] != "meta-data") return Problem(404, "");
  if (rest.size() == 2) {
    std::string keys;
    for (const std::string& k : ingot::boot::Ec2MetaDataKeys()) keys += k + "\n";
    return Text(200, keys);
  }
  if (rest.size() != 3) return Problem(404, "");
  auto v = ingot::boot::Ec2MetaDataValue(m, rest[2]);
  if (!v) return Problem(404, "");
  return Text(200, std::move(*v));
}

std::optional<Response> MachineRoutes::Signature(const http::Request& req) {
  // The signature of a script this listener renders, or of a file of the tree.
  std::string path = req.path.substr(0, req.path.size() - 4);
  std::string bytes;
  Result<std::string> sig = std::string();
  if (path == "/boot.ipxe" || path == "/boot.grub") {
    http::Request inner;
    inner.method = "GET";
    inner.path = path;
    inner.target = path;
    inner.query = req.query;
    inner.headers = req.headers;
    inner.remote_address = req.remote_address;
    Response script = Script(inner, path == "/boot.grub");
    if (script.status != 200) return script;
    sig = options_.signer->Sign(script.body);
  } else if (options_.open_file) {
    std::vector<std::string> components;
    for (auto part : http::SplitPath(path)) {
      if (part == "." || part == "..") return Problem(400, "");
      components.emplace_back(part);
    }
    auto file = options_.open_file(components);
    if (!file.ok()) {
      if (IsServerFault(file.status().code())) return Problem(500, "");
      return std::nullopt;  // no such file: perhaps a .sig file of the tree itself
    }
    sig = options_.signer->Sign(**file);
  } else {
    return std::nullopt;
  }
  if (!sig.ok()) {
    log::Error("boot.sign_failed", {{"path", path}, {"error", sig.status().ToString()}});
    return Problem(500, "");
  }
  Response r = Text(200, std::move(*sig), "application/pkcs7-signature");
  return r;
}

// ----------------------------------------------------------------------------------- northbound
void MachineRoutes::Register(ApiRouter& router) {
  auto body = [this](http::Request& req) -> Result<json::object> {
    INGOT_ASSIGN_OR_RETURN(json::value v, ReadJson(req, options_.max_json_body));
    if (!v.is_object()) return InvalidArgument("the body must be a JSON object");
    return std::move(v.as_object());
  };
  auto machine_of = [this](std::string_view key) -> Result<Machine> {
    // {id} may be a MAC too: what an operator reads off a label.
    if (auto mac = ingot::boot::NormalizeMac(key); mac && key.size() >= 12) {
      auto list = service_.ListMachines(std::nullopt);
      if (!list.ok()) return list.status();
      for (Machine& m : *list) {
        if (m.mac == *mac) return std::move(m);
      }
      return NotFound("no machine with mac " + *mac);
    }
    return service_.GetMachine(key);
  };

  router.Add("GET", "/boot/v1/profiles",
             {.rule = "boot_machines:read", .handler = [this](Call&) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(auto list, service_.ListProfiles());
                json::array out;
                for (const Profile& p : list) out.emplace_back(ingot::boot::ProfileToJson(p));
                return JsonOk(200, json::object{{"profiles", std::move(out)}});
              }});
  router.Add("POST", "/boot/v1/profiles",
             {.rule = "boot_machines:write",
              .handler = [this, body](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(json::object doc, body(call.request));
                INGOT_ASSIGN_OR_RETURN(Profile p, ingot::boot::ProfileFromJson(doc, false));
                INGOT_ASSIGN_OR_RETURN(Profile saved, service_.CreateProfile(std::move(p)));
                return JsonOk(201, ingot::boot::ProfileToJson(saved));
              },
              .body = BodyMode::kJson});
  router.Add("GET", "/boot/v1/profiles/{name}",
             {.rule = "boot_machines:read", .handler = [this](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(Profile p, service_.GetProfile(call.params[0]));
                return JsonOk(200, ingot::boot::ProfileToJson(p));
              }});
  router.Add("PUT", "/boot/v1/profiles/{name}",
             {.rule = "boot_machines:write",
              .handler = [this, body](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(json::object doc, body(call.request));
                if (auto* n = doc.if_contains("name");
                    n != nullptr && !(n->is_string() && n->as_string() == call.params[0])) {
                  return InvalidArgument("the body's name differs from the path's");
                }
                doc["name"] = call.params[0];
                INGOT_ASSIGN_OR_RETURN(Profile p, ingot::boot::ProfileFromJson(doc, false));
                auto old = service_.GetProfile(p.name);
                if (!old.ok() && old.status().code() == Code::kNotFound) {
                  INGOT_ASSIGN_OR_RETURN(Profile saved, service_.CreateProfile(std::move(p)));
                  return JsonOk(201, ingot::boot::ProfileToJson(saved));
                }
                INGOT_ASSIGN_OR_RETURN(Profile saved, service_.ReplaceProfile(std::move(p)));
                return JsonOk(200, ingot::boot::ProfileToJson(saved));
              },
              .body = BodyMode::kJson});
  router.Add("PATCH", "/boot/v1/profiles/{name}",
             {.rule = "boot_machines:write",
              .handler = [this, body](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(json::object doc, body(call.request));
                INGOT_ASSIGN_OR_RETURN(Profile p, service_.GetProfile(call.params[0]));
                INGOT_RETURN_IF_ERROR(ingot::boot::MergeProfile(p, doc));
                INGOT_ASSIGN_OR_RETURN(Profile saved, service_.ReplaceProfile(std::move(p)));
                return JsonOk(200, ingot::boot::ProfileToJson(saved));
              },
              .body = BodyMode::kJson});
  router.Add("DELETE", "/boot/v1/profiles/{name}",
             {.rule = "boot_machines:write", .handler = [this](Call& call) -> Result<Response> {
                INGOT_RETURN_IF_ERROR(service_.DeleteProfile(call.params[0]));
                return NoContent();
              }});

  router.Add("GET", "/boot/v1/machines",
             {.rule = "boot_machines:read", .handler = [this](Call& call) -> Result<Response> {
                std::optional<MachineState> state;
                if (auto s = call.request.QueryValue("state")) {
                  state = ingot::boot::ParseState(*s);
                  if (!state) return InvalidArgument("state must be discovered or assigned");
                }
                std::string mac;
                if (auto m = call.request.QueryValue("mac")) {
                  auto n = ingot::boot::NormalizeMac(*m);
                  if (!n) return InvalidArgument("mac is not a MAC address");
                  mac = *n;
                }
                INGOT_ASSIGN_OR_RETURN(auto list, service_.ListMachines(state));
                json::array out;
                for (const Machine& m : list) {
                  if (!mac.empty() && m.mac != mac) continue;
                  out.emplace_back(ingot::boot::MachineToJson(m));
                }
                return JsonOk(200, json::object{{"machines", std::move(out)}});
              }});
  router.Add("POST", "/boot/v1/machines",
             {.rule = "boot_machines:write",
              .handler = [this, body](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(json::object doc, body(call.request));
                INGOT_ASSIGN_OR_RETURN(Machine m, ingot::boot::MachineFromJson(doc, false));
                INGOT_ASSIGN_OR_RETURN(Machine saved, service_.CreateMachine(std::move(m)));
                return JsonOk(201, ingot::boot::MachineToJson(saved));
              },
              .body = BodyMode::kJson});
  router.Add("GET", "/boot/v1/machines/{id}",
             {.rule = "boot_machines:read",
              .handler = [machine_of](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(Machine m, machine_of(call.params[0]));
                return JsonOk(200, ingot::boot::MachineToJson(m));
              }});
  router.Add("PATCH", "/boot/v1/machines/{id}",
             {.rule = "boot_machines:write",
              .handler = [this, body, machine_of](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(json::object doc, body(call.request));
                INGOT_ASSIGN_OR_RETURN(Machine m, machine_of(call.params[0]));
                INGOT_RETURN_IF_ERROR(ingot::boot::MergeMachine(m, doc));
                INGOT_ASSIGN_OR_RETURN(Machine saved, service_.ReplaceMachine(std::move(m)));
                return JsonOk(200, ingot::boot::MachineToJson(saved));
              },
              .body = BodyMode::kJson});
  router.Add("DELETE", "/boot/v1/machines/{id}",
             {.rule = "boot_machines:write",
              .handler = [this, machine_of](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(Machine m, machine_of(call.params[0]));
                INGOT_RETURN_IF_ERROR(service_.DeleteMachine(m.id));
                return NoContent();
              }});
  router.Add("GET", "/boot/v1/machines/{id}/boot",
             {.rule = "boot_machines:read",
              .handler = [this, machine_of](Call& call) -> Result<Response> {
                INGOT_ASSIGN_OR_RETURN(Machine m, machine_of(call.params[0]));
                std::string format = "ipxe";
                if (auto f = call.request.QueryValue("format")) format = std::string(*f);
                if (format != "ipxe" && format != "grub") {
                  return InvalidArgument("format must be ipxe or grub");
                }
                INGOT_ASSIGN_OR_RETURN(auto r, service_.Resolve(m));
                std::string base =
                    options_.southbound_url.empty() ? "http://127.0.0.1" : options_.southbound_url;
                RenderContext ctx = ContextFor(m, r.profile, base);
                std::string script;
                if (!r.profile) {
                  script = format == "grub" ? ingot::boot::HoldingGrub(m, ctx)
                                            : ingot::boot::HoldingIpxe(m, ctx);
                } else {
                  auto s = format == "grub" ? ingot::boot::RenderGrub(m, *r.profile, ctx)
                                            : ingot::boot::RenderIpxe(m, *r.profile, ctx);
                  if (!s.ok()) return s.status();
                  script = std::move(*s);
                }
                Response resp = Text(200, std::move(script));
                resp.headers.Set("X-Ingot-Profile", r.profile ? r.profile->name : "");
                resp.headers.Set("X-Ingot-Match", std::string(ingot::boot::WhyName(r.why)));
                return resp;
              }});
}

}  // namespace ingot::api::boot
