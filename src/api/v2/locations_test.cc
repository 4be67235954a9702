// Glance's multiple-locations API over the API edge, in process (no sockets): a real SQLite
// catalog, a file store and an external "web" store that answers sizes for http:// URLs without a
// network. What tempest's ImageLocationsTest does, with the statuses and texts Glance answers.
#include "api/v2/locations.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "api/app.h"
#include "catalog/sqlite/sqlite_repository.h"
#include "store/file/file_store.h"
#include "store/testing/memory_store.h"

namespace ingot::api {
namespace {

namespace json = boost::json;

std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

class StringReader final : public io::Reader {
 public:
  explicit StringReader(std::string s) : s_(std::move(s)) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min(buf.size(), s_.size() - pos_);
    std::memcpy(buf.data(), s_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string s_;
  size_t pos_ = 0;
};

// http://web/<name> URLs of known sizes; external, as the http store is.
class WebStore final : public store::Store {
 public:
  const std::string& id() const override { return id_; }
  store::Capabilities capabilities() const override {
    return {.local_file = false, .random_read = false, .external = true};
  }
  Result<std::unique_ptr<store::PendingObject>> Create(const std::string&) override {
    return PermissionDenied("read-only");
  }
  Result<std::unique_ptr<io::ByteSource>> Open(const std::string&) override {
    return Unsupported("sizes only");
  }
  Result<io::UniqueFd> OpenFd(const std::string&) override { return Unsupported("no files"); }
  Result<uint64_t> SizeOf(const std::string& key) override {
    if (key.starts_with("http://web/cirros.img")) return uint64_t{1048576};
    return NotFound("no such object");
  }
  Status Delete(const std::string&) override { return Status::Ok(); }
  Result<int> RemoveIncomplete() override { return 0; }
  Result<std::vector<std::string>> ListKeys() override { return std::vector<std::string>(); }
  std::string UrlOf(const std::string& key) const override { return key; }
  Result<std::optional<std::string>> KeyOfUrl(std::string_view url) override {
    if (!url.starts_with("http://")) return std::optional<std::string>();
    return std::optional<std::string>(std::string(url));
  }

 private:
  const std::string id_ = "web";
};

class LocationsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-locapi-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.public_url = "http://127.0.0.1:9292";
    options_.formats = {{"raw", "qcow2"}, {"bare"}};
    options_.show_image_direct_url = true;
    repo_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    stores_ = std::make_unique<store::StoreSet>();
    ASSERT_TRUE(
        stores_
            ->Add(std::move(*store::FileStore::Open({.id = "file", .root = dir_ + "/images"})),
                  {.driver = "file"})
            .ok());
    ASSERT_TRUE(
        stores_->Add(std::make_unique<WebStore>(), {.driver = "http", .read_only = true}).ok());
    images_ =
        std::make_unique<service::ImageService>(*repo_, *stores_, service::ImageServiceOptions{});
    std::string path = dir_ + "/tokens.toml";
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(
        "[[token]]\ntoken = \"owner\"\nproject = \"p1\"\nroles = [\"member\"]\n"
        "[[token]]\ntoken = \"other\"\nproject = \"p2\"\nroles = [\"member\"]\n"
        "[[token]]\ntoken = \"admin\"\nproject = \"ops\"\nroles = [\"admin\"]\n",
        f);
    std::fclose(f);
    auth_ = std::move(*auth::MakeTokenFileAuth(path));
    MakeApp(true);
  }
  void MakeApp(bool visible) {
    app_.reset();
    locations_ = std::make_unique<service::LocationService>(
        *images_, service::LocationOptions{.show_multiple_locations = visible});
    app_ = std::make_unique<Application>(AppDeps{.images = *images_,
                                                 .authenticator = *auth_,
                                                 .policy = policy_,
                                                 .options = options_,
                                                 .locations = locations_.get()});
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  http::Response As(const std::string& token, std::string method, std::string target,
                    std::string body = "",
                    std::string ctype = "application/openstack-images-v2.1-json-patch") {
    http::Request req;
    req.method = std::move(method);
    req.target = target;
    req.path = target;
    if (!ctype.empty()) req.headers.Set("Content-Type", ctype);
    req.headers.Set("X-Auth-Token", token);
    req.content_length = body.size();
    StringReader reader(std::move(body));
    req.body = &reader;
    return http::Resolve(app_->Handle(req), req);
  }
  json::object Body(const http::Response& r) { return json::parse(r.body).as_object(); }
  std::string Create(const std::string& token = "owner") {
    auto r = As(token, "POST", "/v2/images", R"({"disk_format":"raw","container_format":"bare"})",
                "application/json");
    EXPECT_EQ(r.status, 201) << r.body;
    auto body = Body(r);
    EXPECT_EQ(S(body["locations"]), "[]");  // shown, and empty without data
    EXPECT_FALSE(body.contains("direct_url"));
    return std::string(body["id"].as_string());
  }
  http::Response Patch(const std::string& id, const std::string& ops,
                       const std::string& token = "owner") {
    return As(token, "PATCH", "/v2/images/" + id, ops);
  }
  static std::string AddLoc(const std::string& url, const std::string& metadata = "{}",
                            const std::string& extra = "", const std::string& path = "-") {
    return R"([{"op": "add", "path": "/locations/)" + path + R"(", "value": {"url": ")" + url +
           R"(", "metadata": )" + metadata + extra + "}}]";
  }
  json::object Show(const std::string& id, const std::string& token = "owner") {
    return Body(As(token, "GET", "/v2/images/" + id, "", ""));
  }

  std::string dir_;
  ApiOptions options_;
  const auth::Policy policy_ = auth::Policy::Defaults();
  std::unique_ptr<catalog::SqliteImageRepository> repo_;
  std::unique_ptr<store::StoreSet> stores_;
  std::unique_ptr<service::ImageService> images_;
  std::unique_ptr<service::LocationService> locations_;
  std::unique_ptr<auth::Authenticator> auth_;
  std::unique_ptr<Application> app_;
};

