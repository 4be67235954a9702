// The `ingot` binary run against a small in-process fake of the Image API (the real daemon's API is
// tested by the integration scripts) and, for import and tasks — whose worth is in following a real
// task to its end — against the real API edge with a running import service; plus unit tests of
// the pieces it is made of.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "api/app.h"
#include "auth/authenticator.h"
#include "catalog/sqlite/sqlite_repository.h"
#include "exe/ingot_cli/images_client.h"
#include "exe/ingot_cli/terminal.h"
#include "http/server.h"
#include "http/url.h"
#include "io/hash.h"
#include "service/import/import_service.h"
#include "store/store_set.h"
#include "store/testing/memory_store.h"

namespace ingot::cli {
namespace {

namespace json = boost::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Md5(const std::string& s) {
  return *io::HexDigestOf(
      "md5", std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// Just enough of the Image API v2 to check what the CLI sends and how it shows the answers.
class FakeImageApi {
 public:
  http::Response Handle(http::Request& r) {
    std::lock_guard lock(mu_);
    tokens.push_back(std::string(r.headers.Get("X-Auth-Token").value_or("")));
    std::vector<std::string> parts;
    std::stringstream ss(r.path);
    for (std::string p; std::getline(ss, p, '/');) {
      if (!p.empty()) parts.push_back(p);
    }
    if (parts.size() < 2 || parts[0] != "v2" || parts[1] != "images")
      return Error(404, "Not Found", "no route");
    if (parts.size() == 2 && r.method == "POST") {
      auto body = r.ReadBody(1 << 20);
      json::object im = json::parse(*body).as_object();
      if (!im.contains("id")) im["id"] = "id-" + std::to_string(++next_id_);
      im["status"] = "queued";
      if (!im.contains("tags")) im["tags"] = json::array();
      std::string id(im["id"].as_string());
      order_.push_back(id);
      images[id] = im;
      return Json(201, im);
    }
    if (parts.size() == 2 && r.method == "GET") {
      size_t limit = 2;  // small pages so the CLI has to follow `next`
      if (auto l = r.QueryValue("limit")) limit = std::stoul(std::string(*l));
      list_queries.push_back(r.target);
      size_t start = 0;
      if (auto m = r.QueryValue("marker")) {
        start = std::find(order_.begin(), order_.end(), std::string(*m)) - order_.begin() + 1;
      }
      json::array page;
      std::string name_filter(r.QueryValue("name").value_or(""));
      size_t i = start;
      for (; i < order_.size() && page.size() < limit; ++i) {
        if (!images.count(order_[i])) continue;
        if (!name_filter.empty() && images[order_[i]]["name"] != json::value(name_filter)) continue;
        page.push_back(images[order_[i]]);
      }
      json::object out{{"images", page}, {"first", "/v2/images"}};
      if (i < order_.size() && !page.empty()) {
        out["next"] =
            "/v2/images?marker=" + std::string(page.back().as_object().at("id").as_string()) +
            "&limit=" + std::to_string(limit);
      }
      return Json(200, out);
    }
    std::string id = parts[2];
    if (!images.count(id)) return Error(404, "Not Found", "No image found with ID " + id);
    json::object& im = images[id];
    if (parts.size() == 3 && r.method == "GET") return Json(200, im);
    if (parts.size() == 3 && r.method == "DELETE") {
      images.erase(id);
      return NoContent();
    }
    if (parts.size() == 3 && r.method == "PATCH") {
      if (r.headers.Get("Content-Type") != "application/openstack-images-v2.1-json-patch") {
        return Error(415, "Unsupported Media Type", "wrong patch type");
      }
      last_patch = json::parse(*r.ReadBody(1 << 20)).as_array();
      for (const auto& op : last_patch) {
        std::string key = std::string(op.at("path").as_string()).substr(1);
        if (op.at("op") == "remove") {
          im.erase(key);
        } else {
          im[key] = op.at("value");
        }
      }
      return Json(200, im);
    }
    if (parts.size() == 4 && parts[3] == "file" && r.method == "PUT") {
      upload_content_type = std::string(r.headers.Get("Content-Type").value_or(""));
      upload_chunked = r.chunked;
      auto body = r.ReadBody(64 << 20);
      data[id] = *body;
      im["status"] = "active";
      im["size"] = body->size();
      im["checksum"] = Md5(*body);
      return NoContent();
    }
    if (parts.size() == 4 && parts[3] == "file" && r.method == "GET") {
      if (!data.count(id)) return NoContent();
      http::Response resp;
      resp.body = data[id];
      resp.headers.Set("Content-Type", "application/octet-stream");
      resp.headers.Set("Content-MD5", corrupt_md5 ? std::string(32, '0') : Md5(data[id]));
      return resp;
    }
    if (parts.size() == 5 && parts[3] == "tags") {
      json::array& tags = im["tags"].as_array();
      if (r.method == "PUT") tags.emplace_back(parts[4]);
      if (r.method == "DELETE") {
        auto it = std::find(tags.begin(), tags.end(), json::value(parts[4]));
        if (it == tags.end()) return Error(404, "Not Found", "Tag " + parts[4] + " not found.");
        tags.erase(it);
      }
      return NoContent();
    }
    if (parts.size() == 5 && parts[3] == "actions" && r.method == "POST") {
      if (parts[4] == "deactivate") im["status"] = "deactivated";
      if (parts[4] == "reactivate") im["status"] = "active";
      return NoContent();
    }
    return Error(405, "Method Not Allowed", "no");
  }

  std::map<std::string, json::object> images;
  std::map<std::string, std::string> data;
  std::vector<std::string> tokens;
  std::vector<std::string> list_queries;
  json::array last_patch;
  std::string upload_content_type;
  bool upload_chunked = false;
  bool corrupt_md5 = false;
  std::mutex mu_;

 private:
  static http::Response Json(int status, const json::object& o) {
    http::Response r;
    r.status = status;
    r.body = json::serialize(o);
    r.headers.Set("Content-Type", "application/json");
    return r;
  }
  static http::Response NoContent() {
    http::Response r;
    r.status = 204;
    return r;
  }
  // Glance's error shape, HTML decoration included.
  static http::Response Error(int status, const std::string& title, const std::string& message) {
    return Json(status, json::object{{"message", message + "<br /><br />\n\n\n"},
                                     {"code", std::to_string(status) + " " + title},
                                     {"title", title}});
  }
  std::vector<std::string> order_;
  int next_id_ = 0;
};

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ingot_cli_test_" + std::to_string(getpid());
    mkdir(dir_.c_str(), 0755);
    auto s = http::Server::Start({.port = 0}, MakeHandler());
    ASSERT_TRUE(s.ok());
    server_ = std::move(*s);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    StopServices();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  // What the server answers with: the fake by default.
  virtual http::Handler MakeHandler() {
    return http::StreamEveryBody([this](http::Request& r) { return api_.Handle(r); });
  }
  // Called once the server has stopped.
  virtual void StopServices() {}

  // Runs `ingot ARGS` with INGOT_URL pointing at the fake; stdin from `stdin_path` (default
  // /dev/null).
  CliRun Ingot(const std::string& args, const std::string& stdin_path = "/dev/null") {
    std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    std::string cmd = "INGOT_URL=http://127.0.0.1:" + std::to_string(server_->port()) +
                      " OS_AUTH_TOKEN=env-token " + INGOT_CLI + " " + args + " <" + stdin_path +
                      " >" + out + " 2>" + err;
    int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
  }

  std::string WriteData(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  FakeImageApi api_;
  std::unique_ptr<http::Server> server_;
  std::string dir_;
};

TEST_F(CliTest, CreateWithFileUploadsAndShowsTheActiveImage) {
  std::string data(3'000'000, 'x');
  std::string path = WriteData("disk.raw", data);
  CliRun r = Ingot(
      "--json image-create --name cirros --disk-format raw --container-format bare --visibility "
      "private "
      "--property hw_disk_bus=scsi --property os_distro=cirros --file " +
      path);
  ASSERT_EQ(r.code, 0) << r.err;
  json::object shown = json::parse(r.out).as_object();
  EXPECT_EQ(shown["status"], "active");
  EXPECT_EQ(shown["name"], "cirros");
  EXPECT_EQ(shown["hw_disk_bus"], "scsi");
  EXPECT_EQ(shown["os_distro"], "cirros");
  EXPECT_EQ(shown["visibility"], "private");
  std::string id(shown["id"].as_string());
  EXPECT_EQ(api_.data[id], data);
  EXPECT_EQ(api_.upload_content_type, "application/octet-stream");
  EXPECT_FALSE(api_.upload_chunked);
  for (const auto& t : api_.tokens) EXPECT_EQ(t, "env-token");
}

TEST_F(CliTest, CreateWithoutFileLeavesTheImageQueuedAndPrintsATable) {
  CliRun r = Ingot(
      "--token cli-token image-create --name empty --disk-format qcow2 --container-format bare");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| Property"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| status           | queued"), std::string::npos) << r.out;
  EXPECT_TRUE(api_.data.empty());
  EXPECT_EQ(api_.tokens.back(), "cli-token");
}

TEST_F(CliTest, UploadFromAPipeIsChunked) {
  CliRun c = Ingot("--json image-create --name piped --disk-format raw --container-format bare");
  ASSERT_EQ(c.code, 0);
  std::string id(json::parse(c.out).as_object()["id"].as_string());
  std::string path = WriteData("pipe-src", std::string(100000, 'p'));
  std::string out = dir_ + "/o";
  std::string cmd = "cat " + path +
                    " | INGOT_URL=http://127.0.0.1:" + std::to_string(server_->port()) + " " +
                    INGOT_CLI + " image-upload " + id + " >" + out + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadFile(out);
  EXPECT_TRUE(api_.upload_chunked);
  EXPECT_EQ(api_.data[id], std::string(100000, 'p'));
}

TEST_F(CliTest, ListFollowsPagesAndFilters) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Ingot("image-create --name img" + std::to_string(i) +
                    " --disk-format raw --container-format bare")
                  .code,
              0);
  }
  CliRun r = Ingot("--json image-list");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object()["images"].as_array().size(), 5u);
  r = Ingot("image-list");
  ASSERT_EQ(r.code, 0);
  for (int i = 0; i < 5; ++i) EXPECT_NE(r.out.find("img" + std::to_string(i)), std::string::npos);
  EXPECT_NE(r.out.find("| ID"), std::string::npos);
  r = Ingot("--json image-list --name 'img 3' --limit 1");
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(api_.list_queries.back(), "/v2/images?name=img%203&limit=1");
}

