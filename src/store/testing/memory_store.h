// A Store that keeps objects in memory: the fake for service and API tests that want a store
// without a disk. Same contract as store.h (invisible until Commit, abort on destroy). Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/time.h"
#include "store/store.h"

namespace ingot::store {

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(std::string id = "memory") : id_(std::move(id)) {}

  const std::string& id() const override { return id_; }
  Capabilities capabilities() const override { return {.local_file = false, .random_read = true}; }
  Result<std::unique_ptr<PendingObject>> Create(const std::string& key) override;
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string& key) override;
  Result<io::UniqueFd> OpenFd(const std::string& key) override;
  Result<uint64_t> SizeOf(const std::string& key) override;
  Status Delete(const std::string& key) override;
  Result<int> RemoveIncomplete() override { return 0; }
  Result<std::vector<std::string>> ListKeys() override;
  // Committed objects and writes in progress (incomplete = "pending-<n>"), aged by the clock.
  Result<std::vector<StoredObject>> Enumerate() override;
  // The write fails at its next Write or Commit, as a driver's would once its temporary object is
  // gone.
  Status RemoveIncompleteWrite(const StoredObject& object) override;

  // Objects being written (created, neither committed nor destroyed yet).
  int pending() const;
  // What Enumerate reports as `modified` (default: common/time.h's NowMicros).
  void set_clock(std::function<int64_t()> now);

 private:
  friend class MemoryPendingObject;
  Status Put(const std::string& key, std::vector<uint8_t> bytes);

  std::string id_;
  mutable std::mutex mu_;
  struct Stored {
    std::shared_ptr<const std::vector<uint8_t>> data;
    int64_t modified = 0;
  };
  struct Writing {
    std::string key;
    uint64_t bytes = 0;
    int64_t modified = 0;
    bool removed = false;  // RemoveIncompleteWrite took it away
  };
  int64_t Now() const { return now_ ? now_() : NowMicros(); }
  std::map<std::string, Stored> objects_;
  std::map<int, Writing> writing_;  // by pending object
  int next_writing_ = 0;
  int pending_ = 0;
  std::function<int64_t()> now_;
};

}  // namespace ingot::store
