#include "store/remote/streams.h"

#include <algorithm>
#include <cstring>

#include "io/hash.h"

namespace ingot::store::remote {

// ---- RangedSource ----

RangedSource::RangedSource(uint64_t size, RangeGet get, int max_resumes, int parallel, size_t block)
    : size_(size), get_(std::move(get)), max_resumes_(max_resumes),
      parallel_(std::max(1, parallel)), block_(std::max<size_t>(block, 64 << 10)) {}

RangedSource::~RangedSource() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    ++generation_;
  }
  cv_.notify_all();
  reader_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void RangedSource::Schedule() {
  size_t outstanding = 0;
  for (const auto& b : blocks_) outstanding += b->taken < b->length ? 1 : 0;
  const size_t window = widened_ ? static_cast<size_t>(parallel_) : 1;
  while (outstanding < window && scheduled_ < size_) {
    auto b = std::make_shared<Block>();
    b->first = scheduled_;
    // Up to the next multiple of the block size, so that blocks fall on the store's segments.
    const uint64_t want = grow_ - scheduled_ % grow_;
    b->length = std::min<uint64_t>(want, size_ - scheduled_);
    scheduled_ += b->length;
    blocks_.push_back(std::move(b));
    ++outstanding;
  }
  cv_.notify_all();
}

void RangedSource::Reset(uint64_t offset) {
  ++generation_;  // blocks being fetched for the old position are dropped by their workers
  blocks_.clear();
  next_ = offset;
  scheduled_ = offset;
  widened_ = false;
  // The first block of a position is small: a short Range request stays short.
  grow_ = std::min<uint64_t>(block_, 1 << 20);
  Schedule();
}

void RangedSource::Work() {
  std::unique_lock lock(mu_);
  for (;;) {
    std::shared_ptr<Block> b;
    cv_.wait(lock, [&] {
      if (stop_) return true;
      for (auto& x : blocks_) {
        if (!x->assigned) {
          b = x;
          return true;
        }
      }
      return false;
    });
    if (stop_) return;
    b->assigned = true;
    const uint64_t gen = generation_;
    if (!b->bytes) {
      if (b->length == block_ && !spare_.empty()) {
        b->bytes = std::move(spare_.back());
        spare_.pop_back();
      } else {
        b->bytes.reset(new uint8_t[b->length]);
      }
    }
    int resumes = 0;
    for (;;) {
      const uint64_t from = b->first + b->filled;
      const uint64_t last = b->first + b->length - 1;
      lock.unlock();
      uint64_t got = 0;
      BodySink sink = [&](std::span<const uint8_t> d) -> Status {
        if (got + d.size() > last - from + 1) return IoError("the object store sent more than asked");
        std::memcpy(b->bytes.get() + (from - b->first) + got, d.data(), d.size());
        got += d.size();
        std::lock_guard l(mu_);
        if (generation_ != gen || stop_) return Cancelled("download moved");
        b->filled += d.size();
        if (waiting_on_ == b.get() && b->filled >= wake_at_) reader_cv_.notify_one();
        return Status::Ok();
      };
      Status s = get_(from, last, sink);
      lock.lock();
      if (generation_ != gen || stop_) break;
      if (b->filled == b->length) {
        b->done = true;
        break;
      }
      if ((s.ok() || RetryableStatus(s)) && resumes < max_resumes_) {
        ++resumes;  // resume this block where its stream stopped
        continue;
      }
      b->status = s.ok() ? IoError("the object store ended the body at byte " +
                                   std::to_string(b->first + b->filled) + " of " +
                                   std::to_string(size_))
                         : s;
      b->done = true;
      break;
    }
    reader_cv_.notify_one();
  }
}

Result<size_t> RangedSource::ReadAt(uint64_t offset, std::span<uint8_t> buf) {
  std::lock_guard read_lock(read_mu_);
  if (offset >= size_ || buf.empty()) return size_t{0};
  std::unique_lock lock(mu_);
  if (workers_.empty()) {
    for (int i = 0; i < parallel_; ++i) workers_.emplace_back([this] { Work(); });
  }
  if (blocks_.empty() || offset != next_) Reset(offset);
  std::shared_ptr<Block> b = blocks_.front();
  // Wait until the whole buffer can be filled from this block (or what is left of it).
  const uint64_t want = std::min<uint64_t>(buf.size(), b->length - b->taken);
  waiting_on_ = b.get();
  wake_at_ = b->taken + want;
  reader_cv_.wait(lock, [&] { return b->filled >= b->taken + want || b->done || stop_; });
  waiting_on_ = nullptr;
  if (b->filled > b->taken) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), b->filled - b->taken));
    std::memcpy(buf.data(), b->bytes.get() + b->taken, n);
    b->taken += n;
    next_ += n;
    if (b->taken == b->length) {
      // Its worker is done with it: the buffer goes to the next block.
      if (b->done && b->length == block_ && b.use_count() <= 2) {
        spare_.push_back(std::move(b->bytes));
      }
      blocks_.pop_front();
      widened_ = true;
      grow_ = std::min<uint64_t>(grow_ * 2, block_);
      Schedule();
    }
    return n;
  }
  Status why = b->status;
  // A later read starts afresh (blocks_ empty -> Reset), with its own resumes.
  ++generation_;
  blocks_.clear();
  return why;
}

