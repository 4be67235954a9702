// Who may do what: the one policy table of the API, decided at the edge before any use case runs.
//
// Visibility comes first and is not a policy decision: an image the caller cannot see answers 404, never
// 403 (catalog::IsVisible). Then this table decides, for the visible image or the collection:
//   readers read; members write images of their own project; admins everything.
#pragma once

#include <string_view>

#include "auth/context.h"
#include "catalog/image.h"
#include "common/status.h"

namespace ingot::auth {

enum class Action {
  kListImages,
  kGetImage,
  kDownloadImage,
  kCreateImage,
  kUpdateImage,
  kDeleteImage,
  kUploadImage,
  kDeactivateImage,
  kReactivateImage,
  kPublicizeImage,  // set visibility=public
  kSetOwner,        // create or update with an owner other than one's own project
};

// Glance's policy name for the action ("get_image", "publicize_image", ...), used in 403 messages.
std::string_view PolicyName(Action action);

// OK or kPermissionDenied ("You are not authorized to complete <policy> action.").
// `image` is the target for per-image actions and nullptr for collection actions.
Status Authorize(Action action, const RequestContext& ctx, const catalog::Image* image = nullptr);

}  // namespace ingot::auth
