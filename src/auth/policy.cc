#include "auth/policy.h"

#include "common/log.h"

namespace ingot::auth {
namespace {

struct DefaultRule {
  std::string_view name;
  Check check;
};

// The policy table. Keep it in one place: reviewers read this to know who may do what.
constexpr DefaultRule kDefaultRules[] = {
    // Discovery and operations endpoints answer everyone.
    {"versions", Check::kAnyone},
    {"healthcheck", Check::kAnyone},
    {"metrics", Check::kAnyone},
    {"get_schemas", Check::kReader},
    {"get_import_info", Check::kReader},
    {"get_stores", Check::kReader},
    {"stores_info_detail", Check::kAdmin},
    {"get_usage", Check::kReader},
    // Images.
    {"get_images", Check::kReader},
    {"get_image", Check::kReader},
    {"download_image", Check::kReader},
    {"add_image", Check::kMember},
    {"modify_image", Check::kProjectMember},
    {"delete_image", Check::kProjectMember},
    {"upload_image", Check::kProjectMember},
    {"delete_image_location", Check::kProjectMember},
    {"deactivate", Check::kAdmin},
    {"reactivate", Check::kAdmin},
    {"publicize_image", Check::kAdmin},
    {"set_image_owner", Check::kAdmin},
    // Sharing: the owner adds and removes members; each member project answers for itself.
    {"get_members", Check::kReader},
    {"get_member", Check::kOwnerOrMember},
    {"add_member", Check::kProjectMember},
    {"delete_member", Check::kProjectMember},
    {"modify_member", Check::kTargetMember},
    // Import: staging and importing change the image (its owner's project); copying an image to
    // more stores is an operator's decision; tasks are an operator's view (Glance's
    // tasks_api_access), except an image's own tasks, which its readers see.
    {"stage_image", Check::kProjectMember},
    {"import_image", Check::kProjectMember},
    {"copy_image", Check::kAdmin},
    {"get_tasks", Check::kAdmin},
    {"get_task", Check::kAdmin},
    {"get_image_tasks", Check::kReader},
    // Locations (Glance 2024.1's API): the owner's project or another service registers bytes that
    // already sit in a store; only services read where an image's bytes live (Glance's
    // fetch_image_location is role:service: not even admins by default).
    {"add_image_location", Check::kServiceOrProjectMember},
    {"fetch_image_location", Check::kService},
};

bool Holds(Check check, const RequestContext& ctx, const Target& target) {
  auto is_owner = [&] {
    return target.image != nullptr && target.image->owner.has_value() && ctx.project.has_value() &&
           *target.image->owner == *ctx.project;
  };
  auto is_target_member = [&] {
    return target.member.has_value() && ctx.project.has_value() && *target.member == *ctx.project;
  };
  switch (check) {
    case Check::kAnyone:
      return true;
    case Check::kReader:
      return ctx.HasRole("reader") || ctx.HasRole("member") || ctx.is_admin();
    case Check::kMember:
      return ctx.HasRole("member") || ctx.is_admin();
    case Check::kAdmin:
      return ctx.is_admin();
    case Check::kProjectMember:
      return ctx.is_admin() || (ctx.HasRole("member") && is_owner());
    case Check::kOwnerOrMember:
      return ctx.is_admin() || is_owner() || is_target_member();
    case Check::kTargetMember:
      return ctx.HasRole("member") && is_target_member();
    case Check::kService:
      return ctx.HasRole("service");
    case Check::kServiceOrProjectMember:
      return ctx.HasRole("service") || (ctx.HasRole("member") && is_owner());
  }
  return false;
}

}  // namespace

void AddImpliedRoles(std::vector<std::string>& roles) {
  auto add = [&](const char* r) {
    if (std::find(roles.begin(), roles.end(), r) == roles.end()) roles.push_back(r);
  };
  if (std::find(roles.begin(), roles.end(), "admin") != roles.end()) add("member");
  if (std::find(roles.begin(), roles.end(), "member") != roles.end()) add("reader");
}

Policy Policy::Defaults() {
  Policy p;
  for (const DefaultRule& r : kDefaultRules) p.rules_.emplace(std::string(r.name), r.check);
  return p;
}

Status Policy::Authorize(std::string_view rule, const RequestContext& ctx,
                         const Target& target) const {
  auto it = rules_.find(rule);
  bool allowed = false;
  if (it == rules_.end()) {
    log::Error("policy.rule_missing", {{"rule", rule}, {"request_id", ctx.request_id}});
  } else {
    allowed = Holds(it->second, ctx, target);
  }
  if (allowed) return Status::Ok();
  return PermissionDenied("You are not authorized to complete " + std::string(rule) + " action.");
}

std::vector<std::string> Policy::rules() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : rules_) out.push_back(name);
  return out;
}

}  // namespace ingot::auth
