// Capture: the volume-level steps on a sparse disk (the qcow2 holds the data only and reads back
// byte for byte; the source volume is untouched), and the use case end to end on a GPT disk with
// an ext4 root made by sgdisk + mke2fs -d: deploy, change the volume, capture with a generalising
// plan, deploy the new golden image and find the generalised content and the change. Refusals and
// the crash repair of an interrupted capture.
#include "deploy/artifacts/capture.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "catalog/sqlite/database.h"
#include "deploy/artifacts/artifact_service.h"
#include "deploy/volume_store.h"
#include "io/file.h"
#include "io/hash.h"

namespace ingot::deploy::artifacts {
namespace {
namespace json = boost::json;

std::string Sh(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  if (rc) *rc = WEXITSTATUS(status);
  return out;
}

bool Have(const char* tool) { return !Sh(std::string("command -v ") + tool).empty(); }

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

std::string Sha256File(const std::string& path) {
  return Sh("sha256sum '" + path + "' | cut -d' ' -f1 | tr -d '\\n'");
}

std::string ReadVolume(OsVolume& v, uint64_t off, size_t n) {
  std::string out(n, '\0');
  EXPECT_TRUE(v.Read(off, {reinterpret_cast<uint8_t*>(out.data()), n}).ok());
  return out;
}

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-capture-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    repo_.reset();
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  void OpenService() {
    service_.reset();
    repo_.reset();
    auto db = catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    ASSERT_TRUE(db.ok());
    auto repo = OpenSqliteDeployRepository(*db);
    ASSERT_TRUE(repo.ok());
    repo_ = std::move(*repo);
    if (!store_) {
      auto store = VolumeStore::Open(dir_ + "/volumes");
      ASSERT_TRUE(store.ok());
      store_ = std::move(*store);
    }
    service_ = std::make_unique<ArtifactService>(
        *repo_, *store_,
        ArtifactOptions{.dir = dir_ + "/deploy", .engine = guestfish::Engine::kNative}, nullptr);
    auto report = service_->Repair();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    repaired_ = *report;
    service_->Start();
  }
  json::object Must(Result<json::object> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json::object();
  }
  static std::string Uri(const json::object& o) { return std::string(o.at("uri").as_string()); }
  static std::string Id(const json::object& o) { return std::string(o.at("id").as_string()); }
  json::object WaitTask(const json::object& task) {
    for (int i = 0; i < 3000; ++i) {
      auto t = service_->Get(Kind::kTask, Id(task));
      if (t.ok() && t->at("taskState").as_string() != "Running") return *t;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "task never ended";
    return {};
  }

  std::string dir_;
  std::unique_ptr<DeployRepository> repo_;
  std::unique_ptr<VolumeStore> store_;
  std::unique_ptr<ArtifactService> service_;
  ArtifactService::RepairReport repaired_;
};

TEST_F(CaptureTest, FlattenGeneraliseWriteKeepsDataOnlyAndLeavesTheSourceAlone) {
  // A 64 MiB raw golden image with data at three places, holes elsewhere.
  const std::string golden = dir_ + "/golden.raw";
  {
    auto sink = io::FileSink::Create(golden);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Resize(64 << 20).ok());
    std::string a(100000, 'a'), b(4096, 'b');
    ASSERT_TRUE((*sink)->WriteAt(0, {reinterpret_cast<const uint8_t*>(a.data()), a.size()}).ok());
    ASSERT_TRUE(
        (*sink)->WriteAt(40 << 20, {reinterpret_cast<const uint8_t*>(b.data()), b.size()}).ok());
  }
  auto store = VolumeStore::Open(dir_ + "/volumes");
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Create({.name = "src", .base_path = golden}).ok());
  const std::string golden_sum = Sha256File(golden);
  std::string overlay_sum;
  {
    auto src = (*store)->OpenVolume("src");
    ASSERT_TRUE(src.ok());
    std::string c(70000, 'c');
    ASSERT_TRUE(
        (*src)->Write(20 << 20, {reinterpret_cast<const uint8_t*>(c.data()), c.size()}).ok());
    ASSERT_TRUE((*src)->Flush().ok());
  }
  overlay_sum = Sha256File(dir_ + "/volumes/src/overlay") + Sha256File(dir_ + "/volumes/src/map");

