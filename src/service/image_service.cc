#include "service/image_service.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <set>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"

namespace ingot::service {

using catalog::Image;
using catalog::ImageEvent;
using catalog::ImageMember;
using catalog::ImageStatus;

namespace {

constexpr int kSaveRetries = 8;

Status ImageNotFound(const std::string& id) { return NotFound("No image found with ID " + id); }

// The job lease an upload holds on a shared catalog (ImageServiceOptions::upload_leases).
std::string UploadLeaseName(const std::string& image_id) { return "upload/" + image_id; }

}  // namespace

ImageService::ImageService(catalog::ImageRepository& repo, store::StoreSet& stores,
                           ImageServiceOptions options)
    : repo_(repo), stores_(stores), options_(std::move(options)) {}

ImageService::~ImageService() {
  {
    std::lock_guard lock(reclaim_mu_);
    stopping_ = true;
  }
  reclaim_cv_.notify_all();
  if (reclaimer_.joinable()) reclaimer_.join();
}

int64_t ImageService::Now() const { return options_.now ? options_.now() : NowMicros(); }

// ---- Reading ----

Result<Image> ImageService::Get(const std::string& id, const catalog::Viewer& viewer) {
  if (!IsUuid(id)) return ImageNotFound(id);
  auto image = repo_.Get(CanonicalUuid(id));
  if (!image.ok()) {
    return image.status().code() == Code::kNotFound ? ImageNotFound(id) : image.status();
  }
  std::optional<catalog::MemberStatus> membership;
  if (image->visibility == catalog::Visibility::kShared && viewer.project && !viewer.is_admin &&
      image->owner != viewer.project) {
    if (auto m = repo_.GetMember(image->id, *viewer.project); m.ok()) membership = m->status;
  }
  if (!catalog::IsVisible(*image, viewer, membership)) return ImageNotFound(id);
  return image;
}

Result<catalog::ImagePage> ImageService::List(const catalog::ListQuery& query,
                                              const catalog::Viewer& viewer) {
  return repo_.List(query, viewer);
}

// ---- Records ----

Status ImageService::CheckQuotas(const Image& image) const {
  if (static_cast<int64_t>(image.tags.size()) > options_.tag_quota) {
    return TooLarge("Maximum number of tags exceeded (" + std::to_string(options_.tag_quota) +
                    ").");
  }
  if (static_cast<int64_t>(image.properties.size()) > options_.property_quota) {
    return TooLarge("Maximum number of properties exceeded (" +
                    std::to_string(options_.property_quota) + ").");
  }
  return Status::Ok();
}

Result<Image> ImageService::Mutate(Image image, const ImageChange& change) {
  const std::string id = image.id;
  for (int attempt = 0; attempt < kSaveRetries; ++attempt) {
    if (attempt > 0) {
      auto fresh = repo_.Get(id);
      if (!fresh.ok()) {
        return fresh.status().code() == Code::kNotFound ? ImageNotFound(id) : fresh.status();
      }
      image = std::move(*fresh);
    }
    Image next = image;
    INGOT_RETURN_IF_ERROR(change(next));
    INGOT_RETURN_IF_ERROR(CheckQuotas(next));
    next.updated_at = NowMicros();
    Status saved = repo_.Save(next);
    if (saved.ok()) {
      ++next.version;
      return next;
    }
    if (saved.code() == Code::kNotFound) return ImageNotFound(id);
    if (saved.code() != Code::kConflict) return saved;
  }
  return Conflict("Image " + id + " is being changed by other requests; retry.");
}

Result<Image> ImageService::Create(Image draft) {
  INGOT_RETURN_IF_ERROR(CheckQuotas(draft));
  if (quotas_ != nullptr) INGOT_RETURN_IF_ERROR(quotas_->CheckCreate(draft.owner));
  draft.created_at = draft.updated_at = NowMicros();
  Status added = repo_.Add(draft);
  if (added.code() == Code::kAlreadyExists) {
    return Conflict("Image ID " + draft.id + " already exists!");
  }
  INGOT_RETURN_IF_ERROR(added);
  draft.version = 1;
  return draft;
}

Result<Image> ImageService::Update(const Image& image, const ImageChange& change) {
  return Mutate(image, [&](Image& im) -> Status {
    ImageStatus before = im.status();
    INGOT_RETURN_IF_ERROR(change(im));
    if (im.status() != before) return Internal("an attribute change moved the image's status");
    return Status::Ok();
  });
}

Status ImageService::AddTag(const Image& image, const std::string& tag) {
  return Mutate(image,
                [&](Image& im) {
                  im.tags.insert(tag);
                  return Status::Ok();
                })
      .status();
}

Status ImageService::RemoveTag(const Image& image, const std::string& tag) {
  return Mutate(image,
                [&](Image& im) {
                  if (im.tags.erase(tag) == 0) return NotFound("Tag " + tag + " not found.");
                  return Status::Ok();
                })
      .status();
}

Status ImageService::Deactivate(const Image& image) {
  if (image.status() == ImageStatus::kDeactivated) return Status::Ok();
  return Mutate(image, [](Image& im) { return Transition(im, ImageEvent::kDeactivate); }).status();
}

Status ImageService::Reactivate(const Image& image) {
  if (image.status() == ImageStatus::kActive) return Status::Ok();
  return Mutate(image, [](Image& im) { return Transition(im, ImageEvent::kReactivate); }).status();
}

Status ImageService::Delete(const Image& image) {
  auto deleted = Mutate(image, [](Image& im) {
    if (im.is_protected) {
      return PermissionDenied("Image " + im.id + " is protected and cannot be deleted.");
    }
    return Transition(im, ImageEvent::kDelete);
  });
  INGOT_RETURN_IF_ERROR(deleted.status());
  if (staging_ != nullptr) {
    if (Status s = staging_->Delete(image.id); !s.ok() && s.code() != Code::kNotFound) {
      log::Warn("image.unstage_failed", {{"image", image.id}, {"error", s.ToString()}});
    }
  }
  for (const auto& loc : deleted->locations) {
    store::Store* store = stores_.Find(loc.store);
    Status s =
        store ? store->Delete(loc.key) : NotFound("store " + loc.store + " is not configured");
    if (!s.ok()) {
      // The record is gone; the orphan is swept by the next Repair().
      log::Warn("image.delete_data_failed",
                {{"image", image.id}, {"store", loc.store}, {"error", s.ToString()}});
    }
  }
  return Status::Ok();
}

// ---- Bytes ----

Result<Image> ImageService::Upload(const Image& image, io::Reader& body,
                                   std::optional<uint64_t> content_length,
                                   const std::string& store_id, UploadStats* stats,
                                   std::optional<std::string> expected_md5) {
  auto store = stores_.ForWriting(store_id);
  if (!store.ok()) {
    return store.status().code() == Code::kNotFound ? InvalidArgument(store.status().message())
                                                    : store.status();
  }
  // The project's quotas, before any byte is read: a declared length over them is refused here, an
  // undeclared one is stopped by the ingest pass where it crosses them.
  std::optional<uint64_t> quota_left;
  if (quotas_ != nullptr) {
    INGOT_ASSIGN_OR_RETURN(quota_left, quotas_->Allowance(image.owner, content_length, false));
  }
  // Claim the image: queued -> saving. A concurrent upload loses here.
  auto claimed = Mutate(image, [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kStartUpload));
    if (!im.disk_format || !im.container_format) {
      return InvalidArgument(
          "Properties disk_format, container_format must be set prior to saving data.");
    }
    if (content_length && *content_length > options_.size_cap) {
      return TooLarge("Image exceeds the storage quota: the upload is " +
                      std::to_string(*content_length) + " bytes, the limit is " +
                      std::to_string(options_.size_cap) + " bytes.");
    }
    return Status::Ok();
  });
  INGOT_RETURN_IF_ERROR(claimed.status());
  if (Status s = TakeUploadLease(claimed->id); !s.ok()) {
    RevertToQueued(*claimed);
    return s;
  }

  auto result = StreamIn(*claimed, **store, body, content_length, stats, std::move(expected_md5),
                         quota_left);
  // Put back only an image this upload still owns: after a takeover it may already be another
  // upload's.
  if (!result.ok() && result.status().code() != Code::kNotFound && HoldsUploadLease(claimed->id)) {
    RevertToQueued(*claimed);
  }
  ReleaseUploadLease(claimed->id);
  return result;
}

