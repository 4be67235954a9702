// The scrubber: a background job of every ingotd node that keeps the stores and the catalog in
// agreement, one node at a time across a cluster.
//
// A pass (a) enumerates every configured store (store::Store::Enumerate: committed objects, Swift's
// segment groups, S3's multipart uploads, the file store's temporary files), reads every image's
// locations from the catalog — in that order, so an object committed and recorded while the pass
// runs is either seen as owned or as young — and removes, once older than `grace`, the objects no
// image location names (orphans: a delete or a copy that crashed half-way) and the incomplete
// writes nobody finished (uploads whose node died). Age is the store's own clock for the newest
// write (file mtime, Swift's last_modified of the newest segment, S3's newest part): an upload in
// progress keeps writing, so it stays young; `grace` must exceed the longest pause between two
// writes of one upload (one segment or part). Read-only stores are reported, never changed.
// (b) re-hashes stored images, at most `rehash_bytes` per pass, resuming where the last pass (on
// whichever node) stopped, and reports every copy whose bytes do not match the image's checksum
// (or size, or that is missing) in the log (event scrubber.checksum_mismatch, .data_missing) and in
// /metrics; it never deletes or changes them: an operator decides.
//
// One node at a time: a pass runs under the catalog's job lease "scrubber" (catalog/job_leases.h),
// taken only when the last pass finished at least `interval` ago, renewed while the pass runs. A
// node that dies mid-pass loses the lease when it runs out; another node takes it over at its next
// poll, and re-hashing resumes from the last recorded cursor.
//
// Thread safety: Start/Stop from one thread; RunOnce and Metrics from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/job_leases.h"
#include "catalog/repository.h"
#include "store/store_set.h"

namespace ingot::service {

struct ScrubberOptions {
  std::string node;                        // this node's name in the job lease
  std::chrono::seconds interval{3600};     // one pass per interval, across the cluster
  std::chrono::seconds grace{3600};        // nothing younger than this is removed
  uint64_t rehash_bytes = 10ull << 30;     // re-hashed per pass; 0: no re-hashing
  std::chrono::milliseconds lease{60000};  // held while a pass runs, renewed every third of it
  // How often a node asks whether a pass is due; default min(interval, 30 s).
  std::chrono::milliseconds poll{0};
  std::function<int64_t()> now;  // microseconds since the epoch (tests); default common/time.h
  // Objects other parts of Ingot keep in the stores (the builder's shared files, build/shelf.h):
  // asked about each object no image names, right before it would be removed; true (or an error)
  // keeps it. Unset: only images own objects.
  std::function<Result<bool>(const std::string& store, const std::string& key)> kept_elsewhere;
};

// What one pass did.
struct ScrubReport {
  bool ran = false;                // false: not due, or another node holds the lease
  int64_t objects = 0;             // enumerated, every store
  int64_t orphans_removed = 0;     // committed objects no image names
  int64_t incomplete_removed = 0;  // abandoned incomplete writes
  int64_t young_kept = 0;          // unowned, but younger than grace
  int64_t read_only_orphans = 0;   // unowned objects in read-only stores (reported, kept)
  int64_t images_rehashed = 0;     // copies re-hashed
  uint64_t bytes_rehashed = 0;
  std::vector<std::string> mismatched;  // "<image>@<store>": bytes differ from the checksum
  std::vector<std::string> missing;     // "<image>@<store>": the copy is gone
  int64_t errors = 0;                   // stores that could not be enumerated, removals that failed
};

class Scrubber {
 public:
  Scrubber(catalog::ImageRepository& images, catalog::JobLeaseRepository& leases,
           store::StoreSet& stores, ScrubberOptions options);
  ~Scrubber();  // Stop()

  // A thread that runs RunOnce every `poll`.
  void Start();
  // Ends the thread; a pass in progress stops at its next object or image (the lease runs out).
  void Stop();

  // One pass when it is due and the lease can be had (report.ran), else nothing. Fails only when
  // the catalog cannot be read; store failures are counted in report.errors and logged.
  Result<ScrubReport> RunOnce();

  // Prometheus text: ingot_scrubber_* counters of this node's passes.
  std::string Metrics() const;

  static constexpr const char* kLeaseName = "scrubber";

 private:
  int64_t Now() const;
  // Renews the lease when a third of it has passed; false when it was lost (stop the pass).
  bool KeepLease(int64_t& renewed_at);
  void Sweep(ScrubReport& report, int64_t& renewed_at, bool& lost);
  std::string Rehash(const std::string& cursor, ScrubReport& report, int64_t& renewed_at,
                     bool& lost);
  void Loop();

  catalog::ImageRepository& images_;
  catalog::JobLeaseRepository& leases_;
  store::StoreSet& stores_;
  ScrubberOptions options_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex pass_mu_;  // one pass at a time on this node

  // Counters for /metrics.
  std::atomic<int64_t> passes_{0}, objects_{0}, orphans_{0}, incomplete_{0}, young_{0},
      read_only_{0}, rehashed_{0}, mismatches_{0}, missing_{0}, errors_{0}, lost_leases_{0};
  std::atomic<uint64_t> bytes_rehashed_{0};
  std::atomic<int64_t> last_pass_end_{0};  // microseconds since the epoch
};

}  // namespace ingot::service