TEST_F(CliTest, UpdateSendsAddReplaceRemoveAsJsonPatch) {
  CliRun c = Ingot(
      "--json image-create --name a --disk-format raw --container-format bare --property old=1");
  std::string id(json::parse(c.out).as_object()["id"].as_string());
  CliRun r = Ingot("--json image-update " + id +
                   " --name b --property new=2 --property old=3 --remove-property old");
  ASSERT_EQ(r.code, 0) << r.err;
  json::array want = json::parse(R"([
      {"op":"replace","path":"/name","value":"b"},
      {"op":"add","path":"/new","value":"2"},
      {"op":"replace","path":"/old","value":"3"},
      {"op":"remove","path":"/old"}])")
                         .as_array();
  EXPECT_EQ(api_.last_patch, want);
  json::object shown = json::parse(r.out).as_object();
  EXPECT_EQ(shown["name"], "b");
  EXPECT_FALSE(shown.contains("old"));
}

TEST_F(CliTest, TagsActionsAndDelete) {
  CliRun c = Ingot("--json image-create --name t --disk-format raw --container-format bare");
  std::string id(json::parse(c.out).as_object()["id"].as_string());
  EXPECT_EQ(Ingot("image-tag-update " + id + " blue").code, 0);
  EXPECT_EQ(api_.images[id]["tags"], json::array({"blue"}));
  EXPECT_EQ(Ingot("image-tag-delete " + id + " blue").code, 0);
  CliRun missing = Ingot("image-tag-delete " + id + " blue");
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err, "ingot: HTTP 404 Not Found: Tag blue not found.\n");
  EXPECT_EQ(Ingot("image-deactivate " + id).code, 0);
  EXPECT_EQ(api_.images[id]["status"], "deactivated");
  EXPECT_EQ(Ingot("image-reactivate " + id).code, 0);
  EXPECT_EQ(api_.images[id]["status"], "active");
  EXPECT_EQ(Ingot("image-delete " + id).code, 0);
  EXPECT_FALSE(api_.images.count(id));
}

