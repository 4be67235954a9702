// Metadata definitions over a real SQLite catalog file: documents, the repository, the service's
// visibility and protection rules, and the shipped definitions.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdlib>

#include "metadefs/definitions.h"
#include "metadefs/loader.h"
#include "metadefs/metadef_service.h"
#include "metadefs/sqlite/sqlite_repository.h"

namespace ingot::metadefs {
namespace {

namespace json = boost::json;

class MetadefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-metadefs-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Reopen();
  }
  void Reopen() {
    service_.reset();
    repo_.reset();
    auto db = catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    ASSERT_TRUE(db.ok());
    auto repo = SqliteRepository::Open(*db);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);
    service_ = std::make_unique<MetadefService>(*repo_);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  NamespaceTree Tree(std::string_view text) {
    auto tree = ParseNamespaceDocument(json::parse(text), 1);
    EXPECT_TRUE(tree.ok()) << tree.status().ToString();
    return tree.ok() ? *tree : NamespaceTree{};
  }

  std::string dir_;
  std::unique_ptr<SqliteRepository> repo_;
  std::unique_ptr<MetadefService> service_;
  const Viewer admin_{.project = "adm", .admin = true};
  const Viewer alice_{.project = "alice"};
  const Viewer bob_{.project = "bob"};
};

