#include "store/testing/faulty_store.h"

namespace ingot::store {

class FaultyPendingObject final : public PendingObject {
 public:
  FaultyPendingObject(FaultyStore& store, std::unique_ptr<PendingObject> inner,
                      std::optional<uint64_t> limit, Status write_error)
      : store_(store),
        inner_(std::move(inner)),
        limit_(limit),
        write_error_(std::move(write_error)) {}

  Status Write(std::span<const uint8_t> data) override {
    if (limit_ && inner_->bytes_written() + data.size() > *limit_) {
      ++store_.fired_;
      return write_error_;
    }
    return inner_->Write(data);
  }
  Status Commit() override {
    if (auto fault = store_.Take(&Faults::commit)) {
      inner_.reset();  // aborts: what was written is removed, as after a failed fdatasync
      return *fault;
    }
    return inner_->Commit();
  }
  uint64_t bytes_written() const override { return inner_ ? inner_->bytes_written() : 0; }

 private:
  FaultyStore& store_;
  std::unique_ptr<PendingObject> inner_;
  std::optional<uint64_t> limit_;
  Status write_error_;
};

void FaultyStore::Arm(Faults faults) {
  std::lock_guard lock(mu_);
  faults_ = std::move(faults);
}

std::optional<Status> FaultyStore::Take(std::optional<Status> Faults::*which) {
  std::lock_guard lock(mu_);
  std::optional<Status> fault = faults_.*which;
  if (fault) {
    ++fired_;
    if (faults_.once) (faults_.*which).reset();
  }
  return fault;
}

std::optional<uint64_t> FaultyStore::WriteLimit() {
  std::lock_guard lock(mu_);
  std::optional<uint64_t> limit = faults_.write_fails_after;
  if (limit && faults_.once) faults_.write_fails_after.reset();
  return limit;
}

Result<std::unique_ptr<PendingObject>> FaultyStore::Create(const std::string& key) {
  if (auto fault = Take(&Faults::create)) return *fault;
  INGOT_ASSIGN_OR_RETURN(auto inner, inner_.Create(key));
  Status write_error;
  {
    std::lock_guard lock(mu_);
    write_error = faults_.write_error;
  }
  return std::unique_ptr<PendingObject>(
      new FaultyPendingObject(*this, std::move(inner), WriteLimit(), std::move(write_error)));
}

Status FaultyStore::Delete(const std::string& key) {
  if (auto fault = Take(&Faults::remove)) return *fault;
  return inner_.Delete(key);
}

}  // namespace ingot::store
