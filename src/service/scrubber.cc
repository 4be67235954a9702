#include "service/scrubber.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "common/log.h"
#include "common/time.h"
#include "io/hash.h"

namespace ingot::service {

using catalog::Image;
using catalog::ImageStatus;

namespace {

// Every status an image can own bytes in (all but deleted): a queued image may hold a location
// adopted through the locations API, an importing one the copies already made.
const std::vector<ImageStatus> kLiveStatuses = {
    ImageStatus::kQueued,    ImageStatus::kSaving,        ImageStatus::kActive,
    ImageStatus::kKilled,    ImageStatus::kPendingDelete, ImageStatus::kDeactivated,
    ImageStatus::kUploading, ImageStatus::kImporting};

int64_t Micros(std::chrono::milliseconds d) { return d.count() * 1000; }

}  // namespace

Scrubber::Scrubber(catalog::ImageRepository& images, catalog::JobLeaseRepository& leases,
                   store::StoreSet& stores, ScrubberOptions options)
    : images_(images), leases_(leases), stores_(stores), options_(std::move(options)) {
  if (options_.poll.count() <= 0) {
    options_.poll =
        std::min<std::chrono::milliseconds>(options_.interval, std::chrono::seconds(30));
    if (options_.poll.count() <= 0) options_.poll = std::chrono::milliseconds(1000);
  }
}

Scrubber::~Scrubber() { Stop(); }

int64_t Scrubber::Now() const { return options_.now ? options_.now() : NowMicros(); }

void Scrubber::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Scrubber::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scrubber::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto report = RunOnce();
    if (!report.ok()) {
      ++errors_;
      log::Warn("scrubber.pass_failed", {{"error", report.status().ToString()}});
    }
    lock.lock();
    cv_.wait_for(lock, options_.poll, [this] { return stopping_; });
  }
}

bool Scrubber::KeepLease(int64_t& renewed_at) {
  const int64_t now = Now();
  if (now - renewed_at < Micros(options_.lease) / 3) return true;
  Status s = leases_.RenewJobLease(kLeaseName, options_.node, now + Micros(options_.lease));
  if (!s.ok()) {
    ++lost_leases_;
    log::Warn("scrubber.lease_lost", {{"node", options_.node}, {"error", s.ToString()}});
    return false;
  }
  renewed_at = now;
  return true;
}

Result<ScrubReport> Scrubber::RunOnce() {
  std::lock_guard pass(pass_mu_);
  ScrubReport report;
  const int64_t start = Now();
  INGOT_ASSIGN_OR_RETURN(
      catalog::JobLease lease,
      leases_.AcquireJobLease(kLeaseName, options_.node, start, start + Micros(options_.lease),
                              start - options_.interval.count() * 1000000));
  if (lease.holder != options_.node) return report;  // not due, or another node's turn
  report.ran = true;
  log::Info("scrubber.pass_started", {{"node", options_.node}});
  int64_t renewed_at = start;
  bool lost = false;
  Sweep(report, renewed_at, lost);
  std::string cursor = lease.cursor;
  if (!lost && !stop_ && options_.rehash_bytes > 0) {
    cursor = Rehash(lease.cursor, report, renewed_at, lost);
  }
  if (!lost) {
    // A pass cut short by Stop() still counts as done: the next one is due an interval later.
    Status released = leases_.ReleaseJobLease(kLeaseName, options_.node, Now(), cursor);
    if (!released.ok()) {
      log::Warn("scrubber.release_failed", {{"error", released.ToString()}});
    }
  }
  ++passes_;
  objects_ += report.objects;
  orphans_ += report.orphans_removed;
  incomplete_ += report.incomplete_removed;
  young_ += report.young_kept;
  read_only_ += report.read_only_orphans;
  rehashed_ += report.images_rehashed;
  bytes_rehashed_ += report.bytes_rehashed;
  mismatches_ += static_cast<int64_t>(report.mismatched.size());
  missing_ += static_cast<int64_t>(report.missing.size());
  errors_ += report.errors;
  last_pass_end_ = Now();
  log::Info("scrubber.pass_done", {{"node", options_.node},
                                   {"objects", report.objects},
                                   {"orphans_removed", report.orphans_removed},
                                   {"incomplete_removed", report.incomplete_removed},
                                   {"young_kept", report.young_kept},
                                   {"images_rehashed", report.images_rehashed},
                                   {"bytes_rehashed", report.bytes_rehashed},
                                   {"mismatched", static_cast<int64_t>(report.mismatched.size())},
                                   {"missing", static_cast<int64_t>(report.missing.size())},
                                   {"errors", report.errors},
                                   {"lease_lost", lost ? "true" : "false"}});
  return report;
}

