#include "service/locations.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "catalog/sqlite/sqlite_repository.h"
#include "common/time.h"
#include "common/uuid.h"
#include "io/hash.h"
#include "store/file/file_store.h"

namespace ingot::service {
namespace {

using catalog::Image;
using catalog::ImageStatus;

std::vector<uint8_t> Pattern(size_t size) {
  std::vector<uint8_t> out(size);
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(i * 7 + (i >> 12) + 1);
  return out;
}

void WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

// A qcow2 header naming a backing file: hostile whatever it is declared as.
std::vector<uint8_t> HostileQcow2() {
  std::vector<uint8_t> d(4 * 65536, 0);
  auto be32 = [&](size_t off, uint32_t v) {
    for (int i = 0; i < 4; ++i) d[off + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  auto be64 = [&](size_t off, uint64_t v) {
    for (int i = 0; i < 8; ++i) d[off + i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  };
  be32(0, 0x514649fb);
  be32(4, 3);
  be64(8, 512);  // backing_file_offset
  be32(16, 11);  // backing_file_size
  be32(20, 16);
  be64(24, 1 << 20);
  be32(36, 1);
  be64(40, 3 * 65536);
  be64(48, 65536);
  be32(56, 1);
  be32(96, 4);
  be32(100, 104);
  std::memcpy(&d[512], "/etc/shadow", 11);
  return d;
}

class LocationServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-loc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    repo_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    stores_ = std::make_unique<store::StoreSet>();
    for (const char* id : {"file", "cold"}) {
      auto s = store::FileStore::Open({.id = id, .root = dir_ + "/" + id});
      ASSERT_TRUE(s.ok());
      ASSERT_TRUE(stores_->Add(std::move(*s), {.driver = "file"}).ok());
    }
    images_ = std::make_unique<ImageService>(
        *repo_, *stores_, ImageServiceOptions{.buffer_size = 64 * 1024, .buffer_count = 4});
    locations_ = std::make_unique<LocationService>(*images_, LocationOptions{});
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string NewQueued(std::string disk_format = "raw") {
    Image im;
    im.id = NewUuid();
    im.owner = "p1";
    im.disk_format = std::move(disk_format);
    im.container_format = "bare";
    im.created_at = im.updated_at = NowMicros();
    EXPECT_TRUE(repo_->Add(im).ok());
    return im.id;
  }
  Image Get(const std::string& id) { return *repo_->Get(id); }
  // Places `bytes` as object `name` of store `store` and returns its URL.
  std::string Place(const std::string& name, const std::vector<uint8_t>& bytes,
                    const std::string& store = "file") {
    WriteFile(dir_ + "/" + store + "/" + name, bytes);
    return "file://" + dir_ + "/" + store + "/" + name;
  }
  Result<Image> Add(const std::string& id, const std::string& url,
                    std::optional<ValidationData> v = std::nullopt) {
    return locations_->Add(Get(id), {.url = url, .validation = std::move(v)});
  }
  void ExpectUntouchedQueued(const std::string& id) {
    Image im = Get(id);
    EXPECT_EQ(im.status(), ImageStatus::kQueued);
    EXPECT_TRUE(im.locations.empty());
    EXPECT_FALSE(im.size.has_value());
    EXPECT_FALSE(im.checksum.has_value());
    EXPECT_FALSE(im.os_hash_value.has_value());
  }

  std::string dir_;
  std::unique_ptr<catalog::SqliteImageRepository> repo_;
  std::unique_ptr<store::StoreSet> stores_;
  std::unique_ptr<ImageService> images_;
  std::unique_ptr<LocationService> locations_;
};

TEST_F(LocationServiceTest, AdoptsTheObjectInPlaceAndActivates) {
  const auto bytes = Pattern(3 * 1000 * 1000 + 7);
  std::string url = Place("golden.raw", bytes);
  std::string id = NewQueued();
  const std::string sha512 = *io::HexDigestOf("sha512", bytes);
  auto im = Add(id, url, ValidationData{"sha512", sha512});
  ASSERT_TRUE(im.ok()) << im.status().ToString();
  EXPECT_EQ(im->status(), ImageStatus::kActive);
  Image stored = Get(id);
  EXPECT_EQ(stored.status(), ImageStatus::kActive);
  EXPECT_EQ(*stored.size, bytes.size());
  EXPECT_EQ(*stored.virtual_size, bytes.size());
  EXPECT_EQ(*stored.checksum, *io::HexDigestOf("md5", bytes));
  EXPECT_EQ(*stored.os_hash_algo, "sha512");
  EXPECT_EQ(*stored.os_hash_value, sha512);
  ASSERT_EQ(stored.locations.size(), 1u);
  EXPECT_EQ(stored.locations[0].store, "file");
  EXPECT_EQ(stored.locations[0].key, "golden.raw");
  // Adopted, not copied: the object stays where it was and is what downloads serve.
  struct stat st;
  EXPECT_EQ(::stat((dir_ + "/file/golden.raw").c_str(), &st), 0);
  EXPECT_FALSE(std::ifstream(dir_ + "/file/" + id).good());
  auto data = images_->OpenData(stored);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->size, bytes.size());

  auto listed = locations_->List(stored);
  ASSERT_EQ(listed.size(), 1u);
  char* real = ::realpath((dir_ + "/file").c_str(), nullptr);
  EXPECT_EQ(listed[0].url, "file://" + std::string(real) + "/golden.raw");
  std::free(real);
  EXPECT_EQ(listed[0].metadata.at("store"), "file");
}

TEST_F(LocationServiceTest, ValidationByMd5AndWithoutValidationAndInASecondStore) {
  const auto bytes = Pattern(70000);
  std::string a = NewQueued(), b = NewQueued();
  auto im = Add(a, Place("a.img", bytes), ValidationData{"MD5", *io::HexDigestOf("md5", bytes)});
  ASSERT_TRUE(im.ok()) << im.status().ToString();
  auto other = Add(b, Place("b.img", bytes, "cold"));
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ(Get(b).locations.at(0).store, "cold");
  // "file://localhost/..." is the same place.
  std::string c = NewQueued();
  Place("c.img", bytes);
  EXPECT_TRUE(Add(c, "file://localhost" + dir_ + "/file/c.img").ok());
}

TEST_F(LocationServiceTest, HashMismatchIsRefusedAndTheImageStaysQueued) {
  const auto bytes = Pattern(100000);
  std::string url = Place("golden.raw", bytes);
  std::string id = NewQueued();
  auto r = Add(id, url, ValidationData{"sha512", std::string(128, 'a')});
  ASSERT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("not matched with actual os_hash_value"), std::string::npos);
  ExpectUntouchedQueued(id);
  EXPECT_TRUE(std::ifstream(dir_ + "/file/golden.raw").good());  // never ours to remove
  // The same image can then take the right bytes.
  EXPECT_TRUE(Add(id, url, ValidationData{"sha512", *io::HexDigestOf("sha512", bytes)}).ok());
}

TEST_F(LocationServiceTest, MalformedValidationDataIsRefusedBeforeReading) {
  std::string url = Place("golden.raw", Pattern(1000));
  std::string id = NewQueued();
  for (const ValidationData& v :
       {ValidationData{"sha512", "xyz"}, ValidationData{"sha512", std::string(64, 'a')},
        ValidationData{"sha256", std::string(64, 'a')}, ValidationData{"crc32", "00"}}) {
    auto r = Add(id, url, v);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument)
        << v.os_hash_algo << " " << v.os_hash_value;
  }
  ExpectUntouchedQueued(id);
}

TEST_F(LocationServiceTest, OnlyAQueuedImageTakesALocation) {
  const auto bytes = Pattern(5000);
  std::string id = NewQueued();
  ASSERT_TRUE(Add(id, Place("one.raw", bytes)).ok());
  auto again = Add(id, Place("two.raw", bytes));
  EXPECT_EQ(again.status().code(), Code::kConflict);
  EXPECT_EQ(again.status().message(),
            "It's not allowed to add locations if image status is active.");
  EXPECT_EQ(Get(id).locations.size(), 1u);
}

TEST_F(LocationServiceTest, ImageWithoutFormatsIsRefused) {
  Image im;
  im.id = NewUuid();
  im.owner = "p1";
  ASSERT_TRUE(repo_->Add(im).ok());
  auto r = Add(im.id, Place("x.raw", Pattern(10)));
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Get(im.id).status(), ImageStatus::kQueued);
}