// ---- PartUploader ----

PartUploader::PartUploader(size_t part_size, int threads, PutPart put, Begin begin)
    : part_size_(part_size), threads_(std::max(1, threads)), put_(std::move(put)),
      begin_(std::move(begin)) {}

PartUploader::~PartUploader() {
  if (!finished_) Cancel();
}

std::span<const uint8_t> PartUploader::buffered() const {
  return {current_.get(), current_ ? fill_ : 0};
}

Status PartUploader::Write(std::span<const uint8_t> data) {
  if (finished_) return Internal("write after the upload finished");
  while (!data.empty()) {
    if (!current_) {
      std::unique_lock lock(mu_);
      if (!error_.ok()) return error_;
      if (!free_.empty()) {
        current_ = std::move(free_.back());
        free_.pop_back();
      } else if (buffers_ < threads_ + 1) {
        ++buffers_;
        lock.unlock();
        current_.reset(new uint8_t[part_size_]);  // not zeroed: every byte is written before use
      } else {
        cv_.wait(lock, [&] { return !free_.empty() || !error_.ok(); });
        continue;
      }
      fill_ = 0;
    }
    const size_t n = std::min(part_size_ - fill_, data.size());
    std::memcpy(current_.get() + fill_, data.data(), n);
    fill_ += n;
    bytes_ += n;
    data = data.subspan(n);
    if (fill_ == part_size_) INGOT_RETURN_IF_ERROR(Dispatch());
  }
  std::lock_guard lock(mu_);
  return error_;
}

void PartUploader::StartThreads() {
  for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { Work(); });
}

Status PartUploader::Dispatch() {
  if (next_number_ == 1) {
    if (begin_) INGOT_RETURN_IF_ERROR(begin_());
    StartThreads();
  }
  std::lock_guard lock(mu_);
  if (!error_.ok()) return error_;
  queue_.push_back({next_number_++, std::move(current_), fill_});
  fill_ = 0;
  cv_.notify_all();
  return Status::Ok();
}

void PartUploader::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left to send
      if (!error_.ok()) {
        // Another part failed: what is queued is dropped.
        free_.push_back(std::move(queue_.front().buf));
        queue_.pop_front();
        cv_.notify_all();
        continue;
      }
      job = std::move(queue_.front());
      queue_.pop_front();
      ++in_flight_;
    }
    std::span<const uint8_t> bytes(job.buf.get(), job.size);
    Status s;
    auto md5 = io::HexDigestOf("md5", bytes);
    UploadedPart part{.number = job.number, .size = job.size};
    if (!md5.ok()) {
      s = md5.status();
    } else {
      part.md5 = *md5;
      auto etag = put_(job.number, bytes, part.md5);
      if (!etag.ok()) {
        s = etag.status().WithContext("part " + std::to_string(job.number));
      } else {
        part.etag = NormalizeEtag(*etag);
        if (part.etag != part.md5) {
          s = Corruption("part " + std::to_string(job.number) + ": the store's ETag " + part.etag +
                         " is not the MD5 of the bytes sent (" + part.md5 + ")");
        }
      }
    }
    std::lock_guard lock(mu_);
    --in_flight_;
    // A part the store answered for is the store's, whatever we thought of the answer: Cancel
    // must be able to delete it.
    if (!part.etag.empty() || s.ok()) done_.push_back(part);
    if (!s.ok() && error_.ok()) error_ = std::move(s);
    free_.push_back(std::move(job.buf));
    cv_.notify_all();
  }
}

Result<std::vector<UploadedPart>> PartUploader::Finish() {
  if (finished_) return Internal("upload finished twice");
  if (fill_ > 0 || next_number_ == 1) {
    if (!current_) current_.reset(new uint8_t[1]);
    if (Status s = Dispatch(); !s.ok()) {
      Cancel();
      return s;
    }
  }
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return (queue_.empty() && in_flight_ == 0) || !error_.ok(); });
  }
  finished_ = true;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard lock(mu_);
  if (!error_.ok()) return error_;
  std::sort(done_.begin(), done_.end(),
            [](const UploadedPart& a, const UploadedPart& b) { return a.number < b.number; });
  return done_;
}

std::vector<UploadedPart> PartUploader::Cancel() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (error_.ok()) error_ = Cancelled("upload cancelled");
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  finished_ = true;
  std::lock_guard lock(mu_);
  return done_;
}

std::string NormalizeEtag(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  std::string out(etag);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace ingot::store::remote
