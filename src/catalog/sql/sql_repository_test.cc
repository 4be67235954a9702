#include "catalog/sql/sql_repository.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "catalog/sql/testing/engines.h"
#include "common/time.h"

using Params = std::vector<std::pair<std::string, std::string>>;

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

class CatalogTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto db = testing::EngineDatabase::Create(GetParam());
    if (db.status().code() == Code::kUnsupported) GTEST_SKIP() << db.status().message();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    Reopen();
  }
  void TearDown() override {
    repo_.reset();
    db_.reset();
  }
  void Reopen() {
    repo_.reset();
    auto r = db_->Open();
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

  std::unique_ptr<testing::EngineDatabase> db_;
  std::unique_ptr<SqlRepository> repo_;
};

TEST_P(CatalogTest, AddGetRoundTripsEveryField) {
  Image im = MakeImage(1);
  StoredStatus::Restore(im, ImageStatus::kActive);
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
  im.locations = {{"file", "a/b"}, {"swift", "c", R"({"foo": "bar", "store": "swift"})"}};
  ASSERT_TRUE(repo_->Add(im).ok());

  auto got = repo_->Get(im.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, im.id);
  EXPECT_EQ(got->name, im.name);
  EXPECT_EQ(got->status(), ImageStatus::kActive);
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
  EXPECT_EQ(got->locations[0].metadata, "");  // a location's metadata, kept as given
  EXPECT_EQ(got->locations[1].metadata, R"({"foo": "bar", "store": "swift"})");
  EXPECT_EQ(got->version, 1);
}

