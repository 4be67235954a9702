#include "api/boot/machines.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "api/boot/southbound.h"
#include "api/errors.h"
#include "boot/machines_sqlite.h"
#include "io/memory.h"

namespace ingot::api::boot {
namespace {
namespace json = boost::json;

class MachineRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-machroutes-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto db = catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    ASSERT_TRUE(db.ok());
    repo_ = std::move(*ingot::boot::SqliteMachineRepository::Open(*db));
    service_ = std::make_unique<ingot::boot::MachineService>(*repo_);
    MachineRoutesOptions o;
    o.southbound_url = "http://192.0.2.1:9090";
    o.os_tree = [](const std::string& name, const std::string& version,
                   const std::string&) -> std::optional<ingot::boot::OsBoot> {
      if (name != "debian" || version != "12") return std::nullopt;
      return ingot::boot::OsBoot{"install.amd/vmlinuz", {"install.amd/initrd.gz"}, "", ""};
    };
    routes_ = std::make_unique<MachineRoutes>(*service_, std::move(o));
    routes_->Register(router_);
  }
  void TearDown() override {
    routes_.reset();
    service_.reset();
    repo_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  // A southbound GET as iPXE sends it.
  std::optional<http::Response> South(std::string target, std::string remote = "10.0.2.15:3000") {
    http::Request req;
    req.method = "GET";
    req.target = target;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string qs = target.substr(q + 1);
      for (size_t pos = 0; pos <= qs.size();) {
        size_t amp = qs.find('&', pos);
        if (amp == std::string::npos) amp = qs.size();
        std::string kv = qs.substr(pos, amp - pos);
        size_t eq = kv.find('=');
        req.query.emplace_back(*http::PercentDecode(kv.substr(0, eq), true),
                               eq == std::string::npos ? ""
                                                       : *http::PercentDecode(kv.substr(eq + 1), true));
        pos = amp + 1;
      }
    }
    req.headers.Set("Host", "10.0.2.2:9090");
    req.remote_address = remote;
    auto parsed = ParseBootPath(req.target, req.path);
    if (!parsed.ok()) return std::nullopt;
    return routes_->Southbound(req, *parsed);
  }

  // A northbound call, past authentication and policy (the Application's part).
  http::Response North(std::string method, std::string path, std::string body = "") {
    auto m = router_.Find(method, path);
    EXPECT_NE(m.route, nullptr) << method << " " << path;
    if (m.route == nullptr) return {};
    http::Request req;
    req.method = method;
    req.path = path;
    req.target = path;
    io::StringReader reader(body);
    req.content_length = body.size();
    req.body = &reader;
    auth::RequestContext ctx;
    Call call{req, ctx, m.params};
    auto r = m.route->value.handler(call);
    if (!r.ok()) {
      http::Response e;
      e.status = HttpStatusOf(r.status().code());
      e.body = r.status().message();
      return e;
    }
    return std::move(*r);
  }

  std::string dir_;
  std::unique_ptr<ingot::boot::SqliteMachineRepository> repo_;
  std::unique_ptr<ingot::boot::MachineService> service_;
  std::unique_ptr<MachineRoutes> routes_;
  ApiRouter router_;
};

TEST_F(MachineRoutesTest, WithoutIdentityIpxeIsAskedToIdentifyItself) {
  auto r = South("/boot.ipxe");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("chain http://10.0.2.2:9090/boot.ipxe?mac=${net0/mac}&uuid=${uuid}"),
            std::string::npos)
      << r->body;
  EXPECT_FALSE(South("/debian.iso/install.amd/vmlinuz"));  // the file tree's
  EXPECT_FALSE(South("/latest/meta-data/"));                 // no machine from this address yet
}