Status ImageService::TakeUploadLease(const std::string& image_id) {
  if (options_.upload_leases == nullptr) return Status::Ok();
  const int64_t now = Now();
  const int64_t lease = options_.upload_lease.count() * 1000000;
  auto taken = options_.upload_leases->AcquireJobLease(UploadLeaseName(image_id), options_.node,
                                                       now, now + lease,
                                                       std::numeric_limits<int64_t>::max());
  if (taken.ok() && taken->holder == options_.node) return Status::Ok();
  Status s = taken.ok() ? Conflict("the upload lease is held by " + taken->holder.value_or("?"))
                        : taken.status();
  log::Warn("upload.lease_not_taken", {{"image", image_id}, {"error", s.ToString()}});
  return Unavailable("The image's upload could not be registered in the catalog; try again.");
}

Status ImageService::RenewUploadLease(const std::string& image_id) {
  if (options_.upload_leases == nullptr) return Status::Ok();
  Status s = options_.upload_leases->RenewJobLease(
      UploadLeaseName(image_id), options_.node, Now() + options_.upload_lease.count() * 1000000);
  if (s.ok()) return s;
  log::Warn("upload.lease_lost", {{"image", image_id}, {"error", s.ToString()}});
  if (s.code() != Code::kConflict) return s;
  return Conflict("The upload of image " + image_id + " was taken over by another node after " +
                  "it made no progress for " + std::to_string(options_.upload_lease.count()) +
                  " s; nothing was stored. Upload the image again.");
}

