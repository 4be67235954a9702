#include "service/locations.h"

#include <algorithm>
#include <cctype>
#include <memory>

#include "common/log.h"
#include "common/uuid.h"
#include "io/adapters.h"
#include "service/format_match.h"

namespace ingot::service {

using catalog::Image;
using catalog::ImageEvent;
using catalog::ImageStatus;

namespace {

// The ingest pass writes to at least one store; adopting reads bytes that are already stored, so
// its only "target" is this one, which keeps nothing. Never added to a StoreSet.
class DigestOnlyStore final : public store::Store {
 public:
  const std::string& id() const override { return id_; }
  store::Capabilities capabilities() const override { return {.random_read = false}; }
  Result<std::unique_ptr<store::PendingObject>> Create(const std::string&) override {
    return std::unique_ptr<store::PendingObject>(new Discard());
  }
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string&) override { return None(); }
  Result<io::UniqueFd> OpenFd(const std::string&) override { return None(); }
  Result<uint64_t> SizeOf(const std::string&) override { return None(); }
  Status Delete(const std::string&) override { return Status::Ok(); }
  Result<int> RemoveIncomplete() override { return 0; }
  Result<std::vector<std::string>> ListKeys() override { return std::vector<std::string>(); }

 private:
  class Discard final : public store::PendingObject {
   public:
    Status Write(std::span<const uint8_t> data) override {
      written_ += data.size();
      return Status::Ok();
    }
    Status Commit() override { return Status::Ok(); }
    uint64_t bytes_written() const override { return written_; }

   private:
    uint64_t written_ = 0;
  };
  static Status None() { return Unsupported("the digest-only target holds nothing"); }