const std::string kUrl = "http://web/cirros.img";

TEST_F(LocationsApiTest, SetLocationThenAnotherThenReplaceAndRemove) {
  std::string id = Create();
  auto r = Patch(id, AddLoc(kUrl, R"({"foo": "bar"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto im = Body(r);
  EXPECT_EQ(S(im["status"]), "active");
  EXPECT_EQ(S(im["size"]), "1048576");
  EXPECT_TRUE(im["os_hash_value"].is_null());
  ASSERT_EQ(im["locations"].as_array().size(), 1u);
  EXPECT_EQ(S(im["locations"].as_array()[0].at("url")), kUrl);
  EXPECT_EQ(S(im["locations"].as_array()[0].at("metadata").at("foo")), "bar");
  EXPECT_EQ(S(im["direct_url"]), kUrl);

  ASSERT_EQ(Patch(id, AddLoc(kUrl + "#new", R"({"speed": "88mph"})")).status, 200);
  auto shown = Show(id);
  auto locs = shown["locations"].as_array();
  ASSERT_EQ(locs.size(), 2u);
  EXPECT_EQ(S(locs[1].at("url")), kUrl + "#new");
  EXPECT_EQ(S(shown["direct_url"]), kUrl);

  // replace: the same list, then a metadata change; dropping one is 400; the result is kept.
  auto replace = [&](const json::array& list) {
    return Patch(id, json::serialize(json::array{json::object{
                         {"op", "replace"}, {"path", "/locations"}, {"value", list}}}));
  };
  EXPECT_EQ(replace(locs).status, 200);
  locs[0].as_object()["metadata"].as_object()["date"] = "2015-10-15";
  EXPECT_EQ(replace(locs).status, 200);
  EXPECT_EQ(replace(json::array{locs[0]}).status, 400);
  json::array changed = locs;
  changed[1].as_object()["url"] = kUrl + "#new3";
  EXPECT_EQ(replace(changed).status, 400);
  EXPECT_EQ(replace(json::array()).status, 403);
  EXPECT_EQ(S(Show(id)["locations"]), S(locs));

  // remove (delete_image_location: an admin by default): the first, then the last is refused.
  auto rm = Patch(id, R"([{"op": "remove", "path": "/locations/0"}])", "admin");
  ASSERT_EQ(rm.status, 200) << rm.body;
  shown = Show(id);
  ASSERT_EQ(shown["locations"].as_array().size(), 1u);
  EXPECT_EQ(S(shown["locations"].as_array()[0].at("url")), kUrl + "#new");
  EXPECT_EQ(S(shown["direct_url"]), kUrl + "#new");
  rm = Patch(id, R"([{"op": "remove", "path": "/locations/0"}])", "admin");
  EXPECT_EQ(rm.status, 403) << rm.body;
  EXPECT_NE(rm.body.find("Cannot remove last location in the image."), std::string::npos);
}

TEST_F(LocationsApiTest, HashesFromValidationData) {
  std::string id = Create();
  const std::string v = R"(, "validation_data": {"checksum": ")" + std::string(32, '1') +
                        R"(", "os_hash_algo": "sha512", "os_hash_value": ")" +
                        std::string(128, 'd') + R"("})";
  ASSERT_EQ(Patch(id, AddLoc(kUrl, "{}", v)).status, 200);
  auto im = Show(id);
  EXPECT_EQ(S(im["checksum"]), std::string(32, '1'));
  EXPECT_EQ(S(im["os_hash_value"]), std::string(128, 'd'));
  EXPECT_FALSE(im["locations"].as_array()[0].as_object().contains("validation_data"));
  EXPECT_EQ(Patch(id, AddLoc(kUrl + "#new", "{}", v)).status, 200);  // second matching
  const std::string other =
      R"(, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": ")" +
      std::string(128, 'd') + R"("})";
  auto r = Patch(id, AddLoc(kUrl + "#x", "{}", other));
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(Show(id)["locations"].as_array().size(), 2u);
}

