#include "config/auth_sections.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace ingot::config {
namespace {

TEST(AuthSectionsTest, GlanceKeysPolicyAndQuotas) {
  Config c;
  Status s = LoadConfigText(R"(
[auth]
mode = "keystone"
[keystone_authtoken]
www_authenticate_uri = "http://k:5000/v3"
auth_url = "http://k:5000"
username = "glance"
password = "pw"
project_name = "service"
token_cache_time = 60
http_connect_timeout = 3
service_token_roles = ["service", "admin"]
[policy]
policy_file = "/etc/ingot/policy.yaml"
[quotas]
image_count_total = 10
image_size_total = -1
[quotas.projects.p1]
image_count_total = 20
)",
                            "test.toml", c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.auth, "keystone");
  EXPECT_EQ(c.auth_sections.keystone.username, "glance");
  EXPECT_EQ(c.auth_sections.keystone.token_cache_time, 60);
  EXPECT_EQ(c.auth_sections.keystone.http_connect_timeout_ms, 3000);
  EXPECT_EQ(c.auth_sections.keystone.service_token_roles.size(), 2u);
  EXPECT_EQ(c.auth_sections.policy.policy_file, "/etc/ingot/policy.yaml");
  EXPECT_EQ(c.auth_sections.quotas.defaults.at("image_count_total"), 10);
  EXPECT_EQ(c.auth_sections.quotas.defaults.at("image_size_total"), -1);
  EXPECT_EQ(c.auth_sections.quotas.projects.at("p1").at("image_count_total"), 20);
}

TEST(AuthSectionsTest, RefusesUnknownKeysAndBadValues) {
  for (const char* text : {"[keystone_authtoken]\nauth_uri = \"x\"\n",
                           "[keystone_authtoken]\nauth_type = \"token\"\n",
                           "[quotas]\nimage_count = 3\n", "[quotas]\nimage_count_total = -2\n",
                           "[quotas.projects.p]\nfoo = 1\n", "[policy]\npolicy = \"x\"\n"}) {
    Config c;
    EXPECT_EQ(LoadConfigText(text, "t", c).code(), Code::kInvalidArgument) << text;
  }
}

}  // namespace
}  // namespace ingot::config
