#include "deploy/artifacts/attributes.h"

#include <arpa/inet.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <regex>
#include <set>

#include "common/regex.h"

namespace ingot::deploy::artifacts {
namespace json = boost::json;
namespace {

bool NameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool NameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

Status Bad(std::string_view key, std::string why) {
  return InvalidArgument("attribute " + std::string(key) + ": " + why);
}

bool ParseNumber(std::string_view s, double& out) {
  if (s.empty() || s.size() > 64 || std::isspace(static_cast<unsigned char>(s.front()))) {
    return false;
  }
  std::string copy(s);
  char* end = nullptr;
  out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size() && std::isfinite(out);
}

bool IsIpv4(std::string_view s) {
  if (s.size() > 15) return false;
  in_addr a{};
  return inet_pton(AF_INET, std::string(s).c_str(), &a) == 1;
}

bool IsLabel(std::string_view l) {
  if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
  for (char c : l) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
  }
  return true;
}

bool IsFqdn(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t labels = 0, pos = 0;
  while (pos <= s.size()) {
    size_t dot = s.find('.', pos);
    std::string_view l = s.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
    if (!IsLabel(l)) return false;
    ++labels;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  return labels >= 2;
}

bool IsMac(std::string_view s) {
  if (s.size() != 17) return false;
  for (size_t i = 0; i < 17; ++i) {
    if (i % 3 == 2) {
      if (s[i] != ':' && s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

std::string FormatNumber(double d) {
  char buf[64];
  if (d == std::floor(d) && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(d));
  } else {
    std::snprintf(buf, sizeof buf, "%g", d);
  }
  return buf;
}

bool IsBool(std::string_view s) { return s == "true" || s == "false"; }

// Constraint values arrive as JSON numbers or as numeric strings (Image Streamer's UI sends both).
Result<double> NumberOf(const json::value& v, std::string_view what) {
  if (v.is_number()) return v.to_number<double>();
  double d = 0;
  if (v.is_string() && ParseNumber(v.as_string(), d)) return d;
  return InvalidArgument(std::string(what) + " must be a number");
}

Result<bool> BoolOf(const json::value& v, std::string_view what) {
  if (v.is_bool()) return v.as_bool();
  if (v.is_string() && IsBool(v.as_string())) return v.as_string() == "true";
  return InvalidArgument(std::string(what) + " must be true or false");
}

Result<std::vector<std::string>> StringsOf(const json::value& v, std::string_view what) {
  if (!v.is_array()) return InvalidArgument(std::string(what) + " must be an array of strings");
  std::vector<std::string> out;
  for (const json::value& e : v.as_array()) {
    if (!e.is_string()) return InvalidArgument(std::string(what) + " must be an array of strings");
    out.emplace_back(e.as_string());
  }
  return out;
}

std::string StringOr(const json::object& o, std::string_view key, std::string fallback = "") {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  return json::serialize(*v);  // numbers given as numbers
}

Result<bool> FlagOr(const json::object& o, std::string_view key, bool fallback) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return fallback;
  return BoolOf(*v, key);
}

}  // namespace

bool IsNicField(std::string_view field) {
  for (const char* f : kNicFields) {
    if (field == f) return true;
  }
  return false;
}

bool ValidAttributeName(std::string_view name) {
  if (name.empty() || name.size() > 64 || !NameStart(name.front())) return false;
  for (char c : name) {
    if (!NameChar(c)) return false;
  }
  return true;
}

std::vector<AttributeRef> ParseAttributeRefs(std::string_view text) {
  std::vector<AttributeRef> refs;
  int line = 1;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (c != '@') {
      ++i;
      continue;
    }
    // Try a reference at i.
    size_t p = i + 1;
    size_t name_begin = p;
    if (p < text.size() && NameStart(text[p])) {
      while (p < text.size() && NameChar(text[p]) && p - name_begin < 65) ++p;
    }
    AttributeRef ref;
    ref.name = std::string(text.substr(name_begin, p - name_begin));
    bool ok = ValidAttributeName(ref.name);
    if (ok && p < text.size() && text[p] == '.') {
      size_t f = p + 1;
      while (f < text.size() && std::isalnum(static_cast<unsigned char>(text[f]))) ++f;
      ref.field = std::string(text.substr(p + 1, f - p - 1));
      ok = IsNicField(ref.field);
      p = f;
    }
    if (ok && p < text.size() && text[p] == ':') {
      size_t close = text.find_first_of("@\n", p + 1);
      if (close == std::string_view::npos || text[close] != '@') {
        ok = false;
      } else {
        ref.default_value = std::string(text.substr(p + 1, close - p - 1));
        p = close;
      }
    }
    if (ok && p < text.size() && text[p] == '@') {
      ref.line = line;
      ref.offset = i;
      ref.length = p + 1 - i;
      refs.push_back(std::move(ref));
      i = p + 1;
    } else {
      ++i;  // a literal '@'
    }
  }
  return refs;
}

std::vector<ScriptAttribute> ScriptAttributes(std::string_view text) {
  std::vector<ScriptAttribute> out;
  for (AttributeRef& r : ParseAttributeRefs(text)) {
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const ScriptAttribute& a) { return a.name == r.name; });
    if (it == out.end()) {
      out.push_back({r.name, r.field.empty() ? r.default_value : std::nullopt, !r.field.empty()});
    } else {
      if (!r.field.empty()) it->nic = true;
      if (!it->default_value && r.field.empty()) it->default_value = r.default_value;
    }
  }
  return out;
}

