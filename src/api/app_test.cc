// The API edge in process: real SQLite catalog and file store, requests handed straight to the
// Application (no sockets), answers compared with Glance's recorded behaviour.
#include "api/app.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>

#include "catalog/sqlite/sqlite_repository.h"
#include "io/hash.h"
#include "store/file/file_store.h"
#include "store/registry.h"
#include "store/testing/faulty_store.h"
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

class AppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-api-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.public_url = "http://127.0.0.1:9292";
    options_.max_image_size = 1 << 20;
    options_.formats = {{"raw", "qcow2", "iso", "vmdk"}, {"bare", "ovf"}};
    repo_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    BuildService();
    auth_ = auth::MakeNoAuth("p1");
    MakeApp();
  }
  // The catalog's stores: "file" (through a fault injector) and, when asked, a second file store.
  void BuildService(bool two_stores = false) {
    app_.reset();
    imports_.reset();
    locations_.reset();
    images_.reset();
    stores_ = std::make_unique<store::StoreSet>();
    auto file = std::move(*store::FileStore::Open({.id = "file", .root = dir_ + "/images"}));
    auto faulty = std::make_unique<store::FaultyStore>(std::move(file));
    faulty_ = faulty.get();
    ASSERT_TRUE(stores_->Add(std::move(faulty), {.driver = "file"}).ok());
    if (two_stores) {
      auto second = store::MakeFileStore(
          {.id = "cold", .driver = "file", .options = {{"path", dir_ + "/cold"}}});
      ASSERT_TRUE(second.ok());
      ASSERT_TRUE(stores_->Add(std::move(*second), {.driver = "file"}).ok());
    }
    images_ = std::make_unique<service::ImageService>(
        *repo_, *stores_, service::ImageServiceOptions{.size_cap = options_.max_image_size});
  }
  void MakeApp() {
    app_.reset();
    imports_ = std::make_unique<service::ImportService>(*images_, *repo_, staging_,
                                                        service::ImportOptions{.node = "test"});
    locations_ = std::make_unique<service::LocationService>(*images_, service::LocationOptions{});
    app_ = std::make_unique<Application>(AppDeps{.images = *images_,
                                                 .authenticator = *auth_,
                                                 .policy = policy_,
                                                 .options = options_,
                                                 .imports = imports_.get(),
                                                 .locations = locations_.get()});
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  http::Response Call(std::string method, std::string target, std::string body = "",
                      std::string content_type = "application/json",
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Request req;
    req.method = std::move(method);
    req.target = target;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string qs = target.substr(q + 1);
      size_t i = 0;
      while (i <= qs.size()) {
        size_t amp = qs.find('&', i);
        if (amp == std::string::npos) amp = qs.size();
        std::string kv = qs.substr(i, amp - i);
        auto eq = kv.find('=');
        if (!kv.empty()) {
          req.query.emplace_back(
              *http::PercentDecode(kv.substr(0, eq), true),
              eq == std::string::npos ? "" : *http::PercentDecode(kv.substr(eq + 1), true));
        }
        i = amp + 1;
      }
    }
    if (!content_type.empty()) req.headers.Set("Content-Type", content_type);
    req.headers.Set("Accept", "application/json");
    for (auto& [k, v] : headers) req.headers.Set(k, v);
    req.content_length = body.size();
    StringReader reader(std::move(body));
    req.body = &reader;
    return http::Resolve(app_->Handle(req), req);
  }
  json::object Body(const http::Response& r) { return json::parse(r.body).as_object(); }
  std::string Create(
      std::string body = R"({"name":"a","disk_format":"raw","container_format":"bare"})") {
    auto r = Call("POST", "/v2/images", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(Body(r)["id"].as_string());
  }

  std::string dir_;
  ApiOptions options_;
  const auth::Policy policy_ = auth::Policy::Defaults();
  std::unique_ptr<catalog::SqliteImageRepository> repo_;
  store::FaultyStore* faulty_ = nullptr;  // the "file" store, owned by stores_
  std::unique_ptr<store::StoreSet> stores_;
  std::unique_ptr<service::ImageService> images_;
  store::MemoryStore staging_{"staging"};
  std::unique_ptr<service::ImportService> imports_;
  std::unique_ptr<service::LocationService> locations_;
  std::unique_ptr<auth::Authenticator> auth_;
  std::unique_ptr<Application> app_;
};

