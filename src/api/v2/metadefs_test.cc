// The metadata-definitions API in process: real SQLite catalog, requests handed straight to the
// Application, answers compared with what the real Glance (25.x) answered for the same requests.
#include "api/v2/metadefs.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>

#include "api/app.h"
#include "catalog/sqlite/sqlite_repository.h"
#include "io/memory.h"
#include "metadefs/loader.h"
#include "metadefs/sqlite/sqlite_repository.h"
#include "store/testing/memory_store.h"

namespace ingot::api {
namespace {

namespace json = boost::json;

// Callers by token: "admin" (project adm), "alice" and "bob" (members of their own projects).
class TokenAuth final : public auth::Authenticator {
 public:
  Result<auth::RequestContext> Authenticate(const http::Headers& headers) override {
    std::string token(headers.Get("X-Auth-Token").value_or(""));
    auth::RequestContext ctx;
    ctx.authenticated = true;
    if (token == "admin") {
      ctx.project = "adm";
      ctx.roles = {"admin", "member", "reader"};
    } else if (token == "alice" || token == "bob") {
      ctx.project = token;
      ctx.roles = {"member", "reader"};
    } else {
      return Unauthenticated("The request you have made requires authentication.");
    }
    ctx.user = token;
    return ctx;
  }
};

class MetadefsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-api-metadefs-XXXXXX";
    dir_ = mkdtemp(tmpl);
    image_repo_ = std::move(*catalog::SqliteImageRepository::Open(dir_ + "/catalog.db"));
    stores_ = std::make_unique<store::StoreSet>();
    ASSERT_TRUE(stores_->Add(std::make_unique<store::MemoryStore>("file"), {.driver = "memory"}).ok());
    images_ = std::make_unique<service::ImageService>(*image_repo_, *stores_,
                                                      service::ImageServiceOptions{});
    auto db = catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    ASSERT_TRUE(db.ok());
    repo_ = std::move(*metadefs::SqliteRepository::Open(*db));
    service_ = std::make_unique<metadefs::MetadefService>(*repo_);
    resource_ = std::make_unique<MetadefsResource>(*service_, ApiOptions{});
    AppDeps deps{.images = *images_, .authenticator = auth_, .policy = policy_};
    deps.route_sets.push_back([this](ApiRouter& r) { resource_->Register(r); });
    app_ = std::make_unique<Application>(std::move(deps));
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  http::Response As(std::string token, std::string method, std::string target,
                    std::string body = "", std::vector<std::pair<std::string, std::string>> extra = {}) {
    http::Request req;
    req.method = std::move(method);
    req.target = target;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string qs = target.substr(q + 1);
      for (size_t i = 0; i <= qs.size();) {
        size_t amp = std::min(qs.find('&', i), qs.size());
        std::string kv = qs.substr(i, amp - i);
        size_t eq = kv.find('=');
        if (!kv.empty()) {
          req.query.emplace_back(kv.substr(0, eq),
                                 eq == std::string::npos ? "" : kv.substr(eq + 1));
        }
        i = amp + 1;
      }
    }
    req.headers.Set("Content-Type", "application/json");
    req.headers.Set("Accept", "application/json");
    req.headers.Set("X-Auth-Token", token);
    for (auto& [k, v] : extra) req.headers.Set(k, v);
    req.content_length = body.size();
    io::StringReader reader(body);
    req.body = &reader;
    return http::Resolve(app_->Handle(req), req);
  }
  json::object Body(const http::Response& r) { return json::parse(r.body).as_object(); }
  std::string Message(const http::Response& r) {
    std::string m(Body(r)["message"].as_string());
    return m.substr(0, m.find("<br />"));
  }

  std::string dir_;
  TokenAuth auth_;
  const auth::Policy policy_ = auth::Policy::Defaults();
  std::unique_ptr<catalog::SqliteImageRepository> image_repo_;
  std::unique_ptr<store::StoreSet> stores_;
  std::unique_ptr<service::ImageService> images_;
  std::unique_ptr<metadefs::SqliteRepository> repo_;
  std::unique_ptr<metadefs::MetadefService> service_;
  std::unique_ptr<MetadefsResource> resource_;
  std::unique_ptr<Application> app_;
};