TEST_F(CliTest, DownloadChecksTheMd5) {
  std::string data(2'500'000, 'd');
  CliRun c =
      Ingot("--json image-create --name d --disk-format raw --container-format bare --file " +
            WriteData("src", data));
  std::string id(json::parse(c.out).as_object()["id"].as_string());
  std::string out = dir_ + "/downloaded";
  CliRun r = Ingot("image-download " + id + " --file " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadFile(out), data);
  // To standard output when redirected.
  r = Ingot("image-download " + id);
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(r.out == data);

  api_.corrupt_md5 = true;
  std::string bad = dir_ + "/bad";
  r = Ingot("image-download " + id + " --file " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("MD5"), std::string::npos) << r.err;
  EXPECT_NE(access(bad.c_str(), F_OK), 0) << "a corrupt download must not be left behind";
}

TEST_F(CliTest, ServerErrorsExitOneWithTheServersMessage) {
  CliRun r = Ingot("image-show 00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(
      r.err,
      "ingot: HTTP 404 Not Found: No image found with ID 00000000-0000-0000-0000-000000000000\n");
  r = Ingot("--url http://127.0.0.1:1 image-list");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos);
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Ingot("").code, 2);
  EXPECT_EQ(Ingot("no-such-command").code, 2);
  EXPECT_EQ(Ingot("image-show").code, 2);
  EXPECT_EQ(Ingot("image-show a b").code, 2);
  EXPECT_EQ(Ingot("image-create --bogus x").code, 2);
  EXPECT_EQ(Ingot("image-create --name").code, 2);
  EXPECT_EQ(Ingot("image-create --name a --property novalue").code, 2);
  EXPECT_EQ(Ingot("image-create --name a --min-disk lots").code, 2);
  EXPECT_EQ(Ingot("--url ftp://x image-list").code, 2);
  EXPECT_EQ(Ingot("image-upload some-id").code, 2);  // no --file and nothing piped in
  EXPECT_TRUE(api_.tokens.empty()) << "usage errors must not reach the server";
  CliRun help = Ingot("--help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("image-create"), std::string::npos);
}