  const std::string work = dir_ + "/work";
  ASSERT_EQ(::mkdir(work.c_str(), 0750), 0);
  {
    auto src = (*store)->OpenVolume("src");
    ASSERT_TRUE(src.ok());
    Status s = FlattenVolume(**src, work + "/flat.raw");
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ(FileSize(work + "/flat.raw"), 64u << 20);
  auto wv = OpenWorkVolume(work + "/volume", work + "/flat.raw");
  ASSERT_TRUE(wv.ok()) << wv.status().ToString();
  std::string d(5000, 'd');
  ASSERT_TRUE((*wv)->Write(30 << 20, {reinterpret_cast<const uint8_t*>(d.data()), d.size()}).ok());
  const std::string flat_sum = Sha256File(work + "/flat.raw");
  auto size = WriteGoldenQcow2(**wv, dir_ + "/out.qcow2");
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_LT(*size, 2u << 20) << "zeros must not be stored";
  EXPECT_EQ(Sha256File(work + "/flat.raw"), flat_sum) << "the work volume writes to its overlay";

  // The qcow2 reads back as the work volume, byte for byte where it matters, zeros elsewhere.
  auto file = io::FileSource::Open(dir_ + "/out.qcow2");
  ASSERT_TRUE(file.ok());
  auto image = formats::Open(**file, std::nullopt);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_EQ((*image)->Size(), 64u << 20);
  auto read = [&](uint64_t off, size_t n) {
    std::string out(n, '\0');
    EXPECT_TRUE(io::ReadExact(**image, off, {reinterpret_cast<uint8_t*>(out.data()), n}).ok());
    return out;
  };
  EXPECT_EQ(read(0, 100000), std::string(100000, 'a'));
  EXPECT_EQ(read(20 << 20, 70000), std::string(70000, 'c'));
  EXPECT_EQ(read(30 << 20, 5000), d);
  EXPECT_EQ(read(40 << 20, 4096), std::string(4096, 'b'));
  EXPECT_EQ(read(50 << 20, 65536), std::string(65536, '\0'));
  EXPECT_EQ(ReadVolume(**wv, 30 << 20, 5000), d);
  if (Have("qemu-img")) {
    int rc = 0;
    std::string out = Sh("qemu-img check " + dir_ + "/out.qcow2", &rc);
    EXPECT_EQ(rc, 0) << out;
  }
  // The source: golden image, overlay and map unchanged.
  EXPECT_EQ(Sha256File(golden), golden_sum);
  EXPECT_EQ(Sha256File(dir_ + "/volumes/src/overlay") + Sha256File(dir_ + "/volumes/src/map"),
            overlay_sum);
}

TEST_F(CaptureTest, RoundTripThroughTheService) {
  for (const char* t : {"sgdisk", "mke2fs"}) {
    if (!Have(t)) GTEST_SKIP() << t << " is not installed";
  }
  // A GPT disk with an ext4 root holding /etc/hostname and /etc/machine-id.
  const std::string tree = dir_ + "/tree", disk = dir_ + "/golden.img";
  int rc = 0;
  std::string out = Sh("mkdir -p " + tree + "/etc && echo golden > " + tree +
                           "/etc/hostname && echo 0123456789abcdef > " + tree +
                           "/etc/machine-id && truncate -s 48M " + disk +
                           " && sgdisk -n 1:2048:0 -t 1:8300 " + disk +
                           " >/dev/null && mke2fs -q "
                           "-t ext4 -F -E offset=1048576 -d " +
                           tree + " " + disk + " 45000k",
                       &rc);
  ASSERT_EQ(rc, 0) << out;
  OpenService();
  json::object gi;
  {
    auto src = io::FileSource::Open(disk);
    ASSERT_TRUE(src.ok());
    struct Reader final : io::Reader {
      io::FileSource& f;
      uint64_t off = 0;
      explicit Reader(io::FileSource& f) : f(f) {}
      Result<size_t> Read(std::span<uint8_t> buf) override {
        INGOT_ASSIGN_OR_RETURN(size_t n, f.ReadAt(off, buf));
        off += n;
        return n;
      }
    } reader(**src);
    gi = Must(service_->UploadGoldenImage("gold", "", reader));
  }
  // Deploy with a script that changes a file, as a server would.
  json::object change = Must(service_->CreatePlanScript(
      {{"name", "change"},
       {"planType", "deploy"},
       {"content", "mount /dev/sda1 /\nwrite /etc/app.conf \"changed on the server\\n\"\n"}}));
  json::object dbp = Must(service_->CreateBuildPlan(
      {{"name", "dbp"},
       {"oeBuildPlanType", "deploy"},
       {"buildStep", json::array{json::object{{"planScriptUri", Uri(change)}}}}}));
  json::object dp = Must(service_->CreateDeploymentPlan(
      {{"name", "dp"}, {"oeBuildPlanURI", Uri(dbp)}, {"goldenImageURI", Uri(gi)}}));
  json::object task = Must(service_->CreateOsVolume(
      {{"name", "server1"}, {"deploymentPlanUri", Uri(dp)}, {"attach", false}}, "t"));
  ASSERT_EQ(WaitTask(task).at("taskState").as_string(), "Completed");
  auto vols = service_->List(Kind::kOsVolume);
  ASSERT_TRUE(vols.ok() && vols->size() == 1);
  const std::string vol_uri = Uri((*vols)[0]);
  const std::string overlay_sum =
      Sha256File(dir_ + "/volumes/server1/overlay") + Sha256File(dir_ + "/volumes/server1/map");

  // The capture plan: generalise.
  json::object gen = Must(
      service_->CreatePlanScript({{"name", "generalise"},
                                  {"planType", "capture"},
                                  {"content",
                                   "mount /dev/sda1 /\nrm-f /etc/hostname\nrm-f /etc/machine-id\n"
                                   "write /etc/generalised \"yes\\n\"\numount /\n"}}));
  json::object cbp = Must(service_->CreateBuildPlan(
      {{"name", "cbp"},
       {"oeBuildPlanType", "capture"},
       {"buildStep", json::array{json::object{{"planScriptUri", Uri(gen)}}}}}));

  // Refusals: a deploy plan, a taken name, a volume in use.
  auto bad = service_->CaptureGoldenImage(
      {{"name", "x"}, {"osVolumeURI", vol_uri}, {"buildPlanUri", Uri(dbp)}}, "t");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  auto taken = service_->CaptureGoldenImage(
      {{"name", "gold"}, {"osVolumeURI", vol_uri}, {"buildPlanUri", Uri(cbp)}}, "t");
  EXPECT_EQ(taken.status().code(), Code::kAlreadyExists);
  {
    auto held = store_->OpenVolume("server1");  // as an NBD client's connection would
    ASSERT_TRUE(held.ok());
    auto busy = service_->CaptureGoldenImage(
        {{"name", "x"}, {"osVolumeURI", vol_uri}, {"buildPlanUri", Uri(cbp)}}, "t");
    EXPECT_EQ(busy.status().code(), Code::kConflict);
  }

  json::object ctask = Must(service_->CaptureGoldenImage({{"name", "captured"},
                                                          {"description", "generalised"},
                                                          {"osVolumeURI", vol_uri},
                                                          {"buildPlanUri", Uri(cbp)}},
                                                         "t"));
  json::object cdone = WaitTask(ctask);
  ASSERT_EQ(cdone.at("taskState").as_string(), "Completed") << json::serialize(cdone);
  const std::string new_uri(
      cdone.at("associatedResource").as_object().at("resourceUri").as_string());
  json::object captured =
      Must(service_->Get(Kind::kGoldenImage, new_uri.substr(new_uri.rfind('/') + 1)));
  EXPECT_EQ(captured.at("format").as_string(), "qcow2");
  EXPECT_TRUE(captured.at("imageCapture").as_bool());
  EXPECT_EQ(captured.at("virtualSize").to_number<uint64_t>(), 48u << 20);
  EXPECT_LT(captured.at("size").to_number<uint64_t>(), 48u << 20);
  auto path = service_->GoldenImagePath(Id(captured));
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(captured.at("checkSum").as_string(), Sha256File(*path));
  EXPECT_EQ(
      Sha256File(dir_ + "/volumes/server1/overlay") + Sha256File(dir_ + "/volumes/server1/map"),
      overlay_sum)
      << "the source volume must not change";
  // No work left behind.
  EXPECT_EQ(Sh("ls -A " + dir_ + "/deploy/capture"), "");

  // Deploy the new golden image and look inside.
  json::object dbp2 =
      Must(service_->CreateBuildPlan({{"name", "dbp2"}, {"oeBuildPlanType", "deploy"}}));
  json::object dp2 = Must(service_->CreateDeploymentPlan(
      {{"name", "dp2"}, {"oeBuildPlanURI", Uri(dbp2)}, {"goldenImageURI", Uri(captured)}}));
  json::object t2 = Must(service_->CreateOsVolume(
      {{"name", "server2"}, {"deploymentPlanUri", Uri(dp2)}, {"attach", false}}, "t"));
  ASSERT_EQ(WaitTask(t2).at("taskState").as_string(), "Completed");
  auto v2 = store_->OpenVolume("server2");
  ASSERT_TRUE(v2.ok());
  auto report = guestfish::Run(
      **v2,
      guestfish::Script{"look",
                        "mount-ro /dev/sda1 /\ncat /etc/generalised\ncat /etc/app.conf\n"
                        "exists /etc/hostname\nexists /etc/machine-id\n"},
      guestfish::Engine::kNative);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_NE(report->log.find("yes"), std::string::npos) << report->log;
  EXPECT_NE(report->log.find("changed on the server"), std::string::npos) << report->log;
  EXPECT_EQ(report->log.find("true"), std::string::npos) << report->log;

  // "Capture as is" (a capture plan without steps): the image reads exactly as the volume.
  json::object asis =
      Must(service_->CreateBuildPlan({{"name", "as-is"}, {"oeBuildPlanType", "capture"}}));
  json::object atask = Must(service_->CaptureGoldenImage(
      {{"name", "as-is"}, {"osVolumeURI", vol_uri}, {"buildPlanUri", Uri(asis)}}, "t"));
  ASSERT_EQ(WaitTask(atask).at("taskState").as_string(), "Completed");
  {
    auto found = repo_->FindByName(Kind::kGoldenImage, "as-is");
    ASSERT_TRUE(found.ok() && found->has_value());
    auto file = io::FileSource::Open(*service_->GoldenImagePath(Id(**found)));
    ASSERT_TRUE(file.ok());
    auto image = formats::Open(**file, std::nullopt);
    ASSERT_TRUE(image.ok());
    auto source = store_->OpenVolume("server1");
    ASSERT_TRUE(source.ok());
    ASSERT_EQ((*image)->Size(), (*source)->Size());
    std::string a(1 << 20, '\0'), b(1 << 20, '\0');
    for (uint64_t off = 0; off < (*image)->Size(); off += a.size()) {
      ASSERT_TRUE(
          io::ReadExact(**image, off, {reinterpret_cast<uint8_t*>(a.data()), a.size()}).ok());
      ASSERT_TRUE((*source)->Read(off, {reinterpret_cast<uint8_t*>(b.data()), b.size()}).ok());
      ASSERT_EQ(a, b) << "at " << off;
    }
  }

  // A failing capture script: task Error naming it, no golden image.
  json::object broken =
      Must(service_->CreatePlanScript({{"name", "broken"},
                                       {"planType", "general"},
                                       {"content", "mount /dev/sda1 /\nrm /no/such\n"}}));
  json::object bbp = Must(service_->CreateBuildPlan(
      {{"name", "bbp"},
       {"oeBuildPlanType", "capture"},
       {"buildStep", json::array{json::object{{"planScriptUri", Uri(broken)}}}}}));
  json::object ftask = Must(service_->CaptureGoldenImage(
      {{"name", "never"}, {"osVolumeURI", vol_uri}, {"buildPlanUri", Uri(bbp)}}, "t"));
  json::object fdone = WaitTask(ftask);
  EXPECT_EQ(fdone.at("taskState").as_string(), "Error");
  EXPECT_NE(json::serialize(fdone.at("taskErrors")).find("broken line 2"), std::string::npos)
      << json::serialize(fdone);
  auto never = repo_->FindByName(Kind::kGoldenImage, "never");
  ASSERT_TRUE(never.ok());
  EXPECT_FALSE(never->has_value());
  EXPECT_EQ(Sh("ls -A " + dir_ + "/deploy/capture; ls -A " + dir_ + "/deploy/golden | grep tmp"),
            "");
}

TEST_F(CaptureTest, RestartUndoesAnInterruptedCapture) {
  OpenService();
  // What a SIGKILL mid-capture leaves: a Running capture task, its work directory, a half-written
  // golden file and a renamed one without a record.
  json::object task{
      {"name", "Capture golden image"},
      {"id", "t1"},
      {"taskState", "Running"},
      {"progressUpdates", json::array()},
      {"associatedResource", json::object{{"resourceCategory", "golden-images"},
                                          {"resourceUri", "/rest/golden-images/g1"}}}};
  ASSERT_TRUE(repo_->Put({Kind::kTask, "t1", task}).ok());
  service_.reset();
  int rc = 0;
  Sh("mkdir -p " + dir_ + "/deploy/capture/.work-t1/volume && echo x > " + dir_ +
         "/deploy/capture/.work-t1/flat.raw && echo x > " + dir_ +
         "/deploy/golden/.tmp-g1 && echo y > " + dir_ + "/deploy/golden/g2.img",
     &rc);
  ASSERT_EQ(rc, 0);
  OpenService();
  EXPECT_EQ(repaired_.captures_undone, 1);
  json::object after = Must(service_->Get(Kind::kTask, "t1"));
  EXPECT_EQ(after.at("taskState").as_string(), "Error");
  EXPECT_EQ(after.at("taskErrors").as_array()[0].as_object().at("errorCode").as_string(),
            "CAPTURE_INTERRUPTED");
  EXPECT_EQ(Sh("ls -A " + dir_ + "/deploy/capture"), "");
  EXPECT_EQ(Sh("ls -A " + dir_ + "/deploy/golden | grep -v empty.raw"), "");
}

}  // namespace
}  // namespace ingot::deploy::artifacts
