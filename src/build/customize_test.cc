#include "build/customize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "catalog/sqlite/sqlite_backend.h"
#include "io/memory.h"

namespace ingot::build {
namespace {

namespace json = boost::json;

TEST(SshContainersTest, DefaultIsOneUnjailedContainer) {
  auto c = SshContainersOf(json::object{}, "customize");
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 1u);
  const json::object& o = (*c)[0].as_object();
  EXPECT_EQ(o.at("name").as_string(), "customize");
  EXPECT_FALSE(o.at("jail").as_bool());
  EXPECT_EQ(o.at("status").as_string(), "pending");
  EXPECT_TRUE(o.at("connection_info").as_object().empty());
}

TEST(SshContainersTest, TakesNameAndJail) {
  json::object body{{"ssh_containers", json::array{json::object{{"name", "my-shell"},
                                                                {"jail", true}}}}};
  auto c = SshContainersOf(body, "debug");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0].as_object().at("name").as_string(), "my-shell");
  EXPECT_TRUE((*c)[0].as_object().at("jail").as_bool());
}

TEST(SshContainersTest, RefusesWhatItCannotServe) {
  auto two = SshContainersOf(
      json::object{{"ssh_containers", json::array{json::object{{"name", "a"}},
                                                  json::object{{"name", "b"}}}}},
      "x");
  EXPECT_EQ(two.status().code(), Code::kUnsupported);
  for (json::value bad : {json::value("shell"), json::value(json::array{json::object{{"name", ""}}}),
                          json::value(json::array{json::object{{"name", "a b"}}}),
                          json::value(json::array{json::object{{"name", std::string(41, 'a')}}}),
                          json::value(json::array{json::object{{"name", "a"}, {"jail", "yes"}}})}) {
    EXPECT_EQ(SshContainersOf(json::object{{"ssh_containers", bad}}, "x").status().code(),
              Code::kInvalidArgument)
        << json::serialize(bad);
  }
}

class ArtifactTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/ingot-customize-test-" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto db = catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    ASSERT_TRUE(db.ok());
    auto repo = OpenBuildRepository(catalog::sqlite::MakeBackend(*db));
    ASSERT_TRUE(repo.ok());
    repo_ = std::move(*repo);
    options_.dir = dir_;
    ASSERT_TRUE(repo_->Put(Kind::kImage, kId, {{"id", kId}, {"name", "base"}}).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<json::object> Put(const std::string& name, std::string_view bytes) {
    io::StringReader r(bytes);
    return PutImageArtifact(*repo_, options_, kId, name, r);
  }

  static constexpr const char* kId = "0b7f2a4e-5c1d-4e0a-9f6b-2d3c4b5a6978";
  std::string dir_;
  std::unique_ptr<BuildRepository> repo_;
  BuilderOptions options_;
};

TEST_F(ArtifactTest, StoresAndWritesTheManifest) {
  auto img = Put("rootfs", "hsqs and the rest of a squashfs");
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  img = Put("kernel", "KERNEL");
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->at("checksums").at("kernel").at("md5").as_string(), "35c10219c45ccfb5b07444fd7e17214c");  // md5("KERNEL")
  EXPECT_EQ(img->at("checksums").at("kernel").at("size").to_number<uint64_t>(), 6u);
  std::ifstream in(dir_ + "/artifacts/" + kId + "/manifest.json");
  std::stringstream text;
  text << in.rdbuf();
  json::value manifest = json::parse(text.str());
  const json::array& arts = manifest.at("artifacts").as_array();
  ASSERT_EQ(arts.size(), 2u);
  EXPECT_EQ(arts[0].at("type").as_string(), "application/vnd.cray.image.rootfs.squashfs");
  EXPECT_EQ(arts[1].at("type").as_string(), "application/vnd.cray.image.kernel");
  EXPECT_EQ(arts[1].at("md5").as_string(), img->at("checksums").at("kernel").at("md5").as_string());
  EXPECT_EQ(img->at("link").at("path").as_string(),
            std::string("/apis/ims/v3/images/") + kId + "/artifacts/manifest.json");
  // The stored record is the one returned.
  EXPECT_EQ(repo_->Get(Kind::kImage, kId)->at("link"), img->at("link"));
}

TEST_F(ArtifactTest, RefusesBadUploads) {
  EXPECT_EQ(Put("rootfs", "not a squashfs").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Put("rootfs", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Put("manifest.json", "{}").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Put("../x", "x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Put("kernel-parameters", std::string(70000, 'x')).status().code(), Code::kTooLarge);
  // Nothing half-written is left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/artifacts/" + kId)) {
    ADD_FAILURE() << "left behind: " << e.path();
  }
  io::StringReader r("hsqs");
  EXPECT_EQ(PutImageArtifact(*repo_, options_, "no-such-image", "rootfs", r).status().code(),
            Code::kNotFound);
}

TEST_F(ArtifactTest, AJobsImageIsNotOverwritten) {
  ASSERT_TRUE(repo_->Put(Kind::kImage, kId,
                         {{"id", kId}, {"name", "built"}, {"provenance", {{"job_id", "j"}}}})
                  .ok());
  EXPECT_EQ(Put("rootfs", "hsqs").status().code(), Code::kConflict);
}

TEST_F(ArtifactTest, CustomizeJobNeedsAnImageWithRootfsAndAKey) {
  ASSERT_TRUE(repo_->Put(Kind::kPublicKey, "k", {{"id", "k"}, {"public_key", "ssh-ed25519 AAAA"}})
                  .ok());
  json::object body{{"job_type", "customize"}, {"artifact_id", kId}, {"public_key_id", "k"}};
  EXPECT_EQ(NewCustomizeJob(*repo_, options_, body, "j").status().code(),
            Code::kInvalidArgument);  // no rootfs yet
  ASSERT_TRUE(Put("rootfs", "hsqs").ok());
  auto job = NewCustomizeJob(*repo_, options_, body, "j");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->at("status").as_string(), "creating");
  EXPECT_EQ(job->at("image_root_archive_name").as_string(), "base");
  EXPECT_EQ(job->at("ssh_containers").as_array()[0].at("name").as_string(), "customize");
  body["public_key_id"] = "missing";
  EXPECT_EQ(NewCustomizeJob(*repo_, options_, body, "j").status().code(), Code::kInvalidArgument);
  body.erase("public_key_id");
  EXPECT_EQ(NewCustomizeJob(*repo_, options_, body, "j").status().code(), Code::kInvalidArgument);
  body["public_key_id"] = "k";
  body["artifact_id"] = "k";  // a key, not an image
  EXPECT_EQ(NewCustomizeJob(*repo_, options_, body, "j").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace ingot::build
