#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "auth/authenticator.h"
#include "auth/policy.h"

namespace ingot::auth {
namespace {

RequestContext Ctx(std::string role, std::string project) {
  RequestContext c;
  c.authenticated = true;
  c.roles = {std::move(role)};
  AddImpliedRoles(c.roles);
  c.project = std::move(project);
  return c;
}

TEST(PolicyTest, ReadersReadMembersWriteTheirOwnAdminsEverything) {
  const Policy policy = Policy::Defaults();
  catalog::Image mine;
  mine.owner = "p1";
  const Target on_mine{.image = &mine};
  auto reader = Ctx("reader", "p1");
  auto member = Ctx("member", "p1");
  auto other = Ctx("member", "p2");
  auto admin = Ctx("admin", "p9");

  EXPECT_TRUE(policy.Authorize("get_image", reader, on_mine).ok());
  // Glance's secure defaults: downloading takes the member role, even of one's own image.
  EXPECT_FALSE(policy.Authorize("download_image", reader, on_mine).ok());
  EXPECT_TRUE(policy.Authorize("download_image", member, on_mine).ok());
  EXPECT_EQ(policy.Authorize("modify_image", reader, on_mine).code(), Code::kPermissionDenied);
  EXPECT_EQ(policy.Authorize("add_image", reader).code(), Code::kPermissionDenied);

  EXPECT_TRUE(policy.Authorize("add_image", member).ok());
  EXPECT_TRUE(policy.Authorize("upload_image", member, on_mine).ok());
  EXPECT_TRUE(policy.Authorize("delete_image", member, on_mine).ok());
  EXPECT_EQ(policy.Authorize("delete_image", other, on_mine).code(), Code::kPermissionDenied);
  // Glance 2023.x: the owner's members deactivate and reactivate their images.
  EXPECT_TRUE(policy.Authorize("deactivate", member, on_mine).ok());
  EXPECT_EQ(policy.Authorize("deactivate", other, on_mine).code(), Code::kPermissionDenied);
  EXPECT_EQ(policy.Authorize("publicize_image", member, on_mine).message(),
            "You are not authorized to complete publicize_image action.");

  EXPECT_TRUE(policy.Authorize("delete_image", admin, on_mine).ok());
  EXPECT_TRUE(policy.Authorize("deactivate", admin, on_mine).ok());
  EXPECT_TRUE(policy.Authorize("stores_info_detail", admin).ok());
  EXPECT_FALSE(policy.Authorize("stores_info_detail", member).ok());
}

TEST(PolicyTest, MembershipRules) {
  const Policy policy = Policy::Defaults();
  catalog::Image shared;
  shared.owner = "owner";
  auto owner = Ctx("member", "owner");
  auto p2 = Ctx("member", "p2");
  auto p2_reader = Ctx("reader", "p2");
  auto p3 = Ctx("member", "p3");
  Target p2_membership{.image = &shared, .member = "p2"};
  // The owner and the member itself see a membership; a third project does not.
  EXPECT_TRUE(policy.Authorize("get_member", owner, p2_membership).ok());
  EXPECT_TRUE(policy.Authorize("get_member", p2, p2_membership).ok());
  EXPECT_FALSE(policy.Authorize("get_member", p3, p2_membership).ok());
  // Only the member project (with a writing role) accepts or rejects, not even the owner.
  EXPECT_TRUE(policy.Authorize("modify_member", p2, p2_membership).ok());
  EXPECT_FALSE(policy.Authorize("modify_member", p2_reader, p2_membership).ok());
  EXPECT_FALSE(policy.Authorize("modify_member", owner, p2_membership).ok());
  EXPECT_TRUE(policy.Authorize("add_member", owner, p2_membership).ok());
  EXPECT_FALSE(policy.Authorize("add_member", p2, p2_membership).ok());
}

// Glance 2024.1's location rules: add_image_location is rule:service_api or the owner's members;
// fetch_image_location is rule:service_api only, so an admin without the service role is refused.
TEST(PolicyTest, LocationRulesFollowGlance) {
  const Policy policy = Policy::Defaults();
  catalog::Image mine;
  mine.owner = "p1";
  const Target on_mine{.image = &mine};
  auto service = Ctx("service", "services");
  EXPECT_TRUE(policy.Authorize("add_image_location", Ctx("member", "p1"), on_mine).ok());
  EXPECT_TRUE(policy.Authorize("add_image_location", Ctx("admin", "p1"), on_mine).ok());
  EXPECT_TRUE(policy.Authorize("add_image_location", service, on_mine).ok());
  EXPECT_FALSE(policy.Authorize("add_image_location", Ctx("reader", "p1"), on_mine).ok());
  EXPECT_FALSE(policy.Authorize("add_image_location", Ctx("member", "p2"), on_mine).ok());
  EXPECT_FALSE(policy.Authorize("add_image_location", Ctx("admin", "p9"), on_mine).ok());
  EXPECT_TRUE(policy.Authorize("fetch_image_location", service, on_mine).ok());
  EXPECT_FALSE(policy.Authorize("fetch_image_location", Ctx("admin", "p1"), on_mine).ok());
  EXPECT_FALSE(policy.Authorize("fetch_image_location", Ctx("member", "p1"), on_mine).ok());
  // "service" implies nothing else.
  EXPECT_FALSE(policy.Authorize("get_images", service).ok());
}

TEST(PolicyTest, AMissingRuleIsRefusedEvenForAdmins) {
  const Policy policy = Policy::Defaults();
  auto admin = Ctx("admin", "p1");
  EXPECT_FALSE(policy.Has("frobnicate_image"));
  Status s = policy.Authorize("frobnicate_image", admin);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(), "You are not authorized to complete frobnicate_image action.");
}

TEST(PolicyTest, ImpliedRoles) {
  std::vector<std::string> roles = {"admin"};
  AddImpliedRoles(roles);
  EXPECT_EQ(roles, (std::vector<std::string>{"admin", "member", "reader"}));
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
  EXPECT_TRUE(ctx->HasRole("member"));
  EXPECT_FALSE(ctx->is_admin());
  h.Set("X-Auth-Token", "nope");
  EXPECT_EQ((*auth)->Authenticate(h).status().code(), Code::kUnauthenticated);

  std::ofstream(path) << "[[token]]\ntoken = \"t1\"\nproject = \"pa\"\nroles = [\"root\"]\n";
  EXPECT_EQ(MakeTokenFileAuth(path).status().code(), Code::kInvalidArgument);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ingot::auth