// ---- Import and tasks, against the real API edge ------------------------------------------------

// The real Application over a SQLite catalog, two memory stores ("file", the default, and "cold")
// and a memory staging area, with the import service's workers running. The server offers every
// import method but glance-download.
class CliImportTest : public CliTest {
 protected:
  http::Handler MakeHandler() override {
    auto repo = catalog::SqliteImageRepository::Open(dir_ + "/catalog.db");
    EXPECT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);
    EXPECT_TRUE(
        stores_
            .Add(std::make_unique<store::MemoryStore>("file"),
                 {.id = "file", .driver = "memory", .description = "fast", .is_default = true})
            .ok());
    EXPECT_TRUE(
        stores_
            .Add(std::make_unique<store::MemoryStore>("cold"), {.id = "cold", .driver = "memory"})
            .ok());
    images_ =
        std::make_unique<service::ImageService>(*repo_, stores_, service::ImageServiceOptions{});
    imports_ = std::make_unique<service::ImportService>(
        *images_, *repo_, staging_,
        service::ImportOptions{.methods = {"glance-direct", "web-download", "copy-image"},
                               .node = "cli-test"});
    auth_ = auth::MakeNoAuth("p1");
    app_ = std::make_unique<api::Application>(api::AppDeps{
        .images = *images_,
        .authenticator = *auth_,
        .policy = policy_,
        .options = {.public_url = "http://127.0.0.1", .formats = {{"raw", "qcow2"}, {"bare"}}},
        .imports = imports_.get()});
    imports_->Start();
    return [this](http::Request& r) { return app_->Handle(r); };
  }
  void StopServices() override { imports_->Stop(); }

  // `ingot ARGS` that must not hang the suite if a wait never ends.
  CliRun Bounded(const std::string& args) { return Ingot("--timeout 60 " + args); }

  std::string CreateQueued(const std::string& disk_format = "raw") {
    CliRun r = Bounded("--json image-create --name imp --disk-format " + disk_format +
                       " --container-format bare");
    EXPECT_EQ(r.code, 0) << r.err;
    return std::string(json::parse(r.out).as_object()["id"].as_string());
  }

  std::unique_ptr<catalog::SqliteImageRepository> repo_;
  store::StoreSet stores_;
  store::MemoryStore staging_{"staging"};
  std::unique_ptr<service::ImageService> images_;
  std::unique_ptr<service::ImportService> imports_;
  std::unique_ptr<auth::Authenticator> auth_;
  const auth::Policy policy_ = auth::Policy::Defaults();
  std::unique_ptr<api::Application> app_;
};