TEST_F(AppTest, CreateShowsGlanceShape) {
  auto r = Call(
      "POST", "/v2/images",
      R"({"name":"img","disk_format":"qcow2","container_format":"bare","tags":["t1"],"hw_disk_bus":"scsi"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto o = Body(r);
  std::string id(o["id"].as_string());
  EXPECT_EQ(*r.headers.Get("Location"), "http://127.0.0.1:9292/v2/images/" + id);
  EXPECT_TRUE(r.headers.Get("x-openstack-request-id")->starts_with("req-"));
  EXPECT_EQ(S(o["status"]), "queued");
  EXPECT_EQ(S(o["visibility"]), "shared");
  EXPECT_EQ(S(o["hw_disk_bus"]), "scsi");
  EXPECT_TRUE(o["size"].is_null());
  EXPECT_EQ(S(o["self"]), "/v2/images/" + id);
  EXPECT_EQ(S(o["file"]), "/v2/images/" + id + "/file");
  EXPECT_EQ(S(o["schema"]), "/v2/schemas/image");
  EXPECT_EQ(o["tags"].as_array().size(), 1u);
  EXPECT_EQ(Call("GET", "/v2/images/" + id).status, 200);
}

TEST_F(AppTest, AwkwardStringsRoundTrip) {
  const std::string body =
      R"({"name":"q\"uote\\back\nline\u0001ctl é ☃","disk_format":"raw","container_format":"bare","k\"ey":"v\t\u001f"})";
  auto r = Call("POST", "/v2/images", body);
  ASSERT_EQ(r.status, 201) << r.body;
  auto sent = json::parse(body).as_object();
  auto got = Body(Call("GET", "/v2/images/" + S(Body(r)["id"])));
  EXPECT_EQ(got["name"], sent["name"]);
  EXPECT_EQ(got["k\"ey"], sent["k\"ey"]);
  auto list =
      Body(Call("GET", "/v2/images?name=" +
                           std::string("q%22uote%5Cback%0Aline%01ctl%20%C3%A9%20%E2%98%83")));
  ASSERT_EQ(list["images"].as_array().size(), 1u);
}

TEST_F(AppTest, CreateRefusesBadInput) {
  EXPECT_EQ(Call("POST", "/v2/images", "{bad").status, 400);
  EXPECT_NE(Call("POST", "/v2/images", "{bad").body.find("Malformed JSON in request body."),
            std::string::npos);
  EXPECT_EQ(Call("POST", "/v2/images", R"({"disk_format":"bogus"})").status, 400);
  EXPECT_EQ(Call("POST", "/v2/images", R"({"status":"active"})").status, 403);
  EXPECT_EQ(Call("POST", "/v2/images", R"({"os_glance_foo":"x"})").status, 403);
  EXPECT_EQ(Call("POST", "/v2/images", R"({"name":")" + std::string(256, 'n') + R"("})").status,
            400);
  EXPECT_EQ(Call("POST", "/v2/images", R"({"id":"not-a-uuid"})").status, 400);
  EXPECT_EQ(Call("POST", "/v2/images", R"({"k": 5})").status, 400);
  std::string id = Create();
  auto dup = Call("POST", "/v2/images", R"({"id":")" + id + R"("})");
  EXPECT_EQ(dup.status, 409);
  EXPECT_NE(dup.body.find("Image ID " + id + " already exists!"), std::string::npos);
}

TEST_F(AppTest, UnknownIdsAndPaths) {
  auto r = Call("GET", "/v2/images/not-a-uuid");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(S(Body(r)["message"]), "No image found with ID not-a-uuid<br /><br />\n\n\n");
  EXPECT_EQ(S(Body(r)["code"]), "404 Not Found");
  EXPECT_EQ(Call("GET", "/v2/nothing").status, 404);
  std::string id = Create();
  auto m = Call("POST", "/v2/images/" + id);
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(*m.headers.Get("Allow"), "GET, PATCH, DELETE");
}

TEST_F(AppTest, ErrorsAreHtmlUnlessJsonIsAccepted) {
  auto r = Call("GET", "/v2/images/<script>", "", "", {{"Accept", "*/*"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(*r.headers.Get("Content-Type"), "text/html; charset=UTF-8");
  EXPECT_EQ(
      r.body,
      "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not "
      "Found</h1>\n  No image found with ID &lt;script&gt;<br /><br />\n\n\n\n </body>\n</html>");
}

TEST_F(AppTest, PatchAddReplaceRemove) {
  std::string id = Create();
  const std::string patch = "application/openstack-images-v2.1-json-patch";
  auto r =
      Call("PATCH", "/v2/images/" + id,
           R"([{"op":"replace","path":"/name","value":"b"},{"op":"add","path":"/k","value":"v"}])",
           patch);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(S(Body(r)["name"]), "b");
  EXPECT_EQ(S(Body(r)["k"]), "v");
  r = Call("PATCH", "/v2/images/" + id, R"([{"op":"remove","path":"/k"}])", patch);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(Body(r).contains("k"));
  EXPECT_EQ(Call("PATCH", "/v2/images/" + id, R"([{"op":"remove","path":"/k"}])", patch).status,
            409);
  EXPECT_EQ(Call("PATCH", "/v2/images/" + id,
                 R"([{"op":"replace","path":"/status","value":"active"}])", patch)
                .status,
            403);
  EXPECT_EQ(
      Call("PATCH", "/v2/images/" + id, R"([{"op":"replace","path":"/name","value":"c"}])").status,
      415);
  EXPECT_EQ(Call("PATCH", "/v2/images/" + id, R"([{"op":"move","path":"/name"}])", patch).status,
            400);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["name"]),
            "b");  // failed patches changed nothing
}

TEST_F(AppTest, UploadDownloadRangeAndConflicts) {
  std::string id = Create();
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13);
  auto up = Call("PUT", "/v2/images/" + id + "/file", data, "application/octet-stream");
  ASSERT_EQ(up.status, 204) << up.body;
  auto shown = Body(Call("GET", "/v2/images/" + id));
  EXPECT_EQ(S(shown["status"]), "active");
  EXPECT_EQ(shown["size"].as_int64(), 100000);
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  EXPECT_EQ(S(shown["checksum"]), *io::HexDigestOf("md5", bytes));
  EXPECT_EQ(S(shown["os_hash_value"]), *io::HexDigestOf("sha512", bytes));

  auto down = Call("GET", "/v2/images/" + id + "/file");
  EXPECT_EQ(down.status, 200);
  ASSERT_TRUE(down.file.has_value());
  EXPECT_EQ(down.file->length, 100000u);
  EXPECT_EQ(std::string(*down.headers.Get("Content-MD5")), S(shown["checksum"]));

  auto range = Call("GET", "/v2/images/" + id + "/file", "", "", {{"Range", "bytes=0-99"}});
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(*range.headers.Get("Content-Range"), "bytes 0-99/100000");
  EXPECT_EQ(range.file->length, 100u);
  auto bad = Call("GET", "/v2/images/" + id + "/file", "", "", {{"Range", "bytes=200000-"}});
  EXPECT_EQ(bad.status, 416);

  auto again = Call("PUT", "/v2/images/" + id + "/file", data, "application/octet-stream");
  EXPECT_EQ(again.status, 409);
  EXPECT_NE(again.body.find("Image status transition from active to saving is not allowed"),
            std::string::npos);
  std::string big = Create();
  EXPECT_EQ(Call("PUT", "/v2/images/" + big + "/file", std::string(2 << 20, 'b'),
                 "application/octet-stream")
                .status,
            413);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + big))["status"]), "queued");
  std::string unformatted = Create("{}");
  EXPECT_EQ(
      Call("PUT", "/v2/images/" + unformatted + "/file", "abc", "application/octet-stream").status,
      400);
  EXPECT_EQ(Call("GET", "/v2/images/" + unformatted + "/file").status, 204);
}

