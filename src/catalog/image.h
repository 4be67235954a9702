// The catalog's domain: an image record, its status machine and the rules of the catalog.
// Plain data and pure functions; persistence is behind repository.h, authorization at the API edge.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::catalog {

// Glance's image statuses (glance/domain/__init__.py, valid_state_targets).
enum class ImageStatus {
  kQueued,
  kSaving,
  kActive,
  kKilled,
  kDeleted,
  kPendingDelete,
  kDeactivated,
  kUploading,
  kImporting,
};

enum class Visibility { kPublic, kPrivate, kShared, kCommunity };

std::string_view StatusName(ImageStatus s);  // "queued", "saving", ...
std::optional<ImageStatus> ParseStatus(std::string_view s);
std::string_view VisibilityName(Visibility v);  // "public", ...
std::optional<Visibility> ParseVisibility(std::string_view s);

// The use cases that move an image between statuses. Each has one row in the transition table
// (image.cc, kTransitions): the statuses it may start from, the status it ends in, and what Glance
// answers when it may not start. Every status change in Ingot goes through Transition(); nothing
// else can set Image::status (see StoredStatus below for the one exception).
enum class ImageEvent {
  kStartUpload,   // queued -> saving            PUT /v2/images/{id}/file
  kFinishUpload,  // saving -> active            the bytes are durable and recorded
  kAbortUpload,   // saving -> queued            a failed upload, or one a crash interrupted
  kStage,         // queued -> uploading         import: PUT /v2/images/{id}/stage
  kStartImport,   // queued|uploading -> importing
  kFinishImport,  // importing -> active
  kAbortImport,   // uploading|importing -> queued
  kDeactivate,    // active -> deactivated       idempotent on a deactivated image
  kReactivate,    // deactivated -> active       idempotent on an active image
  kDelete,        // any live status -> deleted
};

std::string_view EventName(ImageEvent e);  // "start_upload", ...

struct Image;

// Moves `image` by `event`: OK (status set, or unchanged where the event is idempotent), or the
// refusal Glance gives for that event: kConflict "Image status transition from active to saving is
// not allowed" for uploads and imports, kPermissionDenied "Not allowed to deactivate image in status
// 'queued'" for the admin actions. `image` is unchanged on refusal.
Status Transition(Image& image, ImageEvent event);

// Glance's status graph (glance/domain/__init__.py, Image.valid_state_targets), derived from the
// table: does some event move an image from `from` to `to`? Staying put is not a transition.
bool CanTransition(ImageStatus from, ImageStatus to);

// A project's membership of a shared image, as Glance's image members API knows it.
enum class MemberStatus { kPending, kAccepted, kRejected };
std::string_view MemberStatusName(MemberStatus s);  // "pending", "accepted", "rejected"
std::optional<MemberStatus> ParseMemberStatus(std::string_view s);

struct ImageMember {
  std::string image_id;
  std::string member;  // project id the image is shared with
  MemberStatus status = MemberStatus::kPending;
  int64_t created_at = 0;  // microseconds since the epoch
  int64_t updated_at = 0;
};

// Where an image's bytes live in a store.
struct Location {
  std::string store;  // store id from the configuration ("file", ...)
  std::string key;    // the store's own name for the object (for the file store, a path under it)
  // Glance's location metadata as given (PATCH /locations; service/locations.h): a JSON object's
  // text, "" when none. Opaque to the catalog.
  std::string metadata;
};

struct Image {
  std::string id;  // lower-case UUID
  std::optional<std::string> name;
  Visibility visibility = Visibility::kShared;  // Glance's default since Ocata
  bool is_protected = false;
  bool os_hidden = false;
  std::optional<std::string> owner;  // project id
  std::optional<std::string> disk_format;
  std::optional<std::string> container_format;
  std::optional<uint64_t> size;
  std::optional<uint64_t> virtual_size;
  uint64_t min_disk = 0;                // GiB
  uint64_t min_ram = 0;                 // MiB
  std::optional<std::string> checksum;  // MD5 hex
  std::optional<std::string> os_hash_algo;
  std::optional<std::string> os_hash_value;
  int64_t created_at = 0;  // microseconds since the epoch
  int64_t updated_at = 0;
  std::set<std::string> tags;
  std::map<std::string, std::string> properties;  // free-form extra properties
  std::vector<Location> locations;
  int64_t version = 0;  // optimistic concurrency; bumped by every save

  ImageStatus status() const { return status_; }

 private:
  friend Status Transition(Image&, ImageEvent);
  friend struct StoredStatus;
  ImageStatus status_ = ImageStatus::kQueued;
};

// For repository implementations (and test fixtures) only: puts back the status a stored record
// holds. Use cases move images with Transition().
struct StoredStatus {
  static void Restore(Image& image, ImageStatus status) { image.status_ = status; }
};

// Who is asking; visibility rules depend on it.
struct Viewer {
  std::optional<std::string> project;  // nullopt: anonymous
  bool is_admin = false;
};

// Glance's rule for showing one image (glance/db/utils.py is_image_visible): admins see everything;
// an image without an owner, and public and community images, are visible to all; the owner sees
// its own; a shared image is visible to a project that is a member of it in any status.
// `membership` is the viewer's membership of this image (nullopt when none or unknown). Private
// images are seen only by their owner and admins. Listing applies narrower rules (see
// ImageRepository::List).
bool IsVisible(const Image& image, const Viewer& viewer, std::optional<MemberStatus> membership);

}  // namespace ingot::catalog