TEST(DefinitionsTest, RefusesWhatTheSchemasRefuse) {
  auto bad = [](std::string_view text) {
    return ParseNamespaceDocument(json::parse(text), 0).status();
  };
  EXPECT_EQ(bad(R"({"display_name":"x"})").message(),
            "Provided object does not match schema 'namespace': 'namespace' is a required "
            "property");
  EXPECT_EQ(bad(R"({"namespace":"x","bogus":1})").message(),
            "Provided object does not match schema 'namespace': Additional properties are not "
            "allowed ('bogus' was unexpected)");
  EXPECT_EQ(bad(R"({"namespace":"x","visibility":"shared"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(bad(R"({"namespace":")" + std::string(81, 'n') + R"("})").code(),
            Code::kInvalidArgument);
  EXPECT_EQ(bad(R"({"namespace":"a/b"})").code(), Code::kInvalidArgument);
  EXPECT_EQ(bad(R"({"namespace":"x","properties":{"p":{"title":"t"}}})").message(),
            "Provided object does not match schema 'namespace': 'type' is a required property");
  EXPECT_EQ(bad(R"({"namespace":"x","properties":{"p":{"title":"t","type":"str"}}})").code(),
            Code::kInvalidArgument);
  EXPECT_EQ(bad(R"({"namespace":"x","properties":{"p":{"title":"t","type":"string",)"
                R"("pattern":"(unclosed"}}})")
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(bad(R"({"namespace":"x","properties":{"p":{"title":"t","type":"integer",)"
                R"("minimum":"1"}}})")
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(bad(R"({"namespace":"x","tags":[{"name":""}]})").code(), Code::kInvalidArgument);
  // A property posted on its own needs its name; one in a map takes the key.
  EXPECT_EQ(ParseProperty(json::parse(R"({"title":"t","type":"string"})"), std::nullopt, 0)
                .status()
                .message(),
            "Provided object does not match schema 'property': 'name' is a required property");
  auto p = ParseProperty(json::parse(R"({"name":"n","title":"t","type":"string","enum":["a"]})"),
                         std::nullopt, 0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "n");
  EXPECT_FALSE(json::parse(p->body).as_object().contains("name"));
  EXPECT_TRUE(json::parse(p->body).as_object().contains("enum"));
}

TEST_F(MetadefsTest, NamespaceTreeRoundTripsAndNamesAreUnique) {
  auto created = service_->CreateNamespace(
      Tree(R"({"namespace":"t1","display_name":"T1","resource_type_associations":)"
           R"([{"name":"OS::Glance::Image","prefix":"hw_"}],)"
           R"("properties":{"p1":{"title":"P1","type":"string","enum":["a","b"]}},)"
           R"("objects":[{"name":"o1","required":["x"],"properties":{"x":{"title":"X",)"
           R"("type":"integer"}}}],"tags":[{"name":"Tag1"}]})"),
      alice_);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->ns.owner, "alice");
  auto d = service_->GetNamespaceDetail("t1", alice_);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->ns.display_name, "T1");
  ASSERT_EQ(d->associations.size(), 1u);
  EXPECT_EQ(d->associations[0].prefix, "hw_");
  ASSERT_EQ(d->objects.size(), 1u);
  ASSERT_EQ(d->properties.size(), 1u);
  ASSERT_EQ(d->tags.size(), 1u);
  // Duplicates: namespace, object, property, tag (tags case-insensitively), association.
  EXPECT_EQ(service_->CreateNamespace(Tree(R"({"namespace":"t1"})"), alice_).status().message(),
            "The metadata definition namespace=t1 already exists.");
  EXPECT_EQ(service_->AddItem("t1", ItemKind::kObject, {.name = "o1"}, admin_).status().message(),
            "A metadata definition object with name=o1 already exists in namespace=t1.");
  EXPECT_EQ(service_->AddItem("t1", ItemKind::kTag, {.name = "TAG1"}, admin_).status().code(),
            Code::kAlreadyExists);
  EXPECT_EQ(service_->AddAssociation("t1", {.resource_type = "OS::Glance::Image"}, admin_)
                .status()
                .code(),
            Code::kAlreadyExists);
  // A tree with a duplicate inside leaves nothing behind.
  EXPECT_EQ(service_->CreateNamespace(Tree(R"({"namespace":"t2","tags":[{"name":"a"},)"
                                           R"({"name":"A"}]})"),
                                      alice_)
                .status()
                .code(),
            Code::kAlreadyExists);
  EXPECT_EQ(service_->GetNamespace("t2", admin_).status().code(), Code::kNotFound);
  // A new resource type appears in the list on first association.
  ASSERT_TRUE(service_->AddAssociation("t1", {.resource_type = "Brand::New"}, admin_).ok());
  auto types = service_->ListResourceTypes();
  ASSERT_TRUE(types.ok());
  EXPECT_EQ(types->size(), 2u);
}

TEST_F(MetadefsTest, PrivateNamespacesAreInvisibleToOtherProjects) {
  ASSERT_TRUE(service_->CreateNamespace(Tree(R"({"namespace":"mine"})"), alice_).ok());
  ASSERT_TRUE(
      service_->CreateNamespace(Tree(R"({"namespace":"pub","visibility":"public"})"), bob_).ok());
  EXPECT_TRUE(service_->GetNamespace("mine", alice_).ok());
  EXPECT_TRUE(service_->GetNamespace("mine", admin_).ok());
  Status hidden = service_->GetNamespace("mine", bob_).status();
  EXPECT_EQ(hidden.code(), Code::kNotFound);
  EXPECT_EQ(hidden.message(), "Metadata definition namespace=mine was not found.");
  EXPECT_EQ(service_->ListItems("mine", ItemKind::kTag, bob_).status().code(), Code::kNotFound);
  EXPECT_EQ(service_->DeleteNamespace("mine", bob_).code(), Code::kNotFound);
  auto names = [&](const Viewer& v) {
    std::vector<std::string> out;
    NamespaceQuery q{.filter = {.viewer = v}, .sort = NamespaceSort::kNamespace,
                     .ascending = true};
    auto page = service_->ListNamespaces(q);
    EXPECT_TRUE(page.ok());
    for (const auto& n : page->namespaces) out.push_back(n.ns.name);
    return out;
  };
  EXPECT_EQ(names(bob_), (std::vector<std::string>{"pub"}));
  EXPECT_EQ(names(alice_), (std::vector<std::string>{"mine", "pub"}));
  EXPECT_EQ(names(admin_), (std::vector<std::string>{"mine", "pub"}));
  // A marker the viewer cannot see is no marker.
  NamespaceQuery q{.filter = {.viewer = bob_}, .marker = "mine"};
  EXPECT_EQ(service_->ListNamespaces(q).status().code(), Code::kNotFound);
}

TEST_F(MetadefsTest, ListFiltersSortsAndPages) {
  for (std::string n : {"c", "a", "d", "b"}) {
    std::string vis = n == "d" ? "private" : "public";
    ASSERT_TRUE(service_
                    ->CreateNamespace(Tree(R"({"namespace":")" + n + R"(","visibility":")" + vis +
                                           R"("})"),
                                      admin_)
                    .ok());
  }
  ASSERT_TRUE(service_->AddAssociation("a", {.resource_type = "OS::Nova::Flavor"}, admin_).ok());
  ASSERT_TRUE(service_->AddAssociation("b", {.resource_type = "OS::Glance::Image"}, admin_).ok());
  NamespaceQuery q{.filter = {.viewer = admin_}, .sort = NamespaceSort::kNamespace,
                   .ascending = true, .limit = 2};
  auto p1 = service_->ListNamespaces(q);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->namespaces.size(), 2u);
  EXPECT_EQ(p1->namespaces[0].ns.name, "a");
  ASSERT_EQ(p1->namespaces[0].associations.size(), 1u);
  EXPECT_EQ(p1->next_marker, "b");
  q.marker = p1->next_marker;
  auto p2 = service_->ListNamespaces(q);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->namespaces[0].ns.name, "c");
  EXPECT_EQ(p2->namespaces[1].ns.name, "d");
  q.marker.reset();
  q.limit = 25;
  q.filter.visibility = Visibility::kPrivate;
  EXPECT_EQ(service_->ListNamespaces(q)->namespaces.size(), 1u);
  q.filter.visibility.reset();
  q.filter.resource_types = {"OS::Glance::Image", "OS::Nova::Flavor"};
  auto typed = service_->ListNamespaces(q);
  ASSERT_EQ(typed->namespaces.size(), 2u);
  EXPECT_EQ(typed->namespaces[1].ns.name, "b");
  EXPECT_FALSE(typed->next_marker.has_value());
  q.filter.resource_types.clear();
  q.ascending = false;  // newest first by default sort, names reversed here
  EXPECT_EQ(service_->ListNamespaces(q)->namespaces[0].ns.name, "d");
}

