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

// ---- Glance's multiple-locations API (Patch) ----

// A store serving objects under "<scheme>://objects/<key>" URLs with sizes from a map: `external`
// as the http store is (nothing of it is ever deleted), or the service's own (an object store).
class UrlStore final : public store::Store {
 public:
  UrlStore(std::string id, std::string scheme, bool external)
      : id_(std::move(id)), prefix_(std::move(scheme) + "://objects/"), external_(external) {}
  const std::string& id() const override { return id_; }
  store::Capabilities capabilities() const override {
    return {.local_file = false, .random_read = true, .external = external_};
  }
  Result<std::unique_ptr<store::PendingObject>> Create(const std::string&) override {
    return PermissionDenied("read-only");
  }
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string&) override {
    return Unsupported("sizes only");
  }
  Result<io::UniqueFd> OpenFd(const std::string&) override { return Unsupported("no files"); }
  Result<uint64_t> SizeOf(const std::string& key) override {
    std::string object = key.substr(0, key.find('#'));
    auto it = sizes.find(object);
    if (it == sizes.end()) return NotFound("no object " + object);
    return it->second;
  }
  Status Delete(const std::string& key) override {
    deleted.push_back(key);
    return Status::Ok();
  }
  Result<int> RemoveIncomplete() override { return 0; }
  Result<std::vector<std::string>> ListKeys() override { return std::vector<std::string>(); }
  std::string UrlOf(const std::string& key) const override { return prefix_ + key; }
  Result<std::optional<std::string>> KeyOfUrl(std::string_view url) override {
    if (!url.starts_with(prefix_)) return std::optional<std::string>();
    return std::optional<std::string>(std::string(url.substr(prefix_.size())));
  }

  std::map<std::string, uint64_t> sizes;
  std::vector<std::string> deleted;

 private:
  std::string id_;
  std::string prefix_;
  bool external_;
};

class LocationPatchTest : public LocationServiceTest {
 protected:
  void SetUp() override {
    LocationServiceTest::SetUp();
    auto web = std::make_unique<UrlStore>("web", "http", /*external=*/true);
    web->sizes = {{"cirros.img", 1048576}, {"empty.img", 0}};
    web_ = web.get();
    ASSERT_TRUE(stores_->Add(std::move(web), {.driver = "http", .read_only = true}).ok());
    auto objects = std::make_unique<UrlStore>("objects", "s3", /*external=*/false);
    objects->sizes = {{"a", 100}, {"b", 100}};
    objects_ = objects.get();
    ASSERT_TRUE(stores_->Add(std::move(objects), {.driver = "s3"}).ok());
    Visible(true);
  }
  void Visible(bool on) {
    locations_ =
        std::make_unique<LocationService>(*images_, LocationOptions{.show_multiple_locations = on});
  }
  static LocationSpec Spec(std::string url, boost::json::object metadata = {},
                           std::optional<LocationValidation> v = std::nullopt) {
    return {.url = std::move(url), .metadata = std::move(metadata), .validation = std::move(v)};
  }
  static PatchStep AddOp(LocationSpec spec, std::string position = "-") {
    return {.location = LocationOp{.kind = LocationOp::Kind::kAdd,
                                   .position = std::move(position),
                                   .locations = {std::move(spec)}}};
  }
  static PatchStep ReplaceOp(std::vector<LocationSpec> specs) {
    return {.location =
                LocationOp{.kind = LocationOp::Kind::kReplace, .locations = std::move(specs)}};
  }
  static PatchStep RemoveOp(std::string position) {
    return {.location =
                LocationOp{.kind = LocationOp::Kind::kRemove, .position = std::move(position)}};
  }
  Result<Image> Patch(const std::string& id, std::vector<PatchStep> steps) {
    return locations_->Patch(Get(id), steps);
  }
  std::vector<std::string> Urls(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& v : locations_->List(Get(id))) out.push_back(v.url);
    return out;
  }
  // An active image with the two web locations tempest's tests make.
  std::string TwoWebLocations() {
    std::string id = NewQueued();
    EXPECT_TRUE(Patch(id, {AddOp(Spec(kUrl, {{"foo", "bar"}}))}).ok());
    EXPECT_TRUE(Patch(id, {AddOp(Spec(kUrl2, {{"speed", "88mph"}}))}).ok());
    return id;
  }

  const std::string kUrl = "http://objects/cirros.img";
  const std::string kUrl2 = "http://objects/cirros.img#new";
  const std::string kSha512 = std::string(128, 'd');
  UrlStore* web_ = nullptr;
  UrlStore* objects_ = nullptr;
};