TEST_F(LocationsApiTest, SchemaPointersSchemesAndPolicy) {
  std::string id = Create();
  // Glance's pointer depths: add/remove take /locations/<pos>, replace takes /locations.
  EXPECT_EQ(Patch(id, R"([{"op": "add", "path": "/locations", "value": {}}])").status, 400);
  EXPECT_EQ(Patch(id, R"([{"op": "replace", "path": "/locations/0", "value": []}])").status, 400);
  EXPECT_EQ(Patch(id, R"([{"op": "add", "path": "/name/x", "value": "a"}])").status, 400);
  EXPECT_EQ(Patch(id, R"([{"op": "add", "path": "/locations/-", "value": {"url": "x"}}])").status,
            400);  // metadata is required
  EXPECT_EQ(Patch(id, AddLoc(kUrl, "[]")).status, 400);
  EXPECT_EQ(
      Patch(id, AddLoc(kUrl, "{}", R"(, "validation_data": {"os_hash_algo": "sha512"})")).status,
      400);
  EXPECT_EQ(Patch(id, AddLoc(kUrl, "{}", "", "7")).status, 400);  // position
  auto bad = Patch(id, AddLoc("gopher://info.cern.ch"));
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(Patch(id, AddLoc("http://web/missing")).status, 400);
  // Another project's member may not; the old media type works too (tempest's client sends it).
  EXPECT_EQ(Patch(id, AddLoc(kUrl), "other").status, 404);
  auto v20 = As("owner", "PATCH", "/v2/images/" + id,
                R"([{"add": "/locations/-", "value": {"url": ")" + kUrl + R"(", "metadata": {}}}])",
                "application/openstack-images-v2.0-json-patch");
  EXPECT_EQ(v20.status, 200) << v20.body;
  // Another attribute in the same patch is applied with the locations.
  auto mixed =
      Patch(id, R"([{"op": "add", "path": "/locations/0", "value": {"url": ")" + kUrl +
                    R"(#a", "metadata": {}}}, {"op": "replace", "path": "/name", "value": "n"}])");
  ASSERT_EQ(mixed.status, 200) << mixed.body;
  EXPECT_EQ(S(Body(mixed)["name"]), "n");
  EXPECT_EQ(Body(mixed)["locations"].as_array().size(), 2u);
  // delete_image_location is admin-only by default (Glance's secure RBAC).
  auto rm = Patch(id, R"([{"op": "remove", "path": "/locations/0"}])");
  EXPECT_EQ(rm.status, 403) << rm.body;
  rm = Patch(id, R"([{"op": "remove", "path": "/locations/0"}])", "admin");
  EXPECT_EQ(rm.status, 200) << rm.body;
}

TEST_F(LocationsApiTest, OffByDefaultAsGlance) {
  MakeApp(false);
  auto r = As("owner", "POST", "/v2/images", R"({"disk_format":"raw","container_format":"bare"})",
              "application/json");
  ASSERT_EQ(r.status, 201);
  auto body = Body(r);
  EXPECT_FALSE(body.contains("locations"));
  std::string id(body["id"].as_string());
  auto add = Patch(id, AddLoc(kUrl));
  EXPECT_EQ(add.status, 403) << add.body;
  EXPECT_NE(add.body.find("It's not allowed to add locations if locations are invisible."),
            std::string::npos);
  EXPECT_EQ(S(Show(id)["status"]), "queued");
}

}  // namespace
}  // namespace ingot::api