TEST_F(MachineRoutesTest, UnknownMachineHoldsThenBootsItsProfileOnceAssigned) {
  auto r = South("/boot.ipxe?mac=52:54:00:12:34:56&uuid=8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("no boot profile yet"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("chain http://10.0.2.2:9090/boot.ipxe?mac=52:54:00:12:34:56&uuid="),
            std::string::npos);

  http::Response list = North("GET", "/boot/v1/machines");
  ASSERT_EQ(list.status, 200);
  json::value doc = json::parse(list.body);
  ASSERT_EQ(doc.at("machines").as_array().size(), 1u);
  EXPECT_EQ(doc.at("machines").at(0).at("state"), "discovered");
  EXPECT_EQ(doc.at("machines").at(0).at("last_address"), "10.0.2.15");

  http::Response created = North("POST", "/boot/v1/profiles", R"({
      "name": "debian", "os": {"name": "debian", "version": "12"},
      "args": "console=ttyS0 hostname={{.hostname}}", "variables": {"hostname": "node1"},
      "user_data": "#cloud-config\nhostname: {{.hostname | json}}\n"})");
  ASSERT_EQ(created.status, 201) << created.body;
  http::Response bad = North("POST", "/boot/v1/profiles", R"({"name": "x", "kernel": "k",
      "args": "a={{.oops"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("args"), std::string::npos) << bad.body;
  EXPECT_EQ(North("POST", "/boot/v1/profiles", R"({"name": "y", "kernal": "k"})").status, 400);

  // Assign by MAC, as an operator reads it off the machine.
  http::Response assigned = North("PATCH", "/boot/v1/machines/52-54-00-12-34-56",
                                  R"({"profile": "debian"})");
  ASSERT_EQ(assigned.status, 200) << assigned.body;
  EXPECT_EQ(json::parse(assigned.body).at("state"), "assigned");

  r = South("/boot.ipxe?mac=52:54:00:12:34:56");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("kernel http://10.0.2.2:9090/debian/12/install.amd/vmlinuz "
                         "initrd=initrd.gz console=ttyS0 hostname=node1\n"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("initrd http://10.0.2.2:9090/debian/12/install.amd/initrd.gz\n"),
            std::string::npos);

  // cloud-init and metadata of the same machine, from the same variables.
  std::string id = std::string(json::parse(assigned.body).at("id").as_string());
  r = South("/nocloud/" + id + "/user-data");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "#cloud-config\nhostname: \"node1\"\n");
  r = South("/nocloud/" + id + "/meta-data");
  EXPECT_EQ(r->body, "instance-id: \"" + id + "\"\n");
  r = South("/metadata/" + id + "/latest/meta-data/instance-id");
  EXPECT_EQ(r->body, id);
  r = South("/latest/meta-data/instance-id");  // by the address it booted from
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, id);
  r = South("/openstack/latest/meta_data.json");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body).at("uuid"), id.c_str());

  // The preview on the northbound API uses the southbound URL.
  http::Response preview = North("GET", "/boot/v1/machines/" + id + "/boot");
  EXPECT_EQ(preview.status, 200);
  EXPECT_NE(preview.body.find("kernel http://192.0.2.1:9090/debian/12/"), std::string::npos);

  // A profile in use cannot go; a machine can.
  EXPECT_EQ(North("DELETE", "/boot/v1/profiles/debian").status, 409);
  EXPECT_EQ(North("DELETE", "/boot/v1/machines/" + id).status, 204);
  EXPECT_EQ(North("DELETE", "/boot/v1/profiles/debian").status, 204);
}

TEST_F(MachineRoutesTest, MissingVariableIsAnErrorScriptAndA400Preview) {
  ASSERT_EQ(North("POST", "/boot/v1/profiles",
                  R"({"name": "p", "kernel": "k", "args": "x={{.rack}}", "default": true})")
                .status,
            201);
  auto r = South("/boot.ipxe?mac=52:54:00:00:00:01");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("could not be rendered"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("{{.rack}}"), std::string::npos);
  http::Response preview = North("GET", "/boot/v1/machines/52:54:00:00:00:01/boot");
  EXPECT_EQ(preview.status, 400);
  EXPECT_NE(preview.body.find("no value for {{.rack}}"), std::string::npos) << preview.body;
  EXPECT_EQ(South("/boot.ipxe?mac=zz")->status, 400);
}

TEST_F(MachineRoutesTest, SouthboundConsultsRoutesBeforeTheFileTree) {
  std::system(("mkdir -p " + dir_ + "/root && echo tree > " + dir_ + "/root/boot.ipxe && echo f > " +
               dir_ + "/root/file.txt")
                  .c_str());
  auto sb = Southbound::Open({.root = dir_ + "/root"});
  ASSERT_TRUE(sb.ok());
  (*sb)->AddRoute(
      [this](const http::Request& r, const BootPath& p) { return routes_->Southbound(r, p); });
  auto get = [&](std::string target) {
    http::Request req;
    req.method = "GET";
    req.target = target;
    req.path = target.substr(0, target.find('?'));
    if (target.find('?') != std::string::npos) req.query = {{"mac", "52:54:00:00:00:42"}};
    req.headers.Set("Host", "h:1");
    req.remote_address = "10.0.0.9:1000";
    return std::get<http::Response>((*sb)->Handle(req));
  };
  http::Response script = get("/boot.ipxe?mac=52:54:00:00:00:42");
  EXPECT_EQ(script.status, 200);
  EXPECT_NE(script.body.find("no boot profile yet"), std::string::npos);  // the route, not the file
  EXPECT_EQ(script.route, "boot.machines");
  http::Response file = get("/file.txt");
  EXPECT_EQ(file.status, 200);
  EXPECT_TRUE(file.file.has_value());  // the tree answered
  EXPECT_EQ(file.route, "boot");
}

}  // namespace
}  // namespace ingot::api::boot
