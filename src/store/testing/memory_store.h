// A Store that keeps objects in memory: the fake for service and API tests that want a store
// without a disk. Same contract as store.h (invisible until Commit, abort on destroy). Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

  // Objects being written (created, neither committed nor destroyed yet).
  int pending() const;

 private:
  friend class MemoryPendingObject;
  Status Put(const std::string& key, std::vector<uint8_t> bytes);

  std::string id_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const std::vector<uint8_t>>> objects_;
  int pending_ = 0;
};

}  // namespace ingot::store