  const std::string id_ = "digest-only";
};

// Hex digits per algorithm Glance's location schema names.
std::optional<size_t> HexLength(const std::string& algo) {
  if (algo == "md5") return 32;
  if (algo == "sha1") return 40;
  if (algo == "sha256") return 64;
  if (algo == "sha512") return 128;
  return std::nullopt;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Glance's _validate_hashing_data, and the one limit of a single pass: the hash must be one of the
// two it computes.
Status CheckValidationData(const ValidationData& v, const std::string& hash_algo) {
  auto want = HexLength(v.os_hash_algo);
  if (!want) {
    return InvalidArgument("os_hash_algo must be one of sha1, sha256, sha512, md5, not '" +
                           v.os_hash_algo + "'.");
  }
  const bool hex = !v.os_hash_value.empty() &&
                   std::all_of(v.os_hash_value.begin(), v.os_hash_value.end(),
                               [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (!hex || v.os_hash_value.size() % 2 != 0) {
    return InvalidArgument("os_hash_value (" + v.os_hash_value +
                           ") is not a valid hexadecimal value");
  }
  if (v.os_hash_value.size() != *want) {
    return InvalidArgument("os_hash_value: (" + v.os_hash_value +
                           ") is not the correct size for (" + v.os_hash_algo + ") (should be (" +
                           std::to_string(*want / 2) + ") bytes)");
  }
  if (v.os_hash_algo != hash_algo && v.os_hash_algo != "md5") {
    return InvalidArgument("os_hash_algo must be " + hash_algo +
                           " (this service's hashing algorithm) or md5, not " + v.os_hash_algo +
                           ".");
  }
  return Status::Ok();
}

}  // namespace

Result<std::pair<store::Store*, std::string>> LocationService::Resolve(
    const std::string& url) const {
  if (url.empty()) return InvalidArgument("The location URL is empty.");
  for (store::Store* store : images_.stores().stores()) {
    auto key = store->KeyOfUrl(url);
    if (!key.ok()) {
      if (key.status().code() == Code::kNotFound) {
        return InvalidArgument("The location " + url +
                               " names no object: " + key.status().message());
      }
      if (key.status().code() == Code::kInvalidArgument) {
        return InvalidArgument("The location " + url + " is refused: " + key.status().message());
      }
      return key.status();  // a server fault (logged, never shown)
    }
    if (*key) return std::make_pair(store, std::move(**key));
  }
  return InvalidArgument("The location " + url +
                         " does not point into any of this service's stores (a file store takes "
                         "file://<its directory>/<object>).");
}

Status LocationService::CheckUnowned(const std::string& image_id, const store::Store& store,
                                     const std::string& key) {
  // A key that is some other image's id is where that image's own upload or import will write.
  if (IsUuid(key) && CanonicalUuid(key) != image_id) {
    auto named = images_.repo_.Get(CanonicalUuid(key));
    if (named.ok() || named.status().code() != Code::kNotFound) {
      if (!named.ok()) return named.status();
      return InvalidArgument("The object the location names belongs to another image.");
    }
  }
  // Every record that can hold a location. A scan: adopting is rare next to reading, and the
  // catalog has no index by location yet.
  INGOT_ASSIGN_OR_RETURN(auto images, images_.repo_.ListByStatus(
                                          {ImageStatus::kQueued, ImageStatus::kSaving,
                                           ImageStatus::kActive, ImageStatus::kKilled,
                                           ImageStatus::kPendingDelete, ImageStatus::kDeactivated,
                                           ImageStatus::kUploading, ImageStatus::kImporting}));
  for (const Image& im : images) {
    if (im.id == image_id) continue;
    for (const auto& loc : im.locations) {
      if (loc.store == store.id() && loc.key == key) {
        return InvalidArgument("The object the location names belongs to another image.");
      }
    }
  }
  return Status::Ok();
}

Result<Image> LocationService::Add(const Image& image, const AddLocationRequest& request) {
  if (image.status() != ImageStatus::kQueued) {
    return Conflict("It's not allowed to add locations if image status is " +
                    std::string(catalog::StatusName(image.status())) + ".");
  }
  if (!image.disk_format || !image.container_format) {
    return InvalidArgument(
        "Properties disk_format, container_format must be set prior to saving data.");
  }
  std::optional<ValidationData> validation = request.validation;
  if (validation) {
    validation->os_hash_algo = Lower(validation->os_hash_algo);
    validation->os_hash_value = Lower(validation->os_hash_value);
    INGOT_RETURN_IF_ERROR(CheckValidationData(*validation, images_.options().hash_algo));
  }
  INGOT_ASSIGN_OR_RETURN(auto target, Resolve(request.url));
  auto& [store, key] = target;

  // One adoption of an object at a time, so two images cannot both pass the ownership check.
  const std::pair<std::string, std::string> claim{store->id(), key};
  {
    std::lock_guard lock(mu_);
    if (!adopting_.insert(claim).second) {
      return Conflict(
          "The object the location names is being added to an image by another "
          "request.");
    }
  }
  struct Release {
    LocationService* self;
    const std::pair<std::string, std::string>& claim;
    ~Release() {
      std::lock_guard lock(self->mu_);
      self->adopting_.erase(claim);
    }
  } release{this, claim};

  INGOT_RETURN_IF_ERROR(CheckUnowned(image.id, *store, key));

  // Claim the image (queued -> saving), as an upload does; a concurrent upload or import loses.
  auto claimed = images_.Mutate(image, [](Image& im) -> Status {
    if (im.status() != ImageStatus::kQueued) {
      return Conflict("It's not allowed to add locations if image status is " +
                      std::string(catalog::StatusName(im.status())) + ".");
    }
    return Transition(im, ImageEvent::kStartUpload);
  });
  INGOT_RETURN_IF_ERROR(claimed.status());
  auto adopted = Adopt(*claimed, *store, key, validation);
  if (!adopted.ok() && adopted.status().code() != Code::kNotFound) {
    images_.RevertToQueued(*claimed);
  }
  return adopted;
}

Result<Image> LocationService::Adopt(Image claimed, store::Store& store, const std::string& key,
                                     const std::optional<ValidationData>& validation) {
  // Synchronous and streaming (see locations.h): the object is read once, through the ingest
  // buffers, into a target that keeps nothing.
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<io::ByteSource> source, store.Open(key));
  const uint64_t length = source->Size();
  io::SourceReader reader(std::move(source));
  DigestOnlyStore digest_only;
  // With the image's own declared hash, if its creator gave one, checked as an upload checks it.
  IngestOptions opts = images_.ingest_options(claimed);
  INGOT_ASSIGN_OR_RETURN(IngestResult in, Ingest(reader, length, {&digest_only}, claimed.id, opts));

  if (options_.require_image_format_match) {
    INGOT_RETURN_IF_ERROR(CheckDiskFormatMatch(claimed, in.info));
  }
  if (validation) {
    const std::string& actual = validation->os_hash_algo == "md5" ? in.md5 : in.hash_value;
    if (validation->os_hash_value != actual) {
      // Glance's _VerifyValidationData text.
      return InvalidArgument("os_hash_value: (" + validation->os_hash_value +
                             ") not matched with actual os_hash_value: (" + actual + ")");
    }
  }
  std::optional<uint64_t> virtual_size;
  if (in.info) virtual_size = in.info->virtual_size;
  const std::string hash_algo = images_.options().hash_algo;
  const std::string id = claimed.id;
  auto activated = images_.Mutate(std::move(claimed), [&](Image& im) -> Status {
    INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kFinishUpload));
    im.size = in.bytes;
    im.virtual_size = virtual_size;
    im.checksum = in.md5;
    im.os_hash_algo = hash_algo;
    im.os_hash_value = in.hash_value;
    im.locations = {catalog::Location{store.id(), key}};
    return Status::Ok();
  });
  if (!activated.ok() && activated.status().code() == Code::kNotFound) {
    return NotFound("Image " + id +
                    " could not be found after its location was read. The image may have been "
                    "deleted meanwhile.");
  }
  if (activated.ok()) {
    log::Info("location.added",
              {{"image", activated->id}, {"store", store.id()}, {"key", key}, {"bytes", in.bytes}});
  }
  return activated;
}

std::vector<LocationView> LocationService::List(const Image& image) const {
  std::vector<LocationView> out;
  for (const auto& loc : image.locations) {
    const store::Store* store = images_.stores().Find(loc.store);
    LocationView v;
    v.url = store != nullptr ? store->UrlOf(loc.key) : loc.store + "://" + loc.key;
    v.metadata["store"] = loc.store;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace ingot::service