TEST_F(LocationPatchTest, TheFirstLocationActivatesWithTheStoresSizeAndNoHashes) {
  std::string id = NewQueued();
  auto im = Patch(id, {AddOp(Spec(kUrl, {{"foo", "bar"}}))});
  ASSERT_TRUE(im.ok()) << im.status().ToString();
  Image stored = Get(id);
  EXPECT_EQ(stored.status(), ImageStatus::kActive);
  EXPECT_EQ(stored.size, std::optional<uint64_t>(1048576));
  EXPECT_FALSE(stored.checksum.has_value());  // not read: Glance's trust
  EXPECT_FALSE(stored.os_hash_value.has_value());
  ASSERT_EQ(stored.locations.size(), 1u);
  EXPECT_EQ(stored.locations[0].store, "web");
  EXPECT_EQ(stored.locations[0].key, "cirros.img");  // the store's own key
  auto listed = locations_->List(stored);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].url, kUrl);
  EXPECT_EQ(listed[0].metadata, (boost::json::object{{"foo", "bar"}, {"store", "web"}}));

  // A second location keeps the image as it is; order is the request's.
  ASSERT_TRUE(Patch(id, {AddOp(Spec(kUrl2, {{"speed", "88mph"}}))}).ok());
  ASSERT_TRUE(Patch(id, {AddOp(Spec(kUrl + "#first"), "0")}).ok());
  EXPECT_EQ(Urls(id), (std::vector<std::string>{kUrl + "#first", kUrl, kUrl2}));
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive);
  EXPECT_EQ(Get(id).size, std::optional<uint64_t>(1048576));
  // The same URL and metadata twice is refused; the same URL with other metadata is another one.
  auto dup = Patch(id, {AddOp(Spec(kUrl, {{"foo", "bar"}}))});
  EXPECT_EQ(dup.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(dup.status().message(), "The location " + kUrl + " already exists");
  EXPECT_TRUE(Patch(id, {AddOp(Spec(kUrl, {{"foo", "baz"}}))}).ok());
  EXPECT_EQ(Get(id).locations.size(), 4u);
}

TEST_F(LocationPatchTest, PositionsAndStatuses) {
  std::string id = NewQueued();
  for (const char* bad : {"1", "x", "-1", ""}) {
    auto r = Patch(id, {AddOp(Spec(kUrl), bad)});
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().message(), "Invalid position for adding a location.");
  }
  ExpectUntouchedQueued(id);
  // remove needs an active image.
  auto r = Patch(id, {RemoveOp("0")});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(),
            "It's not allowed to remove locations if image status is queued.");
  ASSERT_TRUE(Patch(id, {AddOp(Spec(kUrl), "0")}).ok());
  ASSERT_TRUE(images_->Deactivate(Get(id)).ok());
  r = Patch(id, {AddOp(Spec(kUrl2))});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(),
            "It's not allowed to add locations if image status is deactivated.");
  r = Patch(id, {ReplaceOp({Spec(kUrl)})});
  EXPECT_EQ(r.status().code(), Code::kConflict);
}

TEST_F(LocationPatchTest, BadLocationsAreRefusedAndNothingChanges) {
  std::string id = NewQueued();
  const std::string file_url = Place("golden.raw", Pattern(1000));
  for (const std::string& url :
       {std::string("gopher://info.cern.ch"), file_url, std::string("http://objects/missing"),
        std::string("http://objects/empty.img"), std::string("")}) {
    auto r = Patch(id, {AddOp(Spec(url))});
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << url;
    EXPECT_EQ(r.status().message().rfind("Invalid location: ", 0), 0u) << r.status().ToString();
  }
  ExpectUntouchedQueued(id);
  // An object of the service's own stores that another image owns.
  std::string other = NewQueued();
  ASSERT_TRUE(Patch(other, {AddOp(Spec("s3://objects/a"))}).ok());
  auto r = Patch(id, {AddOp(Spec("s3://objects/a"))});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
  ExpectUntouchedQueued(id);
  // A store's size over the cap.
  objects_->sizes["huge"] = images_->options().size_cap + 1;
  EXPECT_EQ(Patch(id, {AddOp(Spec("s3://objects/huge"))}).status().code(), Code::kTooLarge);
}

