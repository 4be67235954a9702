#include "catalog/sqlite/sqlite_repository.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "common/time.h"

namespace ingot::catalog {
namespace {

std::string Uuid(int n) {
  char buf[40];
  snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
}

Image MakeImage(int n, std::optional<std::string> owner = "p1",
                Visibility v = Visibility::kPrivate) {
  Image im;
  im.id = Uuid(n);
  im.name = "image-" + std::to_string(n);
  im.owner = std::move(owner);
  im.visibility = v;
  im.created_at = im.updated_at = 1'700'000'000'000'000 + int64_t{n} * 1'000'000;
  return im;
}

std::vector<std::string> Ids(const ImagePage& page) {
  std::vector<std::string> ids;
  for (const auto& im : page.images) ids.push_back(im.id);
  return ids;
}

class SqliteRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-catalog-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/catalog.db";
    Reopen();
  }
  void TearDown() override {
    repo_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    repo_.reset();
    auto r = SqliteImageRepository::Open(path_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    repo_ = std::move(*r);
  }
  ImagePage MustList(const std::vector<std::pair<std::string, std::string>>& params,
                     const Viewer& viewer = Viewer{std::nullopt, true}) {
    auto q = ParseListQuery(params);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    if (!q.ok()) return {};
    auto page = repo_->List(*q, viewer);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? *page : ImagePage{};
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<SqliteImageRepository> repo_;
};

TEST_F(SqliteRepositoryTest, AddGetRoundTripsEveryField) {
  Image im = MakeImage(1);
  im.status = ImageStatus::kActive;
  im.visibility = Visibility::kCommunity;
  im.is_protected = true;
  im.os_hidden = true;
  im.disk_format = "qcow2";
  im.container_format = "bare";
  im.size = 123456789012;
  im.virtual_size = 987654321098;
  im.min_disk = 10;
  im.min_ram = 512;
  im.checksum = "d41d8cd98f00b204e9800998ecf8427e";
  im.os_hash_algo = "sha512";
  im.os_hash_value = "abc";
  im.tags = {"x86", "64bit", "o'brien\"; DROP TABLE images; --"};
  im.properties = {{"os_distro", "debian"}, {"hw_disk_bus", "virtio"}, {"empty", ""}};
  im.locations = {{"file", "a/b"}, {"swift", "c"}};
  ASSERT_TRUE(repo_->Add(im).ok());

  auto got = repo_->Get(im.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, im.id);
  EXPECT_EQ(got->name, im.name);
  EXPECT_EQ(got->status, ImageStatus::kActive);
  EXPECT_EQ(got->visibility, Visibility::kCommunity);
  EXPECT_TRUE(got->is_protected);
  EXPECT_TRUE(got->os_hidden);
  EXPECT_EQ(got->owner, im.owner);
  EXPECT_EQ(got->disk_format, im.disk_format);
  EXPECT_EQ(got->container_format, im.container_format);
  EXPECT_EQ(got->size, im.size);
  EXPECT_EQ(got->virtual_size, im.virtual_size);
  EXPECT_EQ(got->min_disk, 10u);
  EXPECT_EQ(got->min_ram, 512u);
  EXPECT_EQ(got->checksum, im.checksum);
  EXPECT_EQ(got->os_hash_algo, im.os_hash_algo);
  EXPECT_EQ(got->os_hash_value, im.os_hash_value);
  EXPECT_EQ(got->created_at, im.created_at);
  EXPECT_EQ(got->updated_at, im.updated_at);
  EXPECT_EQ(got->tags, im.tags);
  EXPECT_EQ(got->properties, im.properties);
  ASSERT_EQ(got->locations.size(), 2u);
  EXPECT_EQ(got->locations[0].store, "file");
  EXPECT_EQ(got->locations[0].key, "a/b");
  EXPECT_EQ(got->locations[1].store, "swift");
  EXPECT_EQ(got->version, 1);
}

TEST_F(SqliteRepositoryTest, NullsStayNull) {
  Image im = MakeImage(1, std::nullopt);
  im.name.reset();
  ASSERT_TRUE(repo_->Add(im).ok());
  auto got = repo_->Get(im.id);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->name.has_value());
  EXPECT_FALSE(got->owner.has_value());
  EXPECT_FALSE(got->size.has_value());
  EXPECT_FALSE(got->checksum.has_value());
  EXPECT_TRUE(got->tags.empty());
  EXPECT_TRUE(got->locations.empty());
}

TEST_F(SqliteRepositoryTest, GetMissingIsNotFound) {
  EXPECT_EQ(repo_->Get(Uuid(404)).status().code(), Code::kNotFound);
}

TEST_F(SqliteRepositoryTest, DuplicateAddIsAlreadyExists) {
  ASSERT_TRUE(repo_->Add(MakeImage(1)).ok());
  EXPECT_EQ(repo_->Add(MakeImage(1)).code(), Code::kAlreadyExists);
}

TEST_F(SqliteRepositoryTest, SaveBumpsVersionAndReplacesChildren) {
  Image im = MakeImage(1);
  im.tags = {"a", "b"};
  im.properties = {{"k", "v"}};
  ASSERT_TRUE(repo_->Add(im).ok());
  Image got = *repo_->Get(im.id);
  got.name = "renamed";
  got.status = ImageStatus::kActive;
  got.tags = {"b", "c"};
  got.properties = {{"k2", "v2"}};
  got.locations = {{"file", "k"}};
  got.updated_at += 5;
  ASSERT_TRUE(repo_->Save(got).ok());
  Image again = *repo_->Get(im.id);
  EXPECT_EQ(again.version, 2);
  EXPECT_EQ(again.name, "renamed");
  EXPECT_EQ(again.status, ImageStatus::kActive);
  EXPECT_EQ(again.tags, (std::set<std::string>{"b", "c"}));
  EXPECT_EQ(again.properties, (std::map<std::string, std::string>{{"k2", "v2"}}));
  ASSERT_EQ(again.locations.size(), 1u);
  EXPECT_EQ(again.updated_at, got.updated_at);
  EXPECT_EQ(again.created_at, im.created_at);
}

TEST_F(SqliteRepositoryTest, StaleSaveIsConflict) {
  ASSERT_TRUE(repo_->Add(MakeImage(1)).ok());
  Image a = *repo_->Get(Uuid(1));
  Image b = a;
  a.name = "first";
  ASSERT_TRUE(repo_->Save(a).ok());
  b.name = "second";
  b.tags = {"lost"};
  EXPECT_EQ(repo_->Save(b).code(), Code::kConflict);
  Image stored = *repo_->Get(Uuid(1));
  EXPECT_EQ(stored.name, "first");
  EXPECT_TRUE(stored.tags.empty());  // the losing save wrote nothing
}

TEST_F(SqliteRepositoryTest, SaveMissingIsNotFound) {
  EXPECT_EQ(repo_->Save(MakeImage(7)).code(), Code::kNotFound);
}

TEST_F(SqliteRepositoryTest, RemoveKeepsIdReserved) {
  ASSERT_TRUE(repo_->Add(MakeImage(1)).ok());
  Image before = *repo_->Get(Uuid(1));
  ASSERT_TRUE(repo_->Remove(Uuid(1)).ok());
  EXPECT_EQ(repo_->Get(Uuid(1)).status().code(), Code::kNotFound);
  EXPECT_EQ(repo_->Remove(Uuid(1)).code(), Code::kNotFound);
  EXPECT_EQ(repo_->Save(before).code(), Code::kNotFound);
  EXPECT_EQ(repo_->Add(MakeImage(1)).code(), Code::kAlreadyExists);
  EXPECT_TRUE(MustList({}).images.empty());
  EXPECT_EQ(repo_->Remove(Uuid(2)).code(), Code::kNotFound);
}

TEST_F(SqliteRepositoryTest, ListDefaultOrderNewestFirst) {
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(repo_->Add(MakeImage(i)).ok());
  auto page = MustList({});
  EXPECT_EQ(Ids(page), (std::vector<std::string>{Uuid(5), Uuid(4), Uuid(3), Uuid(2), Uuid(1)}));
  EXPECT_FALSE(page.next_marker.has_value());
}

TEST_F(SqliteRepositoryTest, ListByStatusAndCount) {
  for (int i = 1; i <= 4; ++i) {
    Image im = MakeImage(i);
    im.status = i % 2 ? ImageStatus::kSaving : ImageStatus::kActive;
    ASSERT_TRUE(repo_->Add(im).ok());
  }
  ASSERT_TRUE(repo_->Remove(Uuid(1)).ok());
  auto saving = repo_->ListByStatus({ImageStatus::kSaving});
  ASSERT_TRUE(saving.ok());
  ASSERT_EQ(saving->size(), 1u);
  EXPECT_EQ((*saving)[0].id, Uuid(3));
  auto counts = repo_->CountByStatus();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)[ImageStatus::kActive], 2);
  EXPECT_EQ((*counts)[ImageStatus::kSaving], 1);
  EXPECT_EQ(counts->count(ImageStatus::kDeleted), 0u);
}

}  // namespace
}  // namespace ingot::catalog