void ImageService::ReleaseUploadLease(const std::string& image_id) {
  if (options_.upload_leases == nullptr) return;
  Status s = options_.upload_leases->ReleaseJobLease(UploadLeaseName(image_id), options_.node,
                                                     Now(), "");
  // kConflict: taken over (the taker released it or holds it): nothing of ours to end.
  if (!s.ok() && s.code() != Code::kConflict) {
    log::Warn("upload.lease_release_failed", {{"image", image_id}, {"error", s.ToString()}});
  }
}

bool ImageService::HoldsUploadLease(const std::string& image_id) {
  if (options_.upload_leases == nullptr) return true;
  auto lease = options_.upload_leases->GetJobLease(UploadLeaseName(image_id));
  // Unreadable: the catalog is down, so the revert could not be written either; the lease runs
  // out and another node's ReclaimAbandonedUploads puts the image back.
  return lease.ok() && lease->holder == options_.node;
}

Result<int> ImageService::ReclaimAbandonedUploads() {
  if (options_.upload_leases == nullptr) return 0;
  const int64_t lease_micros = options_.upload_lease.count() * 1000000;
  INGOT_ASSIGN_OR_RETURN(auto saving, repo_.ListByStatus({ImageStatus::kSaving}));
  int reclaimed = 0;
  for (auto& image : saving) {
    const std::string name = UploadLeaseName(image.id);
    const int64_t now = Now();
    auto lease = options_.upload_leases->GetJobLease(name);
    if (lease.ok() && lease->holder) {
      if (lease->until > now) continue;  // a live upload
    } else if ((!lease.ok() && lease.status().code() != Code::kNotFound) ||
               now - image.updated_at < lease_micros) {
      // No lease, or a released one: an upload that has only just claimed the image and is about
      // to take it (or whose node died in between, which an old enough record shows).
      continue;
    }
    // Taking the lease is what makes this safe: the old upload's next renewal, and the one before
    // its commit, fail from now on.
    auto taken = options_.upload_leases->AcquireJobLease(name, options_.node, now,
                                                         now + lease_micros,
                                                         std::numeric_limits<int64_t>::max());
    if (!taken.ok() || taken->holder != options_.node) continue;
    std::string previous = lease.ok() ? lease->holder.value_or("") : "";
    std::string id = image.id;
    RevertToQueued(std::move(image));
    ReleaseUploadLease(id);
    ++reclaimed;
    log::Warn("upload.reclaimed", {{"image", id}, {"node", previous}});
  }
  return reclaimed;
}

void ImageService::StartReclaimingUploads() {
  if (options_.upload_leases == nullptr || reclaimer_.joinable()) return;
  reclaimer_ = std::thread([this] {
    const auto period = std::max<std::chrono::milliseconds>(options_.upload_lease / 2,
                                                            std::chrono::milliseconds(100));
    std::unique_lock lock(reclaim_mu_);
    while (!reclaim_cv_.wait_for(lock, period, [this] { return stopping_; })) {
      lock.unlock();
      auto n = ReclaimAbandonedUploads();
      if (!n.ok()) log::Warn("upload.reclaim_failed", {{"error", n.status().ToString()}});
      lock.lock();
    }
  });
}

