#include "service/image_service.h"

#include <chrono>
#include <set>

#include "common/log.h"
#include "common/time.h"
#include "formats/streaming.h"
#include "io/digest_pipeline.h"

namespace ingot::service {

using catalog::Image;
using catalog::ImageStatus;

namespace {

std::string TransitionRefused(ImageStatus from, ImageStatus to) {
  return "Image status transition from " + std::string(catalog::StatusName(from)) + " to " +
         std::string(catalog::StatusName(to)) + " is not allowed";
}

constexpr int kSaveRetries = 8;

}  // namespace

ImageService::ImageService(catalog::ImageRepository& repo, store::Store& store,
                           ImageServiceOptions options)
    : repo_(repo), store_(store), options_(std::move(options)) {}

Result<Image> ImageService::Upload(const std::string& id, io::Reader& body,
                                   std::optional<uint64_t> content_length, UploadStats* stats) {
  INGOT_ASSIGN_OR_RETURN(Image image, repo_.Get(id));
  if (image.status != ImageStatus::kQueued) {
    return Conflict(TransitionRefused(image.status, ImageStatus::kSaving));
  }
  if (!image.disk_format || !image.container_format) {
    return InvalidArgument(
        "Properties disk_format, container_format must be set prior to saving data.");
  }
  if (content_length && *content_length > options_.size_cap) {
    return TooLarge("Image exceeds the storage quota: the upload is " +
                    std::to_string(*content_length) + " bytes, the limit is " +
                    std::to_string(options_.size_cap) + " bytes.");
  }
  // Claim the image: queued -> saving. A concurrent upload loses here with kConflict.
  image.status = ImageStatus::kSaving;
  image.updated_at = NowMicros();
  Status claimed = repo_.Save(image);
  if (claimed.code() == Code::kConflict) {
    return Conflict("Image " + id + " is being changed by another request; retry.");
  }
  INGOT_RETURN_IF_ERROR(claimed);
  ++image.version;

  auto result = StreamIn(std::move(image), body, content_length, stats);
  if (!result.ok() && result.status().code() != Code::kNotFound) RevertToQueued(id);
  return result;
}

Result<Image> ImageService::StreamIn(Image image, io::Reader& body,
                                     std::optional<uint64_t> content_length, UploadStats* stats) {
  auto started = std::chrono::steady_clock::now();
  INGOT_ASSIGN_OR_RETURN(auto object, store_.Create(image.id));
  INGOT_ASSIGN_OR_RETURN(auto digests,
                         io::DigestPipeline::Start({"md5", options_.hash_algo},
                                                   options_.buffer_size, options_.buffer_count));
  // Every image is hostile until inspected: the inspector sees the bytes as they pass and keeps only
  // the header regions it needs.
  formats::StreamingInspector inspector;
  uint64_t total = 0;
  for (;;) {
    std::span<uint8_t> buf = digests->Acquire();
    INGOT_ASSIGN_OR_RETURN(size_t n, body.Read(buf));
    if (n == 0) break;
    total += n;
    if (total > options_.size_cap) {
      return TooLarge("Image exceeds the storage quota: the limit is " +
                      std::to_string(options_.size_cap) + " bytes.");
    }
    // The store write overlaps with both digests of this and earlier buffers.
    INGOT_RETURN_IF_ERROR(object->Write(buf.first(n)));
    INGOT_RETURN_IF_ERROR(inspector.Write(buf.first(n)));
    digests->Submit(n);
  }
  if (content_length && total != *content_length) {
    return InvalidArgument("Upload ended after " + std::to_string(total) + " of " +
                           std::to_string(*content_length) + " bytes.");
  }
  std::optional<uint64_t> virtual_size;
  auto info = inspector.Finish();
  if (info.ok()) {
    virtual_size = info->virtual_size;
  } else if (info.status().code() == Code::kRefused) {
    // A trap (backing file, external data file, extents naming other files, two formats at once…):
    // never stored, whatever disk_format the client declared.
    return Refused("Image data was refused by the format safety checks: " +
                   info.status().message());
  } else {
    log::Warn("upload.inspect_incomplete", {{"image", image.id}, {"why", info.status().ToString()}});
  }
  std::vector<std::string> hex = digests->Finish();
  INGOT_RETURN_IF_ERROR(object->Commit());  // durable from here on

  // Record the bytes. Other writers (a PATCH of the name, say) may have saved meanwhile: re-read and
  // re-apply until our save wins, as long as the image is still ours to activate.
  for (int attempt = 0; attempt < kSaveRetries; ++attempt) {
    if (attempt > 0) {
      auto fresh = repo_.Get(image.id);
      if (!fresh.ok()) {
        DiscardBytes(image.id);  // deleted during the upload: its bytes must not linger
        return fresh.status().code() == Code::kNotFound
                   ? NotFound("Image " + image.id +
                              " could not be found after upload. The image may have been deleted "
                              "during the upload.")
                   : fresh.status();
      }
      image = std::move(*fresh);
      if (image.status != ImageStatus::kSaving) {
        DiscardBytes(image.id);
        return Conflict(TransitionRefused(image.status, ImageStatus::kActive));
      }
    }
    image.status = ImageStatus::kActive;
    image.size = total;
    image.virtual_size = virtual_size;
    image.checksum = hex[0];
    image.os_hash_algo = options_.hash_algo;
    image.os_hash_value = hex[1];
    image.locations = {catalog::Location{store_.id(), image.id}};
    image.updated_at = NowMicros();
    Status saved = repo_.Save(image);
    if (saved.ok()) {
      ++image.version;
      if (stats != nullptr) {
        stats->bytes = total;
        stats->micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
      }
      return image;
    }
    if (saved.code() != Code::kConflict && saved.code() != Code::kNotFound) {
      DiscardBytes(image.id);
      return saved;
    }
  }
  DiscardBytes(image.id);
  return Conflict("Image " + image.id + " kept changing during the upload; retry.");
}

void ImageService::DiscardBytes(const std::string& key) {
  Status s = store_.Delete(key);
  if (!s.ok()) {
    // Harmless for the catalog (no image points at them); the next Repair() sweeps the orphan.
    log::Warn("upload.discard_failed", {{"key", key}, {"error", s.ToString()}});
  }
}

void ImageService::RevertToQueued(const std::string& id) {
  for (int attempt = 0; attempt < kSaveRetries; ++attempt) {
    auto image = repo_.Get(id);
    if (!image.ok() || image->status != ImageStatus::kSaving) return;
    image->status = ImageStatus::kQueued;
    image->size.reset();
    image->virtual_size.reset();
    image->checksum.reset();
    image->os_hash_algo.reset();
    image->os_hash_value.reset();
    image->locations.clear();
    image->updated_at = NowMicros();
    Status s = repo_.Save(*image);
    if (s.ok()) return;
    if (s.code() != Code::kConflict) {
      log::Error("upload.revert_failed", {{"image", id}, {"error", s.ToString()}});
      return;
    }
  }
}

Result<OpenedData> ImageService::OpenData(const Image& image) {
  if (image.locations.empty() || !image.size) {
    return Corruption("Image " + image.id + " has no stored data.");
  }
  const std::string& key = image.locations.front().key;
  auto missing = [&](const std::string& why) {
    ++missing_data_;
    log::Error("image.data_missing", {{"image", image.id}, {"why", why}});
    return Corruption("The data of image " + image.id + " is missing or damaged in store '" +
                      store_.id() + "' (" + why + "); it is not served.");
  };
  auto size = store_.SizeOf(key);
  if (!size.ok()) return missing(size.status().message());
  if (*size != *image.size) {
    return missing("stored " + std::to_string(*size) + " bytes, recorded " +
                   std::to_string(*image.size));
  }
  OpenedData data;
  data.size = *size;
  if (store_.capabilities().local_file) {
    auto fd = store_.OpenFd(key);
    if (!fd.ok()) return missing(fd.status().message());
    data.fd = std::move(*fd);
  } else {
    auto src = store_.Open(key);
    if (!src.ok()) return missing(src.status().message());
    data.source = std::move(*src);
  }
  return data;
}

Status ImageService::Delete(const Image& image) {
  if (image.is_protected) {
    return PermissionDenied("Image " + image.id + " is protected and cannot be deleted.");
  }
  INGOT_RETURN_IF_ERROR(repo_.Remove(image.id));
  for (const auto& loc : image.locations) {
    Status s = store_.Delete(loc.key);
    if (!s.ok()) {
      // The record is gone; the orphan is swept by the next Repair().
      log::Warn("image.delete_data_failed", {{"image", image.id}, {"error", s.ToString()}});
    }
  }
  return Status::Ok();
}

Result<RepairReport> ImageService::Repair() {
  RepairReport report;
  INGOT_ASSIGN_OR_RETURN(report.incomplete_removed, store_.RemoveIncomplete());

  // Uploads a crash interrupted: Glance puts them back to queued so the client can upload again.
  INGOT_ASSIGN_OR_RETURN(auto saving, repo_.ListByStatus({ImageStatus::kSaving}));
  for (auto& image : saving) {
    RevertToQueued(image.id);
    ++report.saving_reset;
    log::Warn("repair.saving_reset", {{"image", image.id}});
  }

  // Bytes that no active image owns: an upload that crashed between commit and activation, or a
  // delete that crashed before removing the bytes.
  INGOT_ASSIGN_OR_RETURN(auto live,
                         repo_.ListByStatus({ImageStatus::kActive, ImageStatus::kDeactivated,
                                             ImageStatus::kPendingDelete}));
  std::set<std::string> owned;
  for (const auto& image : live) {
    for (const auto& loc : image.locations) {
      if (loc.store == store_.id()) owned.insert(loc.key);
    }
  }
  INGOT_ASSIGN_OR_RETURN(auto keys, store_.ListKeys());
  std::set<std::string> present(keys.begin(), keys.end());
  for (const auto& key : keys) {
    if (owned.count(key)) continue;
    if (store_.Delete(key).ok()) {
      ++report.orphans_removed;
      log::Warn("repair.orphan_removed", {{"store", store_.id()}, {"key", key}});
    }
  }
  for (const auto& image : live) {
    for (const auto& loc : image.locations) {
      if (loc.store != store_.id()) continue;
      auto size = present.count(loc.key) ? store_.SizeOf(loc.key) : Result<uint64_t>(NotFound(""));
      if (!size.ok() || (image.size && *size != *image.size)) {
        report.missing_data.push_back(image.id);
        log::Error("repair.data_missing", {{"image", image.id}, {"key", loc.key}});
      }
    }
  }
  missing_data_ = static_cast<int64_t>(report.missing_data.size());
  return report;
}

}  // namespace ingot::service