TEST_F(CliImportTest, StageThenGlanceDirectWaitsUntilActive) {
  std::string data(3'000'000, 'g');
  std::string id = CreateQueued();
  CliRun r = Bounded("--progress image-stage " + id + " --file " + WriteData("disk.raw", data));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("stage ["), std::string::npos) << r.err;
  r = Bounded("--json image-show " + id);
  EXPECT_EQ(json::parse(r.out).as_object()["status"], "uploading");

  r = Bounded("--json --progress image-import " + id + " --import-method glance-direct --wait");
  ASSERT_EQ(r.code, 0) << r.err;
  json::object shown = json::parse(r.out).as_object();
  EXPECT_EQ(shown["status"], "active");
  EXPECT_EQ(shown["checksum"], json::value(Md5(data)));
  EXPECT_EQ(shown["size"], 3'000'000);
  EXPECT_EQ(shown["os_glance_importing_to_stores"], "");
  EXPECT_NE(r.err.find("import: "), std::string::npos) << r.err;  // the live line
  EXPECT_NE(r.err.find("import task "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(": success\n"), std::string::npos) << r.err;

  std::string out = dir_ + "/downloaded";
  ASSERT_EQ(Bounded("image-download " + id + " --file " + out).code, 0);
  EXPECT_TRUE(ReadFile(out) == data);
}

TEST_F(CliImportTest, CreateViaImportThenCopyToASecondStore) {
  std::string data(1'000'000, 'c');
  CliRun r = Bounded(
      "--json image-create-via-import --name via --disk-format raw --container-format bare "
      "--property os_distro=cirros --file " +
      WriteData("via.raw", data) + " --wait");
  ASSERT_EQ(r.code, 0) << r.err;
  json::object shown = json::parse(r.out).as_object();
  std::string id(shown["id"].as_string());
  EXPECT_EQ(shown["status"], "active");
  EXPECT_EQ(shown["os_distro"], "cirros");
  EXPECT_EQ(shown["checksum"], json::value(Md5(data)));
  EXPECT_EQ(shown["stores"], "file");

  r = Bounded("--json image-import " + id + " --import-method copy-image --stores cold --wait");
  ASSERT_EQ(r.code, 0) << r.err;
  shown = json::parse(r.out).as_object();
  EXPECT_EQ(shown["status"], "active");
  EXPECT_EQ(shown["stores"], "file,cold");
  EXPECT_EQ(shown["os_glance_importing_to_stores"], "");

  // Every store has it now: the server has nothing to do, and --wait says so.
  r = Bounded("--json image-import " + id + " --import-method copy-image --all-stores --wait");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("nothing to import"), std::string::npos) << r.err;
}

