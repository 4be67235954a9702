#include "service/ingest.h"

#include <memory>

#include "common/log.h"
#include "formats/streaming.h"
#include "io/digest_pipeline.h"

namespace ingot::service {
namespace {

// One target store and the object being written to it; `object` is reset when the store fails.
struct Target {
  store::Store* store;
  std::unique_ptr<store::PendingObject> object;
};

std::string CapMessage(uint64_t cap) {
  return "Image exceeds the storage quota: the limit is " + std::to_string(cap) + " bytes.";
}

}  // namespace

Result<IngestResult> Ingest(io::Reader& body, std::optional<uint64_t> content_length,
                            const std::vector<store::Store*>& stores, const std::string& key,
                            const IngestOptions& options) {
  if (stores.empty()) return Internal("ingest: no target store");
  IngestResult result;
  std::vector<Target> targets;
  for (store::Store* store : stores) {
    auto object = store->Create(key);
    if (!object.ok()) {
      if (!options.tolerate_store_failures) return object.status();
      result.failed.emplace_back(store->id(), object.status());
      continue;
    }
    targets.push_back({store, std::move(*object)});
  }
  auto live = [&] {
    size_t n = 0;
    for (const Target& t : targets) n += t.object != nullptr;
    return n;
  };
  // A store failing: fatal unless failures are tolerated and another store still takes the bytes.
  auto store_failed = [&](Target& t, Status why) -> Status {
    if (!options.tolerate_store_failures) return why;
    log::Warn("ingest.store_failed",
              {{"store", t.store->id()}, {"key", key}, {"error", why.ToString()}});
    result.failed.emplace_back(t.store->id(), std::move(why));
    t.object.reset();  // aborts: nothing left behind
    if (live() == 0) return result.failed.front().second;
    return Status::Ok();
  };
  if (targets.empty()) return result.failed.front().second;

  // Always both slots (MD5, then the multihash) when either is needed: `hex` below is indexed so.
  std::vector<std::string> algos;
  if (options.digests || options.expected_md5 || options.expected_hash) {
    algos = {"md5", options.hash_algo};
  }
  INGOT_ASSIGN_OR_RETURN(
      auto digests, io::DigestPipeline::Start(algos, options.buffer_size, options.buffer_count));
  // Every image is hostile until inspected: the inspector sees the bytes as they pass and keeps
  // only the header regions it needs.
  formats::StreamingInspector inspector;
  uint64_t total = 0;
  uint64_t next_progress = options.progress_every;
  for (;;) {
    std::span<uint8_t> buf = digests->Acquire();
    INGOT_ASSIGN_OR_RETURN(size_t n, body.Read(buf));
    if (n == 0) break;
    total += n;
    if (total > options.size_cap) return TooLarge(CapMessage(options.size_cap));
    // The store writes overlap with both digests of this and earlier buffers.
    for (Target& t : targets) {
      if (!t.object) continue;
      if (Status s = t.object->Write(buf.first(n)); !s.ok()) {
        INGOT_RETURN_IF_ERROR(store_failed(t, std::move(s)));
      }
    }
    (void)inspector.Write(buf.first(n));
    digests->Submit(n);
    if (options.progress && total >= next_progress) {
      INGOT_RETURN_IF_ERROR(options.progress(total));
      next_progress = total + options.progress_every;
    }
  }
  if (content_length && total != *content_length) {
    return InvalidArgument("Upload ended after " + std::to_string(total) + " of " +
                           std::to_string(*content_length) + " bytes.");
  }
  auto info = inspector.Finish();
  if (info.ok()) {
    result.info = std::move(*info);
  } else if (info.status().code() == Code::kRefused) {
    // A trap (backing file, external data file, extents naming other files, two formats at once…):
    // never stored, whatever disk_format the client declared.
    return Refused("Image data was refused by the format safety checks: " +
                   info.status().message());
  } else {
    log::Warn("ingest.inspect_incomplete", {{"key", key}, {"why", info.status().ToString()}});
  }
  std::vector<std::string> hex = digests->Finish();
  hex.resize(2);  // empty where not computed
  if (options.expected_md5 && *options.expected_md5 != hex[0]) {
    return InvalidArgument("The data's MD5 checksum " + hex[0] +
                           " does not match the Content-MD5 the client sent (" +
                           *options.expected_md5 + "); nothing was stored.");
  }
  if (options.expected_hash && *options.expected_hash != hex[1]) {
    return InvalidArgument("The data's " + options.hash_algo + " digest " + hex[1] +
                           " does not match the os_hash_value declared when the image was "
                           "created (" +
                           *options.expected_hash + "); nothing was stored.");
  }
  if (options.progress) INGOT_RETURN_IF_ERROR(options.progress(total));
  if (options.before_commit) INGOT_RETURN_IF_ERROR(options.before_commit());
  for (Target& t : targets) {
    if (!t.object) continue;
    if (Status s = t.object->Commit(); !s.ok()) {
      if (Status fatal = store_failed(t, std::move(s)); !fatal.ok()) {
        // Stores committed before this one must not keep bytes no image will own.
        for (store::Store* done : result.committed) {
          if (Status d = done->Delete(key); !d.ok()) {
            log::Warn("ingest.discard_failed",
                      {{"store", done->id()}, {"key", key}, {"error", d.ToString()}});
          }
        }
        return fatal;
      }
      continue;
    }
    result.committed.push_back(t.store);
  }
  result.bytes = total;
  result.md5 = std::move(hex[0]);
  result.hash_value = std::move(hex[1]);
  return result;
}

}  // namespace ingot::service
