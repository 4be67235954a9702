#include "auth/policy.h"

namespace ingot::auth {
namespace {

enum class Who {
  kAnyone,        // any authenticated caller (reader and up)
  kProjectWriter, // a member of the image's owning project, or an admin
  kWriter,        // any member or admin (collection writes)
  kAdmin,
};

struct Rule {
  Action action;
  std::string_view name;
  Who who;
};

// The policy table. Keep it in one place: reviewers read this to know who may do what.
constexpr Rule kRules[] = {
    {Action::kListImages, "get_images", Who::kAnyone},
    {Action::kGetImage, "get_image", Who::kAnyone},
    {Action::kDownloadImage, "download_image", Who::kAnyone},
    {Action::kCreateImage, "add_image", Who::kWriter},
    {Action::kUpdateImage, "modify_image", Who::kProjectWriter},
    {Action::kDeleteImage, "delete_image", Who::kProjectWriter},
    {Action::kUploadImage, "upload_image", Who::kProjectWriter},
    {Action::kDeactivateImage, "deactivate", Who::kAdmin},
    {Action::kReactivateImage, "reactivate", Who::kAdmin},
    {Action::kPublicizeImage, "publicize_image", Who::kAdmin},
    {Action::kSetOwner, "set_image_owner", Who::kAdmin},
};

const Rule& RuleFor(Action action) {
  for (const Rule& r : kRules) {
    if (r.action == action) return r;
  }
  return kRules[0];  // unreachable: every Action has a row
}

}  // namespace

std::string_view PolicyName(Action action) { return RuleFor(action).name; }

Status Authorize(Action action, const RequestContext& ctx, const catalog::Image* image) {
  const Rule& rule = RuleFor(action);
  bool allowed = false;
  switch (rule.who) {
    case Who::kAnyone:
      allowed = true;
      break;
    case Who::kWriter:
      allowed = ctx.can_write();
      break;
    case Who::kProjectWriter:
      allowed = ctx.is_admin() || (ctx.can_write() && image != nullptr && image->owner.has_value() &&
                                   ctx.project.has_value() && *image->owner == *ctx.project);
      break;
    case Who::kAdmin:
      allowed = ctx.is_admin();
      break;
  }
  if (allowed) return Status::Ok();
  return PermissionDenied("You are not authorized to complete " + std::string(rule.name) +
                          " action.");
}

}  // namespace ingot::auth
