#include "service/locations.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>

#include "common/log.h"
#include "common/uuid.h"
#include "io/adapters.h"
#include "io/hash.h"
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

// A location's metadata with "store" set to the store holding it.
boost::json::object WithStore(boost::json::object metadata, const std::string& store) {
  metadata["store"] = store;
  return metadata;
}

// A stored location's metadata: what was given with it (a JSON object's text; uploads and imports
// store none), with "store".
boost::json::object MetadataOf(const catalog::Location& loc) {
  boost::json::object metadata;
  if (!loc.metadata.empty()) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(loc.metadata, ec);
    if (!ec && v.is_object()) metadata = std::move(v.as_object());
  }
  return WithStore(std::move(metadata), loc.store);
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

std::string LocationService::UrlOfLocation(const catalog::Location& loc) const {
  const store::Store* store = images_.stores().Find(loc.store);
  return store != nullptr ? store->UrlOf(loc.key) : loc.store + "://" + loc.key;
}

std::vector<LocationView> LocationService::List(const Image& image) const {
  std::vector<LocationView> out;
  for (const auto& loc : image.locations) {
    LocationView v;
    v.url = UrlOfLocation(loc);
    v.metadata = MetadataOf(loc);
    out.push_back(std::move(v));
  }
  return out;
}

// ---- Glance's multiple-locations API ----

Result<LocationService::Resolved> LocationService::ResolveForPatch(const std::string& image_id,
                                                                   const std::string& url) {
  auto invalid = [&](const std::string& why) {
    return InvalidArgument("Invalid location: " + url + " (" + why + ")");
  };
  if (url.empty()) return invalid("empty");
  for (store::Store* store : images_.stores().stores()) {
    auto key = store->KeyOfUrl(url);
    if (!key.ok()) {
      if (key.status().code() == Code::kNotFound) return invalid("no such object");
      if (key.status().code() == Code::kInvalidArgument) return invalid(key.status().message());
      return key.status();  // a server fault
    }
    if (!*key) continue;
    // Glance's RESTRICTED_URI_SCHEMAS: files of this host (file://) and swift+config, which
    // names credentials of the server's configuration.
    std::string scheme = Lower(url.substr(0, url.find(':')));
    if (store->capabilities().local_file || scheme == "file" || scheme == "filesystem" ||
        scheme == "swift+config") {
      return invalid("this scheme may not be added as a location");
    }
    auto size = store->SizeOf(**key);
    if (!size.ok()) {
      switch (size.status().code()) {
        case Code::kNotFound:
        case Code::kInvalidArgument:
        case Code::kRefused:
        case Code::kUnavailable:
          return invalid(size.status().message());
        default:
          return size.status();
      }
    }
    if (*size == 0) return invalid("the store reports no data there");  // Glance: size > 0
    if (*size > images_.options().size_cap) {
      return TooLarge("Image size " + std::to_string(*size) + " exceeds the cap of " +
                      std::to_string(images_.options().size_cap) + " bytes.");
    }
    // An object of our own stores may be deleted with the location: it must be no other image's.
    if (!store->capabilities().external) {
      INGOT_RETURN_IF_ERROR(CheckUnowned(image_id, *store, **key));
    }
    return Resolved{store, std::move(**key), *size};
  }
  return invalid("no configured store serves this URL");
}