TEST_F(MetadefsTest, ProtectedNamespacesAndTheirItemsStay) {
  ASSERT_TRUE(service_
                  ->CreateNamespace(Tree(R"({"namespace":"p","protected":true,"tags":)"
                                         R"([{"name":"t"}],"resource_type_associations":)"
                                         R"([{"name":"OS::Nova::Flavor"}]})"),
                                    admin_)
                  .ok());
  EXPECT_EQ(service_->DeleteNamespace("p", admin_).message(),
            "Metadata definition namespace p is protected and cannot be deleted.");
  EXPECT_EQ(service_->RemoveItems("p", ItemKind::kTag, admin_).code(),
            Code::kPermissionDenied);
  EXPECT_EQ(service_->RemoveItem("p", ItemKind::kTag, "t", admin_).code(),
            Code::kPermissionDenied);
  EXPECT_EQ(service_->RemoveAssociation("p", "OS::Nova::Flavor", admin_).code(),
            Code::kPermissionDenied);
  // Unprotected by an update (which resets what it leaves out), then deletable with its items.
  auto fields = ParseNamespaceUpdate(json::parse(R"({"namespace":"p2"})"));
  ASSERT_TRUE(fields.ok());
  auto updated = service_->UpdateNamespace("p", *fields, admin_);
  ASSERT_TRUE(updated.ok());
  EXPECT_FALSE(updated->is_protected);
  EXPECT_EQ(service_->ListItems("p2", ItemKind::kTag, admin_)->size(), 1u);  // renamed, kept
  ASSERT_TRUE(service_->RemoveAssociation("p2", "OS::Nova::Flavor", admin_).ok());
  EXPECT_EQ(service_->RemoveAssociation("p2", "OS::Nova::Flavor", admin_).code(),
            Code::kNotFound);
  ASSERT_TRUE(service_->DeleteNamespace("p2", admin_).ok());
  EXPECT_EQ(service_->GetNamespace("p2", admin_).status().code(), Code::kNotFound);
}

