#include "auth/policy.h"

#include <algorithm>
#include <functional>
#include <mutex>
#include <set>

#include "common/log.h"

namespace ingot::auth {
namespace {

struct DefaultRule {
  constexpr DefaultRule(std::string_view n, std::string_view t, std::string_view d = {})
      : name(n), text(t), description(d) {}
  constexpr DefaultRule(std::string_view n, Check c, std::string_view d = {})
      : name(n), text(CheckTextConst(c)), description(d) {}
  std::string_view name;
  std::string_view text;
  std::string_view description;

  static constexpr std::string_view CheckTextConst(Check c) {
    switch (c) {
      case Check::kAnyone: return "@";
      case Check::kReader: return "role:reader";
      case Check::kMember: return "role:member";
      case Check::kAdmin: return "role:admin";
      case Check::kProjectMember: return "role:admin or (role:member and project_id:%(project_id)s)";
      case Check::kOwnerOrMember:
        return "role:admin or project_id:%(project_id)s or project_id:%(member_id)s";
      case Check::kTargetMember: return "role:member and project_id:%(member_id)s";
      case Check::kService: return "role:service";
      case Check::kServiceOrProjectMember:
        return "role:service or (role:member and project_id:%(project_id)s)";
    }
    return "!";
  }
};

// Glance's secure-RBAC defaults (glance/policies/*.py, 2023.x with 2024.1's location rules), under
// Glance's names, then Ingot's own actions. Keep it in one place: reviewers read this to know who
// may do what, and `ingotd --print-default-policy` prints it.
constexpr const char* kReadImage =
    "role:admin or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s or "
    "'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))";
constexpr const char* kDownloadImage =
    "role:admin or (role:member and (project_id:%(project_id)s or project_id:%(member_id)s or "
    "'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s))";
constexpr const char* kAdminOrProjectMember =
    "role:admin or (role:member and project_id:%(project_id)s)";
constexpr const char* kAdminOrProjectReader =
    "role:admin or (role:reader and project_id:%(project_id)s)";
constexpr const char* kAdminOrSharedReader =
    "role:admin or role:reader and (project_id:%(project_id)s or project_id:%(member_id)s)";

constexpr DefaultRule kDefaultRules[] = {
    // Building blocks.
    {"default", "", "Rule of Glance's rules that name no other."},
    {"context_is_admin", "role:admin", "Who is an administrator."},
    {"service_api", "role:service", "Other OpenStack services (Nova, Cinder)."},
    // Discovery and operations endpoints answer everyone.
    {"versions", "@"},
    {"healthcheck", "@"},
    {"metrics", "@"},
    // The image builder's IMS API: an administrators' API, as Cray IMS is.
    {"ims_health", "@", "GET /apis/ims/healthz/*, /apis/ims/version"},
    {"ims_read", "role:admin", "GET /apis/ims/... (recipes, images, jobs, public keys, logs)"},
    {"ims_write", "role:admin", "POST, PATCH, PUT, DELETE /apis/ims/... (and builds)"},
    // Glance enforces no rule on schemas and info documents: any authenticated caller.
    {"get_schemas", "", "GET /v2/schemas/*"},
    {"get_import_info", "", "GET /v2/info/import"},
    {"get_stores", "", "GET /v2/info/stores"},
    {"get_usage", "", "GET /v2/info/usage (the caller's own project)"},
    {"stores_info_detail", "role:admin", "GET /v2/info/stores/detail"},
    // Images.
    {"add_image",
     "role:admin or (role:member and project_id:%(project_id)s and project_id:%(owner)s)",
     "POST /v2/images"},
    {"get_images", kAdminOrProjectReader, "GET /v2/images"},
    {"get_image", kReadImage, "GET /v2/images/{image_id}"},
    {"download_image", kDownloadImage, "GET /v2/images/{image_id}/file"},
    {"modify_image", kAdminOrProjectMember, "PATCH /v2/images/{image_id}, tags"},
    {"delete_image", kAdminOrProjectMember, "DELETE /v2/images/{image_id}"},
    {"upload_image", kAdminOrProjectMember, "PUT /v2/images/{image_id}/file"},
    {"publicize_image", "role:admin", "Making an image public."},
    {"communitize_image", kAdminOrProjectMember, "Making an image community."},
    {"set_image_owner", "role:admin", "Creating or moving an image into another project."},
    {"deactivate", kAdminOrProjectMember, "POST /v2/images/{image_id}/actions/deactivate"},
    {"reactivate", kAdminOrProjectMember, "POST /v2/images/{image_id}/actions/reactivate"},
    {"delete_image_location", "role:admin", "Removing a location (PATCH remove /locations/N)."},
    {"get_image_location", kAdminOrProjectReader, "Showing an image's locations."},
    {"set_image_location", kAdminOrProjectMember, "Adding a location with PATCH."},
    // Locations (Glance 2024.1's API): the owner's project or another service registers bytes that
    // already sit in a store; only services read where an image's bytes live.
    {"add_image_location", "rule:service_api or (role:member and project_id:%(project_id)s)",
     "POST /v2/images/{image_id}/locations"},
    {"fetch_image_location", "rule:service_api", "GET /v2/images/{image_id}/locations"},
    // Sharing: the owner adds and removes members; each member project answers for itself.
    {"get_members", kAdminOrSharedReader, "GET /v2/images/{image_id}/members"},
    {"get_member", kAdminOrSharedReader, "GET /v2/images/{image_id}/members/{member_id}"},
    {"add_member", kAdminOrProjectMember, "POST /v2/images/{image_id}/members"},
    {"delete_member", kAdminOrProjectMember, "DELETE /v2/images/{image_id}/members/{member_id}"},
    {"modify_member", "role:admin or (role:member and project_id:%(member_id)s)",
     "PUT /v2/images/{image_id}/members/{member_id}"},
    // Import: staging and importing change the image (Glance checks modify_image); copying an
    // image to more stores is an operator's decision.
    {"stage_image", "rule:modify_image", "PUT /v2/images/{image_id}/stage"},
    {"import_image", "rule:modify_image", "POST /v2/images/{image_id}/import"},
    {"copy_image", "role:admin", "The copy-image import method."},
    // Tasks: Glance checks the task rule and tasks_api_access.
    {"tasks_api_access", "role:admin", "The tasks API at all."},
    {"get_task", "rule:default and rule:tasks_api_access", "GET /v2/tasks/{task_id}"},
    {"get_tasks", "rule:default and rule:tasks_api_access", "GET /v2/tasks"},
    {"add_task", "rule:default and rule:tasks_api_access", "POST /v2/tasks"},
    {"modify_task", "rule:default and rule:tasks_api_access", "Changing a task."},
    {"get_image_tasks", "rule:get_image", "GET /v2/images/{image_id}/tasks"},
    // Metadata definitions (Glance's "secure metadef APIs"): anyone authenticated reads (another
    // project's private namespace stays invisible: the service answers 404), admins write.
    {"metadef_default", "", "Reading metadata definitions."},
    {"metadef_admin", "role:admin", "Changing metadata definitions."},
    {"get_metadef_namespace", "rule:metadef_default", "GET /v2/metadefs/namespaces/{namespace}"},
    {"get_metadef_namespaces", "rule:metadef_default", "GET /v2/metadefs/namespaces"},
    {"modify_metadef_namespace", "rule:metadef_admin", "PUT /v2/metadefs/namespaces/{namespace}"},
    {"add_metadef_namespace", "rule:metadef_admin", "POST /v2/metadefs/namespaces"},
    {"delete_metadef_namespace", "rule:metadef_admin",
     "DELETE /v2/metadefs/namespaces/{namespace}"},
    {"get_metadef_object", "rule:metadef_default", "GET .../objects/{object_name}"},
    {"get_metadef_objects", "rule:metadef_default", "GET .../objects"},
    {"modify_metadef_object", "rule:metadef_admin", "PUT .../objects/{object_name}"},
    {"add_metadef_object", "rule:metadef_admin", "POST .../objects"},
    {"delete_metadef_object", "rule:metadef_admin", "DELETE .../objects[/{object_name}]"},
    {"list_metadef_resource_types", "rule:metadef_default", "GET /v2/metadefs/resource_types"},
    {"get_metadef_resource_type", "rule:metadef_default", "GET .../resource_types"},
    {"add_metadef_resource_type_association", "rule:metadef_admin", "POST .../resource_types"},
    {"remove_metadef_resource_type_association", "rule:metadef_admin",
     "DELETE .../resource_types/{name}"},
    {"get_metadef_property", "rule:metadef_default", "GET .../properties/{property_name}"},
    {"get_metadef_properties", "rule:metadef_default", "GET .../properties"},
    {"modify_metadef_property", "rule:metadef_admin", "PUT .../properties/{property_name}"},
    {"add_metadef_property", "rule:metadef_admin", "POST .../properties"},
    {"remove_metadef_property", "rule:metadef_admin", "DELETE .../properties[/{property_name}]"},
    {"get_metadef_tag", "rule:metadef_default", "GET .../tags/{tag_name}"},
    {"get_metadef_tags", "rule:metadef_default", "GET .../tags"},
    {"modify_metadef_tag", "rule:metadef_admin", "PUT .../tags/{tag_name}"},
    {"add_metadef_tag", "rule:metadef_admin", "POST .../tags/{tag_name}"},
    {"add_metadef_tags", "rule:metadef_admin", "POST .../tags"},
    {"delete_metadef_tag", "rule:metadef_admin", "DELETE .../tags/{tag_name}"},
    {"delete_metadef_tags", "rule:metadef_admin", "DELETE .../tags"},
    // The image cache (API 2.14): an operator's tool.
    {"manage_image_cache", "role:admin", "The image cache API."},
    {"cache_list", "rule:manage_image_cache", "GET /v2/cache"},
    {"cache_delete", "rule:manage_image_cache", "DELETE /v2/cache[/{image_id}]"},
    {"cache_image", "rule:manage_image_cache", "PUT /v2/cache/{image_id}"},
    // The boot content (/boot/v1 ISOs, OS trees, files, microkernels, publications): operators'.
    {"boot_content:read", "role:admin", "GET /boot/v1/{isos,os,files,microkernels,published}"},
    {"boot_content:write", "role:admin", "PUT|POST|DELETE /boot/v1/{isos,os,files,...}"},
    // Boot profiles and machines: what a data centre's machines boot, and their identities.
    {"boot_machines:read", "role:admin", "GET /boot/v1/{profiles,machines}[/...]"},
    {"boot_machines:write", "role:admin", "POST|PUT|PATCH|DELETE /boot/v1/{profiles,machines}"},
    // HPE Image Streamer's API (/rest/...): plan scripts, build plans, golden images, deployment
    // plans, OS volumes and their tasks; an operators' API.
    {"streamer:version", "@", "GET /rest/version"},
    {"streamer:read", "role:admin", "GET /rest/{plan-scripts,build-plans,golden-images,...}"},
    {"streamer:write", "role:admin", "POST|PUT|DELETE /rest/{plan-scripts,...,os-volumes}"},
};

// Glance's ImageTarget, over Ingot's record.
std::optional<std::string> TargetField(const Target& t, const RequestContext& ctx,
                                       std::string_view key) {
  if (auto it = t.fields.find(key); it != t.fields.end()) return it->second;
  const catalog::Image* im = t.image;
  if (key == "member_id") {
    if (t.member) return t.member;
    // Glance's ImageTarget gives the caller's project as member_id when the image is shared
    // with it; a shared image the caller can see and does not own is one it is a member of.
    if (im != nullptr && im->visibility == catalog::Visibility::kShared && ctx.project &&
        im->owner != ctx.project)
      return ctx.project;
    return std::nullopt;
  }
  if (im == nullptr) {
    // A proposed image, or a collection: the caller's own project, private.
    if (key == "project_id" || key == "owner") return ctx.project;
    if (key == "visibility") return std::string("private");
    return std::nullopt;
  }
  if (key == "project_id" || key == "owner") return im->owner;
  if (key == "id" || key == "image_id") return im->id;
  if (key == "name") return im->name;
  if (key == "visibility") return std::string(catalog::VisibilityName(im->visibility));
  if (key == "status") return std::string(catalog::StatusName(im->status()));
  if (key == "protected") return std::string(im->is_protected ? "True" : "False");
  if (key == "os_hidden") return std::string(im->os_hidden ? "True" : "False");
  if (key == "disk_format") return im->disk_format;
  if (key == "container_format") return im->container_format;
  if (auto it = im->properties.find(std::string(key)); it != im->properties.end())
    return it->second;
  return std::nullopt;
}

std::string YamlQuoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string_view CheckText(Check check) { return DefaultRule::CheckTextConst(check); }

void AddImpliedRoles(std::vector<std::string>& roles) {
  auto add = [&](const char* r) {
    if (std::find(roles.begin(), roles.end(), r) == roles.end()) roles.push_back(r);
  };
  if (std::find(roles.begin(), roles.end(), "admin") != roles.end()) add("member");
  if (std::find(roles.begin(), roles.end(), "member") != roles.end()) add("reader");
}

Policy::Policy() : rules_(std::make_shared<RuleSet>()) {}
Policy::Policy(const Policy& other) : rules_(other.Snapshot()) {}
Policy& Policy::operator=(const Policy& other) {
  auto snap = other.Snapshot();
  std::unique_lock<std::shared_mutex> lock(mu_);
  rules_ = std::move(snap);
  return *this;
}

std::shared_ptr<const Policy::RuleSet> Policy::Snapshot() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return rules_;
}

Policy Policy::Defaults() {
  Policy p;
  auto set = std::make_shared<RuleSet>();
  for (const DefaultRule& r : kDefaultRules) {
    auto expr = ParsePolicyRule(r.text);
    if (!expr.ok()) {
      // A compiled-in rule that does not parse is a bug; policy_test parses every one.
      log::Error("policy.default_unparsable", {{"rule", r.name}, {"error", expr.status().message()}});
      continue;
    }
    set->emplace(std::string(r.name),
                 Rule{std::string(r.text), std::shared_ptr<const PolicyExpr>(std::move(*expr))});
  }
  p.rules_ = std::move(set);
  return p;
}

std::string Policy::DefaultsYaml() {
  std::string out =
      "# Ingot's default policy: Glance's secure-RBAC defaults and Ingot's own actions, in\n"
      "# oslo.policy's language. Copy the rules you want to change into the file named by\n"
      "# [policy] policy_file; rules the file does not name keep these defaults.\n";
  for (const DefaultRule& r : kDefaultRules) {
    out += "\n";
    if (!r.description.empty()) out += "# " + std::string(r.description) + "\n";
    out += "#" + YamlQuoted(r.name) + ": " + YamlQuoted(r.text) + "\n";
  }
  return out;
}

Status Policy::Authorize(std::string_view rule, const RequestContext& ctx,
                         const Target& target) const {
  auto rules = Snapshot();
  auto it = rules->find(rule);
  bool allowed = false;
  if (it == rules->end()) {
    log::Error("policy.rule_missing", {{"rule", rule}, {"request_id", ctx.request_id}});
  } else {
    PolicyEnv env{
        .ctx = ctx,
        .target = [&](std::string_view key) { return TargetField(target, ctx, key); },
        .rule = [&](std::string_view name) -> const PolicyExpr* {
          auto r = rules->find(name);
          return r == rules->end() ? nullptr : r->second.expr.get();
        }};
    allowed = EvaluatePolicy(*it->second.expr, env);
  }
  if (allowed) return Status::Ok();
  return PermissionDenied("You are not authorized to complete " + std::string(rule) + " action.");
}

bool Policy::Has(std::string_view rule) const { return Snapshot()->count(rule) != 0; }

std::vector<std::string> Policy::rules() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : *Snapshot()) out.push_back(name);
  return out;
}