TEST_F(LocationPatchTest, ValidationDataIsTakenOnAQueuedImageAndMustMatchAfterwards) {
  std::string id = NewQueued();
  const std::string md5(32, '1');
  auto first = Patch(id, {AddOp(Spec(kUrl, {}, LocationValidation{md5, "sha512", kSha512}))});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Image im = Get(id);
  EXPECT_EQ(im.status(), ImageStatus::kActive);
  EXPECT_EQ(im.checksum, std::optional<std::string>(md5));
  EXPECT_EQ(im.os_hash_algo, std::optional<std::string>("sha512"));
  EXPECT_EQ(im.os_hash_value, std::optional<std::string>(kSha512));
  // The same values again: fine (tempest's "second matching").
  ASSERT_TRUE(Patch(id, {AddOp(Spec(kUrl2, {}, LocationValidation{md5, "sha512", kSha512}))}).ok());
  EXPECT_EQ(Get(id).locations.size(), 2u);
  // Any other value: 409, nothing changes.
  struct Case {
    LocationValidation v;
    std::string message;
  } cases[] = {
      {{std::string(32, '2'), "sha512", kSha512}, "checksum is already set with a different value"},
      {{md5, "sha256", kSha512}, "os_hash_algo is already set with a different value"},
      {{md5, "sha512", std::string(128, 'e')},
       "os_hash_value is already set with a different value"},
  };
  for (const Case& c : cases) {
    auto r = Patch(id, {AddOp(Spec(kUrl + "#3", {}, c.v))});
    EXPECT_EQ(r.status().code(), Code::kConflict);
    EXPECT_EQ(r.status().message(), c.message);
  }
  EXPECT_EQ(Get(id).locations.size(), 2u);

  // New values only while queued; and they must be this service's algorithm and sizes.
  std::string q = NewQueued();
  auto r = Patch(
      q, {AddOp(Spec(kUrl, {}, LocationValidation{std::nullopt, "sha256", std::string(64, 'a')}))});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(), "os_hash_algo must be sha512, not sha256");
  r = Patch(q, {AddOp(Spec(kUrl, {}, LocationValidation{std::nullopt, "sha512", "abcd"}))});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(),
            "os_hash_value (abcd) is not the correct size for sha512 (should be 64 bytes)");
  r = Patch(q,
            {AddOp(Spec(kUrl, {}, LocationValidation{std::string(32, 'z'), "sha512", kSha512}))});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  ExpectUntouchedQueued(q);
  // Two locations of one replace that disagree.
  r = Patch(q,
            {ReplaceOp({Spec(kUrl, {}, LocationValidation{std::nullopt, "sha512", kSha512}),
                        Spec(kUrl2, {},
                             LocationValidation{std::nullopt, "sha512", std::string(128, 'e')})})});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_EQ(r.status().message(), "Conflicting values for os_hash_value");
  // On an active image a new value is refused.
  std::string plain = NewQueued();
  ASSERT_TRUE(Patch(plain, {AddOp(Spec(kUrl))}).ok());
  r = Patch(plain, {AddOp(Spec(kUrl2, {}, LocationValidation{std::nullopt, "sha512", kSha512}))});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  EXPECT_NE(r.status().message().find("may only be provided when image status is 'queued'"),
            std::string::npos)
      << r.status().ToString();
}

