// The builder on a catalog several nodes share: two BuildServices (two nodes) on one database, each
// with its own build directory, sharing a store for their files (build/shelf.h). A job whose node
// died is taken over and built again by the other (reading the recipe the first node received);
// a customize session or a job out of attempts ends in error instead; a job cancelled through one
// node stops on the node running it; a node that lost a job's lease stops it without touching the
// record; the scrubber keeps the shelf's files while their records exist.
//
// Builds here never reach an archive: the mirror is a local socket that refuses (the build fails
// at waiting_for_repos) or one that never answers (the build waits there until stopped).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "build/builder.h"
#include "build/shelf.h"
#include "catalog/sql/testing/engines.h"
#include "store/file/file_store.h"

namespace ingot::build {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr int64_t kSecond = 1'000'000;

// A field of a job record, "" when absent or not a string.
std::string Field(const Result<json::object>& job, const char* key) {
  if (!job.ok() || !job->contains(key) || !job->at(key).is_string()) return "";
  return std::string(job->at(key).as_string());
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/ingot-build-cluster-" + std::to_string(getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto db = catalog::testing::EngineDatabase::Create("sqlite");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    auto catalog = db_->Open();
    ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
    catalog_ = std::move(*catalog);
    auto records = OpenBuildRepository(catalog_->shared_backend());
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    records_ = std::move(*records);
    auto store = store::FileStore::Open({.id = "shared", .root = dir_ + "/store"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    // A port nothing listens on: curl is refused at once.
    refused_mirror_ = "http://127.0.0.1:" + std::to_string(FreePort()) + "/debian";
  }
  void TearDown() override {
    for (auto& n : nodes_) n->Stop();
    nodes_.clear();
    if (blackhole_ >= 0) close(blackhole_);
    fs::remove_all(dir_);
  }

  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    close(fd);
    return ntohs(a.sin_port);
  }
  // A mirror that accepts connections (the kernel's backlog) and never answers.
  std::string BlackholeMirror() {
    blackhole_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(blackhole_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(blackhole_, 16), 0);
    socklen_t len = sizeof a;
    getsockname(blackhole_, reinterpret_cast<sockaddr*>(&a), &len);
    return "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/debian";
  }

  BuildService& Node(const std::string& name, const std::string& mirror, bool keeper = true) {
    BuilderOptions o;
    o.dir = dir_ + "/" + name;
    o.mirror = mirror;
    o.leases = catalog_.get();
    o.node = name;
    o.job_lease = std::chrono::seconds(3);
    o.shelf_store = store_.get();
    nodes_.push_back(std::make_unique<BuildService>(*records_, o, nullptr));
    EXPECT_TRUE(nodes_.back()->Recover().ok());
    if (keeper) nodes_.back()->StartKeeper();
    return *nodes_.back();
  }

  // A recipe with its archive, received through `node`.
  std::string Recipe(BuildService& node) {
    auto r = node.CreateRecipe(json::object{{"name", "r"},
                                            {"recipe_type", "mmdebstrap"},
                                            {"linux_distribution", "debian"}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    const std::string src = dir_ + "/recipe-src";
    fs::create_directories(src);
    std::ofstream(src + "/recipe.toml") << "suite = \"bookworm\"\nvariant = \"minbase\"\n";
    const std::string tgz = dir_ + "/recipe.tgz";
    EXPECT_EQ(system(("tar -czf " + tgz + " -C " + src + " recipe.toml").c_str()), 0);
    std::ifstream in(tgz, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    struct StringReader : io::Reader {
      std::string s;
      size_t at = 0;
      Result<size_t> Read(std::span<uint8_t> buf) override {
        size_t n = std::min(buf.size(), s.size() - at);
        memcpy(buf.data(), s.data() + at, n);
        at += n;
        return n;
      }
    } reader;
    reader.s = bytes;
    const std::string id(r->at("id").as_string());
    auto put = node.PutRecipeArchive(id, reader);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return id;
  }

  // A job record as a node that then died left it: `status`, its lease held by "dead" and run out.
  std::string OrphanJob(const std::string& recipe, const std::string& type, int attempt) {
    const std::string id = "0000000" + std::to_string(++jobs_) + "-0000-4000-8000-000000000000";
    json::object job{{"id", id},           {"job_type", type},   {"artifact_id", recipe},
                     {"status", "building_image"}, {"attempt", attempt}, {"outputs", json::array{"ims"}},
                     {"use_cache", true},  {"error", nullptr}};
    EXPECT_TRUE(records_->Put(Kind::kJob, id, job).ok());
    const int64_t long_ago = Now() - 100 * kSecond;
    auto l = catalog_->AcquireJobLease("build-job:" + id, "dead", long_ago, long_ago + kSecond,
                                       INT64_MAX);
    EXPECT_TRUE(l.ok() && l->holder == "dead");
    return id;
  }

  json::object WaitFinished(BuildService& node, const std::string& id) {
    auto job = node.WaitJob(id, 60s);
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    return job.ok() ? *job : json::object{};
  }
  std::string LogOf(BuildService& node, const std::string& id) {
    auto path = node.JobLog(id);
    if (!path.ok()) return "(no log: " + path.status().ToString() + ")";
    std::ifstream in(*path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void WaitUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 300 && !done(); ++i) std::this_thread::sleep_for(100ms);
  }

  std::string dir_;
  std::unique_ptr<catalog::testing::EngineDatabase> db_;
  std::unique_ptr<catalog::SqlRepository> catalog_;
  std::unique_ptr<BuildRepository> records_;
  std::unique_ptr<store::Store> store_;
  std::vector<std::unique_ptr<BuildService>> nodes_;
  std::string refused_mirror_;
  int blackhole_ = -1;
  int jobs_ = 0;
};

TEST_F(ClusterTest, ADeadNodesJobIsBuiltAgainByAnotherWithTheRecipeItReceived) {
  BuildService& a = Node("a", refused_mirror_, /*keeper=*/false);
  const std::string recipe = Recipe(a);
  const std::string job = OrphanJob(recipe, "create", 1);
  BuildService& b = Node("b", refused_mirror_);
  json::object done = WaitFinished(b, job);
  EXPECT_EQ(done["attempt"].as_int64(), 2);
  EXPECT_EQ(done["status"].as_string(), "error");
  // It got as far as the archive: so node b read the recipe node a received, from the store.
  EXPECT_NE(std::string(done["error"].as_string()).find("has no suite"), std::string::npos)
      << done["error"];
  EXPECT_TRUE(fs::exists(dir_ + "/b/recipes/" + recipe + ".tgz"));
  const std::string log = LogOf(a, job);  // node a serves it too: the finished log is shared
  EXPECT_NE(log.find("taken over by node b: node dead stopped renewing"), std::string::npos) << log;
  auto lease = catalog_->GetJobLease("build-job:" + job);
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE(lease->holder.has_value());  // released once finished
}

TEST_F(ClusterTest, ACustomizeSessionOrAJobOutOfAttemptsEndsInError) {
  BuildService& a = Node("a", refused_mirror_, /*keeper=*/false);
  const std::string recipe = Recipe(a);
  const std::string customize = OrphanJob(recipe, "customize", 1);
  const std::string tired = OrphanJob(recipe, "create", BuildService::kMaxAttempts);
  BuildService& b = Node("b", refused_mirror_);
  json::object c = WaitFinished(b, customize);
  EXPECT_EQ(c["status"].as_string(), "error");
  EXPECT_NE(std::string(c["error"].as_string()).find("cannot move to another node"),
            std::string::npos)
      << c["error"];
  json::object t = WaitFinished(b, tired);
  EXPECT_EQ(t["status"].as_string(), "error");
  EXPECT_NE(std::string(t["error"].as_string()).find("built 3 times, the limit"), std::string::npos)
      << t["error"];
}

TEST_F(ClusterTest, CancelThroughAnotherNodeStopsTheRunningNodeAndALostLeaseStopsQuietly) {
  const std::string mirror = BlackholeMirror();
  BuildService& a = Node("a", mirror);
  BuildService& b = Node("b", mirror);
  const std::string recipe = Recipe(b);
  auto job = a.CreateJob(json::object{{"job_type", "create"}, {"artifact_id", recipe}});
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const std::string id(job->at("id").as_string());
  WaitUntil([&] { return Field(records_->Get(Kind::kJob, id), "status") == "waiting_for_repos"; });
  ASSERT_TRUE(a.JobRunning(id));
  EXPECT_EQ(b.JobLog(id).status().code(), Code::kUnavailable);  // the live log is on node a
  ASSERT_TRUE(b.CancelJob(id).ok());
  WaitUntil([&] { return !a.JobRunning(id); });
  EXPECT_FALSE(a.JobRunning(id));
  auto cancelled = records_->Get(Kind::kJob, id);
  EXPECT_EQ(Field(cancelled, "status"), "error");
  EXPECT_EQ(Field(cancelled, "error"), "cancelled while waiting_for_repos");
  // Every node serves the log of the run node a stopped, not just the canceller's line.
  const std::string log = LogOf(b, id);
  EXPECT_NE(log.find("stopped here: the job was ended through another node"), std::string::npos)
      << log;

  // A second job whose lease another node took (node a was too slow to renew): node a stops it and
  // leaves the record to the new holder.
  auto second = a.CreateJob(json::object{{"job_type", "create"}, {"artifact_id", recipe}});
  ASSERT_TRUE(second.ok());
  const std::string id2(second->at("id").as_string());
  WaitUntil([&] { return Field(records_->Get(Kind::kJob, id2), "status") == "waiting_for_repos"; });
  ASSERT_TRUE(catalog_->ReleaseJobLease("build-job:" + id2, "a", 0, "").ok());
  auto stolen = catalog_->AcquireJobLease("build-job:" + id2, "thief", Now(), Now() + 3600 * kSecond,
                                          INT64_MAX);
  ASSERT_TRUE(stolen.ok() && stolen->holder == "thief");
  WaitUntil([&] { return !a.JobRunning(id2); });
  EXPECT_FALSE(a.JobRunning(id2));
  EXPECT_EQ(Field(records_->Get(Kind::kJob, id2), "status"), "waiting_for_repos");  // untouched
  EXPECT_EQ(catalog_->GetJobLease("build-job:" + id2)->holder, "thief");
}

TEST_F(ClusterTest, TheShelfKeysNameTheirRecordsAndTheScrubberKeepsThemWhileTheyExist) {
  const std::string img = "11111111-2222-4333-8444-555555555555";
  EXPECT_EQ(Shelf::KeyOf("recipes/" + img + ".tgz"), "ims-recipe-" + img);
  EXPECT_EQ(Shelf::KeyOf("jobs/" + img + "/log"), "ims-log-" + img);
  EXPECT_EQ(Shelf::KeyOf("artifacts/" + img + "/rootfs"), "ims-artifact-" + img + "-rootfs");
  const std::string long_name(120, 'x');
  auto long_key = Shelf::KeyOf("artifacts/" + img + "/" + long_name);
  ASSERT_TRUE(long_key);
  EXPECT_LE(long_key->size(), 128u);
  EXPECT_EQ(Shelf::KeyOf("artifacts/" + img + "/../x"), std::nullopt);
  EXPECT_EQ(Shelf::KeyOf("recipes/not-a-uuid.tgz"), std::nullopt);
  EXPECT_EQ(Shelf::KeyOf("artifacts/" + img + "/a/b"), std::nullopt);

  EXPECT_FALSE(*Shelf::StillWanted(*records_, "ims-artifact-" + img + "-rootfs"));
  ASSERT_TRUE(records_->Put(Kind::kImage, img, {{"id", img}}).ok());
  EXPECT_TRUE(*Shelf::StillWanted(*records_, "ims-artifact-" + img + "-rootfs"));
  ASSERT_TRUE(records_->SetDeleted(Kind::kImage, img, true).ok());  // undeletable: kept
  EXPECT_TRUE(*Shelf::StillWanted(*records_, *long_key));
  ASSERT_TRUE(records_->Remove(Kind::kImage, img, true).ok());  // purged: its files may go
  EXPECT_FALSE(*Shelf::StillWanted(*records_, *long_key));
  EXPECT_FALSE(*Shelf::StillWanted(*records_, img));  // an image's object, not the shelf's
}

}  // namespace
}  // namespace ingot::build
