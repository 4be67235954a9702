#include <gtest/gtest.h>

#include <filesystem>

#include "store/file/file_store.h"
#include "store/registry.h"
#include "store/testing/memory_store.h"

namespace ingot::store {
namespace {

class StoreSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ingot-storeset-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(registry_.Register("file", MakeFileStore).ok());
    ASSERT_TRUE(registry_
                    .Register("memory",
                              [](const StoreConfig& c) -> Result<std::unique_ptr<Store>> {
                                return std::unique_ptr<Store>(new MemoryStore(c.id));
                              })
                    .ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  StoreConfig File(std::string id, std::string sub) {
    return StoreConfig{.id = id, .driver = "file", .options = {{"path", (dir_ / sub).string()}}};
  }

  std::filesystem::path dir_;
  DriverRegistry registry_;
};

TEST_F(StoreSetTest, TheFileDriverConfiguredTwiceIsTwoStores) {
  auto set = BuildStoreSet(registry_, {File("fast", "a"), File("slow", "b")});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ((*set)->size(), 2u);
  EXPECT_EQ((*set)->default_store().id(), "fast");  // the first, when none is marked
  Store* slow = (*set)->Find("slow");
  ASSERT_NE(slow, nullptr);

  auto obj = slow->Create("k");
  ASSERT_TRUE(obj.ok());
  uint8_t byte = 7;
  ASSERT_TRUE((*obj)->Write({&byte, 1}).ok());
  ASSERT_TRUE((*obj)->Commit().ok());
  EXPECT_TRUE(slow->SizeOf("k").ok());
  EXPECT_EQ((*set)->Find("fast")->SizeOf("k").status().code(), Code::kNotFound);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "b" / "k"));
}

TEST_F(StoreSetTest, DefaultAndResolve) {
  StoreConfig b = File("b", "b");
  b.is_default = true;
  auto set = BuildStoreSet(registry_, {File("a", "a"), b});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ((*set)->default_store().id(), "b");
  EXPECT_EQ((*(*set)->ForWriting(""))->id(), "b");
  EXPECT_EQ((*(*set)->ForWriting("a"))->id(), "a");
  auto missing = (*set)->ForWriting("nope");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message(), "Store for identifier nope not found");
  auto described = (*set)->Describe();
  ASSERT_EQ(described.size(), 2u);
  EXPECT_FALSE(described[0].is_default);
  EXPECT_TRUE(described[1].is_default);
  EXPECT_EQ(described[1].driver, "file");
}

TEST_F(StoreSetTest, BadConfigurationIsRefusedNamingTheStore) {
  auto dup = BuildStoreSet(registry_, {File("a", "a"), File("a", "b")});
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);

  StoreConfig unknown{.id = "x", .driver = "rbd"};
  auto u = BuildStoreSet(registry_, {unknown});
  EXPECT_EQ(u.status().code(), Code::kInvalidArgument);
  EXPECT_NE(u.status().message().find("unknown driver 'rbd'"), std::string::npos);

  StoreConfig typo = File("t", "t");
  typo.options["pth"] = "/x";
  auto t = BuildStoreSet(registry_, {typo});
  EXPECT_NE(t.status().message().find("store 't'"), std::string::npos);
  EXPECT_NE(t.status().message().find("unknown option 'pth'"), std::string::npos);

  StoreConfig no_root{.id = "n", .driver = "file"};
  EXPECT_EQ(BuildStoreSet(registry_, {no_root}).status().code(), Code::kInvalidArgument);

  StoreConfig bad_chunk = File("c", "c");
  bad_chunk.options["writeback_chunk_mib"] = "lots";
  EXPECT_NE(BuildStoreSet(registry_, {bad_chunk}).status().message().find("writeback_chunk_mib"),
            std::string::npos);

  StoreConfig d1 = File("d1", "d1"), d2 = File("d2", "d2");
  d1.is_default = d2.is_default = true;
  EXPECT_EQ(BuildStoreSet(registry_, {d1, d2}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(registry_.Register("file", MakeFileStore).code(), Code::kAlreadyExists);

  StoreConfig ro = File("ro", "ro");
  ro.read_only = ro.is_default = true;
  EXPECT_NE(BuildStoreSet(registry_, {ro}).status().message().find("read-only"), std::string::npos);
}

TEST_F(StoreSetTest, ReadOnlyStoresServeButTakeNothing) {
  StoreConfig archive = File("archive", "archive");
  archive.read_only = true;
  auto set = BuildStoreSet(registry_, {archive, File("live", "live")});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ((*set)->default_store().id(), "live");  // the first writable one
  auto refused = (*set)->ForWriting("archive");
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(refused.status().message(), "Store archive is read-only");
  EXPECT_NE((*set)->Find("archive"), nullptr);  // still there for reading
}

}  // namespace
}  // namespace ingot::store