TEST_F(LocationPatchTest, ReplaceEditsMetadataOnlyUnlessTheImageHasNoLocations) {
  std::string id = TwoWebLocations();
  auto views = locations_->List(Get(id));
  std::vector<LocationSpec> same;
  for (const auto& v : views) same.push_back(Spec(v.url, v.metadata));
  ASSERT_TRUE(Patch(id, {ReplaceOp(same)}).ok());  // the same list: nothing changes
  same[0].metadata["date"] = "2015-10-15";
  ASSERT_TRUE(Patch(id, {ReplaceOp(same)}).ok());
  auto after = locations_->List(Get(id));
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].metadata,
            (boost::json::object{{"foo", "bar"}, {"store", "web"}, {"date", "2015-10-15"}}));
  // Dropping or changing a URL is refused; so is an empty list.
  auto r = Patch(id, {ReplaceOp({same[0]})});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("Original locations is not empty: ", 0), 0u);
  r = Patch(id, {ReplaceOp({same[0], Spec(kUrl + "#new3", same[1].metadata)})});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  r = Patch(id, {ReplaceOp({})});
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "Cannot set locations to empty list.");
  EXPECT_EQ(locations_->List(Get(id)).size(), 2u);
  // Reordering is a metadata-only change too.
  ASSERT_TRUE(Patch(id, {ReplaceOp({same[1], same[0]})}).ok());
  EXPECT_EQ(Urls(id), (std::vector<std::string>{kUrl2, kUrl}));

  // A queued image takes a whole list, each checked, and turns active.
  std::string q = NewQueued();
  r = Patch(q, {ReplaceOp({Spec(kUrl), Spec("http://objects/missing")})});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  ExpectUntouchedQueued(q);
  r = Patch(q, {ReplaceOp({Spec(kUrl), Spec(kUrl)})});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);  // a duplicate
  ASSERT_TRUE(Patch(q, {ReplaceOp({Spec(kUrl), Spec(kUrl2)})}).ok());
  EXPECT_EQ(Get(q).status(), ImageStatus::kActive);
  EXPECT_EQ(Urls(q), (std::vector<std::string>{kUrl, kUrl2}));
}

TEST_F(LocationPatchTest, RemoveKeepsTheLastLocationAndDeletesOnlyOwnUnnamedObjects) {
  std::string id = TwoWebLocations();
  for (const char* bad : {"2", "x", ""}) {
    auto r = Patch(id, {RemoveOp(bad)});
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().message(), "Invalid position for removing a location.");
  }
  ASSERT_TRUE(Patch(id, {RemoveOp("0")}).ok());
  EXPECT_EQ(Urls(id), (std::vector<std::string>{kUrl2}));
  auto r = Patch(id, {RemoveOp("0")});
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "Cannot remove last location in the image.");
  EXPECT_TRUE(web_->deleted.empty());  // the http store's bytes are never ours

  // In one of the service's own stores the object goes with its location, unless another location
  // of the image still names it.
  std::string own = NewQueued();
  ASSERT_TRUE(Patch(own, {AddOp(Spec("s3://objects/b", {{"n", "1"}}))}).ok());
  ASSERT_TRUE(Patch(own, {AddOp(Spec("s3://objects/b", {{"n", "2"}}))}).ok());
  ASSERT_TRUE(Patch(own, {AddOp(Spec(kUrl))}).ok());
  ASSERT_TRUE(Patch(own, {RemoveOp("0")}).ok());
  EXPECT_TRUE(objects_->deleted.empty());
  ASSERT_TRUE(Patch(own, {RemoveOp("0")}).ok());
  EXPECT_EQ(objects_->deleted, (std::vector<std::string>{"b"}));
  EXPECT_EQ(Urls(own), (std::vector<std::string>{kUrl}));
}

TEST_F(LocationPatchTest, InvisibleLocationsRefuseEveryOperation) {
  std::string id = TwoWebLocations();
  Visible(false);
  auto r = Patch(id, {AddOp(Spec(kUrl + "#x"))});
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "It's not allowed to add locations if locations are invisible.");
  r = Patch(id, {ReplaceOp({Spec(kUrl)})});
  EXPECT_EQ(r.status().message(),
            "It's not allowed to update locations if locations are invisible.");
  r = Patch(id, {RemoveOp("0")});
  EXPECT_EQ(r.status().message(),
            "It's not allowed to remove locations if locations are invisible.");
  EXPECT_EQ(Get(id).locations.size(), 2u);
}

TEST_F(LocationPatchTest, AttributeStepsApplyInOrderAndAFailureSavesNothing) {
  std::string id = NewQueued();
  PatchStep rename{.attributes = [](Image& im) -> Status {
    im.name = "renamed";
    return Status::Ok();
  }};
  PatchStep refuse{.attributes = [](Image&) -> Status { return Conflict("no"); }};
  auto r = Patch(id, {rename, AddOp(Spec(kUrl)), refuse});
  EXPECT_EQ(r.status().code(), Code::kConflict);
  ExpectUntouchedQueued(id);
  EXPECT_FALSE(Get(id).name.has_value());
  ASSERT_TRUE(Patch(id, {rename, AddOp(Spec(kUrl))}).ok());
  EXPECT_EQ(Get(id).name, std::optional<std::string>("renamed"));
  EXPECT_EQ(Get(id).status(), ImageStatus::kActive);
}

}  // namespace
}  // namespace ingot::service
