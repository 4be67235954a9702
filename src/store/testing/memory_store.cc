#include "store/testing/memory_store.h"

#include <cstring>

namespace ingot::store {

class MemoryPendingObject final : public PendingObject {
 public:
  MemoryPendingObject(MemoryStore& store, std::string key) : store_(store), key_(std::move(key)) {}
  ~MemoryPendingObject() override {
    std::lock_guard lock(store_.mu_);
    --store_.pending_;
  }
  Status Write(std::span<const uint8_t> data) override {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return Status::Ok();
  }
  Status Commit() override { return store_.Put(key_, std::move(bytes_)); }
  uint64_t bytes_written() const override { return bytes_.size(); }

 private:
  MemoryStore& store_;
  std::string key_;
  std::vector<uint8_t> bytes_;
};

namespace {

class SharedSource final : public io::ByteSource {
 public:
  explicit SharedSource(std::shared_ptr<const std::vector<uint8_t>> data)
      : data_(std::move(data)) {}
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    if (offset >= data_->size()) return size_t{0};
    size_t n = std::min<uint64_t>(buf.size(), data_->size() - offset);
    std::memcpy(buf.data(), data_->data() + offset, n);
    return n;
  }
  uint64_t Size() const override { return data_->size(); }

 private:
  std::shared_ptr<const std::vector<uint8_t>> data_;
};

}  // namespace

Result<std::unique_ptr<PendingObject>> MemoryStore::Create(const std::string& key) {
  std::lock_guard lock(mu_);
  if (objects_.count(key)) return AlreadyExists("object " + key + " exists in store " + id_);
  ++pending_;
  return std::unique_ptr<PendingObject>(new MemoryPendingObject(*this, key));
}

Status MemoryStore::Put(const std::string& key, std::vector<uint8_t> bytes) {
  std::lock_guard lock(mu_);
  if (objects_.count(key)) return AlreadyExists("object " + key + " exists in store " + id_);
  objects_[key] = std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
  return Status::Ok();
}

Result<std::unique_ptr<io::ByteSource>> MemoryStore::Open(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFound("object " + key + " not in store " + id_);
  return std::unique_ptr<io::ByteSource>(new SharedSource(it->second));
}

Result<io::UniqueFd> MemoryStore::OpenFd(const std::string&) {
  return Unsupported("store " + id_ + " keeps no local files");
}

Result<uint64_t> MemoryStore::SizeOf(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFound("object " + key + " not in store " + id_);
  return static_cast<uint64_t>(it->second->size());
}

Status MemoryStore::Delete(const std::string& key) {
  std::lock_guard lock(mu_);
  objects_.erase(key);
  return Status::Ok();
}

Result<std::vector<std::string>> MemoryStore::ListKeys() {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [k, _] : objects_) keys.push_back(k);
  return keys;
}

int MemoryStore::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

}  // namespace ingot::store
