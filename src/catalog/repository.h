// Persistence of the catalog. The API and service layers see only this interface; the SQL behind
// it is written once (sql/) for the embedded SQLite engine (sqlite/) and PostgreSQL (postgres/).
//
// Thread safety: every method may be called concurrently from many threads.
// Failure: kNotFound, kAlreadyExists, kConflict as documented; kUnavailable while the database
// cannot be reached or written (disk full, read-only, server restarting: the API answers 503 with
// Retry-After); kIoError/kCorruption when it fails otherwise. Nothing is partially written: each
// call is one transaction.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catalog/image.h"
#include "catalog/list_query.h"

namespace ingot::catalog {

struct ImagePage {
  std::vector<Image> images;
  // Set when more images follow; the id to pass as the next query's marker.
  std::optional<std::string> next_marker;
};

class ImageRepository {
 public:
  virtual ~ImageRepository() = default;

  // Stores a new image (version 1). kAlreadyExists when the id is or ever was in use (Glance never
  // reuses an id, even after deletion).
  virtual Status Add(const Image& image) = 0;

  // kNotFound when missing or deleted.
  virtual Result<Image> Get(const std::string& id) = 0;

  // Replaces the stored record with `image` if the stored version equals image.version; the stored
  // version becomes image.version + 1 and `updated_at` is kept as given. kConflict when another
  // writer saved first (the caller re-reads and retries or reports 409); kNotFound when gone.
  virtual Status Save(const Image& image) = 0;

  // Marks the image deleted (status `deleted`); its id stays reserved. kNotFound when gone.
  // Saving an image whose status is `deleted` has the same effect.
  virtual Status Remove(const std::string& id) = 0;

  // One page of images visible to `viewer` that match `query`, in the query's sort order.
  // kInvalidArgument for a marker that names no visible image (Glance answers 400, "No image found
  // with ID <marker>"). Listing follows Glance's rules, narrower than IsVisible: admins list every
  // image; others their own, public and community ones, and shared ones they are a member of in
  // query.member_status (accepted by default). Without a visibility filter community images are
  // listed only to their owner; with visibility=X only X (visibility=all lifts that). Ownerless
  // non-public images are listed to admins only. next_marker is set only when more images follow.
  virtual Result<ImagePage> List(const ListQuery& query, const Viewer& viewer) = 0;

  // Every non-deleted image in one of `statuses`; for start-up repair.
  virtual Result<std::vector<Image>> ListByStatus(const std::vector<ImageStatus>& statuses) = 0;

  // Number of non-deleted images per status; for /metrics.
  virtual Result<std::map<ImageStatus, int64_t>> CountByStatus() = 0;

  // Members of shared images (the project ids an image is shared with, and their status).
  // Used for visibility; the members API builds on it. The image must exist and not be deleted
  // (kNotFound otherwise); visibility and ownership are checked by the caller.

  // Adds `member` with its status and timestamps as given. kAlreadyExists when already a member.
  virtual Status AddMember(const ImageMember& member) = 0;
  // Sets an existing member's status and updated_at. kNotFound when not a member.
  virtual Status UpdateMember(const ImageMember& member) = 0;
  // kNotFound when not a member.
  virtual Status RemoveMember(const std::string& image_id, const std::string& member) = 0;
  // kNotFound when not a member.
  virtual Result<ImageMember> GetMember(const std::string& image_id, const std::string& member) = 0;
  // Every member of the image, ordered by member id.
  virtual Result<std::vector<ImageMember>> ListMembers(const std::string& image_id) = 0;
};

}  // namespace ingot::catalog
