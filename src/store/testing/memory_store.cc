#include "store/testing/memory_store.h"

#include <cstdlib>
#include <cstring>

namespace ingot::store {

class MemoryPendingObject final : public PendingObject {
 public:
  MemoryPendingObject(MemoryStore& store, std::string key, int handle)
      : store_(store), key_(std::move(key)), handle_(handle) {}
  ~MemoryPendingObject() override {
    std::lock_guard lock(store_.mu_);
    --store_.pending_;
    store_.writing_.erase(handle_);
  }
  Status Write(std::span<const uint8_t> data) override {
    {
      std::lock_guard lock(store_.mu_);
      auto it = store_.writing_.find(handle_);
      if (it == store_.writing_.end() || it->second.removed) return Gone();
      it->second.bytes += data.size();
      it->second.modified = store_.Now();
    }
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    return Status::Ok();
  }
  Status Commit() override {
    {
      std::lock_guard lock(store_.mu_);
      auto it = store_.writing_.find(handle_);
      if (it == store_.writing_.end() || it->second.removed) return Gone();
      store_.writing_.erase(it);
    }
    return store_.Put(key_, std::move(bytes_));
  }
  uint64_t bytes_written() const override { return bytes_.size(); }

 private:
  Status Gone() const {
    return IoError("the incomplete object " + key_ + " was removed from store " + store_.id_);
  }
  MemoryStore& store_;
  std::string key_;
  int handle_;
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
  const int handle = ++next_writing_;
  writing_[handle] = Writing{.key = key, .modified = Now()};
  return std::unique_ptr<PendingObject>(new MemoryPendingObject(*this, key, handle));
}

Status MemoryStore::Put(const std::string& key, std::vector<uint8_t> bytes) {
  std::lock_guard lock(mu_);
  if (objects_.count(key)) return AlreadyExists("object " + key + " exists in store " + id_);
  objects_[key] = Stored{std::make_shared<const std::vector<uint8_t>>(std::move(bytes)), Now()};
  return Status::Ok();
}

Result<std::unique_ptr<io::ByteSource>> MemoryStore::Open(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFound("object " + key + " not in store " + id_);
  return std::unique_ptr<io::ByteSource>(new SharedSource(it->second.data));
}

Result<io::UniqueFd> MemoryStore::OpenFd(const std::string&) {
  return Unsupported("store " + id_ + " keeps no local files");
}

Result<uint64_t> MemoryStore::SizeOf(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFound("object " + key + " not in store " + id_);
  return static_cast<uint64_t>(it->second.data->size());
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

Result<std::vector<StoredObject>> MemoryStore::Enumerate() {
  std::lock_guard lock(mu_);
  std::vector<StoredObject> out;
  for (const auto& [k, o] : objects_) {
    out.push_back({.key = k, .bytes = o.data->size(), .modified = o.modified});
  }
  for (const auto& [handle, w] : writing_) {
    if (w.removed) continue;
    out.push_back({.key = w.key,
                   .incomplete = "pending-" + std::to_string(handle),
                   .bytes = w.bytes,
                   .modified = w.modified});
  }
  return out;
}

Status MemoryStore::RemoveIncompleteWrite(const StoredObject& object) {
  constexpr std::string_view kPrefix = "pending-";
  if (!object.incomplete.starts_with(kPrefix)) {
    return InvalidArgument("not an incomplete write: '" + object.incomplete + "'");
  }
  const int handle = std::atoi(object.incomplete.c_str() + kPrefix.size());
  std::lock_guard lock(mu_);
  auto it = writing_.find(handle);
  if (it != writing_.end() && it->second.key == object.key) it->second.removed = true;
  return Status::Ok();
}

void MemoryStore::set_clock(std::function<int64_t()> now) {
  std::lock_guard lock(mu_);
  now_ = std::move(now);
}

int MemoryStore::pending() const {
  std::lock_guard lock(mu_);
  return pending_;
}

}  // namespace ingot::store