Result<Image> ImageService::StreamIn(Image image, store::Store& store, io::Reader& body,
                                     std::optional<uint64_t> content_length, UploadStats* stats,
                                     std::optional<std::string> expected_md5,
                                     std::optional<uint64_t> quota_left) {
  auto started = std::chrono::steady_clock::now();
  const std::string id = image.id;
  IngestOptions opts = ingest_options(image);
  opts.expected_md5 = std::move(expected_md5);
  if (quota_left) opts.size_cap = std::min(opts.size_cap, *quota_left);
  if (options_.upload_leases != nullptr) {
    // Renewed from the reading loop: checked every 64 KiB (at the edge's minimum rate of 1 KiB/s,
    // a minute), renewed once a third of the lease has passed; a renewal the catalog could not
    // answer is tried again a second later, one that found the lease taken over stops the upload.
    // Once more, unconditionally, before the commit: after that the lease cannot run out before
    // the activation below.
    const int64_t third = options_.upload_lease.count() * 1000000 / 3;
    opts.progress_every = 64 << 10;
    opts.progress = [this, id, third, next = Now() + third](uint64_t) mutable -> Status {
      const int64_t now = Now();
      if (now < next) return Status::Ok();
      Status s = RenewUploadLease(id);
      if (s.code() == Code::kConflict) return s;
      next = now + (s.ok() ? third : 1000000);  // an unanswered renewal: again in a second
      return Status::Ok();
    };
    opts.before_commit = [this, id] { return RenewUploadLease(id); };
  }
  INGOT_ASSIGN_OR_RETURN(IngestResult in, Ingest(body, content_length, {&store}, id, opts));
  const uint64_t total = in.bytes;
  std::optional<uint64_t> virtual_size;
  if (in.info) virtual_size = in.info->virtual_size;

  // Record the bytes. Other writers (a PATCH of the name, say) may have saved meanwhile; Mutate
  // re-applies on the fresh record as long as it is still `saving`, ours to activate.
  auto activated = Mutate(std::move(image), [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kFinishUpload));
    im.size = total;
    im.virtual_size = virtual_size;
    im.checksum = in.md5;
    im.os_hash_algo = options_.hash_algo;
    im.os_hash_value = in.hash_value;
    im.locations = {catalog::Location{store.id(), im.id}};
    return Status::Ok();
  });
  if (!activated.ok()) {
    DiscardBytes(store, id);
    if (activated.status().code() == Code::kNotFound) {
      return NotFound("Image " + id +
                      " could not be found after upload. The image may have been deleted during "
                      "the upload.");
    }
    return activated.status();
  }
  if (stats != nullptr) {
    stats->bytes = total;
    stats->micros = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
  }
  return activated;
}

void ImageService::DiscardBytes(store::Store& store, const std::string& key) {
  Status s = store.Delete(key);
  if (!s.ok()) {
    // Harmless for the catalog (no image points at them); the next Repair() sweeps the orphan.
    log::Warn("upload.discard_failed",
              {{"store", store.id()}, {"key", key}, {"error", s.ToString()}});
  }
}

void ImageService::RevertToQueued(Image image) {
  std::string id = image.id;
  auto reverted = Mutate(std::move(image), [](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kAbortUpload));
    im.size.reset();
    im.virtual_size.reset();
    // An os_hash_value without a checksum is the one declared at create: it stays.
    if (im.checksum) {
      im.os_hash_algo.reset();
      im.os_hash_value.reset();
    }
    im.checksum.reset();
    im.locations.clear();
    return Status::Ok();
  });
  Code code = reverted.status().code();
  // Deleted meanwhile, or already moved on by someone else: nothing to put back, and nothing wrong.
  if (reverted.ok() || code == Code::kNotFound || code == Code::kConflict) {
    if (!reverted.ok()) {
      log::Debug("upload.revert_skipped", {{"image", id}, {"why", reverted.status().ToString()}});
    }
    return;
  }
  log::Error("upload.revert_failed", {{"image", id}, {"error", reverted.status().ToString()}});
}

// The location to read: the first preferred store holding a copy, else the heaviest configured
// store.
const catalog::Location* ImageService::ChooseLocation(
    const Image& image, const std::vector<std::string>& prefer) const {
  for (const std::string& want : prefer) {
    for (const auto& loc : image.locations) {
      if (loc.store == want && stores_.Find(loc.store) != nullptr) return &loc;
    }
  }
  const catalog::Location* best = nullptr;
  int best_weight = 0;
  for (const auto& loc : image.locations) {
    if (stores_.Find(loc.store) == nullptr) continue;
    int weight = stores_.WeightOf(loc.store);
    if (best == nullptr || weight > best_weight) {
      best = &loc;
      best_weight = weight;
    }
  }
  return best != nullptr ? best : (image.locations.empty() ? nullptr : &image.locations.front());
}