// A client may declare at create the os_hash_value its data must have; an upload of other bytes is
// refused (400, nothing stored, the image still queued), the right bytes activate it. os_hash_algo
// may be named only as the server's; alone it stays read-only.
TEST_F(AppTest, AChecksumDeclaredAtCreateIsCheckedOnUpload) {
  std::string data(70000, 'q');
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  const std::string sha = *io::HexDigestOf("sha512", bytes);
  auto create = [&](const std::string& extra) {
    return Call("POST", "/v2/images",
                R"({"disk_format":"raw","container_format":"bare")" + extra + "}",
                "application/json");
  };
  EXPECT_EQ(create(R"(,"os_hash_value":"abc")").status, 400);
  EXPECT_EQ(create(R"(,"os_hash_value":")" + sha + R"(","os_hash_algo":"md5")").status, 400);
  EXPECT_EQ(create(R"(,"os_hash_algo":"sha512")").status, 403);
  auto made = create(R"(,"os_hash_value":")" + sha + R"(","os_hash_algo":"sha512")");
  ASSERT_EQ(made.status, 201) << made.body;
  std::string id = S(Body(made)["id"]);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["os_hash_value"]), sha);

  auto wrong = Call("PUT", "/v2/images/" + id + "/file", data + "!", "application/octet-stream");
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("does not match the os_hash_value declared"), std::string::npos);
  auto after = Body(Call("GET", "/v2/images/" + id));
  EXPECT_EQ(S(after["status"]), "queued");
  EXPECT_EQ(S(after["os_hash_value"]), sha);
  EXPECT_EQ(Call("GET", "/v2/images/" + id + "/file").status, 204);

  ASSERT_EQ(Call("PUT", "/v2/images/" + id + "/file", data, "application/octet-stream").status,
            204);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "active");
}

TEST_F(AppTest, TagsProtectedDeleteAndDeactivate) {
  std::string id =
      Create(R"({"name":"p","protected":true,"disk_format":"raw","container_format":"bare"})");
  EXPECT_EQ(Call("PUT", "/v2/images/" + id + "/tags/blue", "", "").status, 204);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["tags"].as_array()[0]), "blue");
  EXPECT_EQ(Call("DELETE", "/v2/images/" + id + "/tags/blue", "", "").status, 204);
  EXPECT_EQ(Call("DELETE", "/v2/images/" + id + "/tags/blue", "", "").status, 404);
  EXPECT_EQ(Call("DELETE", "/v2/images/" + id, "", "").status, 403);
  EXPECT_EQ(Call("POST", "/v2/images/" + id + "/actions/deactivate", "", "").status,
            403);  // queued

  Call("PATCH", "/v2/images/" + id, R"([{"op":"replace","path":"/protected","value":false}])",
       "application/openstack-images-v2.1-json-patch");
  ASSERT_EQ(Call("PUT", "/v2/images/" + id + "/file", "data", "application/octet-stream").status,
            204);
  EXPECT_EQ(Call("POST", "/v2/images/" + id + "/actions/deactivate", "", "").status, 204);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "deactivated");
  EXPECT_EQ(Call("POST", "/v2/images/" + id + "/actions/reactivate", "", "").status, 204);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "active");
  EXPECT_EQ(Call("DELETE", "/v2/images/" + id, "", "").status, 204);
  EXPECT_EQ(Call("GET", "/v2/images/" + id).status, 404);
  EXPECT_EQ(Call("POST", "/v2/images", R"({"id":")" + id + R"("})").status,
            409);  // ids never reused
}

