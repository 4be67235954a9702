#include "dhcp/proxy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ingot::dhcp {
namespace {

ProxyOptions Options() {
  ProxyOptions o;
  o.server = {192, 0, 2, 1};
  o.http_base = "http://192.0.2.1:9090";
  return o;
}

Packet Request(MessageType type, uint16_t arch, std::string vendor = "PXEClient") {
  Packet p;
  p.xid = 42;
  p.chaddr = {0x52, 0x54, 0x00, 0, 0, 1};
  p.options[option::kMessageType] = std::string(1, static_cast<char>(type));
  if (!vendor.empty()) p.options[option::kVendorClass] = vendor + ":Arch:00000:UNDI:002001";
  p.options[option::kClientArch] = std::string{static_cast<char>(arch >> 8), static_cast<char>(arch)};
  return p;
}

TEST(ProxyAnswerTest, ArchitecturesGetTheirFirstStage) {
  struct Case {
    uint16_t arch;
    const char* file;
  } cases[] = {{0, "undionly.kpxe"}, {7, "ipxe.efi"}, {9, "ipxe.efi"}, {11, "ipxe-arm64.efi"}};
  for (const Case& c : cases) {
    auto a = Answer(Request(MessageType::kDiscover, c.arch), Options(), false, nullptr);
    ASSERT_TRUE(a) << c.arch;
    const Packet& r = a->reply;
    EXPECT_EQ(r.type(), MessageType::kOffer);
    EXPECT_EQ(r.file, c.file);
    EXPECT_EQ(r.siaddr, (std::array<uint8_t, 4>{192, 0, 2, 1}));
    EXPECT_EQ(r.yiaddr, (std::array<uint8_t, 4>{}));  // no address: a proxy
    EXPECT_EQ(r.xid, 42u);
    EXPECT_EQ(*r.Option(option::kVendorClass), "PXEClient");
    EXPECT_EQ(*r.Option(option::kServerId), std::string("\xc0\x00\x02\x01", 4));
    EXPECT_EQ(*r.Option(option::kVendorSpecific), std::string("\x06\x01\x08\xff", 4));
    EXPECT_EQ(*r.Option(option::kTftpServer), "192.0.2.1");
  }
  std::string why;
  EXPECT_FALSE(Answer(Request(MessageType::kDiscover, 6), Options(), false, &why));  // EFI IA32
  EXPECT_NE(why.find("architecture 6"), std::string::npos);
}

TEST(ProxyAnswerTest, IpxeAndHttpBootGetHttpUrls) {
  Packet ipxe = Request(MessageType::kDiscover, 0);
  ipxe.options[option::kUserClass] = "iPXE";
  auto a = Answer(ipxe, Options(), false, nullptr);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reply.file, "http://192.0.2.1:9090/boot.ipxe");
  EXPECT_EQ(a->reply.siaddr, (std::array<uint8_t, 4>{}));
  EXPECT_EQ(a->reply.Option(option::kVendorSpecific), nullptr);

  auto h = Answer(Request(MessageType::kDiscover, 16, "HTTPClient"), Options(), false, nullptr);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->reply.file, "http://192.0.2.1:9090/ipxe.efi");
  EXPECT_EQ(*h->reply.Option(option::kVendorClass), "HTTPClient");
  auto h64 = Answer(Request(MessageType::kDiscover, 19, "HTTPClient"), Options(), false, nullptr);
  ASSERT_TRUE(h64);
  EXPECT_EQ(h64->reply.file, "http://192.0.2.1:9090/ipxe-arm64.efi");
}

TEST(ProxyAnswerTest, LeavesEveryoneElseToTheSiteDhcpServer) {
  std::string why;
  EXPECT_FALSE(Answer(Request(MessageType::kDiscover, 0, ""), Options(), false, &why));
  EXPECT_NE(why.find("option 60"), std::string::npos);
  // A REQUEST on port 67 for another server's offer is not ours; one naming us is ACKed.
  Packet req = Request(MessageType::kRequest, 0);
  req.options[option::kServerId] = std::string("\x0a\x00\x00\x01", 4);
  EXPECT_FALSE(Answer(req, Options(), false, &why));
  req.options[option::kServerId] = std::string("\xc0\x00\x02\x01", 4);
  auto ack = Answer(req, Options(), false, nullptr);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->reply.type(), MessageType::kAck);
  // Port 4011: the PXE boot server ACKs a REQUEST; a DISCOVER there is not answered.
  EXPECT_TRUE(Answer(Request(MessageType::kRequest, 0), Options(), true, nullptr));
  EXPECT_FALSE(Answer(Request(MessageType::kDiscover, 0), Options(), true, nullptr));
  EXPECT_FALSE(Answer(Request(MessageType::kRelease, 0), Options(), false, nullptr));
}

TEST(ProxyServerTest, AnswersOverUdpOnLoopback) {
  // The boot server port (4011-style) answers the sender: testable without broadcast.
  ServerOptions so;
  so.listen = "127.0.0.1";
  so.port = 0;  // not used below; bind a free one by asking the kernel first
  int probe = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&sa), &len);
  uint16_t pxe_port = ntohs(sa.sin_port);
  ::close(probe);
  so.port = static_cast<uint16_t>(pxe_port == 65000 ? 65001 : 65000);
  so.pxe_port = pxe_port;
  so.proxy = Options();
  int seen = 0;
  ProxyDhcpServer server(so, [&](const Answered&, const std::string&) { ++seen; });
  Status s = server.Start();
  if (!s.ok()) GTEST_SKIP() << "cannot bind: " << s.ToString();
  int c = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{5, 0};
  ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::vector<uint8_t> wire = Serialize(Request(MessageType::kRequest, 7));
  sa.sin_port = htons(pxe_port);
  ASSERT_GT(::sendto(c, wire.data(), wire.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  uint8_t buf[1500];
  ssize_t n = ::recv(c, buf, sizeof(buf), 0);
  ::close(c);
  server.Stop();
  ASSERT_GT(n, 0);
  auto reply = Parse(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->type(), MessageType::kAck);
  EXPECT_EQ(reply->file, "ipxe.efi");
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace ingot::dhcp
