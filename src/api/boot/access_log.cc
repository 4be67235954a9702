#include "api/boot/access_log.h"

#include <errno.h>

#include <algorithm>

namespace ingot::api::boot {

AccessLog::AccessLog(AccessLogOptions options)
    : options_(options), writer_([this] { Loop(); }) {}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void AccessLog::Add(std::string_view line) {
  std::unique_lock lock(mu_);
  // The reader is not keeping up: wait for it rather than hold without bound.
  written_.wait(lock, [&] { return held_.size() < options_.max_held_bytes || stopping_; });
  const bool was_empty = held_.empty();
  held_.append(line);
  ++added_;
  const bool full = held_.size() >= options_.batch_bytes;
  lock.unlock();
  // The writer sleeps until there is something, then lingers for more: one wake-up per batch.
  if (was_empty || full) wake_.notify_one();
}

void AccessLog::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = added_;
  if (done_ >= target) return;
  flush_to_ = std::max(flush_to_, target);
  wake_.notify_one();
  written_.wait(lock, [&] { return done_ >= target; });
}

void AccessLog::Loop() {
  std::unique_lock lock(mu_);
  std::string batch;
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !held_.empty(); });
    if (held_.empty()) return;  // stopping, and everything is out
    auto hurry = [&] {
      return stopping_ || flush_to_ > done_ || held_.size() >= options_.batch_bytes;
    };
    if (!hurry()) wake_.wait_for(lock, options_.linger, hurry);
    batch.clear();
    batch.swap(held_);
    const uint64_t upto = added_;
    lock.unlock();
    WriteBatch(batch);
    lock.lock();
    done_ = upto;
    written_.notify_all();
    if (batch.capacity() > options_.batch_bytes * 4) std::string().swap(batch);
  }
}

void AccessLog::WriteBatch(std::string_view batch) {
  size_t pos = 0;
  while (pos < batch.size()) {
    // As many whole lines as fit in kAtomicBytes; a longer line alone.
    size_t end = pos;
    for (;;) {
      size_t nl = batch.find('\n', end);
      size_t line_end = nl == std::string_view::npos ? batch.size() : nl + 1;
      if (end > pos && line_end - pos > kAtomicBytes) break;
      end = line_end;
      if (end == batch.size() || end - pos >= kAtomicBytes) break;
    }
    size_t off = pos;
    while (off < end) {
      ssize_t n = ::write(options_.fd, batch.data() + off, end - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // nowhere to log to: drop the rest, as log::Write does
      off += static_cast<size_t>(n);
    }
    pos = end;
  }
}

}  // namespace ingot::api::boot