void Scrubber::Sweep(ScrubReport& report, int64_t& renewed_at, bool& lost) {
  // The stores first, then the catalog: an object committed and recorded in between is then either
  // missing from the listing or named by the catalog read after it, never an orphan by mistake.
  std::vector<std::pair<store::Store*, std::vector<store::StoredObject>>> listed;
  for (store::Store* store : stores_.stores()) {
    auto objects = store->Enumerate();
    if (!objects.ok()) {
      if (objects.status().code() == Code::kUnsupported) {
        log::Debug("scrubber.store_skipped", {{"store", store->id()}});
        continue;
      }
      ++report.errors;
      log::Warn("scrubber.enumerate_failed",
                {{"store", store->id()}, {"error", objects.status().ToString()}});
      continue;
    }
    report.objects += static_cast<int64_t>(objects->size());
    listed.emplace_back(store, std::move(*objects));
  }
  auto live = images_.ListByStatus(kLiveStatuses);
  if (!live.ok()) {
    // Without the catalog nothing can be called an orphan: remove nothing.
    ++report.errors;
    log::Warn("scrubber.catalog_failed", {{"error", live.status().ToString()}});
    return;
  }
  std::set<std::pair<std::string, std::string>> owned;  // (store, key)
  for (const Image& image : *live) {
    for (const auto& loc : image.locations) owned.emplace(loc.store, loc.key);
  }
  const int64_t now = Now();
  const int64_t grace = options_.grace.count() * 1000000;
  for (auto& [store, objects] : listed) {
    const bool read_only = stores_.IsReadOnly(store->id());
    for (const store::StoredObject& o : objects) {
      if (stop_ || !KeepLease(renewed_at)) {
        lost = !stop_;
        return;
      }
      const bool complete = o.incomplete.empty();
      if (complete && owned.count({store->id(), o.key})) continue;
      // Unknown age counts as young: never remove what cannot be dated.
      if (o.modified == 0 || now - o.modified < grace) {
        ++report.young_kept;
        continue;
      }
      if (read_only) {
        ++report.read_only_orphans;
        log::Warn("scrubber.orphan_in_read_only_store",
                  {{"store", store->id()}, {"key", o.key}, {"incomplete", o.incomplete}});
        continue;
      }
      // Asked again right before removing: the catalog was read a while ago, and a copy whose
      // writer stalled past the grace period between commit and record must not be lost.
      if (complete) {
        auto image = images_.Get(o.key);
        if (image.ok() && image->status() != ImageStatus::kDeleted &&
            std::any_of(image->locations.begin(), image->locations.end(),
                        [&](const catalog::Location& l) {
                          return l.store == store->id() && l.key == o.key;
                        })) {
          continue;
        }
      }
      if (complete && options_.kept_elsewhere) {
        auto kept = options_.kept_elsewhere(store->id(), o.key);
        if (!kept.ok() || *kept) continue;
      }
      Status s = complete ? store->Delete(o.key) : store->RemoveIncompleteWrite(o);
      if (!s.ok()) {
        ++report.errors;
        log::Warn("scrubber.remove_failed", {{"store", store->id()},
                                             {"key", o.key},
                                             {"incomplete", o.incomplete},
                                             {"error", s.ToString()}});
        continue;
      }
      const int64_t age_s = (now - o.modified) / 1000000;
      if (complete) {
        ++report.orphans_removed;
        log::Warn("scrubber.orphan_removed",
                  {{"store", store->id()}, {"key", o.key}, {"bytes", o.bytes}, {"age_s", age_s}});
      } else {
        ++report.incomplete_removed;
        log::Warn("scrubber.incomplete_removed", {{"store", store->id()},
                                                  {"key", o.key},
                                                  {"write", o.incomplete},
                                                  {"bytes", o.bytes},
                                                  {"age_s", age_s}});
      }
    }
  }
}

