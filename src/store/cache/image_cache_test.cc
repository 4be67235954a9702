// The image cache in front of the in-memory store: hits and misses, read-through fills only for
// whole reads, LRU pruning under a small limit, the pre-cache queue, restart, and the rule that an
// object the composition root says is not servable (deleted, deactivated) never comes from cache.
#include "store/cache/image_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "store/cache/caching_store.h"
#include "store/testing/memory_store.h"

namespace ingot::store {
namespace {

std::string ReadAll(io::ByteSource& s) {
  std::string out(s.Size(), '\0');
  uint64_t off = 0;
  while (off < s.Size()) {
    auto n = s.ReadAt(off, std::span(reinterpret_cast<uint8_t*>(out.data()) + off,
                                     std::min<uint64_t>(7, s.Size() - off)));
    EXPECT_TRUE(n.ok());
    if (!n.ok() || *n == 0) break;
    off += *n;
  }
  return out;
}

class ImageCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-cache-XXXXXX";
    dir_ = mkdtemp(tmpl);
    OpenCache(100);
  }
  void OpenCache(uint64_t max_size) {
    store_.reset();
    cache_.reset();
    cache_ = std::move(*ImageCache::Open({.dir = dir_ + "/cache",
                                                .max_size = max_size,
                                                .prefetch_delay = std::chrono::milliseconds(50)}));
    auto memory = std::make_unique<MemoryStore>("swift");
    memory_ = memory.get();
    store_ = std::make_unique<CachingStore>(std::move(memory), *cache_, [this](const std::string& k) {
      return blocked_.count(k) == 0;
    });
  }
  void Put(const std::string& key, const std::string& bytes) {
    auto w = memory_->Create(key);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())).ok());
    ASSERT_TRUE((*w)->Commit().ok());
  }
  std::string Download(const std::string& key) {
    auto s = store_->Open(key);
    EXPECT_TRUE(s.ok());
    return s.ok() ? ReadAll(**s) : "";
  }
  void TearDown() override {
    store_.reset();
    cache_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  std::string dir_;
  std::unique_ptr<ImageCache> cache_;
  MemoryStore* memory_ = nullptr;  // owned by store_
  std::unique_ptr<CachingStore> store_;
  std::set<std::string> blocked_;
};

TEST_F(ImageCacheTest, ReadThroughFillsThenHits) {
  Put("img-a", std::string(40, 'a'));
  EXPECT_EQ(Download("img-a"), std::string(40, 'a'));  // miss, filled on the way
  auto c = cache_->counters();
  EXPECT_EQ(c.misses, 1u);
  EXPECT_EQ(c.fills, 1u);
  EXPECT_TRUE(cache_->Contains("img-a"));
  // The store loses the object: the cache still answers (a hit), with the same bytes.
  ASSERT_TRUE(memory_->Delete("img-a").ok());
  EXPECT_EQ(Download("img-a"), std::string(40, 'a'));
  EXPECT_EQ(cache_->counters().hits, 1u);
  auto list = cache_->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].hits, 1u);
  EXPECT_EQ(list[0].size, 40u);
}

TEST_F(ImageCacheTest, RangeReadsDoNotFill) {
  Put("img-r", std::string(40, 'r'));
  auto s = store_->Open("img-r");
  ASSERT_TRUE(s.ok());
  uint8_t buf[10];
  ASSERT_TRUE((*s)->ReadAt(20, buf).ok());
  s->reset();
  EXPECT_FALSE(cache_->Contains("img-r"));
  EXPECT_EQ(cache_->counters().fills, 0u);
  // Nothing half-written is left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/cache")) {
    ADD_FAILURE() << "left " << e.path();
  }
}

TEST_F(ImageCacheTest, LeastRecentlyUsedIsPrunedUnderTheLimit) {
  Put("one", std::string(40, '1'));
  Put("two", std::string(40, '2'));
  Put("three", std::string(40, '3'));
  Download("one");
  Download("two");
  Download("one");  // "two" is now the least recently used
  Download("three");  // 120 > 100: "two" goes
  EXPECT_TRUE(cache_->Contains("one"));
  EXPECT_FALSE(cache_->Contains("two"));
  EXPECT_TRUE(cache_->Contains("three"));
  auto c = cache_->counters();
  EXPECT_EQ(c.evictions, 1u);
  EXPECT_LE(c.size, 100u);
  // An object bigger than the whole cache is served but never cached.
  Put("huge", std::string(101, 'h'));
  EXPECT_EQ(Download("huge").size(), 101u);
  EXPECT_FALSE(cache_->Contains("huge"));
}

TEST_F(ImageCacheTest, NotServableNeverComesFromCache) {
  Put("img-d", "original bytes");
  Download("img-d");
  ASSERT_TRUE(cache_->Contains("img-d"));
  blocked_.insert("img-d");  // deactivated, say
  uint64_t hits = cache_->counters().hits;
  EXPECT_EQ(Download("img-d"), "original bytes");  // from the store
  EXPECT_EQ(cache_->counters().hits, hits);
  EXPECT_FALSE(cache_->Contains("img-d"));
  // Deleted through the store: the cached copy goes with it.
  blocked_.clear();
  Download("img-d");
  ASSERT_TRUE(cache_->Contains("img-d"));
  ASSERT_TRUE(store_->Delete("img-d").ok());
  EXPECT_FALSE(cache_->Contains("img-d"));
  EXPECT_EQ(store_->Open("img-d").status().code(), Code::kNotFound);
}