TEST_P(CatalogTest, NullsStayNull) {
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

TEST_P(CatalogTest, GetMissingIsNotFound) {
  EXPECT_EQ(repo_->Get(Uuid(404)).status().code(), Code::kNotFound);
}

TEST_P(CatalogTest, DuplicateAddIsAlreadyExists) {
  ASSERT_TRUE(repo_->Add(MakeImage(1)).ok());
  EXPECT_EQ(repo_->Add(MakeImage(1)).code(), Code::kAlreadyExists);
}

TEST_P(CatalogTest, SaveBumpsVersionAndReplacesChildren) {
  Image im = MakeImage(1);
  im.tags = {"a", "b"};
  im.properties = {{"k", "v"}};
  ASSERT_TRUE(repo_->Add(im).ok());
  Image got = *repo_->Get(im.id);
  got.name = "renamed";
  StoredStatus::Restore(got, ImageStatus::kActive);
  got.tags = {"b", "c"};
  got.properties = {{"k2", "v2"}};
  got.locations = {{"file", "k"}};
  got.updated_at += 5;
  ASSERT_TRUE(repo_->Save(got).ok());
  Image again = *repo_->Get(im.id);
  EXPECT_EQ(again.version, 2);
  EXPECT_EQ(again.name, "renamed");
  EXPECT_EQ(again.status(), ImageStatus::kActive);
  EXPECT_EQ(again.tags, (std::set<std::string>{"b", "c"}));
  EXPECT_EQ(again.properties, (std::map<std::string, std::string>{{"k2", "v2"}}));
  ASSERT_EQ(again.locations.size(), 1u);
  EXPECT_EQ(again.updated_at, got.updated_at);
  EXPECT_EQ(again.created_at, im.created_at);
}

TEST_P(CatalogTest, StaleSaveIsConflict) {
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

TEST_P(CatalogTest, SaveMissingIsNotFound) {
  EXPECT_EQ(repo_->Save(MakeImage(7)).code(), Code::kNotFound);
}

TEST_P(CatalogTest, RemoveKeepsIdReserved) {
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

TEST_P(CatalogTest, ListDefaultOrderNewestFirst) {
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(repo_->Add(MakeImage(i)).ok());
  auto page = MustList({});
  EXPECT_EQ(Ids(page), (std::vector<std::string>{Uuid(5), Uuid(4), Uuid(3), Uuid(2), Uuid(1)}));
  EXPECT_FALSE(page.next_marker.has_value());
}

TEST_P(CatalogTest, ListByStatusAndCount) {
  for (int i = 1; i <= 4; ++i) {
    Image im = MakeImage(i);
    StoredStatus::Restore(im, i % 2 ? ImageStatus::kSaving : ImageStatus::kActive);
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

TEST_P(CatalogTest, ListByStatusLoadsChildrenPastOneSlice) {
  for (int i = 1; i <= 250; ++i) {
    Image im = MakeImage(i);
    StoredStatus::Restore(im, ImageStatus::kSaving);
    im.tags = {"t" + std::to_string(i)};
    im.locations = {{"file", "k" + std::to_string(i)}};
    ASSERT_TRUE(repo_->Add(im).ok());
  }
  auto saving = repo_->ListByStatus({ImageStatus::kSaving, ImageStatus::kUploading});
  ASSERT_TRUE(saving.ok());
  ASSERT_EQ(saving->size(), 250u);
  for (int i = 1; i <= 250; ++i) {
    const Image& im = (*saving)[i - 1];
    EXPECT_EQ(im.id, Uuid(i));
    EXPECT_EQ(im.tags, (std::set<std::string>{"t" + std::to_string(i)}));
    ASSERT_EQ(im.locations.size(), 1u);
    EXPECT_EQ(im.locations[0].key, "k" + std::to_string(i));
  }
}

// ---- filters ----

class CatalogListFilterTest : public CatalogTest {
 protected:
  void SetUp() override {
    CatalogTest::SetUp();
    if (IsSkipped()) return;
    // 1: debian qcow2 active 100 bytes, tags x86 64bit, os_distro=debian
    // 2: cirros raw queued, no size, tag x86
    // 3: debian raw active 300 bytes, protected, hidden
    // 4: "a:b" iso active 200 bytes, min_ram 512, owner p2
    Image a = MakeImage(1);
    a.name = "debian";
    a.disk_format = "qcow2";
    a.container_format = "bare";
    StoredStatus::Restore(a, ImageStatus::kActive);
    a.size = 100;
    a.tags = {"x86", "64bit"};
    a.properties = {{"os_distro", "debian"}};
    Image b = MakeImage(2);
    b.name = "cirros";
    b.disk_format = "raw";
    b.container_format = "bare";
    b.tags = {"x86"};
    Image c = MakeImage(3);
    c.name = "debian";
    c.disk_format = "raw";
    c.container_format = "ovf";
    StoredStatus::Restore(c, ImageStatus::kActive);
    c.size = 300;
    c.is_protected = true;
    c.os_hidden = true;
    Image d = MakeImage(4, "p2");
    d.name = "a:b";
    d.disk_format = "iso";
    StoredStatus::Restore(d, ImageStatus::kActive);
    d.size = 200;
    d.min_ram = 512;
    d.checksum = "abc";
    for (const Image& im : {a, b, c, d}) ASSERT_TRUE(repo_->Add(im).ok());
  }
  // Ids of images matching, as an admin with visibility=all sees them, oldest first.
  std::vector<int> Match(Params params) {
    params.emplace_back("visibility", "all");
    params.emplace_back("sort_key", "created_at");
    params.emplace_back("sort_dir", "asc");
    std::vector<int> out;
    for (const auto& id : Ids(MustList(params))) out.push_back(std::stoi(id.substr(24)));
    return out;
  }
};

using V = std::vector<int>;

TEST_P(CatalogListFilterTest, HiddenExcludedByDefault) {
  EXPECT_EQ(Match({}), (V{1, 2, 4}));
  EXPECT_EQ(Match({{"os_hidden", "true"}}), (V{3}));
  EXPECT_EQ(Match({{"os_hidden", "false"}}), (V{1, 2, 4}));
}

TEST_P(CatalogListFilterTest, NameStatusFormats) {
  EXPECT_EQ(Match({{"name", "debian"}}), (V{1}));
  EXPECT_EQ(Match({{"name", "debian"}, {"os_hidden", "true"}}), (V{3}));
  EXPECT_EQ(Match({{"name", "eq:a:b"}}), (V{4}));
  EXPECT_EQ(Match({{"name", "in:cirros,\"a:b\""}}), (V{2, 4}));
  EXPECT_EQ(Match({{"status", "queued"}}), (V{2}));
  EXPECT_EQ(Match({{"status", "in:queued,active"}}), (V{1, 2, 4}));
  EXPECT_EQ(Match({{"status", "killed"}}), (V{}));
  EXPECT_EQ(Match({{"disk_format", "raw"}}), (V{2}));
  EXPECT_EQ(Match({{"disk_format", "in:iso,qcow2"}}), (V{1, 4}));
  EXPECT_EQ(Match({{"container_format", "bare"}}), (V{1, 2}));
  EXPECT_EQ(Match({{"id", "in:" + Uuid(2) + "," + Uuid(4)}}), (V{2, 4}));
  EXPECT_EQ(Match({{"id", Uuid(1)}}), (V{1}));
  EXPECT_EQ(Match({{"id", "in:"}}), (V{}));
}

TEST_P(CatalogListFilterTest, OwnerChecksumAndNumbers) {
  EXPECT_EQ(Match({{"owner", "p2"}}), (V{4}));
  EXPECT_EQ(Match({{"checksum", "abc"}}), (V{4}));
  EXPECT_EQ(Match({{"min_ram", "512"}}), (V{4}));
  EXPECT_EQ(Match({{"min_ram", "lots"}}), (V{}));
  EXPECT_EQ(Match({{"size", "100"}}), (V{1}));
}

TEST_P(CatalogListFilterTest, SizeRange) {
  EXPECT_EQ(Match({{"size_min", "150"}}), (V{4}));
  EXPECT_EQ(Match({{"size_max", "200"}}), (V{1, 4}));
  EXPECT_EQ(Match({{"size_min", "100"}, {"size_max", "100"}}), (V{1}));
  EXPECT_EQ(Match({{"size_min", "0"}, {"os_hidden", "true"}}), (V{3}));
}

TEST_P(CatalogListFilterTest, TagsMustAllMatch) {
  EXPECT_EQ(Match({{"tag", "x86"}}), (V{1, 2}));
  EXPECT_EQ(Match({{"tag", "x86"}, {"tag", "64bit"}}), (V{1}));
  EXPECT_EQ(Match({{"tag", "x86"}, {"tag", "arm"}}), (V{}));
}

TEST_P(CatalogListFilterTest, ProtectedAndProperties) {
  EXPECT_EQ(Match({{"protected", "true"}, {"os_hidden", "true"}}), (V{3}));
  EXPECT_EQ(Match({{"protected", "false"}}), (V{1, 2, 4}));
  EXPECT_EQ(Match({{"os_distro", "debian"}}), (V{1}));
  EXPECT_EQ(Match({{"os_distro", "ubuntu"}}), (V{}));
  EXPECT_EQ(Match({{"os_distro", "debian"}, {"tag", "64bit"}}), (V{1}));
  // A value that looks like SQL is only ever a bound value.
  EXPECT_EQ(Match({{"os_distro", "x' OR '1'='1"}}), (V{}));
}

TEST_P(CatalogListFilterTest, Times) {
  // MakeImage(n) is created at 1'700'000'000 + n seconds.
  auto iso = [](int n) { return FormatIso8601((int64_t{1'700'000'000} + n) * 1'000'000); };
  EXPECT_EQ(Match({{"created_at", "gt:" + iso(2)}}), (V{4}));
  EXPECT_EQ(Match({{"created_at", "gte:" + iso(2)}}), (V{2, 4}));
  EXPECT_EQ(Match({{"created_at", "lt:" + iso(2)}}), (V{1}));
  EXPECT_EQ(Match({{"created_at", "lte:" + iso(2)}}), (V{1, 2}));
  EXPECT_EQ(Match({{"created_at", iso(4)}}), (V{4}));
  EXPECT_EQ(Match({{"created_at", "neq:" + iso(4)}}), (V{1, 2}));
  EXPECT_EQ(Match({{"updated_at", "eq:" + iso(1)}}), (V{1}));
}

// ---- sorting and pagination ----

TEST_P(CatalogTest, MultiKeySortWithNulls) {
  // name: b, a, NULL, a ; size: 1, 2, 3, NULL
  std::vector<std::pair<std::optional<std::string>, std::optional<uint64_t>>> spec = {
      {"b", 1}, {"a", 2}, {std::nullopt, 3}, {"a", std::nullopt}};
  for (int i = 0; i < 4; ++i) {
    Image im = MakeImage(i + 1);
    im.name = spec[i].first;
    im.size = spec[i].second;
    ASSERT_TRUE(repo_->Add(im).ok());
  }
  EXPECT_EQ(Ids(MustList({{"sort", "name:asc,size:desc"}})),
            (std::vector<std::string>{Uuid(3), Uuid(2), Uuid(4), Uuid(1)}));
  EXPECT_EQ(Ids(MustList({{"sort", "name:desc,size:asc"}})),
            (std::vector<std::string>{Uuid(1), Uuid(4), Uuid(2), Uuid(3)}));
  EXPECT_EQ(Ids(MustList({{"sort_key", "size"}, {"sort_dir", "asc"}})),
            (std::vector<std::string>{Uuid(4), Uuid(1), Uuid(2), Uuid(3)}));
  EXPECT_EQ(Ids(MustList({{"sort_key", "id"}, {"sort_dir", "asc"}})),
            (std::vector<std::string>{Uuid(1), Uuid(2), Uuid(3), Uuid(4)}));
}

TEST_P(CatalogTest, PaginationWalksEveryImageOnce) {
  const char* names[] = {"alpha", "beta", "gamma", nullptr};
  for (int i = 1; i <= 103; ++i) {
    Image im = MakeImage(i);
    im.name = names[i % 4] ? std::optional<std::string>(names[i % 4]) : std::nullopt;
    if (i % 5) im.size = static_cast<uint64_t>(i % 7);
    im.disk_format = i % 3 ? std::optional<std::string>("raw") : std::nullopt;
    // Many images share a creation time, so the id tiebreaker matters.
    im.created_at = 1'700'000'000'000'000 + (i / 10) * 1'000'000;
    im.updated_at = im.created_at + (i % 4);
    ASSERT_TRUE(repo_->Add(im).ok());
  }
  const std::vector<std::vector<std::pair<std::string, std::string>>> sorts = {
      {},
      {{"sort", "name:asc,size:desc"}},
      {{"sort", "name:desc,size:asc"}},
      {{"sort_key", "size"}, {"sort_key", "disk_format"}, {"sort_dir", "asc"}},
      {{"sort_key", "updated_at"}},
      {{"sort", "status:asc,id:desc"}},
  };
  for (const auto& sort : sorts) {
    auto all_params = sort;
    all_params.emplace_back("limit", "1000");
    auto all = MustList(all_params);
    ASSERT_EQ(all.images.size(), 103u);
    EXPECT_FALSE(all.next_marker.has_value());

    std::vector<std::string> walked;
    std::optional<std::string> marker;
    int pages = 0;
    do {
      auto params = sort;
      params.emplace_back("limit", "10");
      if (marker) params.emplace_back("marker", *marker);
      auto page = MustList(params);
      ASSERT_LE(page.images.size(), 10u);
      for (const auto& id : Ids(page)) walked.push_back(id);
      marker = page.next_marker;
      ASSERT_LT(++pages, 20);
    } while (marker);
    EXPECT_EQ(pages, 11);
    EXPECT_EQ(walked, Ids(all)) << "sort " << (sort.empty() ? "default" : sort[0].second);
  }
}

TEST_P(CatalogTest, NextMarkerOnlyWhenMoreFollow) {
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(repo_->Add(MakeImage(i)).ok());
  auto p1 = MustList({{"limit", "2"}});
  EXPECT_EQ(Ids(p1), (std::vector<std::string>{Uuid(4), Uuid(3)}));
  ASSERT_EQ(p1.next_marker, Uuid(3));
  auto p2 = MustList({{"limit", "2"}, {"marker", Uuid(3)}});
  EXPECT_EQ(Ids(p2), (std::vector<std::string>{Uuid(2), Uuid(1)}));
  EXPECT_FALSE(p2.next_marker.has_value());  // exactly full last page: no empty extra page
  EXPECT_TRUE(MustList({{"limit", "0"}}).images.empty());
  EXPECT_TRUE(MustList({{"marker", Uuid(1)}}).images.empty());
}

TEST_P(CatalogTest, AdminPagesOnPastADeletedMarker) {
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(repo_->Add(MakeImage(i)).ok());
  auto p1 = MustList({{"limit", "2"}});
  ASSERT_EQ(p1.next_marker, Uuid(3));
  ASSERT_TRUE(repo_->Remove(Uuid(3)).ok());
  auto p2 = MustList({{"limit", "2"}, {"marker", Uuid(3)}});
  EXPECT_EQ(Ids(p2), (std::vector<std::string>{Uuid(2), Uuid(1)}));
}

TEST_P(CatalogTest, BadMarkerIsInvalidArgument) {
  ASSERT_TRUE(repo_->Add(MakeImage(1, "p1", Visibility::kPrivate)).ok());
  ASSERT_TRUE(repo_->Add(MakeImage(2)).ok());
  ASSERT_TRUE(repo_->Remove(Uuid(2)).ok());
  auto list = [&](const std::string& marker, const Viewer& v) {
    auto q = ParseListQuery({{"marker", marker}});
    return repo_->List(*q, v).status();
  };
  Status unknown = list("00000000-0000-0000-0000-000000000000", Viewer{std::nullopt, true});
  EXPECT_EQ(unknown.code(), Code::kInvalidArgument);
  EXPECT_EQ(unknown.message(), "No image found with ID 00000000-0000-0000-0000-000000000000");
  // A marker deleted meanwhile: admins page on (as in Glance), others are told it is gone.
  EXPECT_TRUE(list(Uuid(2), Viewer{std::nullopt, true}).ok());
  EXPECT_EQ(list(Uuid(2), Viewer{"p1", false}).code(), Code::kInvalidArgument);
  // Another project's private image is not a marker it may use (and its existence is not told).
  Status hidden = list(Uuid(1), Viewer{"p9", false});
  EXPECT_EQ(hidden.code(), Code::kInvalidArgument);
  EXPECT_EQ(hidden.message(), "No image found with ID " + Uuid(1));
  EXPECT_TRUE(list(Uuid(1), Viewer{"p1", false}).ok());
}

// ---- visibility ----

class CatalogVisibilityTest : public CatalogTest {
 protected:
  void SetUp() override {
    CatalogTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(repo_->Add(MakeImage(1, "owner", Visibility::kPublic)).ok());
    ASSERT_TRUE(repo_->Add(MakeImage(2, "owner", Visibility::kPrivate)).ok());
    ASSERT_TRUE(repo_->Add(MakeImage(3, "owner", Visibility::kShared)).ok());
    ASSERT_TRUE(repo_->Add(MakeImage(4, "owner", Visibility::kCommunity)).ok());
    ImageMember m{Uuid(3), "member", MemberStatus::kAccepted, 1, 1};
    ASSERT_TRUE(repo_->AddMember(m).ok());
    ImageMember p{Uuid(3), "pending", MemberStatus::kPending, 1, 1};
    ASSERT_TRUE(repo_->AddMember(p).ok());
    ImageMember r{Uuid(3), "rejected", MemberStatus::kRejected, 1, 1};
    ASSERT_TRUE(repo_->AddMember(r).ok());
    // A membership of a private image grants nothing.
    ImageMember priv{Uuid(2), "member", MemberStatus::kAccepted, 1, 1};
    ASSERT_TRUE(repo_->AddMember(priv).ok());
  }
  std::vector<int> Seen(const Viewer& v,
                        std::vector<std::pair<std::string, std::string>> params = {}) {
    params.emplace_back("sort_key", "created_at");
    params.emplace_back("sort_dir", "asc");
    std::vector<int> out;
    for (const auto& id : Ids(MustList(params, v))) out.push_back(std::stoi(id.substr(24)));
    return out;
  }
};

TEST_P(CatalogVisibilityTest, Matrix) {
  const Viewer admin{std::nullopt, true};
  const Viewer admin_in_project{"adminproject", true};
  const Viewer owner{"owner", false};
  const Viewer other{"other", false};
  const Viewer member{"member", false};
  const Viewer pending{"pending", false};
  const Viewer rejected{"rejected", false};
  const Viewer anonymous{std::nullopt, false};

  // Without a visibility filter, community images are listed only to their owner (admins too).
  EXPECT_EQ(Seen(admin), (V{1, 2, 3}));
  EXPECT_EQ(Seen(admin_in_project), (V{1, 2, 3}));
  EXPECT_EQ(Seen(owner), (V{1, 2, 3, 4}));
  EXPECT_EQ(Seen(other), (V{1}));
  EXPECT_EQ(Seen(member), (V{1, 3}));
  EXPECT_EQ(Seen(pending), (V{1}));
  EXPECT_EQ(Seen(rejected), (V{1}));
  EXPECT_EQ(Seen(anonymous), (V{1}));

  EXPECT_EQ(Seen(admin, {{"visibility", "all"}}), (V{1, 2, 3, 4}));
  EXPECT_EQ(Seen(owner, {{"visibility", "all"}}), (V{1, 2, 3, 4}));
  EXPECT_EQ(Seen(other, {{"visibility", "all"}}), (V{1, 4}));
  EXPECT_EQ(Seen(member, {{"visibility", "all"}}), (V{1, 3, 4}));
  EXPECT_EQ(Seen(anonymous, {{"visibility", "all"}}), (V{1, 4}));

  EXPECT_EQ(Seen(other, {{"visibility", "community"}}), (V{4}));
  EXPECT_EQ(Seen(anonymous, {{"visibility", "community"}}), (V{4}));
  EXPECT_EQ(Seen(admin, {{"visibility", "community"}}), (V{4}));
  EXPECT_EQ(Seen(other, {{"visibility", "private"}}), (V{}));
  EXPECT_EQ(Seen(member, {{"visibility", "private"}}), (V{}));
  EXPECT_EQ(Seen(owner, {{"visibility", "private"}}), (V{2}));
  EXPECT_EQ(Seen(admin, {{"visibility", "private"}}), (V{2}));
  EXPECT_EQ(Seen(member, {{"visibility", "shared"}}), (V{3}));
  EXPECT_EQ(Seen(other, {{"visibility", "shared"}}), (V{}));
  EXPECT_EQ(Seen(anonymous, {{"visibility", "public"}}), (V{1}));

  // Pending and rejected shares appear only when asked for.
  EXPECT_EQ(Seen(pending, {{"member_status", "pending"}}), (V{1, 3}));
  EXPECT_EQ(Seen(pending, {{"member_status", "all"}}), (V{1, 3}));
  EXPECT_EQ(Seen(pending, {{"member_status", "accepted"}}), (V{1}));
  EXPECT_EQ(Seen(rejected, {{"member_status", "rejected"}}), (V{1, 3}));
  EXPECT_EQ(Seen(member, {{"member_status", "pending"}}), (V{1}));
  // The owner sees its shared image whatever member_status says.
  EXPECT_EQ(Seen(owner, {{"member_status", "pending"}}), (V{1, 2, 3, 4}));
}

// ---- members ----

TEST_P(CatalogTest, Members) {
  ASSERT_TRUE(repo_->Add(MakeImage(1, "owner", Visibility::kShared)).ok());
  ImageMember m{Uuid(1), "p2", MemberStatus::kPending, 10, 10};
  ASSERT_TRUE(repo_->AddMember(m).ok());
  EXPECT_EQ(repo_->AddMember(m).code(), Code::kAlreadyExists);
  auto got = repo_->GetMember(Uuid(1), "p2");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, MemberStatus::kPending);
  EXPECT_EQ(got->created_at, 10);
  m.status = MemberStatus::kAccepted;
  m.updated_at = 20;
  ASSERT_TRUE(repo_->UpdateMember(m).ok());
  got = repo_->GetMember(Uuid(1), "p2");
  EXPECT_EQ(got->status, MemberStatus::kAccepted);
  EXPECT_EQ(got->updated_at, 20);
  ASSERT_TRUE(repo_->AddMember({Uuid(1), "p1", MemberStatus::kRejected, 5, 5}).ok());
  auto all = repo_->ListMembers(Uuid(1));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].member, "p1");
  EXPECT_EQ((*all)[1].member, "p2");
  ASSERT_TRUE(repo_->RemoveMember(Uuid(1), "p2").ok());
  EXPECT_EQ(repo_->RemoveMember(Uuid(1), "p2").code(), Code::kNotFound);
  EXPECT_EQ(repo_->GetMember(Uuid(1), "p2").status().code(), Code::kNotFound);
  EXPECT_EQ(repo_->UpdateMember(m).code(), Code::kNotFound);
  EXPECT_EQ(repo_->AddMember({Uuid(9), "p2", MemberStatus::kPending, 1, 1}).code(),
            Code::kNotFound);
  EXPECT_EQ(repo_->ListMembers(Uuid(9)).status().code(), Code::kNotFound);
  ASSERT_TRUE(repo_->Remove(Uuid(1)).ok());
  EXPECT_EQ(repo_->ListMembers(Uuid(1)).status().code(), Code::kNotFound);
}

// ---- schema ----

TEST_P(CatalogTest, ReopenKeepsDataAndSchemaVersion) {
  Image im = MakeImage(1);
  im.tags = {"t"};
  ASSERT_TRUE(repo_->Add(im).ok());
  EXPECT_EQ(*repo_->SchemaVersion(), db_->LatestSchemaVersion());
  Reopen();
  Reopen();
  EXPECT_EQ(*repo_->SchemaVersion(), db_->LatestSchemaVersion());
  auto got = repo_->Get(im.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tags, im.tags);
}

TEST_P(CatalogTest, NewerSchemaIsRefused) {
  repo_.reset();
  ASSERT_TRUE(db_->Exec("UPDATE schema_version SET version = 999").ok());
  auto r = db_->Open();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().ToString();
}

// Several nodes (or processes) opening an empty database at once: each migration step is applied
// once, and every opener ends with the current schema.
TEST_P(CatalogTest, ConcurrentOpenersMigrateOnce) {
  repo_.reset();
  auto fresh = testing::EngineDatabase::Create(GetParam());
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  constexpr int kOpeners = 6;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::unique_ptr<SqlRepository>> repos(kOpeners);
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      auto r = (*fresh)->Open(2);
      if (!r.ok()) {
        ADD_FAILURE() << r.status().ToString();
        ++failures;
        return;
      }
      repos[i] = std::move(*r);
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (auto& r : repos) EXPECT_EQ(*r->SchemaVersion(), (*fresh)->LatestSchemaVersion());
  ASSERT_TRUE(repos[0]->Add(MakeImage(1)).ok());
  EXPECT_TRUE(repos[kOpeners - 1]->Get(Uuid(1)).ok());
  repos.clear();
}

// ---- concurrency ----

TEST_P(CatalogTest, ConcurrentWritersLoseNothing) {
  ASSERT_TRUE(repo_->Add(MakeImage(1)).ok());
  constexpr int kThreads = 4;
  constexpr int kAddsPerThread = 25;
  constexpr int kIncrementsPerThread = 20;
  std::atomic<int> conflicts{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAddsPerThread; ++i) {
        if (!repo_->Add(MakeImage(1000 + t * kAddsPerThread + i)).ok()) ++failures;
        auto page = repo_->List(ListQuery{}, Viewer{std::nullopt, true});
        if (!page.ok()) ++failures;
      }
      // Read-modify-write a counter on one image with optimistic concurrency.
      for (int i = 0; i < kIncrementsPerThread; ++i) {
        while (true) {
          auto im = repo_->Get(Uuid(1));
          if (!im.ok()) {
            ++failures;
            break;
          }
          int n = im->properties.count("n") ? std::stoi(im->properties["n"]) : 0;
          im->properties["n"] = std::to_string(n + 1);
          Status s = repo_->Save(*im);
          if (s.ok()) break;
          if (s.code() != Code::kConflict) {
            ++failures;
            break;
          }
          ++conflicts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto im = repo_->Get(Uuid(1));
  ASSERT_TRUE(im.ok());
  EXPECT_EQ(im->properties["n"], std::to_string(kThreads * kIncrementsPerThread));
  EXPECT_EQ(im->version, 1 + kThreads * kIncrementsPerThread);
  auto all = MustList({{"limit", "1000"}});
  EXPECT_EQ(all.images.size(), 1u + kThreads * kAddsPerThread);
}

// ---- random queries ----

// Whatever the query string holds, parsing yields a query or kInvalidArgument, and every parsed
// query runs: the SQL built from it is always valid and never shaped by the values.
TEST_P(CatalogTest, RandomQueriesParseOrRun) {
  for (int i = 1; i <= 30; ++i) {
    Image im =
        MakeImage(i, i % 3 ? std::optional<std::string>("p" + std::to_string(i % 4)) : std::nullopt,
                  static_cast<Visibility>(i % 4));
    im.size = i % 5 ? std::optional<uint64_t>(i * 10) : std::nullopt;
    im.tags = {"t" + std::to_string(i % 3)};
    im.properties = {{"k", std::to_string(i % 2)}};
    ASSERT_TRUE(repo_->Add(im).ok());
  }
  const std::vector<std::string> keys = {
      "name",         "status",        "id",       "disk_format", "container_format", "owner",
      "visibility",   "member_status", "tag",      "sort",        "sort_key",         "sort_dir",
      "limit",        "marker",        "size_min", "size_max",    "created_at",       "updated_at",
      "os_hidden",    "protected",     "k",        "min_ram",     "checksum",         "x_min",
      "changes-since"};
  const std::vector<std::string> values = {"",
                                           "a",
                                           "in:a,b",
                                           "in:\"a,b\",c",
                                           "eq:x:y",
                                           "gt:2023-11-14T22:13:21Z",
                                           "2023-11-14T22:13:21Z",
                                           "lte:2023-11-14T22:13:25+01:00",
                                           "public",
                                           "community",
                                           "all",
                                           "shared",
                                           "private",
                                           "pending",
                                           "accepted",
                                           "name:asc,size:desc",
                                           "status",
                                           "size",
                                           "asc",
                                           "desc",
                                           "3",
                                           "-1",
                                           "1000000",
                                           "0",
                                           "true",
                                           "false",
                                           "'; DROP TABLE images; --",
                                           "\"",
                                           "in:",
                                           "in:\"unclosed",
                                           "1",
                                           Uuid(5),
                                           Uuid(17),
                                           Uuid(404),
                                           "created_at:asc,id"};
  const Viewer viewers[] = {
      {std::nullopt, true}, {"p1", false}, {std::nullopt, false}, {"p2", true}};
  uint64_t state = 0x2545F4914F6CDD1D;
  auto next = [&](size_t n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<size_t>(state % n);
  };
  int ran = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::pair<std::string, std::string>> params;
    size_t count = next(5);
    for (size_t j = 0; j < count; ++j)
      params.emplace_back(keys[next(keys.size())], values[next(values.size())]);
    auto q = ParseListQuery(params);
    if (!q.ok()) {
      ASSERT_EQ(q.status().code(), Code::kInvalidArgument) << q.status().ToString();
      continue;
    }
    auto page = repo_->List(*q, viewers[next(std::size(viewers))]);
    if (!page.ok()) {
      // Only a marker the viewer may not use is refused.
      ASSERT_EQ(page.status().code(), Code::kInvalidArgument) << page.status().ToString();
      ASSERT_TRUE(q->marker.has_value());
      continue;
    }
    ASSERT_LE(static_cast<int>(page->images.size()), q->limit);
    ++ran;
  }
  EXPECT_GT(ran, 500);
}

// ---- crash ----

// A writer killed at an arbitrary moment loses nothing it had acknowledged (process crash; power
// loss is what synchronous=FULL adds on top, which a test cannot pull the plug on).
TEST_P(CatalogTest, AcknowledgedWritesSurviveKill) {
  repo_.reset();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    auto repo = db_->Open();
    if (!repo.ok()) _exit(2);
    for (int i = 1;; ++i) {
      Image im = MakeImage(i);
      im.tags = {"t" + std::to_string(i)};
      if (!(*repo)->Add(im).ok()) _exit(3);
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(4);
    }
  }
  close(fds[1]);
  int acked = 0;
  int n = 0;
  while (acked < 40 && read(fds[0], &n, sizeof n) == sizeof n) acked = n;
  kill(child, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFSIGNALED(wstatus)) << "writer exited on its own with " << WEXITSTATUS(wstatus);
  while (read(fds[0], &n, sizeof n) == sizeof n) acked = n;  // acks written before the kill
  close(fds[0]);
  ASSERT_GE(acked, 40);

  Reopen();
  for (int i = 1; i <= acked; ++i) {
    auto im = repo_->Get(Uuid(i));
    ASSERT_TRUE(im.ok()) << "acknowledged image " << i << " lost: " << im.status().ToString();
    EXPECT_EQ(im->tags, (std::set<std::string>{"t" + std::to_string(i)}));
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, CatalogTest, ::testing::ValuesIn(testing::Engines()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Engines, CatalogListFilterTest, ::testing::ValuesIn(testing::Engines()),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Engines, CatalogVisibilityTest, ::testing::ValuesIn(testing::Engines()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ingot::catalog
