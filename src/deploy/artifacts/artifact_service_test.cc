#include "deploy/artifacts/artifact_service.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "catalog/sqlite/database.h"
#include "io/memory.h"

namespace ingot::deploy::artifacts {
namespace {
namespace json = boost::json;

class ArtifactServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-artifacts-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Open();
  }
  void TearDown() override {
    service_.reset();
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  void Open() {
    service_.reset();
    repo_.reset();
    auto db = catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    ASSERT_TRUE(db.ok());
    auto repo = OpenSqliteDeployRepository(*db);
    ASSERT_TRUE(repo.ok());
    repo_ = std::move(*repo);
    auto store = VolumeStore::Open(dir_ + "/volumes");
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    service_ = std::make_unique<ArtifactService>(*repo_, *store_, ArtifactOptions{.dir = dir_ + "/deploy"},
                                                 nullptr);
    auto report = service_->Repair();
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    repaired_ = *report;
    service_->Start();
  }
  json::object Must(Result<json::object> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : json::object();
  }
  std::string Uri(const json::object& o) { return std::string(o.at("uri").as_string()); }
  std::string Id(const json::object& o) { return std::string(o.at("id").as_string()); }
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

TEST_F(ArtifactServiceTest, PlanScriptAttributesOnlyInDeployScripts) {
  auto bad = service_->CreatePlanScript(
      {{"name", "g"}, {"planType", "general"}, {"content", "write /etc/hostname @HostName@"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  json::object ps = Must(service_->CreatePlanScript(
      {{"name", "d"}, {"planType", "deploy"}, {"content", "write /etc/hostname @HostName:h1@\n"}}));
  EXPECT_EQ(ps.at("customAttributes").as_string(), R"([{"name":"HostName","value":"h1"}])");
  // Names are unique.
  auto dup = service_->CreatePlanScript({{"name", "d"}, {"planType", "deploy"}, {"content", ""}});
  EXPECT_EQ(dup.status().code(), Code::kAlreadyExists);
  // Copy and diff.
  json::object copy = Must(service_->CopyPlanScript(Id(ps), "d2"));
  EXPECT_FALSE(copy.at("readOnly").as_bool());
  json::object diff = Must(service_->PlanScriptDifferences(Id(ps), json::value("write /etc/hostname x\n")));
  EXPECT_EQ(diff.at("linesAdded").as_int64(), 1);
  EXPECT_EQ(diff.at("linesRemoved").as_int64(), 1);
}

TEST_F(ArtifactServiceTest, DeleteRulesAndUsedBy) {
  json::object ps = Must(service_->CreatePlanScript(
      {{"name", "hostname"}, {"planType", "deploy"}, {"content", "echo @HostName@"}}));
  json::object ro = Must(service_->CreatePlanScript(
      {{"name", "provided"}, {"planType", "general"}, {"content", "echo"}, {"hpProvided", true}}));
  EXPECT_EQ(service_->DeletePlanScript(Id(ro), false).code(), Code::kConflict);
  auto edit = service_->UpdatePlanScript(Id(ro), {{"content", "x"}}, false);
  EXPECT_EQ(edit.status().code(), Code::kConflict);

  json::object bp = Must(service_->CreateBuildPlan(
      {{"name", "bp"},
       {"oeBuildPlanType", "deploy"},
       {"buildStep", json::array{json::object{{"planScriptUri", Uri(ps)}}}},
       {"customAttributes", json::array{json::object{{"name", "HostName"}, {"type", "hostname"}}}}}));
  Status in_use = service_->DeletePlanScript(Id(ps), false);
  EXPECT_EQ(in_use.code(), Code::kConflict);
  EXPECT_NE(in_use.message().find("'bp'"), std::string::npos) << in_use.message();
  auto users = service_->PlanScriptUsedBy(Id(ps));
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 1u);

  json::object dp = Must(service_->CreateDeploymentPlan(
      {{"name", "dp"}, {"oeBuildPlanURI", Uri(bp)},
       {"customAttributes", json::array{json::object{{"name", "HostName"}, {"value", "base"}}}},
       {"goldenImageURI", ""}}));
  Status bp_in_use = service_->DeleteBuildPlan(Id(bp), false);
  EXPECT_EQ(bp_in_use.code(), Code::kConflict);
  EXPECT_NE(bp_in_use.message().find("'dp'"), std::string::npos);

  // A deployment plan's override is checked against the build plan's type.
  auto bad_dp = service_->CreateDeploymentPlan(
      {{"name", "dp2"}, {"oeBuildPlanURI", Uri(bp)},
       {"customAttributes", json::array{json::object{{"name", "HostName"}, {"value", "no_way"}}}}});
  ASSERT_FALSE(bad_dp.ok());
  EXPECT_NE(bad_dp.status().message().find("HostName"), std::string::npos);

  // Order of removal works.
  EXPECT_TRUE(service_->DeleteDeploymentPlan(Id(dp), false).ok());
  EXPECT_TRUE(service_->DeleteBuildPlan(Id(bp), false).ok());
  EXPECT_TRUE(service_->DeletePlanScript(Id(ps), false).ok());
  EXPECT_TRUE(service_->DeletePlanScript(Id(ro), true).ok());
}

TEST_F(ArtifactServiceTest, BuildPlanChecksScriptTypes) {
  json::object cap = Must(service_->CreatePlanScript(
      {{"name", "cap"}, {"planType", "capture"}, {"content", "echo"}}));
  auto bad = service_->CreateBuildPlan(
      {{"name", "bp"}, {"oeBuildPlanType", "deploy"},
       {"buildStep", json::array{json::object{{"planScriptUri", Uri(cap)}}}}});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  auto missing = service_->CreateBuildPlan(
      {{"name", "bp"}, {"oeBuildPlanType", "deploy"},
       {"buildStep", json::array{json::object{{"planScriptUri", "/rest/plan-scripts/nope"}}}}});
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
}

TEST_F(ArtifactServiceTest, EmptyVolumeDeployAndDeleteRules) {
  json::object bp = Must(service_->CreateBuildPlan(
      {{"name", "empty"}, {"oeBuildPlanType", "deploy"}, {"buildStep", json::array()},
       {"customAttributes",
        json::array{json::object{{"name", "VolumeSize"}, {"type", "number"}, {"value", "8"},
                                 {"constraints", R"({"minimum":1,"maximum":64,"unit":"MiB"})"}}}}}));
  json::object dp = Must(service_->CreateDeploymentPlan({{"name", "dp"}, {"oeBuildPlanURI", Uri(bp)}}));
  // A value outside the constraints: 400 naming it, nothing cloned.
  auto bad = service_->CreateOsVolume(
      {{"name", "v0"}, {"deploymentPlanUri", Uri(dp)},
       {"customAttributes", json::array{json::object{{"name", "VolumeSize"}, {"value", "100"}}}}},
      "tester");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("VolumeSize"), std::string::npos);
  EXPECT_FALSE(store_->Get("v0").ok());

  json::object task = Must(service_->CreateOsVolume(
      {{"name", "v1"}, {"deploymentPlanUri", Uri(dp)}, {"allow", json::array{"127.0.0.1"}}}, "tester"));
  json::object done = WaitTask(task);
  EXPECT_EQ(done.at("taskState").as_string(), "Completed") << json::serialize(done);
  auto info = store_->Get("v1");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->meta.size, 8u << 20);
  EXPECT_TRUE(info->rule.attached);
  // The deployment plan is in use by the volume.
  EXPECT_EQ(service_->DeleteDeploymentPlan(Id(dp), false).code(), Code::kConflict);
  auto users = service_->DeploymentPlanUsedBy(Id(dp));
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 1u);
  // Duplicate name.
  EXPECT_EQ(service_->CreateOsVolume({{"name", "v1"}, {"deploymentPlanUri", Uri(dp)}}, "t").status().code(),
            Code::kAlreadyExists);
  json::object vol = Must(service_->Get(Kind::kOsVolume, std::string(done.at("associatedResource")
                                                                          .as_object()
                                                                          .at("resourceUri")
                                                                          .as_string()
                                                                          .subview()
                                                                          .substr(17))));
  EXPECT_EQ(vol.at("state").as_string(), "Normal");
  EXPECT_TRUE(service_->DeleteOsVolume(Id(vol)).ok());
  EXPECT_FALSE(store_->Get("v1").ok());
  EXPECT_TRUE(service_->DeleteDeploymentPlan(Id(dp), false).ok());
}

// A redeploy makes the volume again: what was written to it is gone, its values and access list
// are kept unless given anew.
TEST_F(ArtifactServiceTest, RedeployMakesTheVolumeAgain) {
  json::object bp = Must(service_->CreateBuildPlan(
      {{"name", "empty"}, {"oeBuildPlanType", "deploy"}, {"buildStep", json::array()},
       {"customAttributes",
        json::array{json::object{{"name", "VolumeSize"}, {"type", "number"}, {"value", "4"}}}}}));
  json::object dp = Must(service_->CreateDeploymentPlan({{"name", "dp"}, {"oeBuildPlanURI", Uri(bp)}}));
  json::object done = WaitTask(Must(service_->CreateOsVolume(
      {{"name", "r1"}, {"deploymentPlanUri", Uri(dp)}, {"allow", json::array{"10.0.0.9"}}}, "t")));
  ASSERT_EQ(done.at("taskState").as_string(), "Completed");
  {
    auto v = store_->OpenVolume("r1");
    ASSERT_TRUE(v.ok());
    std::string bytes(4096, 'w');
    ASSERT_TRUE((*v)->Write(0, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}).ok());
    ASSERT_TRUE((*v)->Flush().ok());
  }
  auto redo = service_->RedeployOsVolume(
      "r1", {{"customAttributes", json::array{json::object{{"name", "VolumeSize"}, {"value", "6"}}}}}, "t");
  ASSERT_TRUE(redo.ok()) << redo.status().ToString();
  EXPECT_EQ(redo->at("name").as_string(), "Redeploy OS volume");
  EXPECT_EQ(WaitTask(*redo).at("taskState").as_string(), "Completed");
  auto info = store_->Get("r1");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->meta.size, 6u << 20);
  EXPECT_TRUE(info->rule.attached);
  EXPECT_EQ(info->rule.allow, std::vector<std::string>{"10.0.0.9"});
  auto v = store_->OpenVolume("r1");
  ASSERT_TRUE(v.ok());
  std::string back(4096, 'x');
  ASSERT_TRUE((*v)->Read(0, {reinterpret_cast<uint8_t*>(back.data()), back.size()}).ok());
  EXPECT_EQ(back, std::string(4096, '\0'));
  auto vols = service_->List(Kind::kOsVolume);
  ASSERT_TRUE(vols.ok());
  ASSERT_EQ(vols->size(), 1u);
  EXPECT_EQ((*vols)[0].at("state").as_string(), "Normal");
  EXPECT_EQ(service_->RedeployOsVolume("nope", {}, "t").status().code(), Code::kNotFound);
}

