#include "io/digest_pipeline.h"

namespace ingot::io {

Result<std::unique_ptr<DigestPipeline>> DigestPipeline::Start(const std::vector<std::string>& algos,
                                                              size_t buffer_size,
                                                              size_t buffer_count) {
  std::vector<std::unique_ptr<Hasher>> hashers;
  for (const auto& a : algos) {
    INGOT_ASSIGN_OR_RETURN(auto h, Hasher::Create(a));
    hashers.push_back(std::move(h));
  }
  if (buffer_count < 2) buffer_count = 2;
  return std::unique_ptr<DigestPipeline>(
      new DigestPipeline(std::move(hashers), buffer_size, buffer_count));
}

DigestPipeline::DigestPipeline(std::vector<std::unique_ptr<Hasher>> hashers, size_t buffer_size,
                               size_t buffer_count)
    : hashers_(std::move(hashers)), slots_(buffer_count), consumed_(hashers_.size(), 0) {
  for (auto& s : slots_) s.data.resize(buffer_size);
  for (size_t i = 0; i < hashers_.size(); ++i) threads_.emplace_back([this, i] { Run(i); });
}

DigestPipeline::~DigestPipeline() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::span<uint8_t> DigestPipeline::Acquire() {
  std::unique_lock lock(mu_);
  Slot& slot = slots_[produced_ % slots_.size()];
  cv_.wait(lock, [&] { return slot.pending == 0; });
  acquired_ = produced_ % slots_.size();
  return slot.data;
}

void DigestPipeline::Submit(size_t length) {
  {
    std::lock_guard lock(mu_);
    Slot& slot = slots_[acquired_];
    slot.length = length;
    slot.pending = static_cast<int>(hashers_.size());
    ++produced_;
  }
  cv_.notify_all();
}

void DigestPipeline::Run(size_t worker) {
  for (;;) {
    Slot* slot;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || consumed_[worker] < produced_ || finishing_; });
      if (consumed_[worker] >= produced_) {
        if (stopping_ || finishing_) return;
        continue;
      }
      slot = &slots_[consumed_[worker] % slots_.size()];
    }
    // The slot cannot be reused while pending > 0, so hashing outside the lock is safe.
    hashers_[worker]->Update({slot->data.data(), slot->length});
    {
      std::lock_guard lock(mu_);
      ++consumed_[worker];
      --slot->pending;
    }
    cv_.notify_all();
  }
}

std::vector<std::string> DigestPipeline::Finish() {
  {
    std::lock_guard lock(mu_);
    finishing_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::vector<std::string> out;
  for (auto& h : hashers_) out.push_back(h->HexDigest());
  return out;
}

}  // namespace ingot::io