// Another node deleted or deactivated images: the sweep asks, for every cached image, whether it
// may still be served, and drops the ones refused; the others stay, hits and all.
TEST_F(ImageCacheTest, SweepDropsWhatIsNoLongerServable) {
  Put("keep", std::string(20, 'k'));
  Put("gone", std::string(20, 'g'));
  Put("off", std::string(20, 'o'));
  Download("keep");
  Download("gone");
  Download("off");
  ASSERT_EQ(cache_->counters().entries, 3u);
  std::vector<std::string> asked;
  int removed = cache_->Sweep([&](const std::string& key) {
    asked.push_back(key);
    return key == "keep";
  });
  EXPECT_EQ(removed, 2);
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<std::string>{"gone", "keep", "off"}));
  EXPECT_TRUE(cache_->Contains("keep"));
  EXPECT_FALSE(cache_->Contains("gone"));
  EXPECT_FALSE(cache_->Contains("off"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/cache/gone"));
  EXPECT_EQ(cache_->counters().size, 20u);
  EXPECT_EQ(Download("keep"), std::string(20, 'k'));
  EXPECT_EQ(cache_->counters().hits, 1u);
  // Nothing refused, nothing removed.
  EXPECT_EQ(cache_->Sweep([](const std::string&) { return true; }), 0);
  EXPECT_TRUE(cache_->Contains("keep"));
}

// A download that was filling the cache when its image was deleted (here: swept) finishes for
// its client, but leaves no entry behind to be served later.
TEST_F(ImageCacheTest, RemovedWhileFillingLeavesNoEntry) {
  Put("img-f", std::string(40, 'f'));
  auto reader = store_->Open("img-f");
  ASSERT_TRUE(reader.ok());
  uint8_t buf[20];
  ASSERT_TRUE((*reader)->ReadAt(0, buf).ok());  // half read: the fill is under way
  EXPECT_EQ(cache_->Sweep([](const std::string&) { return false; }), 0);  // no entry yet
  ASSERT_TRUE((*reader)->ReadAt(20, buf).ok());  // the last byte: the fill commits
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 20), std::string(20, 'f'));
  reader->reset();
  EXPECT_FALSE(cache_->Contains("img-f"));
  EXPECT_EQ(cache_->counters().fills, 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/cache/img-f"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/cache/img-f.part"));
  // The same through Remove (a delete on this node), and the next whole read fills again.
  reader = store_->Open("img-f");
  ASSERT_TRUE((*reader)->ReadAt(0, buf).ok());
  ASSERT_TRUE(cache_->Remove("img-f").ok());
  ASSERT_TRUE((*reader)->ReadAt(20, buf).ok());
  reader->reset();
  EXPECT_FALSE(cache_->Contains("img-f"));
  EXPECT_EQ(Download("img-f"), std::string(40, 'f'));
  EXPECT_TRUE(cache_->Contains("img-f"));
}

TEST_F(ImageCacheTest, QueueFillsAndSurvivesRestart) {
  Put("q1", std::string(30, 'q'));
  EXPECT_TRUE(cache_->Queue("q1"));
  EXPECT_TRUE(cache_->Queue("q1"));  // once
  EXPECT_EQ(cache_->Queued(), std::vector<std::string>{"q1"});
  std::atomic<bool> stop{false};
  auto key = cache_->NextQueued(stop);
  ASSERT_EQ(key, "q1");
  EXPECT_EQ(cache_->Queued(), std::vector<std::string>{"q1"});  // listed while in progress
  auto src = memory_->Open("q1");
  ASSERT_TRUE(cache_->FillFrom(*key, **src).ok());
  cache_->Done(*key);
  EXPECT_TRUE(cache_->Queued().empty());
  EXPECT_TRUE(cache_->Contains("q1"));
  EXPECT_FALSE(cache_->Queue("q1"));  // cached already
  // The worker's read through a read-through store (which fills the cache itself) caches it too.
  Put("q3", std::string(20, '3'));
  auto through = store_->Open("q3");
  ASSERT_TRUE(through.ok());
  ASSERT_TRUE(cache_->FillFrom("q3", **through).ok());
  through->reset();
  EXPECT_TRUE(cache_->Contains("q3"));
  ASSERT_TRUE(cache_->Remove("q3").ok());
  // A partial file from a crash is removed at start; complete entries are adopted.
  {
    FILE* f = std::fopen((dir_ + "/cache/q2.part").c_str(), "w");
    std::fputs("partial", f);
    std::fclose(f);
  }
  OpenCache(100);
  EXPECT_TRUE(cache_->Contains("q1"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/cache/q2.part"));
  EXPECT_EQ(cache_->Clear(), 1);
  EXPECT_TRUE(cache_->List().empty());
  // Keys that could name a path are never cached.
  EXPECT_FALSE(ImageCache::CacheableKey("../etc"));
  EXPECT_FALSE(ImageCache::CacheableKey("a/b"));
  EXPECT_TRUE(ImageCache::CacheableKey("0b2c7f3e-1f5a-4c43-9d0e-2f7a0e1c5b6d"));
  cache_->Shutdown();
  EXPECT_FALSE(cache_->NextQueued(stop).has_value());
}

}  // namespace
}  // namespace ingot::store