TEST_F(AppTest, ListPaginatesWithLinks) {
  for (int i = 0; i < 5; ++i) Create(R"({"name":"n)" + std::to_string(i) + R"("})");
  auto r = Call("GET", "/v2/images?limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = Body(r);
  EXPECT_EQ(o["images"].as_array().size(), 2u);
  EXPECT_EQ(S(o["first"]), "/v2/images?limit=2");
  EXPECT_EQ(S(o["schema"]), "/v2/schemas/images");
  ASSERT_TRUE(o.contains("next"));
  std::set<std::string> seen;
  std::string next(o["next"].as_string());
  for (auto& im : o["images"].as_array())
    seen.insert(std::string(im.as_object().at("id").as_string()));
  while (!next.empty()) {
    auto page = Body(Call("GET", next));
    for (auto& im : page["images"].as_array())
      seen.insert(std::string(im.as_object().at("id").as_string()));
    next = page.contains("next") ? std::string(page["next"].as_string()) : "";
  }
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(Call("GET", "/v2/images?sort_key=bogus").status, 400);
  EXPECT_EQ(Call("GET", "/v2/images?marker=00000000-0000-0000-0000-000000000000").status, 400);
  EXPECT_EQ(Body(Call("GET", "/v2/images?name=n3"))["images"].as_array().size(), 1u);
}

TEST_F(AppTest, DiscoveryHealthAndMetrics) {
  auto v = Call("GET", "/versions");
  EXPECT_EQ(v.status, 200);
  EXPECT_EQ(S(Body(v)["versions"].as_array()[0].as_object().at("status")), "CURRENT");
  EXPECT_EQ(Call("GET", "/").status, 300);
  auto schema = Body(Call("GET", "/v2/schemas/image"));
  EXPECT_EQ(S(schema["name"]), "image");
  EXPECT_TRUE(schema["properties"].as_object().at("status").as_object().at("readOnly").as_bool());
  EXPECT_EQ(S(Body(Call("GET", "/v2/schemas/images"))["name"]), "images");
  EXPECT_EQ(Call("GET", "/healthcheck").body, "OK");
  EXPECT_EQ(S(Body(Call("GET", "/v2/info/stores"))["stores"].as_array()[0].as_object().at("id")),
            "file");
  // Import is offered (the import issue): Glance's four methods.
  EXPECT_EQ(Body(Call("GET", "/v2/info/import"))["import-methods"]
                .as_object()
                .at("value")
                .as_array()
                .size(),
            4u);
  Create();
  auto m = Call("GET", "/metrics");
  EXPECT_NE(m.body.find("ingot_images{status=\"queued\"} 1"), std::string::npos) << m.body;
}

class AppAuthTest : public AppTest {
 protected:
  void SetUp() override {
    AppTest::SetUp();
    std::string path = dir_ + "/tokens.toml";
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(
        "[[token]]\ntoken = \"owner\"\nproject = \"p1\"\nroles = [\"member\"]\n"
        "[[token]]\ntoken = \"other\"\nproject = \"p2\"\nroles = [\"member\"]\n"
        "[[token]]\ntoken = \"reader\"\nproject = \"p1\"\nroles = [\"reader\"]\n"
        "[[token]]\ntoken = \"admin\"\nproject = \"ops\"\nroles = [\"admin\"]\n"
        "[[token]]\ntoken = \"svc\"\nproject = \"p1\"\nroles = [\"service\"]\n"
        "[[token]]\ntoken = \"svc-elsewhere\"\nproject = \"services\"\n"
        "roles = [\"service\"]\n",
        f);
    std::fclose(f);
    auth_ = std::move(*auth::MakeTokenFileAuth(path));
    MakeApp();
  }
  http::Response As(std::string token, std::string method, std::string target,
                    std::string body = "", std::string ctype = "application/json") {
    return Call(std::move(method), std::move(target), std::move(body), std::move(ctype),
                {{"X-Auth-Token", std::move(token)}});
  }
  size_t Listed(std::string token, std::string query = "") {
    return Body(As(std::move(token), "GET", "/v2/images" + query))["images"].as_array().size();
  }
};

TEST_F(AppAuthTest, PolicyAndVisibility) {
  EXPECT_EQ(Call("GET", "/v2/images").status, 401);
  EXPECT_EQ(As("bogus", "GET", "/v2/images").status, 401);
  EXPECT_EQ(Call("GET", "/versions").status, 200);  // discovery needs no token
  EXPECT_EQ(As("reader", "POST", "/v2/images", "{}").status, 403);

  auto r = As("owner", "POST", "/v2/images", R"({"name":"mine","visibility":"private"})");
  ASSERT_EQ(r.status, 201);
  std::string id(Body(r)["id"].as_string());
  EXPECT_EQ(S(Body(r)["owner"]), "p1");
  EXPECT_EQ(As("reader", "GET", "/v2/images/" + id).status, 200);
  EXPECT_EQ(As("reader", "DELETE", "/v2/images/" + id).status, 403);
  EXPECT_EQ(As("other", "GET", "/v2/images/" + id).status, 404);  // not 403: no existence leak
  EXPECT_EQ(As("other", "DELETE", "/v2/images/" + id).status, 404);
  EXPECT_EQ(As("owner", "PATCH", "/v2/images/" + id,
               R"([{"op":"replace","path":"/visibility","value":"public"}])",
               "application/openstack-images-v2.1-json-patch")
                .status,
            403);  // publicize_image is admin-only
  EXPECT_EQ(As("admin", "GET", "/v2/images/" + id).status, 200);
  EXPECT_EQ(As("owner", "POST", "/v2/images/" + id + "/actions/deactivate").status, 403);
}

TEST_F(AppAuthTest, SharingWithMembers) {
  auto r = As("owner", "POST", "/v2/images", R"({"name":"s","visibility":"shared"})");
  std::string id(Body(r)["id"].as_string());
  EXPECT_EQ(As("other", "GET", "/v2/images/" + id).status, 404);
  EXPECT_EQ(As("other", "POST", "/v2/images/" + id + "/members", R"({"member":"p2"})").status, 404);
  auto m = As("owner", "POST", "/v2/images/" + id + "/members", R"({"member":"p2"})");
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(S(Body(m)["status"]), "pending");
  EXPECT_EQ(As("owner", "POST", "/v2/images/" + id + "/members", R"({"member":"p2"})").status, 409);
  // A pending member can see the image but does not get it in its default list.
  EXPECT_EQ(As("other", "GET", "/v2/images/" + id).status, 200);
  EXPECT_EQ(Listed("other"), 0u);
  EXPECT_EQ(
      As("owner", "PUT", "/v2/images/" + id + "/members/p2", R"({"status":"accepted"})").status,
      403);  // only the member decides
  auto acc = As("other", "PUT", "/v2/images/" + id + "/members/p2", R"({"status":"accepted"})");
  ASSERT_EQ(acc.status, 200) << acc.body;
  EXPECT_EQ(Listed("other"), 1u);
  EXPECT_EQ(Body(As("owner", "GET", "/v2/images/" + id + "/members"))["members"].as_array().size(),
            1u);
  EXPECT_EQ(As("owner", "DELETE", "/v2/images/" + id + "/members/p2").status, 204);
  EXPECT_EQ(As("other", "GET", "/v2/images/" + id).status, 404);
}

// Every route the API exposes names a rule the policy holds; a route whose rule the policy lacks is
// refused, never allowed.
TEST_F(AppTest, EveryRouteNamesAPolicyRule) {
  ASSERT_GT(app_->router().routes().size(), 20u);
  for (const auto& route : app_->router().routes()) {
    EXPECT_FALSE(route.value.rule.empty()) << route.method << " " << route.pattern;
    EXPECT_TRUE(policy_.Has(route.value.rule))
        << route.method << " " << route.pattern << " names unknown rule " << route.value.rule;
  }
  // The same application with a policy that lacks get_images: admin (noauth) is refused.
  auth::Policy partial;
  for (const std::string& rule : policy_.rules()) {
    if (rule != "get_images") partial.Set(rule, auth::Check::kAnyone);
  }
  Application strict(AppDeps{*images_, *auth_, partial, options_});
  http::Request req;
  req.method = "GET";
  req.target = req.path = "/v2/images";
  http::Response r = http::Resolve(strict.Handle(req), req);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("get_images"), std::string::npos);
  req.path = "/healthcheck";
  EXPECT_EQ(http::Resolve(strict.Handle(req), req).status, 200);
}

