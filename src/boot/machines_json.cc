#include "boot/machines_json.h"

#include "common/time.h"

namespace ingot::boot {
namespace json = boost::json;
namespace {

json::object MapToJson(const std::map<std::string, std::string, std::less<>>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

Status TypeError(std::string_view key, std::string_view want) {
  return InvalidArgument("'" + std::string(key) + "' must be " + std::string(want));
}

Result<std::string> Str(const json::value& v, std::string_view key) {
  if (v.is_null()) return std::string();
  if (!v.is_string()) return TypeError(key, "a string");
  return std::string(v.as_string());
}

Result<std::map<std::string, std::string, std::less<>>> StrMap(const json::value& v,
                                                               std::string_view key) {
  std::map<std::string, std::string, std::less<>> out;
  if (v.is_null()) return out;
  if (!v.is_object()) return TypeError(key, "an object of strings");
  for (const auto& [k, val] : v.as_object()) {
    if (!val.is_string()) return TypeError(std::string(key) + "." + std::string(k), "a string");
    out[std::string(k)] = std::string(val.as_string());
  }
  return out;
}

Result<int64_t> Time(const json::value& v, std::string_view key) {
  if (v.is_null()) return int64_t{0};
  if (!v.is_string()) return TypeError(key, "a time");
  auto t = ParseIso8601(std::string_view(v.as_string()));
  if (!t) return TypeError(key, "an ISO 8601 time");
  return *t;
}

json::value TimeJson(int64_t micros) {
  if (micros == 0) return nullptr;
  return json::value(FormatIso8601Micros(micros));
}

Status ApplyProfileKey(Profile& p, std::string_view key, const json::value& v, bool stored) {
  if (key == "name") {
    INGOT_ASSIGN_OR_RETURN(p.name, Str(v, key));
  } else if (key == "description") {
    INGOT_ASSIGN_OR_RETURN(p.description, Str(v, key));
  } else if (key == "selector") {
    INGOT_ASSIGN_OR_RETURN(p.selector, Str(v, key));
  } else if (key == "default") {
    if (v.is_null()) {
      p.is_default = false;
    } else if (!v.is_bool()) {
      return TypeError(key, "true or false");
    } else {
      p.is_default = v.as_bool();
    }
  } else if (key == "os") {
    if (v.is_null()) {
      p.os.reset();
    } else {
      if (!v.is_object()) return TypeError(key, "an object {\"name\": …, \"version\": …}");
      OsTreeRef ref;
      for (const auto& [k, val] : v.as_object()) {
        if (k == "name") {
          INGOT_ASSIGN_OR_RETURN(ref.name, Str(val, "os.name"));
        } else if (k == "version") {
          INGOT_ASSIGN_OR_RETURN(ref.version, Str(val, "os.version"));
        } else {
          return InvalidArgument("os: unknown key '" + std::string(k) + "'");
        }
      }
      p.os = std::move(ref);
    }
  } else if (key == "kernel") {
    INGOT_ASSIGN_OR_RETURN(p.kernel, Str(v, key));
  } else if (key == "image") {
    INGOT_ASSIGN_OR_RETURN(p.image, Str(v, key));
  } else if (key == "initrds" || key == "initrd") {
    p.initrds.clear();
    if (v.is_string()) {
      p.initrds.emplace_back(v.as_string());
    } else if (v.is_array()) {
      for (const json::value& i : v.as_array()) {
        if (!i.is_string()) return TypeError(key, "a list of strings");
        p.initrds.emplace_back(i.as_string());
      }
    } else if (!v.is_null()) {
      return TypeError(key, "a list of strings");
    }
  } else if (key == "args") {
    INGOT_ASSIGN_OR_RETURN(p.args, Str(v, key));
  } else if (key == "ipxe") {
    INGOT_ASSIGN_OR_RETURN(p.ipxe, Str(v, key));
  } else if (key == "grub") {
    INGOT_ASSIGN_OR_RETURN(p.grub, Str(v, key));
  } else if (key == "user_data") {
    INGOT_ASSIGN_OR_RETURN(p.user_data, Str(v, key));
  } else if (key == "vendor_data") {
    INGOT_ASSIGN_OR_RETURN(p.vendor_data, Str(v, key));
  } else if (key == "variables") {
    INGOT_ASSIGN_OR_RETURN(p.variables, StrMap(v, key));
  } else if (stored && key == "created_at") {
    INGOT_ASSIGN_OR_RETURN(p.created_at, Time(v, key));
  } else if (stored && key == "updated_at") {
    INGOT_ASSIGN_OR_RETURN(p.updated_at, Time(v, key));
  } else if (key == "created_at" || key == "updated_at") {
    return InvalidArgument("'" + std::string(key) + "' is kept by the server");
  } else {
    return InvalidArgument("unknown profile key '" + std::string(key) + "'");
  }
  return Status::Ok();
}

Status ApplyMachineKey(Machine& m, std::string_view key, const json::value& v, bool stored) {
  if (key == "mac") {
    INGOT_ASSIGN_OR_RETURN(m.mac, Str(v, key));
  } else if (key == "uuid") {
    INGOT_ASSIGN_OR_RETURN(m.uuid, Str(v, key));
  } else if (key == "serial") {
    INGOT_ASSIGN_OR_RETURN(m.serial, Str(v, key));
  } else if (key == "hostname") {
    INGOT_ASSIGN_OR_RETURN(m.hostname, Str(v, key));
  } else if (key == "arch") {
    INGOT_ASSIGN_OR_RETURN(m.arch, Str(v, key));
  } else if (key == "labels") {
    INGOT_ASSIGN_OR_RETURN(m.labels, StrMap(v, key));
  } else if (key == "variables") {
    INGOT_ASSIGN_OR_RETURN(m.variables, StrMap(v, key));
  } else if (key == "profile") {
    INGOT_ASSIGN_OR_RETURN(m.profile, Str(v, key));
  } else if (stored && key == "id") {
    INGOT_ASSIGN_OR_RETURN(m.id, Str(v, key));
  } else if (stored && key == "state") {
    INGOT_ASSIGN_OR_RETURN(std::string s, Str(v, key));
    auto st = ParseState(s);
    if (!st) return TypeError(key, "discovered or assigned");
    m.state = *st;
  } else if (stored && key == "last_address") {
    INGOT_ASSIGN_OR_RETURN(m.last_address, Str(v, key));
  } else if (stored && key == "last_profile") {
    INGOT_ASSIGN_OR_RETURN(m.last_profile, Str(v, key));
  } else if (stored && key == "first_seen") {
    INGOT_ASSIGN_OR_RETURN(m.first_seen, Time(v, key));
  } else if (stored && key == "last_seen") {
    INGOT_ASSIGN_OR_RETURN(m.last_seen, Time(v, key));
  } else if (stored && key == "created_at") {
    INGOT_ASSIGN_OR_RETURN(m.created_at, Time(v, key));
  } else if (stored && key == "updated_at") {
    INGOT_ASSIGN_OR_RETURN(m.updated_at, Time(v, key));
  } else if (key == "id" || key == "state" || key == "last_address" || key == "last_profile" ||
             key == "first_seen" || key == "last_seen" || key == "created_at" ||
             key == "updated_at" || key == "matched") {
    return InvalidArgument("'" + std::string(key) + "' is kept by the server");
  } else {
    return InvalidArgument("unknown machine key '" + std::string(key) + "'");
  }
  return Status::Ok();
}

}  // namespace

json::object ProfileToJson(const Profile& p) {
  json::object o;
  o["name"] = p.name;
  o["description"] = p.description;
  o["selector"] = p.selector.empty() ? json::value(nullptr) : json::value(p.selector);
  o["default"] = p.is_default;
  if (p.os) {
    o["os"] = json::object{{"name", p.os->name}, {"version", p.os->version}};
  } else {
    o["os"] = nullptr;
  }
  o["kernel"] = p.kernel;
  o["image"] = p.image.empty() ? json::value(nullptr) : json::value(p.image);
  json::array initrds;
  for (const std::string& i : p.initrds) initrds.emplace_back(i);
  o["initrds"] = std::move(initrds);
  o["args"] = p.args;
  o["ipxe"] = p.ipxe;
  o["grub"] = p.grub;
  o["user_data"] = p.user_data;
  o["vendor_data"] = p.vendor_data;
  o["variables"] = MapToJson(p.variables);
  o["created_at"] = TimeJson(p.created_at);
  o["updated_at"] = TimeJson(p.updated_at);
  return o;
}

json::object MachineToJson(const Machine& m) {
  json::object o;
  o["id"] = m.id;
  o["mac"] = m.mac.empty() ? json::value(nullptr) : json::value(m.mac);
  o["uuid"] = m.uuid.empty() ? json::value(nullptr) : json::value(m.uuid);
  o["serial"] = m.serial;
  o["hostname"] = m.hostname;
  o["arch"] = m.arch;
  o["labels"] = MapToJson(m.labels);
  o["variables"] = MapToJson(m.variables);
  o["profile"] = m.profile.empty() ? json::value(nullptr) : json::value(m.profile);
  o["state"] = std::string(StateName(m.state));
  o["last_address"] = m.last_address;
  o["last_profile"] = m.last_profile;
  o["first_seen"] = TimeJson(m.first_seen);
  o["last_seen"] = TimeJson(m.last_seen);
  o["created_at"] = TimeJson(m.created_at);
  o["updated_at"] = TimeJson(m.updated_at);
  return o;
}

Result<Profile> ProfileFromJson(const json::value& doc, bool stored) {
  if (!doc.is_object()) return InvalidArgument("a profile is a JSON object");
  Profile p;
  for (const auto& [k, v] : doc.as_object()) {
    INGOT_RETURN_IF_ERROR(ApplyProfileKey(p, k, v, stored));
  }
  return p;
}

Result<Machine> MachineFromJson(const json::value& doc, bool stored) {
  if (!doc.is_object()) return InvalidArgument("a machine is a JSON object");
  Machine m;
  for (const auto& [k, v] : doc.as_object()) {
    INGOT_RETURN_IF_ERROR(ApplyMachineKey(m, k, v, stored));
  }
  return m;
}

Status MergeProfile(Profile& p, const json::object& patch) {
  for (const auto& [k, v] : patch) {
    if (k == "name" && v.is_string() && v.as_string() == p.name) continue;
    if (k == "name") return InvalidArgument("a profile's name cannot change");
    INGOT_RETURN_IF_ERROR(ApplyProfileKey(p, k, v, false));
  }
  return Status::Ok();
}

Status MergeMachine(Machine& m, const json::object& patch) {
  for (const auto& [k, v] : patch) {
    if (k == "id" && v.is_string() && v.as_string() == m.id) continue;
    INGOT_RETURN_IF_ERROR(ApplyMachineKey(m, k, v, false));
  }
  return Status::Ok();
}

}  // namespace ingot::boot