TEST_F(ArtifactServiceTest, FailedScriptLeavesNoVolumeAndNoPassword) {
  json::object ps = Must(service_->CreatePlanScript(
      {{"name", "broken"}, {"planType", "deploy"},
       {"content", "Not_A_Command @RootPassword@\n"}}));
  json::object bp = Must(service_->CreateBuildPlan(
      {{"name", "bp"}, {"oeBuildPlanType", "deploy"},
       {"buildStep", json::array{json::object{{"planScriptUri", Uri(ps)}}}},
       {"customAttributes",
        json::array{json::object{{"name", "RootPassword"}, {"type", "password"}},
                    json::object{{"name", "VolumeSize"}, {"type", "number"}, {"value", "4"}}}}}));
  json::object dp = Must(service_->CreateDeploymentPlan({{"name", "dp"}, {"oeBuildPlanURI", Uri(bp)}}));
  json::object task = Must(service_->CreateOsVolume(
      {{"name", "v2"}, {"deploymentPlanUri", Uri(dp)},
       {"customAttributes", json::array{json::object{{"name", "RootPassword"}, {"value", "Sup3rSecret"}}}}},
      "tester"));
  json::object done = WaitTask(task);
  EXPECT_EQ(done.at("taskState").as_string(), "Error");
  EXPECT_FALSE(store_->Get("v2").ok()) << "a failed deployment must leave no volume";
  // The password is nowhere: task, volume record, log.
  std::string everything = json::serialize(done);
  auto vols = service_->List(Kind::kOsVolume);
  ASSERT_TRUE(vols.ok());
  for (auto& v : *vols) everything += json::serialize(v);
  auto log_path = service_->DeployLogPath("v2");
  ASSERT_TRUE(log_path.ok());
  FILE* f = fopen(log_path->c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  everything.append(buf, n);
  EXPECT_EQ(everything.find("Sup3rSecret"), std::string::npos) << everything;
  EXPECT_NE(everything.find("broken"), std::string::npos);
}

TEST_F(ArtifactServiceTest, RestartUndoesAnInterruptedDeployment) {
  // A record left "Deploying" with a clone in the store, as a SIGKILL would leave it.
  json::object bp = Must(service_->CreateBuildPlan(
      {{"name", "bp"}, {"oeBuildPlanType", "deploy"}, {"buildStep", json::array()},
       {"customAttributes", json::array{json::object{{"name", "VolumeSize"}, {"type", "number"}, {"value", "4"}}}}}));
  json::object dp = Must(service_->CreateDeploymentPlan({{"name", "dp"}, {"oeBuildPlanURI", Uri(bp)}}));
  json::object task = Must(service_->CreateOsVolume({{"name", "v3"}, {"deploymentPlanUri", Uri(dp)}}, "t"));
  WaitTask(task);
  auto vols = service_->List(Kind::kOsVolume);
  ASSERT_TRUE(vols.ok() && vols->size() == 1);
  json::object v = (*vols)[0];
  v["state"] = "Deploying";
  ASSERT_TRUE(repo_->Put({Kind::kOsVolume, Id(v), v}).ok());
  json::object t = Must(service_->Get(Kind::kTask, Id(task)));
  t["taskState"] = "Running";
  ASSERT_TRUE(repo_->Put({Kind::kTask, Id(t), t}).ok());
  ASSERT_TRUE(store_->Get("v3").ok());

  Open();  // a restart
  EXPECT_EQ(repaired_.deployments_undone, 1);
  EXPECT_FALSE(store_->Get("v3").ok());
  json::object after = Must(service_->Get(Kind::kTask, Id(task)));
  EXPECT_EQ(after.at("taskState").as_string(), "Error");
  json::object va = Must(service_->Get(Kind::kOsVolume, Id(v)));
  EXPECT_EQ(va.at("state").as_string(), "Failed");
  EXPECT_TRUE(service_->DeleteOsVolume(Id(v)).ok());
}

TEST_F(ArtifactServiceTest, UploadedGoldenImageIsCheckedAndHashed) {
  std::string disk(1 << 20, '\0');
  io::StringReader in(disk);
  json::object gi = Must(service_->UploadGoldenImage("zeros", "a raw disk", in));
  EXPECT_EQ(gi.at("size").as_uint64(), 1u << 20);
  EXPECT_EQ(gi.at("format").as_string(), "raw");
  EXPECT_EQ(gi.at("checkSum").as_string().size(), 64u);
  json::object bp = Must(service_->CreateBuildPlan({{"name", "bp"}, {"oeBuildPlanType", "deploy"}}));
  json::object dp = Must(service_->CreateDeploymentPlan(
      {{"name", "dp"}, {"oeBuildPlanURI", Uri(bp)}, {"goldenImageURI", Uri(gi)}}));
  EXPECT_EQ(service_->DeleteGoldenImage(Id(gi), false).code(), Code::kConflict);
  json::object task = Must(service_->CreateOsVolume({{"name", "v4"}, {"deploymentPlanUri", Uri(dp)}}, "t"));
  EXPECT_EQ(WaitTask(task).at("taskState").as_string(), "Completed");
  auto info = store_->Get("v4");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->meta.size, 1u << 20);
  // A restart removes what an interrupted upload left, and keeps the recorded image.
  FILE* orphan = fopen((dir_ + "/deploy/golden/.tmp-orphan").c_str(), "w");
  ASSERT_NE(orphan, nullptr);
  fclose(orphan);
  Open();
  EXPECT_EQ(repaired_.files_removed, 1);
  auto path = service_->GoldenImagePath(Id(gi));
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(access(path->c_str(), R_OK), 0);
}

