#include "config/config.h"

#include <gtest/gtest.h>

namespace ingot::config {
namespace {

TEST(ConfigTest, DefaultsToOneFileStoreUnderTheDataDir) {
  Config c;
  c.data_dir = "/srv/ingot";
  auto stores = c.Stores();
  ASSERT_EQ(stores.size(), 1u);
  EXPECT_EQ(stores[0].id, "file");
  EXPECT_EQ(stores[0].driver, "file");
  EXPECT_EQ(stores[0].options.at("path"), "/srv/ingot/images");
}

TEST(ConfigTest, ReadsSeveralStores) {
  Config c;
  Status s = LoadConfigText(R"(
[[stores]]
name = "fast"
driver = "file"
path = "/nvme/images"
writeback_chunk_mib = 16

[[stores]]
name = "bulk"
driver = "file"
description = "spinning disks"
default = true
read_only = false
weight = 10
path = "/hdd/images"
)",
                            "test.toml", c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(c.Stores().size(), 2u);
  EXPECT_EQ(c.stores[0].options.at("writeback_chunk_mib"), "16");
  EXPECT_TRUE(c.stores[1].is_default);
  EXPECT_EQ(c.stores[1].weight, 10);
  EXPECT_EQ(c.stores[1].description, "spinning disks");
}

TEST(ConfigTest, CatalogKeys) {
  Config c;
  EXPECT_EQ(c.catalog.driver, "sqlite");  // the embedded default
  ASSERT_TRUE(LoadConfigText("[catalog]\ndriver = \"postgres\"\n"
                             "dsn = \"postgresql://ingot@db/ingot\"\npool_size = 4\n"
                             "sslmode = \"verify-full\"\nsslrootcert = \"/etc/ca.pem\"\n",
                             "t", c)
                  .ok());
  EXPECT_EQ(c.catalog.driver, "postgres");
  EXPECT_EQ(c.catalog.dsn, "postgresql://ingot@db/ingot");
  EXPECT_EQ(c.catalog.pool_size, 4);
  EXPECT_EQ(c.catalog.sslmode, "verify-full");
  EXPECT_EQ(c.catalog.sslrootcert, "/etc/ca.pem");
  Config d;
  Status bad = LoadConfigText("[catalog]\ndriver = \"postgres\"\n", "t", d);
  EXPECT_NE(bad.message().find("catalog.dsn"), std::string::npos) << bad.ToString();
  bad = LoadConfigText("[catalog]\ndriver = \"mysql\"\n", "t", d);
  EXPECT_NE(bad.message().find("catalog.driver"), std::string::npos) << bad.ToString();
  bad = LoadConfigText("[catalog]\ndriver = \"postgres\"\ndsn = \"x\"\nsslmode = \"on\"\n", "t", d);
  EXPECT_NE(bad.message().find("catalog.sslmode"), std::string::npos) << bad.ToString();
  bad = LoadConfigText("[catalog]\npassword = \"x\"\n", "t", d);
  EXPECT_NE(bad.message().find("catalog.password"), std::string::npos) << bad.ToString();
}

TEST(ConfigTest, ScrubberKeys) {
  Config c;
  EXPECT_FALSE(c.scrubber.enabled);  // off unless asked for
  Status s = LoadConfigText(R"(
[scrubber]
enabled = true
interval_s = 600
grace_s = 7200
rehash_mib = 0
lease_s = 30
)",
                            "test.toml", c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(c.scrubber.enabled);
  EXPECT_EQ(c.scrubber.interval_s, 600);
  EXPECT_EQ(c.scrubber.grace_s, 7200);
  EXPECT_EQ(c.scrubber.rehash_mib, 0);
  EXPECT_EQ(c.scrubber.lease_s, 30);
  Config bad;
  s = LoadConfigText("[scrubber]\ninterval_s = 0\n", "test.toml", bad);
  EXPECT_NE(s.message().find("scrubber.interval_s"), std::string::npos) << s.ToString();
  s = LoadConfigText("[scrubber]\ngrace = 5\n", "test.toml", bad);
  EXPECT_NE(s.message().find("scrubber.grace"), std::string::npos) << s.ToString();
}

TEST(ConfigTest, BootListenerKeys) {
  Config c;
  EXPECT_EQ(c.boot_listen, "127.0.0.1:9090");
  EXPECT_EQ(c.boot_root, "");
  ASSERT_TRUE(LoadConfigText("[boot]\nlisten = \"10.0.0.1:8080\"\nroot = \"/srv/boot\"\n", "t", c).ok());
  EXPECT_EQ(c.boot_listen, "10.0.0.1:8080");
  EXPECT_EQ(c.boot_root, "/srv/boot");
  ASSERT_TRUE(LoadConfigText("[boot]\nlisten = \"\"\n", "t", c).ok());  // off
  EXPECT_EQ(c.boot_listen, "");
  Status bad = LoadConfigText("[boot]\nlisten = \"nowhere\"\n", "t", c);
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("boot.listen"), std::string::npos);
  bad = LoadConfigText("[boot]\ntftp = 1\n", "t", c);
  EXPECT_NE(bad.message().find("boot.tftp"), std::string::npos);
}

TEST(ConfigTest, AllowedNetworksAndLocationKeys) {
  Config c;
  EXPECT_TRUE(c.allowed_networks.empty());
  EXPECT_FALSE(c.show_multiple_locations);  // Glance's default
  EXPECT_FALSE(c.show_image_direct_url);
  Status s = LoadConfigText(R"(
[import_filtering_opts]
allowed_networks = ["127.0.0.0/8", "fd00::/8"]

[images]
show_multiple_locations = true
show_image_direct_url = true
)",
                            "test.toml", c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.allowed_networks, (std::vector<std::string>{"127.0.0.0/8", "fd00::/8"}));
  EXPECT_TRUE(c.show_multiple_locations);
  EXPECT_TRUE(c.show_image_direct_url);

