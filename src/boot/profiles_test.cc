#include "boot/profiles.h"

#include <gtest/gtest.h>

namespace ingot::boot {
namespace {

Machine TheMachine() {
  Machine m;
  m.id = "0b4c3a58-6f0e-4b8e-9f5e-0123456789ab";
  m.mac = "52:54:00:12:34:56";
  m.hostname = "node1";
  m.variables = {{"tty", "ttyS0"}};
  return m;
}

RenderContext Ctx() {
  RenderContext c;
  c.base_url = "http://10.0.2.2:9090";
  c.identity_query = "mac=52:54:00:12:34:56";
  return c;
}

TEST(ProfilesTest, GeneratedIpxeLoadsKernelAndInitrdsFromTheBootRoot) {
  Profile p;
  p.name = "di";
  p.kernel = "debian.iso/install.amd/vmlinuz";
  p.initrds = {"debian.iso/install.amd/initrd.gz"};
  p.args = "console={{.tty}} hostname={{.hostname}} ds=nocloud-net;s={{.nocloud_url}}";
  auto s = RenderIpxe(TheMachine(), p, Ctx());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s,
            "#!ipxe\n# Ingot: profile di for machine 52:54:00:12:34:56\n"
            "kernel http://10.0.2.2:9090/debian.iso/install.amd/vmlinuz initrd=initrd.gz "
            "console=ttyS0 hostname=node1 "
            "ds=nocloud-net;s=http://10.0.2.2:9090/nocloud/0b4c3a58-6f0e-4b8e-9f5e-0123456789ab/\n"
            "initrd http://10.0.2.2:9090/debian.iso/install.amd/initrd.gz\n"
            "boot\n");
  RenderContext signed_ctx = Ctx();
  signed_ctx.signed_assets = true;
  s = RenderIpxe(TheMachine(), p, signed_ctx);
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->find("imgverify vmlinuz http://10.0.2.2:9090/debian.iso/install.amd/vmlinuz.sig\n"),
            std::string::npos);
  EXPECT_NE(s->find("imgverify initrd.gz http://10.0.2.2:9090/debian.iso/install.amd/initrd.gz.sig\n"),
            std::string::npos);
}

TEST(ProfilesTest, OsTreePathsAndDetectedLayout) {
  Profile p;
  p.name = "tree";
  p.os = OsTreeRef{"debian", "12"};
  RenderContext c = Ctx();
  // Not known (yet): a clear error, not a broken script.
  auto s = RenderIpxe(TheMachine(), p, c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("debian/12"), std::string::npos);
  c.os = OsBoot{"install.amd/vmlinuz", {"install.amd/initrd.gz"}, "url={base}preseed.cfg", ""};
  p.args = "console=ttyS0";
  s = RenderIpxe(TheMachine(), p, c);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_NE(s->find("kernel http://10.0.2.2:9090/debian/12/install.amd/vmlinuz initrd=initrd.gz "
                    "url=http://10.0.2.2:9090/debian/12/preseed.cfg console=ttyS0\n"),
            std::string::npos)
      << *s;
  // A kernel of the profile's own is a path inside the tree.
  p.kernel = "linux";
  s = RenderIpxe(TheMachine(), p, c);
  EXPECT_NE(s->find("kernel http://10.0.2.2:9090/debian/12/linux"), std::string::npos);
}

TEST(ProfilesTest, GrubScript) {
  Profile p;
  p.name = "g";
  p.kernel = "http://h:1/vmlinuz";
  p.initrds = {"initrd.gz"};
  p.args = "console=ttyS0 ds=nocloud;s=x";
  auto s = RenderGrub(TheMachine(), p, Ctx());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_NE(s->find("linux (http,h:1)/vmlinuz console=ttyS0 ds=nocloud\\;s=x\n"), std::string::npos)
      << *s;
  EXPECT_NE(s->find("initrd (http,10.0.2.2:9090)/initrd.gz\n"), std::string::npos) << *s;
}

TEST(ProfilesTest, OwnScriptsAndMissingVariables) {
  Profile p;
  p.name = "own";
  p.ipxe = "#!ipxe\nchain {{.base_url}}/x.ipxe?h={{.hostname | urlquery}}\n";
  EXPECT_EQ(*RenderIpxe(TheMachine(), p, Ctx()),
            "#!ipxe\nchain http://10.0.2.2:9090/x.ipxe?h=node1\n");
  p.ipxe = "#!ipxe\necho {{.rack}}\n";
  auto s = RenderIpxe(TheMachine(), p, Ctx());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("{{.rack}}"), std::string::npos);
  // Profile variables fill in; the machine's own win.
  p.variables = {{"rack", "r1"}, {"tty", "tty0"}};
  p.ipxe = "#!ipxe\necho {{.rack}} {{.tty}}\n";
  EXPECT_EQ(*RenderIpxe(TheMachine(), p, Ctx()), "#!ipxe\necho r1 ttyS0\n");
}

TEST(ProfilesTest, PublishedImageIsSanbootedOverHttp) {
  Profile p;
  p.name = "golden";
  p.image = "rhel9-golden";
  ASSERT_TRUE(ValidateProfile(p).ok());
  EXPECT_EQ(*RenderIpxe(TheMachine(), p, Ctx()),
            "#!ipxe\n# Ingot: profile golden for machine 52:54:00:12:34:56\n"
            "sanboot --no-describe http://10.0.2.2:9090/images/rhel9-golden\n");
  EXPECT_FALSE(RenderGrub(TheMachine(), p, Ctx()).ok());
  p.kernel = "k";
  EXPECT_FALSE(ValidateProfile(p).ok());  // one or the other
}

TEST(ProfilesTest, HoldingAndIdentifyScripts) {
  std::string h = HoldingIpxe(TheMachine(), Ctx());
  EXPECT_EQ(h.rfind("#!ipxe\n", 0), 0u);
  EXPECT_NE(h.find("sleep 30\n"), std::string::npos);
  EXPECT_NE(h.find("chain http://10.0.2.2:9090/boot.ipxe?mac=52:54:00:12:34:56\n"),
            std::string::npos);
  std::string i = IdentifyIpxe(Ctx());
  EXPECT_NE(i.find("boot.ipxe?mac=${net0/mac}&uuid=${uuid}"), std::string::npos);
}

TEST(ProfilesTest, CloudInitDocuments) {
  Machine m = TheMachine();
  m.hostname = "a: b";
  EXPECT_EQ(NoCloudMetaData(m),
            "instance-id: \"0b4c3a58-6f0e-4b8e-9f5e-0123456789ab\"\nlocal-hostname: \"a: b\"\n");
  Profile p;
  p.name = "ci";
  p.kernel = "k";
  p.user_data = "#cloud-config\nhostname: {{.hostname | json}}\n";
  EXPECT_EQ(*NoCloudUserData(m, &p, Ctx()), "#cloud-config\nhostname: \"a: b\"\n");
  EXPECT_EQ(*NoCloudVendorData(m, &p, Ctx()), "");
  EXPECT_EQ(*Ec2MetaDataValue(m, "instance-id"), m.id);
  EXPECT_FALSE(Ec2MetaDataValue(m, "nope"));
  EXPECT_NE(OpenStackMetaData(m).find("\"uuid\":\"0b4c3a58"), std::string::npos);
}

}  // namespace
}  // namespace ingot::boot
