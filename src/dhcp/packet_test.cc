#include "dhcp/packet.h"

#include <gtest/gtest.h>

namespace ingot::dhcp {
namespace {

// A DISCOVER as a BIOS PXE ROM sends it.
Packet PxeDiscover(uint16_t arch, std::string vendor = "PXEClient:Arch:00000:UNDI:002001") {
  Packet p;
  p.xid = 0x12345678;
  p.flags = 0x8000;
  p.chaddr = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  p.options[option::kMessageType] = std::string(1, 1);
  p.options[option::kVendorClass] = vendor;
  p.options[option::kClientArch] = std::string{static_cast<char>(arch >> 8), static_cast<char>(arch)};
  std::string guid(17, '\0');
  const uint8_t g[16] = {0xe2, 0xb0, 0x9a, 0x8c, 0x4f, 0x1d, 0x3b, 0x4e,
                         0x9a, 0x1b, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
  for (int i = 0; i < 16; ++i) guid[1 + i] = static_cast<char>(g[i]);
  p.options[option::kClientGuid] = guid;
  return p;
}

TEST(DhcpPacketTest, RoundTrip) {
  Packet p = PxeDiscover(0);
  p.options[option::kHostname] = std::string(300, 'h');  // split over two instances (RFC 3396)
  std::vector<uint8_t> wire = Serialize(p);
  EXPECT_GE(wire.size(), 300u);
  auto back = Parse(wire);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->xid, 0x12345678u);
  EXPECT_EQ(back->flags, 0x8000);
  EXPECT_EQ(back->chaddr, p.chaddr);
  EXPECT_EQ(back->options, p.options);
  EXPECT_EQ(back->type(), MessageType::kDiscover);
}

TEST(DhcpPacketTest, RefusesMalformed) {
  std::vector<uint8_t> wire = Serialize(PxeDiscover(0));
  EXPECT_FALSE(Parse(std::span(wire).first(200)).ok());  // short
  std::vector<uint8_t> no_cookie = wire;
  no_cookie[236] = 0;
  EXPECT_FALSE(Parse(no_cookie).ok());
  std::vector<uint8_t> overrun = wire;
  overrun.resize(240);
  overrun.push_back(option::kHostname);
  overrun.push_back(50);  // says 50 bytes, has none
  EXPECT_FALSE(Parse(overrun).ok());
  std::vector<uint8_t> unterminated(wire.begin(), wire.begin() + 240);
  unterminated.push_back(option::kMessageType);
  unterminated.push_back(1);
  unterminated.push_back(1);
  EXPECT_FALSE(Parse(unterminated).ok());
  std::vector<uint8_t> bad_op = wire;
  bad_op[0] = 9;
  EXPECT_FALSE(Parse(bad_op).ok());
}

TEST(DhcpPacketTest, OverloadedFileFieldHoldsOptions) {
  std::vector<uint8_t> wire = Serialize(PxeDiscover(0));
  // Option 52 = 1 in the main area (before the end), option 60 in the file field.
  wire.resize(240);
  for (uint8_t b : {53, 1, 1, 52, 1, 1, 255}) wire.push_back(b);
  const char vc[] = "PXEClient";
  wire[108] = option::kVendorClass;
  wire[109] = 9;
  std::copy(vc, vc + 9, wire.begin() + 110);
  wire[119] = 255;
  auto p = Parse(wire);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p->Option(option::kVendorClass), "PXEClient");
  EXPECT_TRUE(p->file.empty());
}

TEST(DhcpPacketTest, ClientFacts) {
  auto c = ClientOf(PxeDiscover(7));
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->pxe);
  EXPECT_FALSE(c->http);
  EXPECT_FALSE(c->ipxe);
  EXPECT_EQ(*c->arch, 7);
  EXPECT_EQ(c->mac, "52:54:00:12:34:56");
  EXPECT_EQ(c->guid, "8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab");  // SMBIOS byte order undone
  Packet ipxe = PxeDiscover(0);
  ipxe.options[option::kUserClass] = std::string("\x04iPXE", 5);
  EXPECT_TRUE(ClientOf(ipxe)->ipxe);
  ipxe.options[option::kUserClass] = "iPXE";
  EXPECT_TRUE(ClientOf(ipxe)->ipxe);
  Packet http = PxeDiscover(16, "HTTPClient:Arch:00016:UNDI:003001");
  EXPECT_TRUE(ClientOf(http)->http);
  Packet reply = PxeDiscover(0);
  reply.op = 2;
  EXPECT_FALSE(ClientOf(reply));
}

}  // namespace
}  // namespace ingot::dhcp