Result<std::string> Substitute(std::string_view text,
                               const std::map<std::string, std::string>& values) {
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  for (const AttributeRef& r : ParseAttributeRefs(text)) {
    out.append(text.substr(at, r.offset - at));
    auto it = values.find(r.Key());
    if (it != values.end()) {
      out += it->second;
    } else if (r.default_value) {
      out += *r.default_value;
    } else {
      return InvalidArgument("attribute " + r.Key() + " has no value");
    }
    at = r.offset + r.length;
  }
  out.append(text.substr(at));
  return out;
}

std::string_view AttributeTypeName(AttributeType type) {
  switch (type) {
    case AttributeType::kString: return "string";
    case AttributeType::kNumber: return "number";
    case AttributeType::kOption: return "option";
    case AttributeType::kPassword: return "password";
    case AttributeType::kNic: return "nic";
    case AttributeType::kIpv4: return "ipv4";
    case AttributeType::kFqdn: return "fqdn";
    case AttributeType::kHostname: return "hostname";
  }
  return "string";
}

std::optional<AttributeType> ParseAttributeType(std::string_view name) {
  std::string n;
  for (char c : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (AttributeType t : {AttributeType::kString, AttributeType::kNumber, AttributeType::kOption,
                          AttributeType::kPassword, AttributeType::kNic, AttributeType::kIpv4,
                          AttributeType::kFqdn, AttributeType::kHostname}) {
    if (n == AttributeTypeName(t)) return t;
  }
  if (n == "ipv4address" || n == "ip") return AttributeType::kIpv4;  // the UI's longer names
  return std::nullopt;
}

Status CheckValue(const AttributeSpec& spec, std::string_view key, std::string_view value) {
  if (value.size() > 4096) return Bad(key, "the value is longer than 4096 bytes");
  const bool field = key.find('.') != std::string_view::npos;
  if (spec.type == AttributeType::kNic) {
    if (!field) return Bad(key, "a NIC is given field by field (" + spec.name + ".ipaddress, ...)");
    std::string_view f = key.substr(key.find('.') + 1);
    if (!spec.nic_parameters.empty() &&
        std::find(spec.nic_parameters.begin(), spec.nic_parameters.end(), f) ==
            spec.nic_parameters.end()) {
      return Bad(key, "this NIC takes no field '" + std::string(f) + "'");
    }
    if (value.empty()) return Status::Ok();
    if (f == "ipaddress" || f == "netmask" || f == "gateway" || f == "dns1" || f == "dns2" ||
        f == "ipaddress1" || f == "ipaddress2") {
      if (!IsIpv4(value)) return Bad(key, "'" + std::string(value) + "' is not an IPv4 address");
    } else if (f == "mac" || f == "mac1" || f == "mac2") {
      if (!IsMac(value)) return Bad(key, "'" + std::string(value) + "' is not a MAC address");
    } else if (f == "dhcp" || f == "ipv4disable") {
      if (!IsBool(value)) return Bad(key, "must be true or false");
    } else if (f == "vlanid" || f == "connectionid") {
      double d = 0;
      if (!ParseNumber(value, d) || d != std::floor(d) || d < 0 || (f == "vlanid" && d > 4094)) {
        return Bad(key, f == "vlanid" ? "must be a VLAN id from 0 to 4094" : "must be a number");
      }
    } else if (f == "domain") {
      if (!IsFqdn(value) && !IsLabel(value)) return Bad(key, "is not a domain name");
    }
    return Status::Ok();
  }
  if (field) return Bad(key, spec.name + " is not a NIC attribute");
  if (spec.maxlen && value.size() > *spec.maxlen) {
    return Bad(key, "longer than its maxlen " + std::to_string(*spec.maxlen));
  }
  switch (spec.type) {
    case AttributeType::kNumber: {
      double d = 0;
      if (!ParseNumber(value, d)) return Bad(key, "'" + std::string(value) + "' is not a number");
      if (spec.minimum && d < *spec.minimum) {
        return Bad(key, std::string(value) + " is below the minimum " + FormatNumber(*spec.minimum));
      }
      if (spec.maximum && d > *spec.maximum) {
        return Bad(key, std::string(value) + " is above the maximum " + FormatNumber(*spec.maximum));
      }
      if (spec.increment && *spec.increment > 0) {
        double steps = (d - spec.minimum.value_or(0)) / *spec.increment;
        if (std::fabs(steps - std::round(steps)) > 1e-9) {
          return Bad(key, std::string(value) + " is not a multiple of the increment " +
                              FormatNumber(*spec.increment));
        }
      }
      return Status::Ok();
    }
    case AttributeType::kOption:
      if (std::find(spec.options.begin(), spec.options.end(), value) == spec.options.end()) {
        std::string list;
        for (const std::string& o : spec.options) list += (list.empty() ? "" : ", ") + o;
        return Bad(key, "'" + std::string(value) + "' is not one of its options (" + list + ")");
      }
      return Status::Ok();
    case AttributeType::kIpv4:
      if (!IsIpv4(value)) return Bad(key, "'" + std::string(value) + "' is not an IPv4 address");
      return Status::Ok();
    case AttributeType::kFqdn:
      if (!IsFqdn(value)) return Bad(key, "'" + std::string(value) + "' is not a fully qualified domain name");
      return Status::Ok();
    case AttributeType::kHostname:
      if (!IsLabel(value)) {
        return Bad(key, "'" + std::string(value) +
                            "' is not a host name (1-63 letters, digits and '-', not at either end)");
      }
      return Status::Ok();
    case AttributeType::kPassword:
      return Status::Ok();  // never quoted back
    case AttributeType::kString:
      if (!spec.regex.empty()) {
        auto re = CompileUntrustedRegex(spec.regex, 512);
        if (!re.ok()) return Bad(key, "its regex could not be applied to the value");
        try {
          if (!std::regex_match(std::string(value), *re)) {
            return Bad(key, "'" + std::string(value) + "' does not match " + spec.regex);
          }
        } catch (const std::exception&) {
          return Bad(key, "its regex could not be applied to the value");
        }
      }
      return Status::Ok();
    case AttributeType::kNic:
      break;
  }
  return Status::Ok();
}

Result<AttributeSpec> ParseAttributeSpec(const json::value& entry) {
  if (!entry.is_object()) return InvalidArgument("each customAttributes entry must be an object");
  const json::object& o = entry.as_object();
  AttributeSpec s;
  s.name = StringOr(o, "name");
  if (!ValidAttributeName(s.name)) {
    return InvalidArgument("customAttributes: '" + s.name +
                           "' is not an attribute name ([A-Za-z_][A-Za-z0-9_-], at most 64)");
  }
  std::string type = StringOr(o, "type", "string");
  auto t = ParseAttributeType(type);
  if (!t) {
    return Bad(s.name, "unknown type '" + type +
                           "' (string, number, option, password, nic, ipv4, fqdn, hostname)");
  }
  s.type = *t;
  s.description = StringOr(o, "description");
  auto wrap = [&](Status st) { return Bad(s.name, st.message()); };
  auto editable = FlagOr(o, "editable", true);
  if (!editable.ok()) return wrap(editable.status());
  s.editable = *editable;
  auto visible = FlagOr(o, "visible", true);
  if (!visible.ok()) return wrap(visible.status());
  s.visible = *visible;

  json::object c;
  if (const json::value* cv = o.if_contains("constraints"); cv != nullptr && !cv->is_null()) {
    if (cv->is_object()) {
      c = cv->as_object();
    } else if (cv->is_string()) {
      std::string_view text = cv->as_string();
      if (!text.empty() && text != "{}") {
        boost::system::error_code ec;
        json::value parsed = json::parse(text, ec);
        if (ec || !parsed.is_object()) return Bad(s.name, "constraints must be a JSON object");
        c = std::move(parsed.as_object());
      }
    } else {
      return Bad(s.name, "constraints must be a JSON object or its text");
    }
  }
  for (const auto& [k, v] : c) {
    if (k == "options") {
      auto opts = StringsOf(v, "options");
      if (!opts.ok()) return wrap(opts.status());
      s.options = std::move(*opts);
    } else if (k == "minimum" || k == "maximum" || k == "increment") {
      auto n = NumberOf(v, k);
      if (!n.ok()) return wrap(n.status());
      (k == "minimum" ? s.minimum : k == "maximum" ? s.maximum : s.increment) = *n;
    } else if (k == "maxlen") {
      auto n = NumberOf(v, k);
      if (!n.ok()) return wrap(n.status());
      if (*n < 0 || *n > 65536 || *n != std::floor(*n)) return Bad(s.name, "maxlen out of range");
      s.maxlen = static_cast<size_t>(*n);
    } else if (k == "regex") {
      if (!v.is_string()) return Bad(s.name, "regex must be a string");
      s.regex = std::string(v.as_string());
      if (s.regex.size() > 512) return Bad(s.name, "regex is longer than 512 characters");
      if (auto compiled = CompileUntrustedRegex(s.regex, 512); !compiled.ok()) {
        return Bad(s.name, "regex '" + s.regex + "': " + compiled.status().message());
      }
    } else if (k == "unit") {
      if (!v.is_string()) return Bad(s.name, "unit must be a string");
      s.unit = std::string(v.as_string());
    } else if (k == "ipv4static" || k == "ipv4dhcp" || k == "ipv4disable") {
      auto b = BoolOf(v, k);
      if (!b.ok()) return wrap(b.status());
      (k == "ipv4static" ? s.ipv4static : k == "ipv4dhcp" ? s.ipv4dhcp : s.ipv4disable) = *b;
    } else if (k == "parameters") {
      auto p = StringsOf(v, "parameters");
      if (!p.ok()) return wrap(p.status());
      for (const std::string& f : *p) {
        if (!IsNicField(f)) return Bad(s.name, "'" + f + "' is not a NIC field");
      }
      s.nic_parameters = std::move(*p);
    }
    // Other keys (help texts of Image Streamer's UI) are kept out of the checks.
  }
  if (s.type == AttributeType::kOption && s.options.empty()) {
    return Bad(s.name, "an option attribute needs constraints {\"options\": [...]}");
  }
  if (s.minimum && s.maximum && *s.minimum > *s.maximum) {
    return Bad(s.name, "minimum is above maximum");
  }
  if (s.type == AttributeType::kNic && !s.ipv4static && !s.ipv4dhcp && !s.ipv4disable) {
    return Bad(s.name, "a NIC must allow at least one of ipv4static, ipv4dhcp, ipv4disable");
  }
  const json::value* value = o.if_contains("value");
  if (value != nullptr && !value->is_null()) {
    std::string v = StringOr(o, "value");
    if (s.type == AttributeType::kPassword) {
      // Never stored but in the volume: a password comes with each deployment.
      if (!v.empty()) {
        return Bad(s.name, "a password is never stored; give it when deploying (value must be \"\")");
      }
    } else if (s.type == AttributeType::kNic) {
      if (!v.empty()) return Bad(s.name, "a NIC has no value of its own; give its fields");
    } else if (!v.empty() || s.type == AttributeType::kString) {
      if (!v.empty()) {
        INGOT_RETURN_IF_ERROR(CheckValue(s, s.name, v));
      }
      s.value = v;
      s.has_value = !v.empty();
    }
  }
  return s;
}

json::object AttributeSpecJson(const AttributeSpec& s) {
  json::object c;
  if (!s.options.empty()) {
    json::array a;
    for (const std::string& o : s.options) a.emplace_back(o);
    c["options"] = std::move(a);
  }
  if (s.minimum) c["minimum"] = *s.minimum;
  if (s.maximum) c["maximum"] = *s.maximum;
  if (s.increment) c["increment"] = *s.increment;
  if (s.maxlen) c["maxlen"] = static_cast<uint64_t>(*s.maxlen);
  if (!s.regex.empty()) c["regex"] = s.regex;
  if (!s.unit.empty()) c["unit"] = s.unit;
  if (s.type == AttributeType::kNic) {
    c["ipv4static"] = s.ipv4static;
    c["ipv4dhcp"] = s.ipv4dhcp;
    c["ipv4disable"] = s.ipv4disable;
    json::array p;
    for (const std::string& f : s.nic_parameters) p.emplace_back(f);
    c["parameters"] = std::move(p);
  }
  return {{"name", s.name},
          {"type", AttributeTypeName(s.type)},
          {"value", s.type == AttributeType::kPassword ? std::string() : s.value},
          {"description", s.description},
          {"constraints", json::serialize(c)},
          {"editable", s.editable},
          {"visible", s.visible}};
}

Result<AttributeOverride> ParseAttributeOverride(const json::value& entry) {
  if (!entry.is_object()) return InvalidArgument("each customAttributes entry must be an object");
  const json::object& o = entry.as_object();
  AttributeOverride a;
  a.name = StringOr(o, "name");
  size_t dot = a.name.find('.');
  if (!ValidAttributeName(a.name.substr(0, dot)) ||
      (dot != std::string::npos && !IsNicField(a.name.substr(dot + 1)))) {
    return InvalidArgument("customAttributes: '" + a.name + "' is not an attribute name");
  }
  if (const json::value* v = o.if_contains("value"); v != nullptr && !v->is_null()) {
    a.value = StringOr(o, "value");
    a.has_value = true;
  }
  auto editable = FlagOr(o, "editable", true);
  if (!editable.ok()) return Bad(a.name, editable.status().message());
  a.editable = *editable;
  auto visible = FlagOr(o, "visible", true);
  if (!visible.ok()) return Bad(a.name, visible.status().message());
  a.visible = *visible;
  return a;
}

Result<std::map<std::string, std::string>> ParseStepParameters(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  while (pos <= text.size()) {
    size_t end = text.find_first_of(";\n", pos);
    std::string_view item = trim(text.substr(pos, end == std::string_view::npos ? end : end - pos));
    pos = end == std::string_view::npos ? text.size() + 1 : end + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("step parameters: '" + std::string(item) + "' is not Name=value");
    }
    std::string name(trim(item.substr(0, eq)));
    size_t dot = name.find('.');
    if (!ValidAttributeName(name.substr(0, dot)) ||
        (dot != std::string::npos && !IsNicField(name.substr(dot + 1)))) {
      return InvalidArgument("step parameters: '" + name + "' is not an attribute name");
    }
    out[name] = std::string(item.substr(eq + 1));
  }
  return out;
}