Result<OpenedData> ImageService::OpenData(const Image& image,
                                          const std::vector<std::string>& prefer) {
  const catalog::Location* chosen = ChooseLocation(image, prefer);
  if (chosen == nullptr || !image.size) {
    return Corruption("Image " + image.id + " has no stored data.");
  }
  const catalog::Location& loc = *chosen;
  auto missing = [&](const std::string& why) {
    ++missing_data_;
    log::Error("image.data_missing", {{"image", image.id}, {"store", loc.store}, {"why", why}});
    return Corruption("The data of image " + image.id + " is missing or damaged in store '" +
                      loc.store + "' (" + why + "); it is not served.");
  };
  // Only an answer from the store that the object is absent (or short) is missing data; a store
  // that cannot answer now (Swift's auth refusing under load, a timeout) is unavailable, which the
  // client may retry (503) and which says nothing about the image.
  auto failed = [&](const Status& s) -> Status {
    if (s.code() == Code::kNotFound) return missing(s.message());
    log::Warn("image.store_unavailable",
              {{"image", image.id}, {"store", loc.store}, {"error", s.ToString()}});
    return Unavailable("Store '" + loc.store + "' cannot serve the data of image " + image.id +
                       " right now; retry later.");
  };
  store::Store* store = stores_.Find(loc.store);
  if (store == nullptr) return missing("the store is not configured");
  auto size = store->SizeOf(loc.key);
  if (!size.ok()) return failed(size.status());
  if (*size != *image.size) {
    return missing("stored " + std::to_string(*size) + " bytes, recorded " +
                   std::to_string(*image.size));
  }
  OpenedData data;
  data.size = *size;
  if (store->capabilities().local_file) {
    auto fd = store->OpenFd(loc.key);
    if (!fd.ok()) return failed(fd.status());
    data.fd = std::move(*fd);
  } else {
    auto src = store->Open(loc.key);
    if (!src.ok()) return failed(src.status());
    data.source = std::move(*src);
  }
  return data;
}

Status ImageService::RemoveFromStore(const Image& image, const std::string& store_id) {
  store::Store* store = stores_.Find(store_id);
  if (store == nullptr) return NotFound("Store for identifier " + store_id + " not found");
  if (stores_.IsReadOnly(store_id)) return PermissionDenied("Store " + store_id + " is read-only");
  std::string key;
  auto updated = Mutate(image, [&](Image& im) -> Status {
    if (im.status() != ImageStatus::kActive) {
      return Conflict(
          "It's not allowed to remove image data from store if image status is not "
          "'active'");
    }
    auto it = std::find_if(im.locations.begin(), im.locations.end(),
                           [&](const catalog::Location& l) { return l.store == store_id; });
    if (it == im.locations.end()) {
      return NotFound("Image " + im.id + " has no data in store " + store_id + ".");
    }
    if (im.locations.size() == 1) {
      return Conflict(
          "Cannot delete image data from the only store containing it. Consider "
          "deleting the image instead.");
    }
    key = it->key;
    im.locations.erase(it);
    return Status::Ok();
  });
  INGOT_RETURN_IF_ERROR(updated.status());
  // The record no longer points at the copy; a failed delete leaves an orphan for Repair().
  DiscardBytes(*store, key);
  return Status::Ok();
}

// ---- Sharing ----

namespace {

Status MemberNotFound(const std::string& member, const std::string& image_id) {
  return NotFound("Member " + member + " not found on image " + image_id + ".");
}

}  // namespace

Result<ImageMember> ImageService::AddMember(const Image& image, const std::string& member) {
  if (image.visibility != catalog::Visibility::kShared) {
    return PermissionDenied("Only shared images have members.");
  }
  INGOT_ASSIGN_OR_RETURN(auto members, repo_.ListMembers(image.id));
  if (static_cast<int64_t>(members.size()) >= options_.member_quota) {
    return TooLarge("Maximum number of image members exceeded (" +
                    std::to_string(options_.member_quota) + ").");
  }
  ImageMember m;
  m.image_id = image.id;
  m.member = member;
  m.created_at = m.updated_at = NowMicros();
  Status s = repo_.AddMember(m);
  if (s.code() == Code::kAlreadyExists) {
    return Conflict("Member " + member + " already exists on image " + image.id + ".");
  }
  if (s.code() == Code::kNotFound) return ImageNotFound(image.id);
  INGOT_RETURN_IF_ERROR(s);
  return m;
}

