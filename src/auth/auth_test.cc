#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "auth/authenticator.h"
#include "auth/policy.h"

namespace ingot::auth {
namespace {

RequestContext Ctx(Role role, std::string project) {
  RequestContext c;
  c.role = role;
  c.project = std::move(project);
  return c;
}

TEST(PolicyTest, ReadersReadMembersWriteTheirOwnAdminsEverything) {
  catalog::Image mine;
  mine.owner = "p1";
  auto reader = Ctx(Role::kReader, "p1");
  auto member = Ctx(Role::kMember, "p1");
  auto other = Ctx(Role::kMember, "p2");
  auto admin = Ctx(Role::kAdmin, "p9");

  EXPECT_TRUE(Authorize(Action::kGetImage, reader, &mine).ok());
  EXPECT_TRUE(Authorize(Action::kDownloadImage, reader, &mine).ok());
  EXPECT_EQ(Authorize(Action::kUpdateImage, reader, &mine).code(), Code::kPermissionDenied);
  EXPECT_EQ(Authorize(Action::kCreateImage, reader).code(), Code::kPermissionDenied);

  EXPECT_TRUE(Authorize(Action::kCreateImage, member).ok());
  EXPECT_TRUE(Authorize(Action::kUploadImage, member, &mine).ok());
  EXPECT_TRUE(Authorize(Action::kDeleteImage, member, &mine).ok());
  EXPECT_EQ(Authorize(Action::kDeleteImage, other, &mine).code(), Code::kPermissionDenied);
  EXPECT_EQ(Authorize(Action::kDeactivateImage, member, &mine).code(), Code::kPermissionDenied);
  EXPECT_EQ(Authorize(Action::kPublicizeImage, member, &mine).message(),
            "You are not authorized to complete publicize_image action.");

  EXPECT_TRUE(Authorize(Action::kDeleteImage, admin, &mine).ok());
  EXPECT_TRUE(Authorize(Action::kDeactivateImage, admin, &mine).ok());
}

TEST(TokenFileTest, LoadsTokensAndRejectsUnknown) {
  std::string path = "/tmp/ingot-tokens-test.toml";
  std::ofstream(path) << "[[token]]\ntoken = \"t1\"\nuser = \"alice\"\nproject = \"pa\"\n"
                         "roles = [\"reader\", \"member\"]\n";
  auto auth = MakeTokenFileAuth(path);
  ASSERT_TRUE(auth.ok()) << auth.status().ToString();
  http::Headers h;
  EXPECT_EQ((*auth)->Authenticate(h).status().code(), Code::kUnauthenticated);
  h.Set("x-auth-token", "t1");
  auto ctx = (*auth)->Authenticate(h);
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(*ctx->project, "pa");
  EXPECT_EQ(ctx->role, Role::kMember);
  h.Set("X-Auth-Token", "nope");
  EXPECT_EQ((*auth)->Authenticate(h).status().code(), Code::kUnauthenticated);

  std::ofstream(path) << "[[token]]\ntoken = \"t1\"\nproject = \"pa\"\nroles = [\"root\"]\n";
  EXPECT_EQ(MakeTokenFileAuth(path).status().code(), Code::kInvalidArgument);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ingot::auth