// Glance's import over the API: stage, import, the task documents, and the refusals' statuses.
TEST_F(AppTest, StageImportAndTasks) {
  for (const char* route :
       {"/v2/images/{id}/stage", "/v2/images/{id}/import", "/v2/tasks/{task}"}) {
    bool found = false;
    for (const auto& r : app_->router().routes()) found |= r.pattern == route;
    EXPECT_TRUE(found) << route;
  }
  auto info = Body(Call("GET", "/v2/info/import"));
  EXPECT_EQ(info["import-methods"].as_object()["value"].as_array().size(), 4u);
  std::string id = Create();
  EXPECT_EQ(Call("POST", "/v2/images/" + id + "/import", R"({"method": {"name": "glance-direct"}})")
                .status,
            409);
  EXPECT_EQ(Call("POST", "/v2/images/" + id + "/import", R"({"method": "glance-direct"})").status,
            400);
  EXPECT_EQ(
      Call("PUT", "/v2/images/" + id + "/stage", "0123456789", "application/octet-stream").status,
      204);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "uploading");
  auto accepted =
      Call("POST", "/v2/images/" + id + "/import", R"({"method": {"name": "glance-direct"}})");
  EXPECT_EQ(accepted.status, 202);
  EXPECT_TRUE(accepted.body.empty());
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "importing");
  ASSERT_TRUE(*imports_->RunOnce());
  auto image = Body(Call("GET", "/v2/images/" + id));
  EXPECT_EQ(S(image["status"]), "active");
  EXPECT_EQ(S(image["os_glance_importing_to_stores"]), "");
  auto tasks = Body(Call("GET", "/v2/images/" + id + "/tasks"))["tasks"].as_array();
  ASSERT_EQ(tasks.size(), 1u);
  auto task = tasks[0].as_object();
  EXPECT_EQ(S(task["status"]), "success");
  EXPECT_EQ(S(task["type"]), "api_image_import");
  EXPECT_EQ(S(task["image_id"]), id);
  EXPECT_EQ(S(task["input"].as_object()["image_id"]), id);
  std::string task_id(task["id"].as_string());
  auto shown = Body(Call("GET", "/v2/tasks/" + task_id));
  EXPECT_EQ(S(shown["self"]), "/v2/tasks/" + task_id);
  EXPECT_TRUE(shown.contains("expires_at"));
  auto listed = Body(Call("GET", "/v2/tasks"))["tasks"].as_array();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_FALSE(listed[0].as_object().contains("input")) << "lists show Glance's task stub";
  EXPECT_EQ(Call("GET", "/v2/tasks/" + id).status, 404);
}

