// Property protections as Glance's property_protection_file defines them: file parsing and its
// refusals, role and policy formats, and the create/read/update/delete decisions on image changes.
#include "service/property_protections.h"

#include <gtest/gtest.h>

namespace ingot::service {
namespace {

using Op = PropertyOperation;

auth::RequestContext Caller(std::vector<std::string> roles) {
  auth::RequestContext ctx;
  ctx.project = "p";
  ctx.roles = std::move(roles);
  return ctx;
}

constexpr const char* kRoles = R"(
# Glance's sample, with a billing property only admins touch and a frozen one.
[^x_billing_.*]
create = admin
read = admin,member
update = admin
delete = admin

[^x_frozen$]
create = admin
read = @
update = !
delete =

[^x_.*]
create = admin,member
read = admin,member, Reader
update = admin,member
delete = admin,member

[.*]
create = admin
read = admin
update = admin
delete = admin
)";

TEST(PropertyProtectionsTest, RolesDecidePerOperationFirstMatchWins) {
  auto p = PropertyProtections::Parse(kRoles, PropertyProtections::Format::kRoles, nullptr);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto admin = Caller({"admin", "member", "reader"});
  auto member = Caller({"member", "reader"});
  auto reader = Caller({"reader"});
  EXPECT_TRUE((*p)->Allows("x_billing_code", Op::kCreate, admin));
  EXPECT_FALSE((*p)->Allows("x_billing_code", Op::kCreate, member));
  EXPECT_TRUE((*p)->Allows("x_billing_code", Op::kRead, member));
  EXPECT_FALSE((*p)->Allows("x_billing_code", Op::kRead, reader));
  // [^x_.*] would allow members; the earlier [^x_frozen$] decides.
  EXPECT_FALSE((*p)->Allows("x_frozen", Op::kUpdate, admin));  // '!'
  EXPECT_FALSE((*p)->Allows("x_frozen", Op::kDelete, admin));  // empty: no one
  EXPECT_TRUE((*p)->Allows("x_frozen", Op::kRead, Caller({})));  // '@'
  EXPECT_TRUE((*p)->Allows("x_owner", Op::kUpdate, member));
  EXPECT_TRUE((*p)->Allows("x_owner", Op::kRead, reader));  // role names compare lower-case
  EXPECT_FALSE((*p)->Allows("os_distro", Op::kCreate, member));
  EXPECT_TRUE((*p)->Allows("os_distro", Op::kCreate, admin));
}

TEST(PropertyProtectionsTest, NoMatchingSectionMeansNoOne) {
  auto p = PropertyProtections::Parse("[^a$]\ncreate=@\nread=@\nupdate=@\ndelete=@\n",
                                      PropertyProtections::Format::kRoles, nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p)->Allows("a", Op::kCreate, Caller({})));
  EXPECT_FALSE((*p)->Allows("b", Op::kRead, Caller({"admin"})));
}

TEST(PropertyProtectionsTest, MalformedFilesAreRefused) {
  auto bad = [](std::string_view text) {
    return PropertyProtections::Parse(text, PropertyProtections::Format::kRoles, nullptr)
        .status()
        .code();
  };
  EXPECT_EQ(bad("[x]\ncreate=a\nread=a\nupdate=a\n"), Code::kInvalidArgument);  // no delete
  EXPECT_EQ(bad("[(unclosed]\ncreate=a\nread=a\nupdate=a\ndelete=a\n"), Code::kInvalidArgument);
  EXPECT_EQ(bad("[x]\ncreate=@,!\nread=a\nupdate=a\ndelete=a\n"), Code::kInvalidArgument);
  EXPECT_EQ(bad("create=a\n"), Code::kInvalidArgument);
  EXPECT_EQ(PropertyProtections::Parse("[x]\ncreate=a,b\nread=a\nupdate=a\ndelete=a\n",
                                       PropertyProtections::Format::kPolicies, nullptr)
                .status()
                .code(),
            Code::kInvalidArgument);
  EXPECT_EQ(PropertyProtections::Load("/nonexistent/protections.conf",
                                      PropertyProtections::Format::kRoles, nullptr)
                .status()
                .code(),
            Code::kInvalidArgument);
}

TEST(PropertyProtectionsTest, PoliciesFormatAsksThePolicy) {
  auth::Policy policy = auth::Policy::Defaults();
  // context_is_admin is a default rule ("role:admin").
  auto p = PropertyProtections::Parse(
      "[^secret_]\ncreate = context_is_admin\nread = context_is_admin\nupdate = "
      "context_is_admin\ndelete = !\n[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n",
      PropertyProtections::Format::kPolicies, &policy);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_TRUE((*p)->Allows("secret_key", Op::kRead, Caller({"admin"})));
  EXPECT_FALSE((*p)->Allows("secret_key", Op::kRead, Caller({"member"})));
  EXPECT_FALSE((*p)->Allows("secret_key", Op::kDelete, Caller({"admin"})));
  EXPECT_TRUE((*p)->Allows("anything", Op::kDelete, Caller({})));
}

TEST(PropertyProtectionsTest, ChangesAreCheckedAsGlanceSeesThem) {
  auto p = PropertyProtections::Parse(kRoles, PropertyProtections::Format::kRoles, nullptr);
  ASSERT_TRUE(p.ok());
  auto member = Caller({"member", "reader"});
  catalog::Image before;
  before.properties = {{"x_owner", "a"}, {"x_billing_code", "b"}, {"os_distro", "debian"}};
  // Reads: what a member may not read disappears from its view.
  catalog::Image view = before;
  (*p)->FilterReadable(view, member);
  EXPECT_EQ(view.properties.count("os_distro"), 0u);
  EXPECT_EQ(view.properties.count("x_billing_code"), 1u);
  // Update of an allowed one: fine; of a protected one: Glance's 403 text.
  catalog::Image after = before;
  after.properties["x_owner"] = "changed";
  EXPECT_TRUE((*p)->CheckChange(&before, after, member).ok());
  after = before;
  after.properties["x_billing_code"] = "changed";
  Status s = (*p)->CheckChange(&before, after, member);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_NE(s.message().find("Attribute 'x_billing_code' is reserved."), std::string::npos);
  // Delete of a protected one; create on a new image.
  after = before;
  after.properties.erase("x_billing_code");
  EXPECT_EQ((*p)->CheckChange(&before, after, member).code(), Code::kPermissionDenied);
  catalog::Image fresh;
  fresh.properties = {{"x_mine", "1"}};
  EXPECT_TRUE((*p)->CheckChange(nullptr, fresh, member).ok());
  fresh.properties = {{"os_distro", "1"}};
  EXPECT_EQ((*p)->CheckChange(nullptr, fresh, member).code(), Code::kPermissionDenied);
  // Untouched properties the caller cannot even read are no change of its.
  after = before;
  EXPECT_TRUE((*p)->CheckChange(&before, after, member).ok());
}

}  // namespace
}  // namespace ingot::service