std::string Policy::Text(std::string_view rule) const {
  auto rules = Snapshot();
  auto it = rules->find(rule);
  return it == rules->end() ? "" : it->second.text;
}

Status Policy::Set(std::string rule, std::string_view text) {
  auto expr = ParsePolicyRule(text);
  if (!expr.ok()) return InvalidArgument("policy rule \"" + rule + "\": " + expr.status().message());
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto next = std::make_shared<RuleSet>(*rules_);
  (*next)[std::move(rule)] = Rule{std::string(text), std::shared_ptr<const PolicyExpr>(std::move(*expr))};
  rules_ = std::move(next);
  return Status::Ok();
}

void Policy::Set(std::string rule, Check check) {
  Status s = Set(std::move(rule), CheckText(check));
  (void)s;  // the texts of Check always parse (policy_test)
}

Status Policy::Override(const std::vector<PolicyFileRule>& file, const std::string& origin) {
  auto next = std::make_shared<RuleSet>(*Defaults().rules_);
  std::map<std::string, int> lines;
  for (const PolicyFileRule& r : file) {
    auto expr = ParsePolicyRule(r.text);
    if (!expr.ok()) {
      return InvalidArgument(origin + ":" + std::to_string(r.line) + ": rule \"" + r.name +
                             "\": " + expr.status().message());
    }
    (*next)[r.name] = Rule{r.text, std::shared_ptr<const PolicyExpr>(std::move(*expr))};
    lines[r.name] = r.line;
  }
  // rule:NAME cycles would never terminate in oslo.policy; refuse them here.
  std::map<std::string, int> state;  // 1 visiting, 2 done
  std::function<Status(const std::string&, std::vector<std::string>&)> visit =
      [&](const std::string& name, std::vector<std::string>& path) -> Status {
    auto it = next->find(name);
    if (it == next->end()) return Status::Ok();  // oslo.policy: a missing rule is false
    if (state[name] == 2) return Status::Ok();
    path.push_back(name);
    if (state[name] == 1) {
      std::string chain;
      for (const auto& p : path) chain += (chain.empty() ? "" : " -> ") + p;
      int line = lines.count(path.front()) ? lines[path.front()] : 0;
      return InvalidArgument(origin + ":" + std::to_string(line) + ": rules refer to each other in a "
                             "cycle: " + chain);
    }
    state[name] = 1;
    std::vector<std::string> refs;
    CollectRuleRefs(*it->second.expr, refs);
    for (const auto& ref : refs) INGOT_RETURN_IF_ERROR(visit(ref, path));
    state[name] = 2;
    path.pop_back();
    return Status::Ok();
  };
  for (const auto& [name, _] : *next) {
    std::vector<std::string> path;
    INGOT_RETURN_IF_ERROR(visit(name, path));
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  rules_ = std::move(next);
  return Status::Ok();
}

}  // namespace ingot::auth