// Anything that is not an object directly in a configured store's directory is a 400, and nothing
// changes.
TEST_F(LocationServiceTest, UrlsOutsideTheStoresAreRefused) {
  const auto bytes = Pattern(4096);
  Place("golden.raw", bytes);
  ASSERT_EQ(::mkdir((dir_ + "/file/sub").c_str(), 0755), 0);
  Place("sub/inner.raw", bytes);
  ASSERT_EQ(::mkdir((dir_ + "/elsewhere").c_str(), 0755), 0);
  WriteFile(dir_ + "/elsewhere/outside.raw", bytes);
  ASSERT_EQ(::symlink((dir_ + "/elsewhere/outside.raw").c_str(), (dir_ + "/file/link.raw").c_str()),
            0);
  ASSERT_EQ(::symlink((dir_ + "/elsewhere").c_str(), (dir_ + "/file/linkdir").c_str()), 0);
  WriteFile(dir_ + "/file/.tmp-hidden", bytes);
  const std::string f = "file://" + dir_ + "/file/";
  std::string id = NewQueued();
  const std::vector<std::string> refused = {
      "",
      "http://example.com/golden.raw",
      "swift://container/golden.raw",
      "rbd://pool/golden.raw",
      "/" + dir_ + "/file/golden.raw",              // no scheme
      "file:golden.raw",                            // not absolute
      "file:///etc/passwd",                         // outside every store
      "file://" + dir_ + "/elsewhere/outside.raw",  // outside every store
      f + "../elsewhere/outside.raw",               // traversal
      f + "sub/../golden.raw",                      // traversal, even back inside
      f + "./golden.raw",
      "file://" + dir_ + "//file/golden.raw",  // empty segment
      f + "golden%2eraw",                      // escapes are not decoded
      f + "golden.raw?x=1",
      f + "link.raw",             // a symbolic link out of the store
      f + "linkdir/outside.raw",  // a directory link out of the store
      f + "sub/inner.raw",        // a subdirectory is not the store
      f + "sub",                  // not a regular file
      f + ".tmp-hidden",          // a temporary object
      f + "missing.raw",          // no such object
      "file://otherhost" + dir_ + "/file/golden.raw",
  };
  for (const std::string& url : refused) {
    auto r = Add(id, url);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << url << ": " << r.status().ToString();
  }
  ExpectUntouchedQueued(id);
  EXPECT_TRUE(Add(id, f + "golden.raw").ok());
}