Result<ImageMember> ImageService::SetMemberStatus(const Image& image, const std::string& member,
                                                  catalog::MemberStatus status) {
  INGOT_ASSIGN_OR_RETURN(ImageMember m, GetMember(image, member));
  m.status = status;
  m.updated_at = NowMicros();
  Status s = repo_.UpdateMember(m);
  if (s.code() == Code::kNotFound) return MemberNotFound(member, image.id);
  INGOT_RETURN_IF_ERROR(s);
  return m;
}

Status ImageService::RemoveMember(const Image& image, const std::string& member) {
  Status s = repo_.RemoveMember(image.id, member);
  if (s.code() == Code::kNotFound) return MemberNotFound(member, image.id);
  return s;
}

Result<ImageMember> ImageService::GetMember(const Image& image, const std::string& member) {
  auto m = repo_.GetMember(image.id, member);
  if (!m.ok() && m.status().code() == Code::kNotFound) return MemberNotFound(member, image.id);
  return m;
}

Result<std::vector<ImageMember>> ImageService::ListMembers(const Image& image) {
  if (image.visibility != catalog::Visibility::kShared) {
    return PermissionDenied("Only shared images have members.");
  }
  return repo_.ListMembers(image.id);
}

// ---- Repair ----

Result<RepairReport> ImageService::Repair() {
  RepairReport report;
  const bool shared = options_.upload_leases != nullptr;
  if (!shared) {
    for (store::Store* store : stores_.stores()) {
      INGOT_ASSIGN_OR_RETURN(int removed, store->RemoveIncomplete());
      report.incomplete_removed += removed;
    }
  }

  // Uploads a crash interrupted: Glance puts them back to queued so the client can upload again.
  // On a shared catalog, only this node's own (another node's may be in flight right now).
  INGOT_ASSIGN_OR_RETURN(auto saving, repo_.ListByStatus({ImageStatus::kSaving}));
  for (auto& image : saving) {
    std::string id = image.id;
    bool ours = false;
    if (shared) {
      auto lease = options_.upload_leases->GetJobLease(UploadLeaseName(id));
      if (lease.ok() && lease->holder && *lease->holder != options_.node) {
        ++report.saving_other_node;
        continue;
      }
      ours = lease.ok() && lease->holder;
    }
    RevertToQueued(std::move(image));
    if (ours) ReleaseUploadLease(id);
    ++report.saving_reset;
    log::Warn("repair.saving_reset", {{"image", id}});
  }
  // Objects no image owns: on a shared catalog another node may be committing one this instant;
  // the scrubber removes them once older than its grace period.
  if (shared) return report;

  // Bytes that no active image owns: an upload that crashed between commit and activation, or a
  // delete that crashed before removing the bytes.
  INGOT_ASSIGN_OR_RETURN(auto live,
                         repo_.ListByStatus({ImageStatus::kActive, ImageStatus::kDeactivated,
                                             ImageStatus::kPendingDelete}));
  std::set<std::pair<std::string, std::string>> owned;  // (store, key)
  for (const auto& image : live) {
    for (const auto& loc : image.locations) owned.emplace(loc.store, loc.key);
  }
  std::set<std::pair<std::string, std::string>> present;
  for (store::Store* store : stores_.stores()) {
    if (store->capabilities().external) continue;
    INGOT_ASSIGN_OR_RETURN(auto keys, store->ListKeys());
    for (const auto& key : keys) {
      if (owned.count({store->id(), key})) {
        present.emplace(store->id(), key);
        continue;
      }
      if (store->Delete(key).ok()) {
        ++report.orphans_removed;
        log::Warn("repair.orphan_removed", {{"store", store->id()}, {"key", key}});
      }
    }
  }
  for (const auto& image : live) {
    for (const auto& loc : image.locations) {
      store::Store* store = stores_.Find(loc.store);
      // Bytes other servers serve (the http store) are theirs to keep; nothing to sweep or check.
      if (store != nullptr && store->capabilities().external) continue;
      auto size = store && present.count({loc.store, loc.key}) ? store->SizeOf(loc.key)
                                                               : Result<uint64_t>(NotFound(""));
      if (!size.ok() || (image.size && *size != *image.size)) {
        report.missing_data.push_back(image.id);
        log::Error("repair.data_missing",
                   {{"image", image.id}, {"store", loc.store}, {"key", loc.key}});
      }
    }
  }
  missing_data_ = static_cast<int64_t>(report.missing_data.size());
  return report;
}

}  // namespace ingot::service
