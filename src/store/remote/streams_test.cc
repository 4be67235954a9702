// RangedSource over a fake store: the bytes come back right whatever the reads, a sequential read
// ramps up to whole aligned blocks (few, large requests), a short Range read stays short, and a
// stream the store cut is resumed where it stopped.
#include "store/remote/streams.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace ingot::store::remote {
namespace {

constexpr uint64_t kMiB = 1 << 20;

struct FakeStore {
  std::vector<uint8_t> object;
  std::mutex mu;
  std::vector<std::pair<uint64_t, uint64_t>> requests;  // [first, last]
  int cut_once_at = -1;  // cut the stream of this request number after 1000 bytes

  RangeGet Getter() {
    return [this](uint64_t first, uint64_t last, const BodySink& sink) -> Status {
      int n;
      {
        std::lock_guard l(mu);
        n = static_cast<int>(requests.size());
        requests.emplace_back(first, last);
      }
      uint64_t end = last + 1;
      if (n == cut_once_at) end = std::min(end, first + 1000);
      for (uint64_t at = first; at < end;) {
        const uint64_t len = std::min<uint64_t>(64 << 10, end - at);  // packets of 64 KiB
        INGOT_RETURN_IF_ERROR(sink(std::span<const uint8_t>(object.data() + at, len)));
        at += len;
      }
      return Status::Ok();
    };
  }
};

std::vector<uint8_t> Pattern(uint64_t size) {
  std::vector<uint8_t> v(size);
  for (uint64_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>((i * 7919) >> 3);
  return v;
}

TEST(RangedSourceTest, ASequentialReadRampsUpToWholeAlignedBlocks) {
  FakeStore store;
  store.object = Pattern(100 * kMiB + 12345);
  RangedSource source(store.object.size(), store.Getter(), 3, 3, 16 * kMiB);
  std::vector<uint8_t> got;
  std::vector<uint8_t> buf(1 * kMiB);
  for (uint64_t at = 0; at < store.object.size();) {
    auto n = source.ReadAt(at, buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_GT(*n, 0u);
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
    at += *n;
  }
  EXPECT_TRUE(got == store.object);
  std::lock_guard l(store.mu);
  auto requests = store.requests;  // in the order workers began them
  std::sort(requests.begin(), requests.end());
  // Small first (1 MiB), growing while the read stays sequential; from 16 MiB on, whole 16 MiB
  // blocks on 16 MiB boundaries (the last one ends with the object).
  EXPECT_EQ(requests[0], std::make_pair(uint64_t{0}, kMiB - 1));
  uint64_t expect_first = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto [first, last] = requests[i];
    EXPECT_EQ(first, expect_first) << i;  // no gap, no overlap
    expect_first = last + 1;
    if (first >= 16 * kMiB && last + 1 < store.object.size()) {
      EXPECT_EQ(first % (16 * kMiB), 0u) << i;
      EXPECT_EQ(last - first + 1, 16 * kMiB) << i;
    }
  }
  EXPECT_EQ(expect_first, store.object.size());
  EXPECT_LE(store.requests.size(), 12u);  // 100 MiB in 12 requests, not one per MiB
}

TEST(RangedSourceTest, AShortRangeReadStaysShortAndRandomReadsAreRight) {
  FakeStore store;
  store.object = Pattern(40 * kMiB);
  RangedSource source(store.object.size(), store.Getter(), 3, 3, 16 * kMiB);
  std::vector<uint8_t> buf(4096);
  for (uint64_t at : {uint64_t{30 * kMiB + 5}, uint64_t{7}, uint64_t{40 * kMiB - 100}}) {
    auto n = source.ReadAt(at, buf);
    ASSERT_TRUE(n.ok());
    ASSERT_GT(*n, 0u);
    EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + static_cast<long>(*n),
                           store.object.begin() + static_cast<long>(at)));
  }
  std::lock_guard l(store.mu);
  for (const auto& [first, last] : store.requests) EXPECT_LE(last - first + 1, kMiB);
}

TEST(RangedSourceTest, AStreamTheStoreCutIsResumedWhereItStopped) {
  FakeStore store;
  store.object = Pattern(10 * kMiB);
  store.cut_once_at = 2;
  RangedSource source(store.object.size(), store.Getter(), 3, 3, 4 * kMiB);
  std::vector<uint8_t> got;
  std::vector<uint8_t> buf(256 << 10);
  for (uint64_t at = 0; at < store.object.size();) {
    auto n = source.ReadAt(at, buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
    at += *n;
  }
  EXPECT_TRUE(got == store.object);
}

}  // namespace
}  // namespace ingot::store::remote