TEST_F(CliImportTest, CreateViaImportWithoutWaitShowsTheImportingImage) {
  CliRun r = Bounded(
      "--json image-create-via-import --name nowait --disk-format raw --container-format bare "
      "--file " +
      WriteData("nowait.raw", std::string(4096, 'n')) + " --stores cold");
  ASSERT_EQ(r.code, 0) << r.err;
  json::object shown = json::parse(r.out).as_object();
  std::string status(shown["status"].as_string());
  EXPECT_TRUE(status == "importing" || status == "active") << status;
  // With neither data nor a method it is image-create.
  r = Bounded(
      "--json image-create-via-import --name bare --disk-format raw --container-format bare");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object()["status"], "queued");
}

TEST_F(CliImportTest, TaskListAndShowTheImportTask) {
  std::string id = CreateQueued();
  ASSERT_EQ(
      Bounded("image-stage " + id + " --file " + WriteData("t.raw", std::string(8192, 't'))).code,
      0);
  ASSERT_EQ(Bounded("image-import " + id + " --import-method glance-direct --wait").code, 0);

  CliRun r = Bounded("--json task-list");
  ASSERT_EQ(r.code, 0) << r.err;
  json::array tasks = json::parse(r.out).as_object()["tasks"].as_array();
  ASSERT_EQ(tasks.size(), 1u);
  std::string task_id(tasks[0].as_object()["id"].as_string());
  EXPECT_EQ(tasks[0].as_object()["status"], "success");

  r = Bounded("task-list");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| ID"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| Type"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| Owner"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(task_id), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("api_image_import"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| success"), std::string::npos) << r.out;

  r = Bounded("task-show " + task_id);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| image_id "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
  // input and result as compact JSON on one line.
  EXPECT_NE(r.out.find("| result     | {\"image_id\":\"" + id + "\"}"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"glance-direct\""), std::string::npos) << r.out;

  r = Bounded("--json task-show " + task_id);
  ASSERT_EQ(r.code, 0) << r.err;
  json::object task = json::parse(r.out).as_object();
  EXPECT_EQ(task["image_id"], json::value(id));
  EXPECT_TRUE(task["input"].is_object());

  r = Bounded("task-show 00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "ingot: HTTP 404 Not Found: Task with identifier "
            "00000000-0000-0000-0000-000000000000 not found\n");
}

TEST_F(CliImportTest, AFailedTaskExitsOneWithItsMessage) {
  // Raw bytes for a qcow2 image: staged, then refused by the import's format check.
  std::string id = CreateQueued("qcow2");
  ASSERT_EQ(
      Bounded("image-stage " + id + " --file " + WriteData("r.raw", std::string(65536, 'r'))).code,
      0);
  CliRun r = Bounded("image-import " + id + " --import-method glance-direct --wait");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(r.err.rfind("ingot: import task ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(" failed: "), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  r = Bounded("--json image-show " + id);
  EXPECT_EQ(json::parse(r.out).as_object()["status"], "queued");
}

TEST_F(CliImportTest, ImportErrorsAndUsage) {
  std::string id = CreateQueued();
  CliRun r = Bounded("image-import " + id + " --import-method glance-direct --wait");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "ingot: HTTP 409 Conflict: Image needs to be staged before 'glance-direct' method can "
            "be used\n");
  r = Bounded("image-import " + id + " --import-method copy-image --stores nowhere");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("HTTP 409 Conflict"), std::string::npos) << r.err;

  // The server does not offer glance-download: refused before an image is created.
  r = Bounded(
      "image-create-via-import --name x --disk-format raw --container-format bare "
      "--import-method glance-download --remote-region r --remote-image-id "
      "00000000-0000-0000-0000-000000000001");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("does not offer the import method 'glance-download'"), std::string::npos)
      << r.err;
  r = Bounded("--json image-list");
  EXPECT_EQ(json::parse(r.out).as_object()["images"].as_array().size(), 1u) << r.out;

  EXPECT_EQ(Bounded("image-import " + id + " --import-method web-download").code, 2);
  EXPECT_EQ(Bounded("image-import " + id + " --uri http://127.0.0.1/x").code, 2);
  EXPECT_EQ(Bounded("image-import " + id + " --stores a --all-stores").code, 2);
  EXPECT_EQ(Bounded("image-import " + id + " --stores a,,b").code, 2);
  EXPECT_EQ(Bounded("image-import " + id + " --import-method glance-download").code, 2);
  EXPECT_EQ(Bounded("image-import").code, 2);
  EXPECT_EQ(Bounded("image-stage " + id).code, 2);  // no --file and nothing piped in
  EXPECT_EQ(Bounded("image-create-via-import --name x --import-method glance-direct").code, 2);
  EXPECT_EQ(Bounded("image-create-via-import --name x --import-method copy-image").code, 2);
  EXPECT_EQ(Bounded("image-create-via-import --name x --stores cold").code, 2);
  EXPECT_EQ(Bounded("--json image-show " + id).code, 0);
  r = Bounded("--json image-list");
  EXPECT_EQ(json::parse(r.out).as_object()["images"].as_array().size(), 1u) << r.out;
}