TEST_F(MetadefsApiTest, NamespaceLifecycleAsGlanceAnswers) {
  auto r = As("admin", "POST", "/v2/metadefs/namespaces",
              R"({"namespace":"t1","display_name":"T1","description":"d",)"
              R"("resource_type_associations":[{"name":"OS::Glance::Image","prefix":"hw_"}],)"
              R"("properties":{"p1":{"title":"P1","type":"string","enum":["a","b"]}},)"
              R"("objects":[{"name":"o1","properties":{"x":{"title":"X","type":"integer"}},)"
              R"("required":["x"]}],"tags":[{"name":"tg1"}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  json::object ns = Body(r);
  EXPECT_EQ(ns["visibility"], "private");
  EXPECT_EQ(ns["protected"], false);
  EXPECT_EQ(ns["owner"], "adm");
  EXPECT_EQ(ns["self"], "/v2/metadefs/namespaces/t1");
  EXPECT_EQ(ns["schema"], "/v2/schemas/metadefs/namespace");
  r = As("admin", "POST", "/v2/metadefs/namespaces", R"({"namespace":"t1"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Message(r), "The metadata definition namespace=t1 already exists.");
  // Shown as a resource type names its properties.
  r = As("admin", "GET", "/v2/metadefs/namespaces/t1?resource_type=OS::Glance::Image");
  ASSERT_EQ(r.status, 200);
  ns = Body(r);
  EXPECT_TRUE(ns["properties"].as_object().contains("hw_p1"));
  EXPECT_EQ(ns["objects"].as_array()[0].as_object()["required"], json::array{"hw_x"});
  EXPECT_EQ(ns["tags"].as_array().size(), 1u);
  // PUT replaces: what it leaves out goes back to its default.
  r = As("admin", "PUT", "/v2/metadefs/namespaces/t1", R"({"namespace":"t1","protected":true})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(Body(r).contains("display_name"));
  r = As("admin", "DELETE", "/v2/metadefs/namespaces/t1");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Message(r), "Metadata definition namespace t1 is protected and cannot be deleted.");
  EXPECT_EQ(As("admin", "DELETE", "/v2/metadefs/namespaces/t1/tags").status, 403);
  EXPECT_EQ(As("admin", "DELETE", "/v2/metadefs/namespaces/t1/resource_types/OS::Glance::Image")
                .status,
            403);
  r = As("admin", "GET", "/v2/metadefs/namespaces/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Message(r), "Metadata definition namespace=nope was not found.");
  r = As("admin", "POST", "/v2/metadefs/namespaces", R"({"namespace":"x","bogus":1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Message(r),
            "Provided object does not match schema 'namespace': Additional properties are not "
            "allowed ('bogus' was unexpected)");
  EXPECT_EQ(As("admin", "POST", "/v2/metadefs/namespaces", "notjson").status, 400);
}

TEST_F(MetadefsApiTest, SecureMetadefs) {
  ASSERT_EQ(As("admin", "POST", "/v2/metadefs/namespaces",
               R"({"namespace":"secret","owner":"alice"})")
                .status,
            201);
  ASSERT_EQ(
      As("admin", "POST", "/v2/metadefs/namespaces", R"({"namespace":"pub","visibility":"public"})")
          .status,
      201);
  // Writes are the admin's, whatever the namespace.
  auto r = As("alice", "POST", "/v2/metadefs/namespaces", R"({"namespace":"mine"})");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Message(r), "You are not authorized to complete add_metadef_namespace action.");
  EXPECT_EQ(As("alice", "POST", "/v2/metadefs/namespaces/secret/tags/x").status, 403);
  EXPECT_EQ(As("alice", "DELETE", "/v2/metadefs/namespaces/pub").status, 403);
  // Reads: the owner sees its private namespace, another project does not know it exists.
  EXPECT_EQ(As("alice", "GET", "/v2/metadefs/namespaces/secret").status, 200);
  EXPECT_EQ(As("bob", "GET", "/v2/metadefs/namespaces/secret").status, 404);
  EXPECT_EQ(As("bob", "GET", "/v2/metadefs/namespaces/secret/objects").status, 404);
  EXPECT_EQ(As("bob", "GET", "/v2/metadefs/namespaces/pub").status, 200);
  auto names = [&](std::string token) {
    std::vector<std::string> out;
    auto list = Body(As(token, "GET", "/v2/metadefs/namespaces?sort_key=namespace&sort_dir=asc"));
    for (const auto& n : list["namespaces"].as_array()) {
      out.emplace_back(n.as_object().at("namespace").as_string());
    }
    return out;
  };
  EXPECT_EQ(names("bob"), (std::vector<std::string>{"pub"}));
  EXPECT_EQ(names("alice"), (std::vector<std::string>{"pub", "secret"}));
  EXPECT_EQ(names("admin"), (std::vector<std::string>{"pub", "secret"}));
  EXPECT_EQ(As("nobody", "GET", "/v2/metadefs/namespaces").status, 401);
}

TEST_F(MetadefsApiTest, ItemsTagsInBulkAndAssociations) {
  ASSERT_EQ(As("admin", "POST", "/v2/metadefs/namespaces", R"({"namespace":"n"})").status, 201);
  const std::string n = "/v2/metadefs/namespaces/n";
  auto r = As("admin", "POST", n + "/objects", R"({"name":"o1","description":"d"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["self"], json::value(n + "/objects/o1"));
  EXPECT_EQ(Message(As("admin", "POST", n + "/objects", R"({"name":"o1"})")),
            "A metadata definition object with name=o1 already exists in namespace=n.");
  r = As("admin", "PUT", n + "/objects/o1", R"({"name":"o2"})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["required"], json::array{});
  EXPECT_EQ(As("admin", "GET", n + "/objects/o1").status, 404);
  r = As("admin", "GET", n + "/objects");
  EXPECT_EQ(Body(r)["objects"].as_array().size(), 1u);
  EXPECT_EQ(Body(r)["schema"], "v2/schemas/metadefs/objects");

  r = As("admin", "POST", n + "/properties", R"({"name":"p","title":"P","type":"string"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["name"], "p");
  EXPECT_EQ(As("admin", "POST", n + "/properties", R"({"name":"q","title":"Q"})").status, 400);
  r = As("admin", "PUT", n + "/properties/p",
         R"({"name":"p2","title":"P2","type":"string","enum":["a"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = As("admin", "GET", n + "/properties");
  EXPECT_TRUE(Body(r)["properties"].as_object().contains("p2"));
  EXPECT_EQ(Message(As("admin", "GET", n + "/properties/nope")), "Could not find property nope");

  // Tags: bulk create replaces, X-Openstack-Append adds, a duplicate refuses the whole batch.
  ASSERT_EQ(As("admin", "POST", n + "/tags/solo").status, 201);
  r = As("admin", "POST", n + "/tags", R"({"tags":[{"name":"a"},{"name":"b"}]})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(Body(r)["tags"].as_array().size(), 2u);
  EXPECT_EQ(As("admin", "POST", n + "/tags", R"({"tags":[{"name":"c"},{"name":"C"}]})",
               {{"X-Openstack-Append", "True"}})
                .status,
            409);
  ASSERT_EQ(As("admin", "POST", n + "/tags", R"({"tags":[{"name":"c"}]})",
               {{"X-Openstack-Append", "True"}})
                .status,
            201);
  r = As("admin", "GET", n + "/tags");
  EXPECT_EQ(Body(r)["tags"].as_array().size(), 3u);  // a, b, c: "solo" was replaced
  EXPECT_EQ(As("admin", "GET", n + "/tags/solo").status, 404);
  r = As("admin", "PUT", n + "/tags/c", R"({"name":"c2"})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["name"], "c2");
  EXPECT_EQ(As("admin", "PUT", n + "/tags/c2", R"({"name":"A"})").status, 409);
  ASSERT_EQ(As("admin", "DELETE", n + "/tags").status, 204);
  EXPECT_TRUE(Body(As("admin", "GET", n + "/tags"))["tags"].as_array().empty());

  // Associations: a new resource type is listed once used.
  r = As("admin", "POST", n + "/resource_types", R"({"name":"Brand::New","prefix":"b_"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(As("admin", "POST", n + "/resource_types", R"({"name":"Brand::New"})").status, 409);
  r = As("bob", "GET", "/v2/metadefs/resource_types");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["resource_types"].as_array().size(), 1u);
  r = As("admin", "GET", "/v2/metadefs/namespaces?resource_types=Brand::New");
  EXPECT_EQ(Body(r)["namespaces"].as_array().size(), 1u);
  ASSERT_EQ(As("admin", "DELETE", n + "/resource_types/Brand::New").status, 204);
  EXPECT_EQ(As("admin", "DELETE", n + "/resource_types/Brand::New").status, 404);
  EXPECT_TRUE(Body(As("admin", "GET", n + "/resource_types"))["resource_type_associations"]
                  .as_array()
                  .empty());
  ASSERT_EQ(As("admin", "DELETE", n).status, 204);
  EXPECT_EQ(As("admin", "GET", n + "/objects").status, 404);
}

TEST_F(MetadefsApiTest, PagingOverShippedDefinitions) {
  ASSERT_TRUE(metadefs::LoadDefinitions(*repo_, metadefs::ShippedDefinitions(), 1).ok());
  auto r = As("admin", "GET", "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc");
  ASSERT_EQ(r.status, 200);
  json::object page = Body(r);
  ASSERT_EQ(page["namespaces"].as_array().size(), 2u);
  EXPECT_EQ(page["namespaces"].as_array()[0].as_object()["namespace"],
            "CIM::ProcessorAllocationSettingData");
  EXPECT_EQ(page["first"], "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc");
  EXPECT_EQ(page["next"],
            "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc&marker=CIM%3A%3A"
            "ResourceAllocationSettingData");
  r = As("admin", "GET",
         "/v2/metadefs/namespaces?limit=2&sort_key=namespace&sort_dir=asc&marker=CIM::"
         "ResourceAllocationSettingData");
  EXPECT_EQ(Body(r)["namespaces"].as_array()[0].as_object()["namespace"],
            "CIM::StorageAllocationSettingData");
  EXPECT_EQ(Message(As("admin", "GET", "/v2/metadefs/namespaces?sort_dir=up")),
            "Invalid sort direction: up");
  EXPECT_EQ(Message(As("admin", "GET", "/v2/metadefs/namespaces?limit=-1")),
            "limit param must be positive");
  EXPECT_EQ(Message(As("admin", "GET", "/v2/metadefs/namespaces?visibility=x")),
            "Invalid visibility value: x");
  EXPECT_EQ(As("admin", "GET", "/v2/metadefs/namespaces?marker=nope").status, 404);
  r = As("bob", "GET", "/v2/metadefs/namespaces?limit=1000");
  json::object visible = Body(r);
  ASSERT_FALSE(visible["namespaces"].as_array().empty());
  for (const auto& n : visible["namespaces"].as_array()) {
    EXPECT_EQ(n.as_object().at("visibility"), "public");
  }
  // The ten schemas tempest reads, by their names.
  for (auto [path, name] : std::vector<std::pair<std::string, std::string>>{
           {"namespace", "namespace"},           {"namespaces", "namespaces"},
           {"resource_type", "resource_type_association"},
           {"resource_types", "resource_type_associations"},
           {"object", "object"},                 {"objects", "objects"},
           {"property", "property"},             {"properties", "properties"},
           {"tag", "tag"},                       {"tags", "tags"}}) {
    r = As("bob", "GET", "/v2/schemas/metadefs/" + path);
    ASSERT_EQ(r.status, 200) << path;
    EXPECT_EQ(Body(r)["name"], json::value(name));
  }
}

}  // namespace
}  // namespace ingot::api