// A store failure is the server's: 500 (507 when out of space) with the request id, the cause only
// in the log; the image stays queued, nothing is left in the store, and the next upload succeeds.
TEST_F(AppTest, StoreFailuresNeverLeakAndLeaveNothingBehind) {
  std::string id = Create();
  faulty_->Arm({.commit = IoError("fdatasync " + dir_ + "/images/.tmp-x: Input/output error")});
  auto r = Call("PUT", "/v2/images/" + id + "/file", "some bytes", "application/octet-stream");
  EXPECT_EQ(r.status, 500);
  std::string message(Body(r)["message"].as_string());
  EXPECT_EQ(message.find(dir_), std::string::npos) << message;
  EXPECT_EQ(message.find("fdatasync"), std::string::npos) << message;
  EXPECT_NE(message.find(*r.headers.Get("x-openstack-request-id")), std::string::npos) << message;
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "queued");
  EXPECT_TRUE(faulty_->ListKeys()->empty());

  faulty_->Arm({.write_fails_after = 4});
  r = Call("PUT", "/v2/images/" + id + "/file", "some bytes", "application/octet-stream");
  EXPECT_EQ(r.status, 507);
  EXPECT_EQ(Body(r)["message"].as_string().find("No space"), std::string::npos);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "queued");

  EXPECT_EQ(
      Call("PUT", "/v2/images/" + id + "/file", "some bytes", "application/octet-stream").status,
      204);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "active");
  EXPECT_EQ(Call("GET", "/v2/images/" + id + "/file").status, 200);
}

TEST_F(AppTest, IllFormedUtf8IsRefusedBeforeItBecomesData) {
  std::string id = Create();
  http::Request req;
  req.method = "PUT";
  req.target = "/v2/images/" + id + "/tags/%ff%fe";
  req.path = "/v2/images/" + id + "/tags/\xff\xfe";
  EXPECT_EQ(http::Resolve(app_->Handle(req), req).status, 400);
  req.method = "GET";
  req.path = "/v2/images";
  req.query = {{"name", "\xc3\x28"}};
  EXPECT_EQ(http::Resolve(app_->Handle(req), req).status, 400);
  EXPECT_EQ(Call("POST", "/v2/images", "{\"name\": \"\xed\xa0\x80\"}").status, 400);
  EXPECT_TRUE(Body(Call("GET", "/v2/images/" + id))["tags"].as_array().empty());
}

TEST_F(AppTest, UploadsGoToTheNamedStoreAndDownloadsComeFromIt) {
  BuildService(/*two_stores=*/true);
  MakeApp();
  EXPECT_EQ(Body(Call("GET", "/v2/info/stores"))["stores"].as_array().size(), 2u);

  std::string id = Create();
  auto r = Call("PUT", "/v2/images/" + id + "/file", "cold bytes", "application/octet-stream",
                {{"X-Image-Meta-Store", "cold"}});
  ASSERT_EQ(r.status, 204) << r.body;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/cold/" + id));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/images/" + id));
  auto d = Call("GET", "/v2/images/" + id + "/file");
  EXPECT_EQ(d.status, 200);
  ASSERT_TRUE(d.file.has_value());

  std::string other = Create();
  r = Call("PUT", "/v2/images/" + other + "/file", "x", "application/octet-stream",
           {{"X-Image-Meta-Store", "nowhere"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("Store for identifier nowhere not found"), std::string::npos);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + other))["status"]), "queued");

  EXPECT_EQ(Call("DELETE", "/v2/images/" + id).status, 204);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/cold/" + id));
}

TEST_F(AppTest, ListBoundsAnswerAsLimitsNotDatabaseErrors) {
  std::string target = "/v2/images?";
  for (int i = 0; i < 1000; ++i) target += "p" + std::to_string(i) + "=v&";
  auto r = Call("GET", target);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("at most 64"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("Expression"), std::string::npos) << r.body;
}

// An image with copies in two stores: reads follow ?prefer=, one copy can be removed, the last
// cannot.
TEST_F(AppTest, CopiesInSeveralStores) {
  BuildService(/*two_stores=*/true);
  MakeApp();
  auto created =
      Call("POST", "/v2/images", R"({"name":"a","disk_format":"raw","container_format":"bare"})");
  EXPECT_EQ(*created.headers.Get("OpenStack-image-store-ids"), "file,cold");
  std::string id(Body(created)["id"].as_string());
  ASSERT_EQ(
      Call("PUT", "/v2/images/" + id + "/file", "0123456789", "application/octet-stream").status,
      204);
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["stores"]), "file");
  // A second copy, as copy-image makes it.
  {
    auto obj = stores_->Find("cold")->Create(id);
    ASSERT_TRUE(obj.ok());
    std::string bytes = "0123456789";
    ASSERT_TRUE((*obj)->Write({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}).ok());
    ASSERT_TRUE((*obj)->Commit().ok());
    auto im = *repo_->Get(id);
    im.locations.push_back({"cold", id});
    ASSERT_TRUE(repo_->Save(im).ok());
  }
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["stores"]), "file,cold");
  auto served_from = [&](std::string query) {
    auto d = Call("GET", "/v2/images/" + id + "/file" + query);
    if (!d.file) return std::string("(no file)");
    return std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(d.file->fd.get()))
        .parent_path()
        .filename()
        .string();
  };
  EXPECT_EQ(served_from("?prefer=cold"), "cold");
  EXPECT_EQ(served_from("?prefer=nowhere,file"), "images");  // the "file" store's directory
  EXPECT_EQ(served_from(""), "images");                      // equal weights: the first copy

  EXPECT_EQ(Call("DELETE", "/v2/stores/nowhere/" + id).status, 404);
  EXPECT_EQ(Call("DELETE", "/v2/stores/cold/" + id).status, 204);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/cold/" + id));
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["stores"]), "file");
  auto last = Call("DELETE", "/v2/stores/file/" + id);
  EXPECT_EQ(last.status, 409);
  EXPECT_NE(last.body.find("only store"), std::string::npos) << last.body;
  EXPECT_EQ(Call("GET", "/v2/images/" + id + "/file").status, 200);
}