TEST_F(MetadefsTest, TagsInBulkReplaceOrAppendAllOrNothing) {
  ASSERT_TRUE(service_->CreateNamespace(Tree(R"({"namespace":"n","tags":[{"name":"old"}]})"),
                                        admin_)
                  .ok());
  auto added = service_->AddTags("n", {{.name = "a"}, {.name = "b"}}, false, admin_);
  ASSERT_TRUE(added.ok());
  auto tags = service_->ListItems("n", ItemKind::kTag, admin_);
  ASSERT_EQ(tags->size(), 2u);  // "old" replaced
  EXPECT_EQ(service_->AddTags("n", {{.name = "c"}, {.name = "C"}}, true, admin_).status().code(),
            Code::kAlreadyExists);
  EXPECT_EQ(service_->ListItems("n", ItemKind::kTag, admin_)->size(), 2u);
  ASSERT_TRUE(service_->AddTags("n", {{.name = "c"}}, true, admin_).ok());
  EXPECT_EQ(service_->ListItems("n", ItemKind::kTag, admin_)->size(), 3u);
  // Rename keeps the creation time; a rename onto a taken name is a conflict.
  auto before = service_->GetItem("n", ItemKind::kTag, "c", admin_);
  auto renamed = service_->SaveItem("n", ItemKind::kTag, "c", {.name = "c2"}, admin_);
  ASSERT_TRUE(renamed.ok());
  EXPECT_EQ(renamed->created_at, before->created_at);
  EXPECT_EQ(service_->SaveItem("n", ItemKind::kTag, "c2", {.name = "A"}, admin_).status().code(),
            Code::kAlreadyExists);
  EXPECT_EQ(service_->GetItem("n", ItemKind::kTag, "nope", admin_).status().message(),
            "Could not find metadata tag nope");
  ASSERT_TRUE(service_->RemoveItems("n", ItemKind::kTag, admin_).ok());
  EXPECT_TRUE(service_->ListItems("n", ItemKind::kTag, admin_)->empty());
}

TEST_F(MetadefsTest, ShippedDefinitionsLoadOnceAndStayDeleted) {
  std::vector<DefinitionFile> files = ShippedDefinitions();
  ASSERT_GE(files.size(), 30u);
  auto report = LoadDefinitions(*repo_, files, 5);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->loaded, static_cast<int>(files.size()));
  // What operators look for: libvirt's hw_ properties on images, the OS namespace, CPU pinning.
  auto libvirt = service_->GetNamespaceDetail("OS::Compute::LibvirtImage", bob_);
  ASSERT_TRUE(libvirt.ok());
  EXPECT_TRUE(libvirt->ns.is_protected);
  EXPECT_EQ(libvirt->ns.visibility, Visibility::kPublic);
  EXPECT_EQ(libvirt->ns.owner, "admin");
  ASSERT_FALSE(libvirt->associations.empty());
  EXPECT_EQ(libvirt->associations[0].resource_type, "OS::Glance::Image");
  bool disk_bus = false;
  for (const Item& p : libvirt->properties) disk_bus = disk_bus || p.name == "hw_disk_bus";
  EXPECT_TRUE(disk_bus);
  // Files that name no visibility are private, as in Glance: admins only.
  EXPECT_TRUE(service_->GetNamespace("OS::OperatingSystem", admin_).ok());
  EXPECT_EQ(service_->GetNamespace("OS::OperatingSystem", bob_).status().code(), Code::kNotFound);
  EXPECT_TRUE(service_->GetNamespace("OS::Compute::CPUPinning", bob_).ok());
  auto types = service_->ListResourceTypes();
  ASSERT_TRUE(types.ok());
  bool image_type = false;
  for (const auto& t : *types) image_type = image_type || t.name == "OS::Glance::Image";
  EXPECT_TRUE(image_type);
  // Deleted by an operator: a restart does not bring it back.
  auto fields = ParseNamespaceUpdate(json::parse(R"({"namespace":"OS::Compute::Quota"})"));
  ASSERT_TRUE(service_->UpdateNamespace("OS::Compute::Quota", *fields, admin_).ok());
  ASSERT_TRUE(service_->DeleteNamespace("OS::Compute::Quota", admin_).ok());
  Reopen();
  report = LoadDefinitions(*repo_, files, 6);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->loaded, 0);
  EXPECT_EQ(service_->GetNamespace("OS::Compute::Quota", admin_).status().code(),
            Code::kNotFound);
  // A broken file is refused with its name.
  auto broken = LoadDefinitions(*repo_, {{"zz-broken.json", R"({"display_name":"x"})"}}, 7);
  EXPECT_EQ(broken.status().code(), Code::kInvalidArgument);
  EXPECT_NE(broken.status().message().find("zz-broken.json"), std::string::npos);
}

}  // namespace
}  // namespace ingot::metadefs