namespace {

// Glance's _get_locations_op_pos: "-" is the end (add) or the last (remove); a decimal index
// must be in range (0..n for add, 0..n-1 for remove).
std::optional<size_t> OpPosition(const std::string& position, size_t count, bool allow_end) {
  if (position == "-") {
    if (allow_end) return count;
    if (count == 0) return std::nullopt;
    return count - 1;
  }
  if (position.empty() || position.size() > 9 ||
      !std::all_of(position.begin(), position.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  size_t pos = std::stoul(position);
  if (allow_end ? pos > count : pos >= count) return std::nullopt;
  return pos;
}

std::optional<std::string> ImageValue(const Image& im, const std::string& key) {
  if (key == "checksum") return im.checksum;
  if (key == "os_hash_algo") return im.os_hash_algo;
  return im.os_hash_value;
}

bool IsHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

// Glance's _validate_validation_data over the locations of one operation: the values that are
// new to the image (empty when every value given is already the image's).
Result<std::map<std::string, std::string>> NewValidationValues(
    const Image& im, const std::vector<LocationSpec>& specs, const std::string& hash_algo) {
  std::map<std::string, std::string> given;
  for (const LocationSpec& spec : specs) {
    if (!spec.validation) continue;
    std::vector<std::pair<std::string, std::string>> values = {
        {"os_hash_algo", spec.validation->os_hash_algo},
        {"os_hash_value", spec.validation->os_hash_value}};
    if (spec.validation->checksum) values.emplace_back("checksum", *spec.validation->checksum);
    for (auto& [k, v] : values) {
      auto [it, inserted] = given.emplace(k, v);
      if (!inserted && it->second != v) return Conflict("Conflicting values for " + k);
    }
  }
  std::map<std::string, std::string> fresh;
  for (const auto& [k, v] : given) {
    std::optional<std::string> current = ImageValue(im, k);
    if (current && *current == v) continue;
    if (current && !current->empty()) return Conflict(k + " is already set with a different value");
    fresh.emplace(k, v);
  }
  if (fresh.empty()) return fresh;
  if (im.status() != ImageStatus::kQueued) {
    std::string keys;
    for (const auto& [k, v] : fresh) keys += (keys.empty() ? "" : ", ") + k;
    return Conflict("New value(s) for " + keys +
                    " may only be provided when image status is 'queued'");
  }
  if (auto c = fresh.find("checksum"); c != fresh.end()) {
    if (!IsHex(c->second) || c->second.size() % 2 != 0) {
      return Conflict("checksum (" + c->second + ") is not a valid hexadecimal value");
    }
    if (c->second.size() != 32) {
      return Conflict("checksum (" + c->second +
                      ") is not the correct size for md5 (should be 16 bytes)");
    }
  }
  auto algo = fresh.find("os_hash_algo");
  const std::string got = algo == fresh.end() ? "None" : algo->second;
  if (got != hash_algo) return Conflict("os_hash_algo must be " + hash_algo + ", not " + got);
  if (auto v = fresh.find("os_hash_value"); v != fresh.end()) {
    if (!IsHex(v->second) || v->second.size() % 2 != 0) {
      return Conflict("os_hash_value (" + v->second + ") is not a valid hexadecimal value");
    }
    // The hex length of the configured algorithm's digest (sha384 too), from the digest itself.
    INGOT_ASSIGN_OR_RETURN(std::string empty, io::HexDigestOf(hash_algo, {}));
    const size_t want = empty.size();
    if (v->second.size() != want) {
      return Conflict("os_hash_value (" + v->second + ") is not the correct size for " + hash_algo +
                      " (should be " + std::to_string(want / 2) + " bytes)");
    }
  }
  return fresh;
}

// The image's first location turns a queued image active (Glance: queued -> active at once; here
// through the upload's two moves in one save, so the table's rules still decide).
Status ActivateWith(Image& im, const std::map<std::string, std::string>& values) {
  if (im.status() != ImageStatus::kQueued) return Status::Ok();
  for (const auto& [k, v] : values) {
    if (k == "checksum") im.checksum = v;
    if (k == "os_hash_algo") im.os_hash_algo = v;
    if (k == "os_hash_value") im.os_hash_value = v;
  }
  INGOT_RETURN_IF_ERROR(Transition(im, ImageEvent::kStartUpload));
  return Transition(im, ImageEvent::kFinishUpload);
}

}  // namespace

Status LocationService::ApplyLocationOp(Image& im, const LocationOp& op,
                                        const std::map<std::string, Resolved>& resolved,
                                        std::vector<catalog::Location>& removed) const {
  const std::string status(catalog::StatusName(im.status()));
  const std::string& hash_algo = images_.options().hash_algo;
  // A location as stored: its store and key, and the metadata given with "store" set to it.
  auto stored = [&](const LocationSpec& spec) -> Result<catalog::Location> {
    auto r = resolved.find(spec.url);
    if (r == resolved.end()) {
      return Conflict("Image " + im.id + " changed while its locations were checked; retry.");
    }
    boost::json::object metadata = spec.metadata;
    metadata["store"] = r->second.store->id();
    return catalog::Location{r->second.store->id(), r->second.key,
                             boost::json::serialize(metadata)};
  };
  auto same = [&](const catalog::Location& loc, const LocationSpec& spec) {
    return UrlOfLocation(loc) == spec.url && MetadataOf(loc) == WithStore(spec.metadata, loc.store);
  };
  auto set_size = [&](const LocationSpec& spec) {
    if (!im.size) im.size = resolved.at(spec.url).size;
  };

  switch (op.kind) {
    case LocationOp::Kind::kAdd: {
      if (!options_.show_multiple_locations) {
        return PermissionDenied("It's not allowed to add locations if locations are invisible.");
      }
      if (im.status() != ImageStatus::kActive && im.status() != ImageStatus::kQueued) {
        return Conflict("It's not allowed to add locations if image status is " + status + ".");
      }
      if (op.locations.size() != 1) return InvalidArgument("Add takes one location.");
      const LocationSpec& spec = op.locations.front();
      INGOT_ASSIGN_OR_RETURN(auto values, NewValidationValues(im, op.locations, hash_algo));
      auto pos = OpPosition(op.position, im.locations.size(), /*allow_end=*/true);
      if (!pos) return InvalidArgument("Invalid position for adding a location.");
      INGOT_ASSIGN_OR_RETURN(catalog::Location loc, stored(spec));
      for (const auto& existing : im.locations) {
        if (same(existing, spec)) {
          return InvalidArgument("The location " + spec.url + " already exists");
        }
      }
      im.locations.insert(im.locations.begin() + static_cast<std::ptrdiff_t>(*pos), std::move(loc));
      set_size(spec);
      return ActivateWith(im, values);
    }
    case LocationOp::Kind::kReplace: {
      if (op.locations.empty()) return PermissionDenied("Cannot set locations to empty list.");
      if (!options_.show_multiple_locations) {
        return PermissionDenied("It's not allowed to update locations if locations are invisible.");
      }
      if (im.status() != ImageStatus::kActive && im.status() != ImageStatus::kQueued) {
        return Conflict("It's not allowed to replace locations if image status is " + status + ".");
      }
      INGOT_ASSIGN_OR_RETURN(auto values, NewValidationValues(im, op.locations, hash_algo));
      std::vector<std::string> before, after;
      for (const auto& loc : im.locations) before.push_back(UrlOfLocation(loc));
      for (const auto& spec : op.locations) after.push_back(spec.url);
      std::vector<std::string> sorted_before = before, sorted_after = after;
      std::sort(sorted_before.begin(), sorted_before.end());
      std::sort(sorted_after.begin(), sorted_after.end());
      if (sorted_before == sorted_after) {
        // The same URLs: only the metadata (and the order) may change; nothing is re-checked.
        std::vector<catalog::Location> pool = im.locations, next;
        for (const auto& spec : op.locations) {
          auto it = std::find_if(pool.begin(), pool.end(), [&](const catalog::Location& l) {
            return UrlOfLocation(l) == spec.url;
          });
          catalog::Location loc = *it;
          pool.erase(it);
          loc.metadata = boost::json::serialize(WithStore(spec.metadata, loc.store));
          next.push_back(std::move(loc));
        }
        im.locations = std::move(next);
        return ActivateWith(im, values);
      }
      if (!im.locations.empty()) {
        std::string shown;
        for (const auto& url : before) shown += (shown.empty() ? "" : ", ") + url;
        return InvalidArgument("Original locations is not empty: [" + shown + "]");
      }
      std::vector<catalog::Location> next;
      for (size_t i = 0; i < op.locations.size(); ++i) {
        INGOT_ASSIGN_OR_RETURN(catalog::Location loc, stored(op.locations[i]));
        for (size_t j = 0; j < i; ++j) {
          if (op.locations[j].url == op.locations[i].url &&
              WithStore(op.locations[j].metadata, loc.store) ==
                  WithStore(op.locations[i].metadata, loc.store)) {
            return InvalidArgument("The location " + op.locations[i].url + " already exists");
          }
        }
        next.push_back(std::move(loc));
      }
      im.locations = std::move(next);
      for (const auto& spec : op.locations) set_size(spec);
      return ActivateWith(im, values);
    }
    case LocationOp::Kind::kRemove: {
      if (!options_.show_multiple_locations) {
        return PermissionDenied("It's not allowed to remove locations if locations are invisible.");
      }
      if (im.status() != ImageStatus::kActive) {
        return Conflict("It's not allowed to remove locations if image status is " + status + ".");
      }
      if (im.locations.size() == 1) {
        return PermissionDenied("Cannot remove last location in the image.");
      }
      auto pos = OpPosition(op.position, im.locations.size(), /*allow_end=*/false);
      if (!pos) return InvalidArgument("Invalid position for removing a location.");
      removed.push_back(im.locations[*pos]);
      im.locations.erase(im.locations.begin() + static_cast<std::ptrdiff_t>(*pos));
      return Status::Ok();
    }
  }
  return Internal("unknown location operation");
}

Result<Image> LocationService::Patch(const Image& image, const std::vector<PatchStep>& steps) {
  // Every URL an add or replace may store is checked first, outside the save: the store is asked
  // for its size (a request to another server for the http store). URLs already on the image are
  // not: a replace that keeps them only edits their metadata, as Glance's does.
  std::map<std::string, Resolved> resolved;
  std::set<std::string> current;
  for (const auto& loc : image.locations) current.insert(UrlOfLocation(loc));
  bool any_invisible = false;
  for (const PatchStep& step : steps) {
    if (!step.location) continue;
    if (!options_.show_multiple_locations) any_invisible = true;
    const LocationOp& op = *step.location;
    if (op.kind == LocationOp::Kind::kRemove) continue;
    if (op.kind == LocationOp::Kind::kReplace) {
      bool same_urls = op.locations.size() == current.size();
      for (const auto& spec : op.locations) same_urls = same_urls && current.count(spec.url) > 0;
      if (same_urls || !image.locations.empty()) continue;  // nothing new is stored
    }
    // The op's own refusals that need no store come first (status, empty list, visibility).
    if (any_invisible) break;
    if (image.status() != ImageStatus::kActive && image.status() != ImageStatus::kQueued) break;
    for (const auto& spec : op.locations) {
      if (resolved.count(spec.url)) continue;
      INGOT_ASSIGN_OR_RETURN(Resolved r, ResolveForPatch(image.id, spec.url));
      resolved.emplace(spec.url, std::move(r));
    }
  }

  std::vector<catalog::Location> removed;
  auto saved = images_.Mutate(image, [&](Image& im) -> Status {
    removed.clear();
    for (const PatchStep& step : steps) {
      if (step.location) {
        INGOT_RETURN_IF_ERROR(ApplyLocationOp(im, *step.location, resolved, removed));
        continue;
      }
      const ImageStatus before = im.status();
      INGOT_RETURN_IF_ERROR(step.attributes(im));
      if (im.status() != before) return Internal("an attribute change moved the image's status");
    }
    return Status::Ok();
  });
  INGOT_RETURN_IF_ERROR(saved.status());
  // The removed locations' objects, unless the image still names them (Glance deletes the data of
  // a removed location from its store).
  for (const auto& gone : removed) {
    bool still = std::any_of(
        saved->locations.begin(), saved->locations.end(),
        [&](const catalog::Location& l) { return l.store == gone.store && l.key == gone.key; });
    store::Store* store = images_.stores().Find(gone.store);
    if (still || store == nullptr || store->capabilities().external) continue;
    images_.DiscardBytes(*store, gone.key);
  }
  log::Info("locations.patched", {{"image", saved->id},
                                  {"locations", static_cast<uint64_t>(saved->locations.size())},
                                  {"status", std::string(catalog::StatusName(saved->status()))}});
  return saved;
}

}  // namespace ingot::service