  Config bad;
  s = LoadConfigText("[import_filtering_opts]\nallowed_networks = [\"127.0.0.1/8\"]\n",
                     "test.toml", bad);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("import_filtering_opts.allowed_networks"), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.message().find("host bits"), std::string::npos) << s.ToString();
  s = LoadConfigText("[import_filtering_opts]\nallowed_networks = [\"localhost\"]\n",
                     "test.toml", bad);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
}

TEST(ConfigTest, DeployIscsiKeys) {
  Config c;
  EXPECT_TRUE(c.iscsi_listen.empty());  // off unless asked for
  EXPECT_EQ(c.iscsi_iqn, "iqn.2026-12.io.ingot");
  Status s = LoadConfigText("[deploy]\niscsi_listen = \"127.0.0.1:3260\"\n"
                            "iscsi_iqn = \"iqn.2001-04.com.example:deploy\"\n",
                            "t.toml", c);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.iscsi_listen, "127.0.0.1:3260");
  EXPECT_EQ(c.iscsi_iqn, "iqn.2001-04.com.example:deploy");
  for (const char* bad : {"iscsi_listen = \"nowhere\"", "iscsi_iqn = \"example.com\"",
                          "iscsi_iqn = \"iqn.2001-04.com.example:\"",
                          "iscsi_iqn = \"iqn.2001-04.com example\""}) {
    Config d;
    EXPECT_FALSE(LoadConfigText(std::string("[deploy]\n") + bad + "\n", "t.toml", d).ok()) << bad;
  }
}

TEST(ConfigTest, RefusesWhatItDoesNotKnowNamingIt) {
  Config c;
  Status s = LoadConfigText("[images]\nsize_kap = 3\n", "a.toml", c);
  EXPECT_NE(s.message().find("images.size_kap"), std::string::npos);
  s = LoadConfigText("[[stores]]\ndriver = \"file\"\n", "b.toml", c);
  EXPECT_NE(s.message().find("missing 'name'"), std::string::npos);
  s = LoadConfigText("[[stores]]\nname = \"x\"\ndriver = \"file\"\npath = [1]\n", "c.toml", c);
  EXPECT_NE(s.message().find("stores[0].path"), std::string::npos);
  s = LoadConfigText("[server\n", "d.toml", c);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("d.toml"), std::string::npos);
}

TEST(ConfigTest, MetadefsCacheAndPropertyProtections) {
  Config c;
  EXPECT_TRUE(c.image_extras.metadefs.load);
  EXPECT_TRUE(c.image_extras.cache.enabled);
  ASSERT_TRUE(LoadConfigText("[metadefs]\nload = false\ndefinitions_dir = \"/etc/defs\"\n"
                             "[cache]\nmax_size = 1000\ncache_local_stores = true\n"
                             "prefetch_delay_ms = 0\nsweep_interval_ms = 2500\n"
                             "[images]\nproperty_protection_file = \"/etc/p.conf\"\n"
                             "property_protection_rule_format = \"policies\"\ntag_quota = 5\n",
                             "x.toml", c)
                  .ok());
  EXPECT_FALSE(c.image_extras.metadefs.load);
  EXPECT_EQ(c.image_extras.metadefs.definitions_dir, "/etc/defs");
  EXPECT_EQ(c.image_extras.cache.max_size, 1000u);
  EXPECT_TRUE(c.image_extras.cache.cache_local_stores);
  EXPECT_EQ(c.image_extras.cache.prefetch_delay_ms, 0);
  EXPECT_EQ(c.image_extras.cache.sweep_interval_ms, 2500);
  EXPECT_EQ(c.image_extras.protections.property_protection_file, "/etc/p.conf");
  EXPECT_EQ(c.image_extras.protections.property_protection_rule_format, "policies");
  EXPECT_EQ(c.tag_quota, 5);
  Config d;
  EXPECT_FALSE(
      LoadConfigText("[images]\nproperty_protection_rule_format = \"regex\"\n", "y.toml", d).ok());
  EXPECT_FALSE(LoadConfigText("[cache]\nsize = 1\n", "z.toml", d).ok());
  EXPECT_FALSE(LoadConfigText("[cache]\nmax_size = -1\n", "w.toml", d).ok());
}

}  // namespace
}  // namespace ingot::config
