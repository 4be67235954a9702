#include "service/property_protections.h"

#include <fstream>
#include <map>
#include <sstream>

#include "common/regex.h"

namespace ingot::service {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Status Invalid(std::string why) {
  return InvalidArgument("property protection file: " + std::move(why));
}

constexpr const char* kOperations[] = {"create", "read", "update", "delete"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<PropertyProtections>> PropertyProtections::Parse(std::string_view text,
                                                                        Format format,
                                                                        const auth::Policy* policy) {
  std::unique_ptr<PropertyProtections> p(new PropertyProtections(format, policy));
  // Sections in file order, each with its operation = value lines (Python configparser's shape:
  // '=' or ':', '#' and ';' comments, a repeated section continues the first).
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> sections;
  std::map<std::string, size_t> index;
  size_t line_no = 0;
  for (std::string_view rest = text; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view line = Trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) {
        return Invalid("line " + std::to_string(line_no) + ": malformed section header");
      }
      std::string name(line.substr(1, line.size() - 2));
      auto [it, added] = index.emplace(name, sections.size());
      if (added) sections.push_back({name, {}});
      continue;
    }
    if (sections.empty()) {
      return Invalid("line " + std::to_string(line_no) + ": a value before any [section]");
    }
    size_t sep = line.find_first_of("=:");
    if (sep == std::string_view::npos) {
      return Invalid("line " + std::to_string(line_no) + ": expected 'operation = value'");
    }
    std::string key = Lower(Trim(line.substr(0, sep)));
    sections[index[sections.back().first]].second[key] = std::string(Trim(line.substr(sep + 1)));
  }
  for (auto& [expression, values] : sections) {
    Rule rule;
    rule.expression = expression;
    // The standard library compiles expressions by recursion: bound them first (common/regex.h).
    if (expression.size() > 1024) return Invalid("[" + expression.substr(0, 40) + "...] is too long");
    auto compiled = CompileUntrustedRegex(expression, 1024,
                                          std::regex::ECMAScript | std::regex::optimize);
    if (!compiled.ok()) {
      return Invalid("[" + expression + "] is not a valid regular expression: " +
                     compiled.status().message());
    }
    rule.regex = std::move(*compiled);
    for (int op = 0; op < 4; ++op) {
      auto v = values.find(kOperations[op]);
      if (v == values.end()) {
        return Invalid("[" + expression + "] has no '" + kOperations[op] + "'");
      }
      if (v->second.empty()) continue;  // no one may
      if (format == Format::kPolicies) {
        if (v->second.find(',') != std::string::npos) {
          return Invalid("[" + expression + "] " + kOperations[op] +
                         ": one policy rule per operation (combine them in the policy file)");
        }
        rule.permissions[op].push_back(v->second);
        continue;
      }
      for (std::string_view list = v->second; !list.empty();) {
        size_t comma = list.find(',');
        std::string_view role = Trim(list.substr(0, comma));
        if (!role.empty()) rule.permissions[op].push_back(Lower(role));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
      const auto& perms = rule.permissions[op];
      bool any = std::find(perms.begin(), perms.end(), "@") != perms.end();
      bool none = std::find(perms.begin(), perms.end(), "!") != perms.end();
      if (any && none) {
        return Invalid("[" + expression + "] " + kOperations[op] +
                       ": '@' and '!' are mutually exclusive");
      }
    }
    p->rules_.push_back(std::move(rule));
  }
  return p;
}

Result<std::unique_ptr<PropertyProtections>> PropertyProtections::Load(const std::string& path,
                                                                       Format format,
                                                                       const auth::Policy* policy) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("property protection file " + path + " cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = Parse(text.str(), format, policy);
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return parsed;
}

bool PropertyProtections::Allows(std::string_view property, PropertyOperation op,
                                 const auth::RequestContext& ctx) const {
  if (rules_.empty()) return true;
  const std::string name(property);
  for (const Rule& rule : rules_) {
    if (!std::regex_search(name, rule.regex)) continue;
    const auto& perms = rule.permissions[static_cast<int>(op)];
    if (perms.empty()) return false;
    if (std::find(perms.begin(), perms.end(), "!") != perms.end()) return false;
    if (std::find(perms.begin(), perms.end(), "@") != perms.end()) return true;
    if (format_ == Format::kPolicies) {
      return policy_ != nullptr && policy_->Authorize(perms.front(), ctx).ok();
    }
    for (const std::string& role : ctx.roles) {
      if (std::find(perms.begin(), perms.end(), role) != perms.end()) return true;
    }
    return false;
  }
  return false;  // no section names it: no one may
}

void PropertyProtections::FilterReadable(catalog::Image& image,
                                         const auth::RequestContext& ctx) const {
  std::erase_if(image.properties, [&](const auto& kv) {
    return !Allows(kv.first, PropertyOperation::kRead, ctx);
  });
}

Status PropertyProtections::CheckChange(const catalog::Image* before, const catalog::Image& after,
                                        const auth::RequestContext& ctx) const {
  auto reserved = [](const std::string& key) {
    return PermissionDenied("Access was denied to this resource.<br /><br />\nAttribute '" + key +
                            "' is reserved.");
  };
  for (const auto& [key, value] : after.properties) {
    const std::string* old = nullptr;
    if (before != nullptr) {
      auto it = before->properties.find(key);
      if (it != before->properties.end()) old = &it->second;
    }
    // A property the caller cannot read does not exist for it: setting it is a create.
    bool visible = old != nullptr && Allows(key, PropertyOperation::kRead, ctx);
    if (old != nullptr && *old == value) continue;
    PropertyOperation op = visible ? PropertyOperation::kUpdate : PropertyOperation::kCreate;
    if (!Allows(key, op, ctx)) return reserved(key);
  }
  if (before != nullptr) {
    for (const auto& [key, value] : before->properties) {
      if (after.properties.count(key) != 0) continue;
      if (!Allows(key, PropertyOperation::kDelete, ctx)) return reserved(key);
    }
  }
  return Status::Ok();
}

}  // namespace ingot::service
