#include "formats/streaming.h"

#include <algorithm>
#include <cstring>

#include "formats/partition_table.h"
#include "formats/views.h"
#include "io/memory.h"

namespace ingot::formats {

StreamingInspector::StreamingInspector(Options options) : opts_(options) {
  head_.reserve(std::min<uint64_t>(opts_.head_bytes, 1 << 20));
}

Status StreamingInspector::Write(std::span<const uint8_t> data) {
  const uint64_t start = seen_;
  // Head.
  if (head_.size() < opts_.head_bytes) {
    const uint64_t n = std::min<uint64_t>(data.size(), opts_.head_bytes - head_.size());
    head_.insert(head_.end(), data.begin(), data.begin() + n);
  }
  // Partition windows.
  for (Window& w : windows_) {
    const uint64_t have_end = w.offset + w.bytes.size();
    const uint64_t want_end = w.offset + w.want;
    if (have_end >= want_end || start + data.size() <= have_end || start > have_end) continue;
    const uint64_t from = have_end - start;
    const uint64_t n = std::min<uint64_t>(data.size() - from, want_end - have_end);
    w.bytes.insert(w.bytes.end(), data.begin() + from, data.begin() + from + n);
  }
  // Tail: a ring of the last tail_bytes.
  if (opts_.tail_bytes > 0) {
    if (tail_.size() < opts_.tail_bytes) tail_.resize(opts_.tail_bytes);
    std::span<const uint8_t> d = data;
    if (d.size() > tail_.size()) d = d.last(tail_.size());
    while (!d.empty()) {
      const uint64_t n = std::min<uint64_t>(d.size(), tail_.size() - tail_pos_);
      std::memcpy(tail_.data() + tail_pos_, d.data(), n);
      tail_pos_ = (tail_pos_ + n) % tail_.size();
      d = d.subspan(n);
    }
  }
  seen_ += data.size();
  if (!head_done_ && head_.size() >= opts_.head_bytes) OnHeadComplete();
  return Status::Ok();
}

void StreamingInspector::OnHeadComplete() {
  head_done_ = true;
  // The head is a prefix of the stream: a partition table in it is the real one. Ask for the first
  // bytes of each partition that starts beyond the head (those inside it are already kept).
  io::MemorySource head(std::vector<uint8_t>(head_.begin(), head_.end()));
  Result<PartitionTable> table = ReadPartitionTable(head);
  if (!table.ok()) return;
  for (const Partition& p : table->partitions) {
    if (p.offset < head_.size() || p.offset < seen_) continue;  // kept, or already passed
    if (windows_.size() >= 256) break;
    windows_.push_back({p.offset, {}, opts_.partition_bytes});
  }
}

Result<ImageInfo> StreamingInspector::Finish() {
  if (!head_done_) OnHeadComplete();
  std::vector<PartialSource::Region> regions;
  regions.push_back({0, head_});
  const uint64_t tail_len = std::min<uint64_t>(seen_, tail_.size());
  if (tail_len > 0) {
    std::vector<uint8_t> tail(tail_len);
    // The ring's oldest byte sits at tail_pos_ once it has wrapped.
    if (seen_ >= tail_.size()) {
      std::memcpy(tail.data(), tail_.data() + tail_pos_, tail_.size() - tail_pos_);
      std::memcpy(tail.data() + (tail_.size() - tail_pos_), tail_.data(), tail_pos_);
    } else {
      std::memcpy(tail.data(), tail_.data(), tail_len);
    }
    regions.push_back({seen_ - tail_len, std::move(tail)});
  }
  for (Window& w : windows_) {
    if (!w.bytes.empty()) regions.push_back({w.offset, std::move(w.bytes)});
  }
  windows_.clear();
  PartialSource source(seen_, std::move(regions));
  Result<ImageInfo> info = Inspect(source);
  if (!info.ok() && info.status().code() == Code::kUnavailable) {
    return Unavailable("streaming inspection could not decide from the kept regions (" +
                       info.status().message() + "); inspect the stored image");
  }
  return info;
}

}  // namespace ingot::formats