// An object an image owns cannot be claimed by another one (which would then read or delete it).
TEST_F(LocationServiceTest, AnotherImagesObjectIsRefused) {
  const auto bytes = Pattern(2048);
  std::string a = NewQueued(), b = NewQueued();
  std::string url = Place("golden.raw", bytes);
  ASSERT_TRUE(Add(a, url).ok());
  auto r = Add(b, url);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  ExpectUntouchedQueued(b);

  // An object named after another image is that image's upload target.
  std::string c = NewQueued();
  auto named = Add(b, Place(c, bytes));
  EXPECT_EQ(named.status().code(), Code::kInvalidArgument) << named.status().ToString();
  // ...but an image may adopt an object named after itself.
  EXPECT_TRUE(Add(c, "file://" + dir_ + "/file/" + c).ok());
  EXPECT_EQ(Get(c).locations.at(0).key, c);
}

TEST_F(LocationServiceTest, HostileImagesAndFormatMismatchesAreRefused) {
  std::string id = NewQueued("qcow2");
  auto hostile = Add(id, Place("evil.qcow2", HostileQcow2()));
  ASSERT_EQ(hostile.status().code(), Code::kRefused) << hostile.status().ToString();
  EXPECT_NE(hostile.status().message().find("backing"), std::string::npos);
  ExpectUntouchedQueued(id);

  // Raw bytes declared qcow2: refused under require_image_format_match, taken without it.
  std::string url = Place("plain.raw", Pattern(8192));
  auto mismatch = Add(id, url);
  ASSERT_EQ(mismatch.status().code(), Code::kRefused) << mismatch.status().ToString();
  EXPECT_NE(mismatch.status().message().find("require_image_format_match"), std::string::npos);
  ExpectUntouchedQueued(id);
  LocationService lenient(*images_, LocationOptions{.require_image_format_match = false});
  EXPECT_TRUE(lenient.Add(Get(id), {.url = url}).ok());
}

// A hash the image's creator declared (os_hash_value before any data) binds adopted bytes too.
TEST_F(LocationServiceTest, AHashDeclaredAtCreateIsCheckedOnAdoption) {
  const auto bytes = Pattern(6000);
  Image im;
  im.id = NewUuid();
  im.owner = "p1";
  im.disk_format = "raw";
  im.container_format = "bare";
  im.os_hash_algo = "sha512";
  im.os_hash_value = std::string(128, 'c');
  ASSERT_TRUE(repo_->Add(im).ok());
  auto r = Add(im.id, Place("declared.raw", bytes));
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  EXPECT_EQ(Get(im.id).status(), ImageStatus::kQueued);
  EXPECT_TRUE(Get(im.id).locations.empty());
}

}  // namespace
}  // namespace ingot::service