std::string Scrubber::Rehash(const std::string& cursor, ScrubReport& report, int64_t& renewed_at,
                             bool& lost) {
  auto listed = images_.ListByStatus({ImageStatus::kActive, ImageStatus::kDeactivated});
  if (!listed.ok()) {
    ++report.errors;
    log::Warn("scrubber.catalog_failed", {{"error", listed.status().ToString()}});
    return cursor;
  }
  std::vector<Image>& images = *listed;
  std::sort(images.begin(), images.end(),
            [](const Image& a, const Image& b) { return a.id < b.id; });
  // Resume after the cursor; past the end, start again from the first image.
  auto first = std::upper_bound(images.begin(), images.end(), cursor,
                                [](const std::string& c, const Image& im) { return c < im.id; });
  if (first == images.end()) first = images.begin();
  std::string next = cursor;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t spent = 0;
  for (auto it = first; it != images.end() && spent < options_.rehash_bytes; ++it) {
    const Image& image = *it;
    for (const auto& loc : image.locations) {
      if (stop_ || !KeepLease(renewed_at)) {
        lost = !stop_;
        return next;
      }
      store::Store* store = stores_.Find(loc.store);
      if (store == nullptr) continue;
      const std::string where = image.id + "@" + loc.store;
      auto source = store->Open(loc.key);
      if (!source.ok()) {
        if (source.status().code() == Code::kNotFound) {
          report.missing.push_back(where);
          log::Error("scrubber.data_missing",
                     {{"image", image.id}, {"store", loc.store}, {"key", loc.key}});
        } else {
          ++report.errors;
          log::Warn(
              "scrubber.read_failed",
              {{"image", image.id}, {"store", loc.store}, {"error", source.status().ToString()}});
        }
        continue;
      }
      std::unique_ptr<io::Hasher> md5, multihash;
      if (image.checksum) md5 = std::move(*io::Hasher::Create("md5"));
      if (image.os_hash_algo && image.os_hash_value) {
        auto h = io::Hasher::Create(*image.os_hash_algo);
        if (h.ok()) multihash = std::move(*h);
      }
      uint64_t offset = 0;
      Status read;
      while (true) {
        auto n = (*source)->ReadAt(offset, buf);
        if (!n.ok()) {
          read = n.status();
          break;
        }
        if (*n == 0) break;
        std::span<const uint8_t> piece(buf.data(), *n);
        if (md5) md5->Update(piece);
        if (multihash) multihash->Update(piece);
        offset += *n;
        // A big image takes longer than the lease: keep it, or stop if another node took over.
        if (stop_ || !KeepLease(renewed_at)) {
          lost = !stop_;
          return next;
        }
      }
      spent += offset;
      report.bytes_rehashed += offset;
      if (!read.ok()) {
        ++report.errors;
        log::Warn("scrubber.read_failed",
                  {{"image", image.id}, {"store", loc.store}, {"error", read.ToString()}});
        continue;
      }
      ++report.images_rehashed;
      std::string why;
      if (image.size && offset != *image.size) {
        why =
            "stored " + std::to_string(offset) + " bytes, recorded " + std::to_string(*image.size);
      } else if (md5 && md5->HexDigest() != *image.checksum) {
        why = "md5 differs from checksum";
      } else if (multihash && multihash->HexDigest() != *image.os_hash_value) {
        why = *image.os_hash_algo + " differs from os_hash_value";
      }
      if (!why.empty()) {
        report.mismatched.push_back(where);
        log::Error("scrubber.checksum_mismatch",
                   {{"image", image.id}, {"store", loc.store}, {"key", loc.key}, {"why", why}});
      }
    }
    next = image.id;
  }
  // The whole list done: the next pass starts from the beginning.
  if (!images.empty() && next == images.back().id) next.clear();
  return next;
}

std::string Scrubber::Metrics() const {
  std::string out;
  auto counter = [&out](const char* name, const char* help, auto value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(value) + "\n";
  };
  counter("ingot_scrubber_passes_total", "Scrubber passes this node ran.", passes_.load());
  counter("ingot_scrubber_objects_listed_total", "Store objects the scrubber enumerated.",
          objects_.load());
  counter("ingot_scrubber_orphans_removed_total",
          "Committed objects no image location named, removed after the grace period.",
          orphans_.load());
  counter("ingot_scrubber_incomplete_removed_total",
          "Abandoned incomplete writes (temporary files, Swift segments, S3 multipart uploads) "
          "removed.",
          incomplete_.load());
  counter("ingot_scrubber_young_kept_total",
          "Unowned objects kept because they were younger than the grace period.", young_.load());
  counter("ingot_scrubber_read_only_orphans_total",
          "Unowned objects found in read-only stores (kept).", read_only_.load());
  counter("ingot_scrubber_rehashed_total", "Image copies re-hashed.", rehashed_.load());
  counter("ingot_scrubber_rehashed_bytes_total", "Bytes re-hashed.", bytes_rehashed_.load());
  counter("ingot_scrubber_checksum_mismatch_total",
          "Image copies whose bytes did not match their checksum or size (kept; see the log).",
          mismatches_.load());
  counter("ingot_scrubber_data_missing_total", "Image copies missing from their store.",
          missing_.load());
  counter("ingot_scrubber_errors_total",
          "Store listings, reads or removals that failed during a pass.", errors_.load());
  counter("ingot_scrubber_leases_lost_total", "Passes stopped because the lease was taken over.",
          lost_leases_.load());
  out +=
      "# HELP ingot_scrubber_last_pass_end_seconds When this node last finished a pass (Unix "
      "time).\n# TYPE ingot_scrubber_last_pass_end_seconds gauge\n"
      "ingot_scrubber_last_pass_end_seconds " +
      std::to_string(last_pass_end_.load() / 1000000) + "\n";
  return out;
}

}  // namespace ingot::service