TEST_F(AppTest, SchemaNeverListsStoresWithOneStoreOrMany) {
  // glanceclient caches the schema and derives options from it; `stores` would collide with
  // --stores.
  auto schema = Body(Call("GET", "/v2/schemas/image"));
  EXPECT_FALSE(schema["properties"].as_object().contains("stores"));
  BuildService(/*two_stores=*/true);
  MakeApp();
  schema = Body(Call("GET", "/v2/schemas/image"));
  EXPECT_FALSE(schema["properties"].as_object().contains("stores"));
  EXPECT_EQ(S(schema["additionalProperties"].as_object()["type"]), "string")
      << "the documents' `stores` rides on additionalProperties";
}

}  // namespace
}  // namespace ingot::api

namespace ingot::api {
namespace {

// Writes `size` patterned bytes as object `name` of the "file" store; returns its file:// URL.
std::string PlaceObject(const std::string& dir, const std::string& name, size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 13 + 1);
  std::FILE* f = std::fopen((dir + "/images/" + name).c_str(), "wb");
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  return "file://" + dir + "/images/" + name;
}

std::string LocationBody(const std::string& url, const std::string& extra = "") {
  return R"({"url":")" + url + "\"" + extra + "}";
}

// Glance 2024.1's locations API over the API edge: 202, the refusals' statuses and texts.
TEST_F(AppTest, AddLocationActivatesAndRefusesWhatItMust) {
  std::string id = Create();
  const std::string path = "/v2/images/" + id + "/locations";
  std::string url = PlaceObject(dir_, "golden.raw", 100000);
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + 1);
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  const std::string sha512 = *io::HexDigestOf("sha512", bytes);

  // Refusals first; each leaves the image queued.
  EXPECT_EQ(Call("POST", path, "{bad").status, 400);
  EXPECT_EQ(Call("POST", path, "{}").status, 400);  // url is required
  EXPECT_EQ(Call("POST", path, R"({"url": 5})").status, 400);
  EXPECT_EQ(Call("POST", path, LocationBody(url, R"(,"validation_data":{"os_hash_algo":"sha512"})"))
                .status,
            400);  // both or neither
  EXPECT_EQ(Call("POST", path, LocationBody(url, R"(,"validation_data":{"checksum":"x"})")).status,
            400);
  for (const std::string& bad :
       {std::string("http://example.com/x.img"), std::string("file:///etc/passwd"),
        "file://" + dir_ + "/images/../catalog.db", "file://" + dir_ + "/images/missing.raw"}) {
    auto r = Call("POST", path, LocationBody(bad));
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
  }
  auto mismatch =
      Call("POST", path,
           LocationBody(url, R"(,"validation_data":{"os_hash_algo":"sha512","os_hash_value":")" +
                                 std::string(128, 'b') + "\"}"));
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_NE(mismatch.body.find("not matched with actual os_hash_value"), std::string::npos)
      << mismatch.body;
  EXPECT_EQ(S(Body(Call("GET", "/v2/images/" + id))["status"]), "queued");

  auto ok =
      Call("POST", path,
           LocationBody(url, R"(,"validation_data":{"os_hash_algo":"sha512","os_hash_value":")" +
                                 sha512 + "\"}"));
  ASSERT_EQ(ok.status, 202) << ok.body;
  EXPECT_TRUE(ok.body.empty());
  auto shown = Body(Call("GET", "/v2/images/" + id));
  EXPECT_EQ(S(shown["status"]), "active");
  EXPECT_EQ(S(shown["os_hash_value"]), sha512);
  EXPECT_EQ(shown["size"].as_int64(), 100000);
  auto file = Call("GET", "/v2/images/" + id + "/file");
  EXPECT_EQ(file.status, 200);

  auto again = Call("POST", path, LocationBody(url));
  EXPECT_EQ(again.status, 409);
  EXPECT_NE(again.body.find("It's not allowed to add locations if image status is active."),
            std::string::npos)
      << again.body;
  // noauth is an admin, not a service: Glance's fetch_image_location is role:service only.
  EXPECT_EQ(Call("GET", path).status, 403);
  for (const char* route : {"/v2/images/{id}/locations"}) {
    int found = 0;
    for (const auto& r : app_->router().routes()) found += r.pattern == route;
    EXPECT_EQ(found, 2) << route;
  }
}