TEST_F(CliImportTest, ImportAndStoresInfo) {
  CliRun r = Bounded("import-info");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| import-methods | glance-direct, web-download, copy-image |"),
            std::string::npos)
      << r.out;
  r = Bounded("--json import-info");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out).as_object()["import-methods"].as_object()["value"].as_array().size(),
            3u);
  r = Bounded("stores-info");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("| file | yes     | fast"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| cold |"), std::string::npos) << r.out;
}

TEST(StatusLine, RenderAndImportState) {
  EXPECT_EQ(StatusLine::Render("import", "importing to file", 67.4),
            "import: importing to file (1:07)");
  json::object image{{"status", "importing"},
                     {"os_glance_importing_to_stores", "file,cold"},
                     {"os_glance_failed_import", ""}};
  EXPECT_EQ(ImportState(image), "importing to file, cold");
  image["status"] = "active";
  image["os_glance_importing_to_stores"] = "cold";
  image["os_glance_failed_import"] = "a,b";
  EXPECT_EQ(ImportState(image), "active, importing to cold; failed: a, b");
  EXPECT_EQ(ImportState(json::object{{"status", "queued"}}), "queued");
}

TEST(StatusFromResponse, GlanceJsonAndHtmlErrors) {
  http::ClientResponse json_error{
      403,
      "Forbidden",
      {},
      R"({"message": "Image x is protected and cannot be deleted.<br /><br />\n\n\n", "code": "403 Forbidden", "title": "Forbidden"})"};
  Status s = StatusFromResponse(json_error);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(), "HTTP 403 Forbidden: Image x is protected and cannot be deleted.");
  http::ClientResponse html_error{409,
                                  "Conflict",
                                  {},
                                  "<html>\n <head>\n  <title>409 Conflict</title>\n </head>\n "
                                  "<body>\n  <h1>409 Conflict</h1>\n  Image "
                                  "status transition from active to saving is not allowed<br /><br "
                                  "/>\n\n\n\n </body>\n</html>"};
  s = StatusFromResponse(html_error);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(),
            "HTTP 409 Conflict: Image status transition from active to saving is not allowed");
  EXPECT_EQ(StatusFromResponse({500, "Internal Server Error", {}, ""}).message(),
            "HTTP 500 Internal Server Error");
}

TEST(ProgressBar, Render) {
  EXPECT_EQ(ProgressBar::Render("upload", 512ull << 20, 1024ull << 20, 2.0),
            "upload [###############               ]  50% 512.0/1024.0 MiB 256.0 MiB/s ETA 0:02");
  EXPECT_EQ(ProgressBar::Render("download", 3ull << 20, std::nullopt, 1.0),
            "download 3.0 MiB 3.0 MiB/s");
  EXPECT_EQ(ProgressBar::Render("upload", 0, 0, 0.0), "upload 0.0 MiB 0.0 MiB/s");
}

TEST(UrlEncode, KeepsUnreservedOnly) {
  EXPECT_EQ(http::PercentEncode("a b/c?d=e&f~_.-"), "a%20b%2Fc%3Fd%3De%26f~_.-");
}

}  // namespace
}  // namespace ingot::cli
