// A Store that passes every call to another one, except the faults a test arms: the way to see what
// the service does when a write runs out of space, an fsync or a rename fails, or a delete fails.
// Faults fire at the Store interface, which is where a driver reports them: a failed Commit models
// the file driver's fdatasync or renameat2 failing (nothing becomes visible; the inner pending
// object is destroyed, which removes what was written). Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include "store/store.h"

namespace ingot::store {

struct Faults {
  std::optional<Status> create;               // Create() fails with this
  std::optional<uint64_t> write_fails_after;  // a Write() that would pass this many bytes fails...
  Status write_error = StorageFull("write: No space left on device");  // ...with this
  std::optional<Status> commit;  // Commit() fails with this, committing nothing
  std::optional<Status> remove;  // Delete() fails with this
  std::optional<Status> enumerate;  // Enumerate() fails with this
  bool once = true;              // disarm a fault after it fires
};

class FaultyStore final : public Store {
 public:
  explicit FaultyStore(std::unique_ptr<Store> inner) : owned_(std::move(inner)), inner_(*owned_) {}

  Store& inner() { return inner_; }

  void Arm(Faults faults);
  int fired() const { return fired_.load(); }

  const std::string& id() const override { return inner_.id(); }
  Capabilities capabilities() const override { return inner_.capabilities(); }
  Result<std::unique_ptr<PendingObject>> Create(const std::string& key) override;
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string& key) override {
    return inner_.Open(key);
  }
  Result<io::UniqueFd> OpenFd(const std::string& key) override { return inner_.OpenFd(key); }
  Result<uint64_t> SizeOf(const std::string& key) override { return inner_.SizeOf(key); }
  Status Delete(const std::string& key) override;
  Result<int> RemoveIncomplete() override { return inner_.RemoveIncomplete(); }
  Result<std::vector<std::string>> ListKeys() override { return inner_.ListKeys(); }
  Result<std::vector<StoredObject>> Enumerate() override {
    if (auto fault = Take(&Faults::enumerate)) return *fault;
    return inner_.Enumerate();
  }
  Status RemoveIncompleteWrite(const StoredObject& object) override {
    if (auto fault = Take(&Faults::remove)) return *fault;
    return inner_.RemoveIncompleteWrite(object);
  }
  std::string UrlOf(const std::string& key) const override { return inner_.UrlOf(key); }
  Result<std::optional<std::string>> KeyOfUrl(std::string_view url) override {
    return inner_.KeyOfUrl(url);
  }

 private:
  friend class FaultyPendingObject;
  // The armed fault of one kind, if any; disarmed when `once`.
  std::optional<Status> Take(std::optional<Status> Faults::*which);
  std::optional<uint64_t> WriteLimit();

  std::unique_ptr<Store> owned_;
  Store& inner_;
  std::mutex mu_;
  Faults faults_;
  std::atomic<int> fired_{0};
};

}  // namespace ingot::store