TEST_F(AppAuthTest, LocationPolicy) {
  auto mk = [&](const std::string& token, const std::string& visibility) {
    auto r =
        As(token, "POST", "/v2/images",
           R"({"disk_format":"raw","container_format":"bare","visibility":")" + visibility + "\"}");
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(Body(r)["id"].as_string());
  };
  std::string mine = mk("owner", "private");
  const std::string path = "/v2/images/" + mine + "/locations";
  std::string url = PlaceObject(dir_, "a.raw", 4096);
  EXPECT_EQ(As("reader", "POST", path, LocationBody(url)).status, 403);
  EXPECT_EQ(As("other", "POST", path, LocationBody(url)).status, 404);  // invisible
  EXPECT_EQ(As("admin", "POST", path, LocationBody(url)).status, 403);  // not the owner's project
  ASSERT_EQ(As("owner", "POST", path, LocationBody(url)).status, 202);

  // GET: the service role only.
  EXPECT_EQ(As("owner", "GET", path).status, 403);
  EXPECT_EQ(As("admin", "GET", path).status, 403);
  EXPECT_EQ(As("reader", "GET", path).status, 403);
  auto listed = As("svc", "GET", path);
  ASSERT_EQ(listed.status, 200) << listed.body;
  auto list = json::parse(listed.body).as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_TRUE(S(list[0].as_object().at("url")).ends_with("/images/a.raw")) << listed.body;
  EXPECT_EQ(S(list[0].as_object().at("metadata").as_object().at("store")), "file");
  EXPECT_EQ(As("svc-elsewhere", "GET", path).status, 404);  // a private image stays invisible

  // A service may add a location to an image it can see.
  std::string pub = mk("admin", "public");
  std::string url2 = PlaceObject(dir_, "b.raw", 4096);
  EXPECT_EQ(As("owner", "POST", "/v2/images/" + pub + "/locations", LocationBody(url2)).status,
            403);
  EXPECT_EQ(
      As("svc-elsewhere", "POST", "/v2/images/" + pub + "/locations", LocationBody(url2)).status,
      202);
  EXPECT_EQ(As("svc-elsewhere", "GET", "/v2/images/" + pub + "/locations").status, 200);
}

// Gaps tempest found: the deprecated v2.0 patch dialect, an empty image id, the member schemas.
TEST_F(AppTest, TempestCoreGaps) {
  std::string id = Create();
  const std::string v20 = "application/openstack-images-v2.0-json-patch";
  auto r = Call("PATCH", "/v2/images/" + id, R"([{"replace":"/name","value":"renamed"}])", v20);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(S(Body(r)["name"]), "renamed");
  r = Call("PATCH", "/v2/images/" + id, R"([{"add":"/k1","value":"v"}])", v20);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(S(Body(r)["k1"]), "v");
  r = Call("PATCH", "/v2/images/" + id, R"([{"remove":"/k1"}])", v20);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(Body(r).contains("k1"));
  // Two operation names in one object, or none: Glance's 400s.
  EXPECT_EQ(Call("PATCH", "/v2/images/" + id, R"([{"add":"/a","replace":"/b","value":1}])", v20)
                .status,
            400);
  EXPECT_EQ(Call("PATCH", "/v2/images/" + id, R"([{"op":"add","path":"/a","value":"x"}])", v20)
                .status,
            400);
  // An empty id is no image, not the collection (Glance: 404 for GET and DELETE).
  EXPECT_EQ(Call("GET", "/v2/images/").status, 404);
  EXPECT_EQ(Call("DELETE", "/v2/images/").status, 404);
  EXPECT_EQ(Call("GET", "/v2/images//file").status, 404);
  EXPECT_EQ(Call("GET", "/v2/images").status, 200);
  r = Call("GET", "/v2/schemas/member");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(S(Body(r)["name"]), "member");
  EXPECT_TRUE(Body(r)["properties"].as_object().contains("member_id"));
  r = Call("GET", "/v2/schemas/members");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(S(Body(r)["name"]), "members");
}

}  // namespace
}  // namespace ingot::api

namespace ingot::api {
namespace {

// The I/O-thread answer (HandleInline) is Handle's answer, for the routes marked inline_read only,
// and only when the catalog's reads never wait.
TEST_F(AppTest, InlineAnswersOnlyMarkedReadsOnALocalCatalog) {
  std::string id = Create();
  auto inline_answer = [&](const std::string& method, const std::string& path) {
    http::Request req;
    req.method = method;
    req.target = req.path = path;
    req.headers.Set("Accept", "application/json");
    return app_->HandleInline(req);
  };
  EXPECT_FALSE(inline_answer("GET", "/v2/images/" + id)) << "inline_reads is off by default";
  options_.inline_reads = true;
  MakeApp();
  auto shown = inline_answer("GET", "/v2/images/" + id);
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->status, 200);
  auto worker = Call("GET", "/v2/images/" + id, "", "");
  EXPECT_EQ(Body(*shown)["id"], Body(worker)["id"]);
  EXPECT_EQ(shown->body.size(), worker.body.size());
  auto missing = inline_answer("GET", "/v2/images/00000000-0000-0000-0000-000000000000");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_FALSE(inline_answer("GET", "/v2/images")) << "lists are not marked";
  EXPECT_FALSE(inline_answer("DELETE", "/v2/images/" + id));
  EXPECT_EQ(Call("GET", "/v2/images/" + id, "", "").status, 200) << "the DELETE never ran";
}

}  // namespace
}  // namespace ingot::api