// Golden images that are not made from a catalog image are registered as catalog images too; the
// twin goes when the golden image does, and a failed registration does not fail the upload.
TEST_F(ArtifactServiceTest, UploadedGoldenImagesBecomeCatalogImages) {
  std::vector<GoldenImageFile> published;
  std::vector<std::string> removed;
  bool fail = false;
  service_->SetCatalogPublisher(
      {.publish = [&](const GoldenImageFile& f) -> Result<std::string> {
         if (fail) return Unavailable("the catalog is down");
         published.push_back(f);
         return std::string("image-") + std::to_string(published.size());
       },
       .remove = [&](const std::string& id) {
         removed.push_back(id);
         return Status::Ok();
       }});
  std::string disk(1 << 20, 'x');
  io::StringReader in(disk);
  json::object gi = Must(service_->UploadGoldenImage("rhel", "", in));
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].golden_id, Id(gi));
  EXPECT_EQ(published[0].name, "rhel");
  EXPECT_EQ(published[0].disk_format, "raw");
  EXPECT_EQ(published[0].size, 1u << 20);
  EXPECT_EQ(access(published[0].path.c_str(), R_OK), 0);
  EXPECT_EQ(gi.at("imageId").as_string(), "image-1");
  EXPECT_EQ(Must(service_->Get(Kind::kGoldenImage, Id(gi))).at("imageId").as_string(), "image-1");

  fail = true;
  io::StringReader in2(disk);
  json::object gi2 = Must(service_->UploadGoldenImage("sles", "", in2));
  EXPECT_FALSE(gi2.contains("imageId"));

  ASSERT_TRUE(service_->DeleteGoldenImage(Id(gi), false).ok());
  ASSERT_TRUE(service_->DeleteGoldenImage(Id(gi2), false).ok());
  EXPECT_EQ(removed, std::vector<std::string>{"image-1"});
}

}  // namespace
}  // namespace ingot::deploy::artifacts