Result<std::vector<std::map<std::string, std::string>>> ResolveValues(
    const std::vector<StepAttributes>& steps, const std::vector<AttributeSpec>& specs,
    const std::vector<AttributeOverride>& plan, const std::map<std::string, std::string>& given) {
  std::map<std::string, const AttributeSpec*> spec_of;
  for (const AttributeSpec& s : specs) spec_of[s.name] = &s;
  std::map<std::string, AttributeSpec> implicit;  // used without a declaration: strings
  auto spec_for = [&](const std::string& name) -> const AttributeSpec& {
    if (auto it = spec_of.find(name); it != spec_of.end()) return *it->second;
    AttributeSpec& s = implicit[name];
    s.name = name;
    return s;
  };
  std::map<std::string, const AttributeOverride*> override_of;
  for (const AttributeOverride& o : plan) override_of[o.name] = &o;

  // What the steps use, and each attribute's first script default.
  std::set<std::string> used_keys, used_names;
  std::map<std::string, std::string> script_default;
  for (const StepAttributes& st : steps) {
    for (const AttributeRef& r : st.refs) {
      used_keys.insert(r.Key());
      used_names.insert(r.name);
      if (r.default_value && !script_default.count(r.Key())) script_default[r.Key()] = *r.default_value;
    }
  }
  auto base = [](const std::string& key) { return key.substr(0, key.find('.')); };
  // The deployment's values: known, editable, well-formed.
  for (const auto& [key, value] : given) {
    if (!used_names.count(base(key)) && !spec_of.count(base(key))) {
      return Bad(key, "not used by the deployment plan's build plan");
    }
    for (const std::string& k : {key, base(key)}) {
      if (auto it = override_of.find(k); it != override_of.end() && !it->second->editable) {
        return Bad(key, "the deployment plan does not let a deployment change it");
      }
    }
    INGOT_RETURN_IF_ERROR(CheckValue(spec_for(base(key)), key, value));
  }
  // A deployment plan's value the deployment replaces is never used: only the others are checked
  // (HPE's plans carry "" for "the deployment gives it").
  for (const AttributeOverride& o : plan) {
    if (o.has_value && !given.count(o.name)) {
      INGOT_RETURN_IF_ERROR(CheckValue(spec_for(base(o.name)), o.name, o.value));
    }
  }
  // Layered: script default < build plan < deployment plan < deployment.
  std::map<std::string, std::string> merged;
  for (const std::string& key : used_keys) {
    std::optional<std::string> v;
    if (auto it = script_default.find(key); it != script_default.end()) v = it->second;
    const AttributeSpec& s = spec_for(base(key));
    if (s.has_value && key == s.name) v = s.value;
    if (auto it = override_of.find(key); it != override_of.end() && it->second->has_value) {
      v = it->second->value;
    }
    if (auto it = given.find(key); it != given.end()) v = it->second;
    if (v) {
      INGOT_RETURN_IF_ERROR(CheckValue(s, key, *v));
      merged[key] = *v;
    }
  }
  // A NIC's mode must be one its constraints allow.
  for (const AttributeSpec& s : specs) {
    if (s.type != AttributeType::kNic || !used_names.count(s.name)) continue;
    auto get = [&](const char* f) {
      auto it = merged.find(s.name + "." + f);
      return it == merged.end() ? std::string() : it->second;
    };
    if (get("ipv4disable") == "true") {
      if (!s.ipv4disable) return Bad(s.name, "IPv4 may not be disabled on this NIC");
    } else if (get("dhcp") == "true") {
      if (!s.ipv4dhcp) return Bad(s.name, "DHCP is not allowed on this NIC");
    } else if (!s.ipv4static) {
      return Bad(s.name, "a static address is not allowed on this NIC (set " + s.name +
                             ".dhcp=true)");
    } else if (used_keys.count(s.name + ".ipaddress") && get("ipaddress").empty()) {
      return Bad(s.name + ".ipaddress", "a static NIC needs an address");
    }
  }
  std::vector<std::map<std::string, std::string>> out;
  for (const StepAttributes& st : steps) {
    std::map<std::string, std::string> values;
    for (const AttributeRef& r : st.refs) {
      const std::string key = r.Key();
      if (auto p = st.parameters.find(key); p != st.parameters.end()) {
        INGOT_RETURN_IF_ERROR(CheckValue(spec_for(r.name), key, p->second));
        values[key] = p->second;
      } else if (auto m = merged.find(key); m != merged.end()) {
        values[key] = m->second;
      } else {
        return Bad(key, "needs a value (plan script " + st.script_name + " line " +
                            std::to_string(r.line) + ")");
      }
    }
    out.push_back(std::move(values));
  }
  return out;
}

std::vector<std::string> PasswordValues(const std::vector<AttributeSpec>& specs,
                                        const std::map<std::string, std::string>& values) {
  std::vector<std::string> out;
  for (const AttributeSpec& s : specs) {
    if (s.type != AttributeType::kPassword) continue;
    if (auto it = values.find(s.name); it != values.end() && !it->second.empty()) {
      out.push_back(it->second);
    }
  }
  return out;
}

std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    for (size_t p = text.find(s); p != std::string::npos; p = text.find(s, p + 8)) {
      text.replace(p, s.size(), "********");
    }
  }
  return text;
}

}  // namespace ingot::deploy::artifacts
