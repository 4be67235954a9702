// The TFTP server in process on 127.0.0.1:0, driven by a small UDP client that can misbehave (drop
// ACKs, repeat them, answer from another port), and by real clients: curl and tftp-hpa's tftp.
#include "tftp/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tftp/netascii.h"
#include "tftp/packet.h"

namespace ingot::tftp {
namespace {

namespace fs = std::filesystem;
using Opts = std::vector<std::pair<std::string, std::string>>;

struct Datagram {
  std::vector<uint8_t> bytes;
  uint16_t from_port = 0;
};

// A UDP client on 127.0.0.1 that speaks raw packets.
class Client {
 public:
  Client() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~Client() { close(fd_); }

  void SendTo(uint16_t port, const std::vector<uint8_t>& d) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    ASSERT_EQ(sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a),
              static_cast<ssize_t>(d.size()));
  }
  void Request(uint16_t port, Opcode op, const std::string& file, const std::string& mode = "octet",
               const Opts& opts = {}) {
    std::vector<uint8_t> d;
    EncodeRequest(op, file, mode, opts, d);
    SendTo(port, d);
  }
  void Ack(uint16_t port, uint16_t block) {
    std::vector<uint8_t> d;
    EncodeAck(block, d);
    SendTo(port, d);
  }
  std::optional<Datagram> Receive(int timeout_ms = 3000) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
    Datagram d;
    d.bytes.resize(70000);
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n =
        recvfrom(fd_, d.bytes.data(), d.bytes.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return std::nullopt;
    d.bytes.resize(n);
    d.from_port = ntohs(from.sin_port);
    return d;
  }

 private:
  int fd_ = -1;
};

// The error code of a datagram that must be an ERROR.
int ErrorCodeOf(const std::optional<Datagram>& d) {
  if (!d) return -1;
  auto p = ParsePacket(d->bytes);
  if (!p.ok() || p->opcode != Opcode::kError) return -2;
  return p->error.code;
}

class TftpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("ingot-tftp-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "sub");
    auto src = DirectorySource::Create(root_.string());
    ASSERT_TRUE(src.ok());
    files_ = std::move(*src);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(root_);
    fs::remove_all(root_.string() + "-outside");
  }
  void StartServer(ServerOptions o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    server_ = std::make_unique<Server>(o, *files_);
    ASSERT_TRUE(server_->Start().ok());
  }
  uint16_t port() const { return server_->port(); }
  // The server counts a transfer once it has read the final ACK, a moment after the client sent it.
  static bool Eventually(const std::function<bool()>& done) {
    for (int i = 0; i < 300; ++i) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }
  std::vector<uint8_t> WriteFile(const std::string& name, size_t size, uint32_t seed = 1) {
    std::vector<uint8_t> data(size);
    std::mt19937 rng(seed);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    std::ofstream(root_ / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()), data.size());
    return data;
  }
  void WriteText(const std::string& name, const std::string& text) {
    std::ofstream(root_ / name, std::ios::binary) << text;
  }

  struct Download {
    std::vector<uint8_t> data;
    Opts oack;
    int error = 0;  // the ERROR code received, 0 if none
    uint64_t data_packets = 0;
    uint16_t server_port = 0;
  };
  // A well-behaved client (RFC 7440 receiver when a windowsize is negotiated).
  // `drop_percent` of the DATA packets are ignored as if lost and of the ACKs not sent (never the
  // final ACK: a client that lost it would just go away).
  Download Fetch(const std::string& file, const Opts& opts = {}, const std::string& mode = "octet",
                 int drop_percent = 0) {
    Client c;
    Download r;
    std::mt19937 rng(42);
    auto drop = [&] { return drop_percent > 0 && static_cast<int>(rng() % 100) < drop_percent; };
    c.Request(port(), Opcode::kRrq, file, mode, opts);
    uint32_t blksize = 512, window = 1;
    uint64_t expected = 1;  // absolute block number
    uint32_t in_window = 0;
    while (true) {
      auto d = c.Receive();
      if (!d) {
        ADD_FAILURE() << "timed out at block " << expected;
        return r;
      }
      auto p = ParsePacket(d->bytes);
      if (!p.ok()) {
        ADD_FAILURE() << "bad packet";
        return r;
      }
      r.server_port = d->from_port;
      if (p->opcode == Opcode::kError) {
        r.error = p->error.code;
        return r;
      }
      if (p->opcode == Opcode::kOack) {
        for (auto& o : p->oack) {
          r.oack.emplace_back(std::string(o.name), std::string(o.value));
          if (o.name == "blksize") blksize = std::stoul(std::string(o.value));
          if (o.name == "windowsize") window = std::stoul(std::string(o.value));
        }
        c.Ack(d->from_port, 0);
        continue;
      }
      EXPECT_EQ(p->opcode, Opcode::kData);
      ++r.data_packets;
      if (drop()) continue;
      if (p->data.block != static_cast<uint16_t>(expected)) {
        c.Ack(d->from_port, static_cast<uint16_t>(expected - 1));  // out of order: ACK what we have
        in_window = 0;
        continue;
      }
      r.data.insert(r.data.end(), p->data.payload.begin(), p->data.payload.end());
      const bool last = p->data.payload.size() < blksize;
      ++in_window;
      if (last || in_window == window) {
        if (last || !drop()) c.Ack(d->from_port, static_cast<uint16_t>(expected));
        in_window = 0;
      }
      ++expected;
      if (last) return r;
    }
  }

  fs::path root_;
  std::unique_ptr<DirectorySource> files_;
  std::unique_ptr<Server> server_;
};

TEST_F(TftpServerTest, OctetWithoutOptions) {
  StartServer();
  auto data = WriteFile("a.bin", 1000);
  auto r = Fetch("a.bin");
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(r.oack.empty());
  EXPECT_EQ(r.data, data);
  EXPECT_EQ(r.data_packets, 2u);
  EXPECT_NE(r.server_port, port());  // every transfer has its own TID
  // A multiple of the block size ends with an empty block; an empty file is one empty block.
  auto exact = WriteFile("b.bin", 1024);
  r = Fetch("b.bin");
  EXPECT_EQ(r.data, exact);
  EXPECT_EQ(r.data_packets, 3u);
  WriteFile("empty", 0);
  r = Fetch("empty");
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(r.data.empty());
  EXPECT_EQ(r.data_packets, 1u);
}

TEST_F(TftpServerTest, NegotiatesBlksizeAndTsize) {
  StartServer();
  auto data = WriteFile("k", 100000);
  auto r = Fetch("/k", {{"tsize", "0"}, {"blksize", "1428"}, {"foo", "bar"}});
  EXPECT_EQ(r.data, data);
  Opts want = {{"tsize", "100000"}, {"blksize", "1428"}};
  EXPECT_EQ(r.oack, want);
  EXPECT_EQ(r.data_packets, 100000 / 1428 + 1);
  // Above the configured maximum: lowered to it.
  r = Fetch("k", {{"blksize", "9000"}});
  EXPECT_EQ(r.data, data);
  EXPECT_EQ(r.oack, (Opts{{"blksize", "1468"}}));
  // timeout is answered as asked.
  r = Fetch("k", {{"timeout", "2"}});
  EXPECT_EQ(r.oack, (Opts{{"timeout", "2"}}));
  EXPECT_EQ(r.data, data);
}

TEST_F(TftpServerTest, HonoursLargeBlksizeWhenConfigured) {
  ServerOptions o;
  o.max_blksize = 65464;
  StartServer(o);
  auto data = WriteFile("big", 300000);
  auto r = Fetch("big", {{"blksize", "65464"}});
  EXPECT_EQ(r.oack, (Opts{{"blksize", "65464"}}));
  EXPECT_EQ(r.data, data);
  EXPECT_EQ(r.data_packets, 5u);
}

TEST_F(TftpServerTest, RefusesBadOptionWithError8) {
  StartServer();
  WriteFile("k", 10);
  EXPECT_EQ(Fetch("k", {{"blksize", "4"}}).error, 8);
  EXPECT_EQ(Fetch("k", {{"windowsize", "0"}}).error, 8);
}

TEST_F(TftpServerTest, Windowsize) {
  StartServer();
  auto data = WriteFile("w", 512 * 40 + 7);
  auto r = Fetch("w", {{"windowsize", "8"}});
  EXPECT_EQ(r.oack, (Opts{{"windowsize", "8"}}));
  EXPECT_EQ(r.data, data);
  EXPECT_EQ(r.data_packets, 41u);

  // The server sends a whole window before waiting, and an ACK of an earlier block restarts the
  // window after it.
  Client c;
  c.Request(port(), Opcode::kRrq, "w", "octet", {{"windowsize", "4"}});
  auto oack = c.Receive();
  ASSERT_TRUE(oack);
  c.Ack(oack->from_port, 0);
  std::vector<uint16_t> blocks;
  for (int i = 0; i < 4; ++i) {
    auto d = c.Receive();
    ASSERT_TRUE(d);
    blocks.push_back(ParsePacket(d->bytes)->data.block);
  }
  EXPECT_EQ(blocks, (std::vector<uint16_t>{1, 2, 3, 4}));
  EXPECT_FALSE(c.Receive(150));  // waits for the ACK
  c.Ack(oack->from_port, 2);     // "3 and 4 were lost"
  blocks.clear();
  for (int i = 0; i < 4; ++i) {
    auto d = c.Receive();
    ASSERT_TRUE(d);
    blocks.push_back(ParsePacket(d->bytes)->data.block);
  }
  EXPECT_EQ(blocks, (std::vector<uint16_t>{3, 4, 5, 6}));
}

TEST_F(TftpServerTest, RollsOverPast65535Blocks) {
  StartServer();
  // 65536 × 512 + 100 bytes: blocks 1 … 65535, then 0, then 1 again; sparse but for a marker.
  const uint64_t size = 65536ull * 512 + 100;
  {
    int fd = open((root_ / "large").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, size), 0);
    ASSERT_EQ(pwrite(fd, "END", 3, size - 3), 3);
    ASSERT_EQ(pwrite(fd, "WRAP", 4, 65535ull * 512), 4);  // the first bytes of block "0"
    close(fd);
  }
  Client c;
  c.Request(port(), Opcode::kRrq, "large", "octet", {{"tsize", "0"}, {"blksize", "512"}});
  auto oack = c.Receive();
  ASSERT_TRUE(oack);
  c.Ack(oack->from_port, 0);
  uint64_t received = 0, blocks = 0;
  bool saw_zero = false, saw_wrap = false;
  uint16_t expected = 1;
  while (true) {
    auto d = c.Receive();
    ASSERT_TRUE(d) << "stalled at block " << expected;
    auto p = ParsePacket(d->bytes);
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p->opcode, Opcode::kData);
    ASSERT_EQ(p->data.block, expected);
    if (expected == 0) {
      saw_zero = true;
      saw_wrap =
          std::string_view(reinterpret_cast<const char*>(p->data.payload.data()), 4) == "WRAP";
    }
    received += p->data.payload.size();
    ++blocks;
    c.Ack(d->from_port, expected);
    if (p->data.payload.size() < 512) {
      EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(p->data.payload.data()) + 97, 3),
                "END");
      break;
    }
    ++expected;  // wraps 65535 -> 0
  }
  EXPECT_EQ(received, size);
  EXPECT_EQ(blocks, 65537u);
  EXPECT_TRUE(saw_zero);
  EXPECT_TRUE(saw_wrap);
  EXPECT_TRUE(Eventually([&] { return server_->stats().transfers_completed == 1u; }));
}

// With a window the ACKs name blocks across the wrap too (windows straddle 65535 -> 0).
TEST_F(TftpServerTest, RollsOverWithWindowsize) {
  StartServer();
  const uint64_t size = 65540ull * 512 + 1;
  {
    int fd = open((root_ / "large").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, size), 0);
    ASSERT_EQ(pwrite(fd, "Z", 1, size - 1), 1);
    close(fd);
  }
  auto r = Fetch("large", {{"blksize", "512"}, {"windowsize", "7"}});
  ASSERT_EQ(r.data.size(), size);
  EXPECT_EQ(r.data.back(), 'Z');
  EXPECT_EQ(r.data_packets, 65541u);
}

TEST(TftpServerIpv6, ServesOverIpv6Loopback) {
  const fs::path root = fs::temp_directory_path() / ("ingot-tftp6-" + std::to_string(getpid()));
  fs::create_directories(root);
  std::ofstream(root / "f") << "hello over v6";
  auto files = DirectorySource::Create(root.string());
  ASSERT_TRUE(files.ok());
  ServerOptions o;
  o.host = "::1";
  o.port = 0;
  Server server(o, **files);
  Status started = server.Start();
  if (!started.ok()) {
    fs::remove_all(root);
    GTEST_SKIP() << "no IPv6 loopback: " << started.ToString();
  }
  const fs::path out = root / "out";
  const std::string cmd = "timeout 30 curl -sS --fail -o " + out.string() +
                          " tftp://[::1]:" + std::to_string(server.port()) + "/f";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(out);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "hello over v6");
  server.Stop();
  fs::remove_all(root);
}

TEST(TftpServerStart, RefusesBadAddress) {
  auto files = DirectorySource::Create(fs::temp_directory_path().string());
  ASSERT_TRUE(files.ok());
  ServerOptions o;
  o.host = "not-an-address";
  o.port = 0;
  Server server(o, **files);
  EXPECT_EQ(server.Start().code(), Code::kInvalidArgument);
  EXPECT_FALSE(DirectorySource::Create("/nonexistent-ingot-root").ok());
}

TEST_F(TftpServerTest, RetransmitsAfterLostAckAndIgnoresDuplicates) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(600);
  StartServer(o);
  auto data = WriteFile("r", 2000);
  Client c;
  c.Request(port(), Opcode::kRrq, "r");
  auto b1 = c.Receive();
  ASSERT_TRUE(b1);
  ASSERT_EQ(ParsePacket(b1->bytes)->data.block, 1);
  const uint16_t tid = b1->from_port;
  // The ACK of block 1 is "lost": block 1 comes again after the timeout.
  auto again = c.Receive(2000);
  ASSERT_TRUE(again);
  EXPECT_EQ(ParsePacket(again->bytes)->data.block, 1);
  EXPECT_EQ(again->bytes, b1->bytes);
  c.Ack(tid, 1);
  auto b2 = c.Receive();
  ASSERT_TRUE(b2);
  EXPECT_EQ(ParsePacket(b2->bytes)->data.block, 2);
  // Duplicate ACKs of block 1 (the client's own retransmissions) send nothing: no Sorcerer's
  // Apprentice.
  c.Ack(tid, 1);
  c.Ack(tid, 1);
  EXPECT_FALSE(c.Receive(150));
  c.Ack(tid, 2);
  auto b3 = c.Receive();
  ASSERT_TRUE(b3);
  EXPECT_EQ(ParsePacket(b3->bytes)->data.block, 3);
  c.Ack(tid, 3);
  auto b4 = c.Receive();
  ASSERT_TRUE(b4);
  auto p4 = ParsePacket(b4->bytes);
  EXPECT_EQ(p4->data.block, 4);
  EXPECT_EQ(p4->data.payload.size(), 2000u - 3 * 512);
  c.Ack(tid, 4);
  EXPECT_FALSE(c.Receive(400));  // done: nothing more
  EXPECT_TRUE(Eventually([&] { return server_->stats().transfers_completed == 1u; }));
}

// A lossy network: DATA and ACKs lost at random, with and without a window; the file still arrives
// intact and the server retransmits only on timeouts.
TEST_F(TftpServerTest, SurvivesLossInBothDirections) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(40);
  o.max_retries = 50;
  StartServer(o);
  auto data = WriteFile("lossy", 150000, 3);
  for (const char* window : {"1", "5"}) {
    auto r = Fetch("lossy", {{"blksize", "1024"}, {"windowsize", window}}, "octet", 10);
    EXPECT_EQ(r.data, data) << "windowsize " << window;
  }
  EXPECT_TRUE(Eventually([&] { return server_->stats().transfers_completed == 2u; }));
}

TEST_F(TftpServerTest, GivesUpAfterRetries) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(100);
  o.max_retries = 2;
  StartServer(o);
  WriteFile("g", 2000);
  Client c;
  c.Request(port(), Opcode::kRrq, "g");
  int packets = 0;
  while (c.Receive(600)) ++packets;
  EXPECT_EQ(packets, 3);  // the first send and two retransmissions
  EXPECT_TRUE(Eventually([&] { return server_->stats().transfers_failed == 1u; }));
}

TEST_F(TftpServerTest, OackIsRetransmittedAndDuplicateRequestIgnored) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(200);
  StartServer(o);
  auto data = WriteFile("o", 700);
  Client c;
  c.Request(port(), Opcode::kRrq, "o", "octet", {{"tsize", "0"}});
  c.Request(port(), Opcode::kRrq, "o", "octet", {{"tsize", "0"}});  // a retransmitted RRQ
  auto first = c.Receive();
  ASSERT_TRUE(first);
  EXPECT_EQ(ParsePacket(first->bytes)->opcode, Opcode::kOack);
  auto second = c.Receive(1000);  // the OACK again, after the timeout, from the same TID
  ASSERT_TRUE(second);
  EXPECT_EQ(ParsePacket(second->bytes)->opcode, Opcode::kOack);
  EXPECT_EQ(second->from_port, first->from_port);
  EXPECT_EQ(server_->stats().transfers_started, 1u);
}

// A client that refuses the OACK (ERROR 8) or aborts mid-transfer ends the transfer: nothing more
// is sent to it.
TEST_F(TftpServerTest, ClientErrorsEndTheTransfer) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(100);
  StartServer(o);
  WriteFile("e", 5000);
  Client c;
  c.Request(port(), Opcode::kRrq, "e", "octet", {{"blksize", "1024"}});
  auto oack = c.Receive();
  ASSERT_TRUE(oack);
  std::vector<uint8_t> err;
  EncodeError(ErrorCode::kOptionRefused, "no thanks", err);
  c.SendTo(oack->from_port, err);
  EXPECT_FALSE(c.Receive(400));
  Client d;
  d.Request(port(), Opcode::kRrq, "e");
  auto b1 = d.Receive();
  ASSERT_TRUE(b1);
  EncodeError(ErrorCode::kNotDefined, "user cancelled", err);
  d.SendTo(b1->from_port, err);
  EXPECT_FALSE(d.Receive(400));
  EXPECT_TRUE(Eventually([&] { return server_->stats().transfers_failed == 2u; }));
}

TEST_F(TftpServerTest, UnknownTransferIdGetsError5AndTransferGoesOn) {
  StartServer();
  auto data = WriteFile("u", 600);
  Client c, stranger;
  c.Request(port(), Opcode::kRrq, "u");
  auto b1 = c.Receive();
  ASSERT_TRUE(b1);
  stranger.Ack(b1->from_port, 1);
  EXPECT_EQ(ErrorCodeOf(stranger.Receive()), 5);
  c.Ack(b1->from_port, 1);
  auto b2 = c.Receive();
  ASSERT_TRUE(b2);
  EXPECT_EQ(ParsePacket(b2->bytes)->data.block, 2);
  c.Ack(b1->from_port, 2);
}

TEST_F(TftpServerTest, Netascii) {
  StartServer();
  std::string text;
  for (int i = 0; i < 400; ++i) text += i % 9 == 0 ? "line\n" : i % 13 == 0 ? "cr\r" : "ab";
  WriteText("t.txt", text);
  auto want = NetasciiEncode(std::vector<uint8_t>(text.begin(), text.end()));
  auto r = Fetch("t.txt", {}, "netascii");
  EXPECT_EQ(r.data, want);
  // With options: tsize is not answered (the netascii size is not the file's), windowsize is.
  r = Fetch("t.txt", {{"tsize", "0"}, {"windowsize", "3"}, {"blksize", "100"}}, "NETASCII");
  EXPECT_EQ(r.oack, (Opts{{"windowsize", "3"}, {"blksize", "100"}}));
  EXPECT_EQ(r.data, want);
}

TEST_F(TftpServerTest, RefusesWritesModesAndMissingFiles) {
  StartServer();
  WriteFile("x", 10);
  Client c;
  c.Request(port(), Opcode::kWrq, "x");
  EXPECT_EQ(ErrorCodeOf(c.Receive()), 2);
  c.Request(port(), Opcode::kWrq, "new");
  EXPECT_EQ(ErrorCodeOf(c.Receive()), 2);
  c.Request(port(), Opcode::kRrq, "x", "mail");
  EXPECT_EQ(ErrorCodeOf(c.Receive()), 4);
  EXPECT_EQ(Fetch("missing").error, 1);
  EXPECT_EQ(Fetch("sub/missing").error, 1);
  EXPECT_EQ(Fetch("x/y").error, 1);
  // A DATA packet on the request port is an illegal operation.
  std::vector<uint8_t> d;
  EncodeData(1, std::vector<uint8_t>{1}, d);
  c.SendTo(port(), d);
  EXPECT_EQ(ErrorCodeOf(c.Receive()), 4);
  // The server still serves afterwards.
  EXPECT_EQ(Fetch("x").data.size(), 10u);
}

TEST_F(TftpServerTest, PathSafety) {
  StartServer();
  auto inside = WriteFile("sub/inside", 100);
  fs::create_directories(root_.string() + "-outside");
  std::ofstream(root_.string() + "-outside/secret") << "secret";
  fs::create_symlink(root_.string() + "-outside/secret", root_ / "abs-link");
  fs::create_symlink("../" + root_.filename().string() + "-outside/secret", root_ / "rel-link");
  fs::create_symlink(root_.string() + "-outside", root_ / "dir-link");
  fs::create_symlink("sub/inside", root_ / "good-link");
  ASSERT_EQ(mkfifo((root_ / "fifo").c_str(), 0644), 0);

  for (const char* bad : {"../"
                          "secret",
                          "sub/../../x", "..\\..\\etc\\passwd", "/../etc/passwd", "abs-link",
                          "rel-link", "dir-link/secret", "sub", "/", "fifo"}) {
    EXPECT_EQ(Fetch(bad).error, 2) << bad;
  }
  // Over-long names.
  EXPECT_EQ(Fetch(std::string(1100, 'a')).error, 2);
  // Backslashes are separators, leading '/' is tolerated, symlinks inside the root are followed.
  EXPECT_EQ(Fetch("\\sub\\inside").data, inside);
  EXPECT_EQ(Fetch("/sub/inside").data, inside);
  EXPECT_EQ(Fetch("good-link").data, inside);
  EXPECT_GE(server_->stats().requests_refused, 11u);
}

TEST_F(TftpServerTest, ManyTransfersAtOnceAndLimits) {
  ServerOptions o;
  o.timeout = std::chrono::milliseconds(500);
  StartServer(o);
  auto data = WriteFile("m", 200000);
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 12; ++i) {
    threads.emplace_back([&, i] {
      auto r = Fetch("m", {{"blksize", "1024"}, {"windowsize", std::to_string(1 + i % 4)}});
      if (r.data == data) ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 12);
}

TEST_F(TftpServerTest, DropsRequestsOverTheLimit) {
  ServerOptions o;
  o.max_transfers = 2;
  o.timeout = std::chrono::milliseconds(2000);
  StartServer(o);
  WriteFile("l", 5000);
  Client a, b, c;
  a.Request(port(), Opcode::kRrq, "l");
  b.Request(port(), Opcode::kRrq, "l");
  ASSERT_TRUE(a.Receive());
  ASSERT_TRUE(b.Receive());
  c.Request(port(), Opcode::kRrq, "l");
  EXPECT_FALSE(c.Receive(300));  // dropped: the client will retry
  EXPECT_EQ(server_->stats().requests_dropped, 1u);
}

// Real clients. They are run with a time limit; each test skips when its client is not installed.
bool Have(const char* tool) {
  return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0;
}

std::vector<uint8_t> ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(TftpServerTest, CurlFetchesByteIdentical) {
  if (!Have("curl")) GTEST_SKIP() << "curl not installed";
  StartServer();
  auto data = WriteFile("sub/vmlinuz", 3'000'000, 7);
  const fs::path out = root_.string() + "-outside/curl.out";
  fs::create_directories(out.parent_path());
  for (const char* blk : {"1428", "512", "8"}) {
    if (std::string(blk) == "8") {
      // A small block size makes many blocks; keep the file small.
      data = WriteFile("sub/vmlinuz", 20000, 8);
    }
    const std::string cmd = "timeout 60 curl -sS --fail --tftp-blksize " + std::string(blk) +
                            " -o " + out.string() + " tftp://127.0.0.1:" + std::to_string(port()) +
                            "/sub/vmlinuz";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    EXPECT_EQ(ReadAll(out), data) << "blksize " << blk;
  }
  const std::string missing =
      "timeout 20 curl -sS -o /dev/null tftp://127.0.0.1:" + std::to_string(port()) +
      "/nope 2>/dev/null";
  EXPECT_NE(std::system(missing.c_str()), 0);
}

TEST_F(TftpServerTest, TftpHpaFetchesByteIdentical) {
  if (!Have("tftp")) GTEST_SKIP() << "tftp-hpa's tftp not installed (scripts/install-deps.sh)";
  StartServer();
  auto data = WriteFile("pxelinux.0", 1'000'000, 9);
  std::string text;
  for (int i = 0; i < 3000; ++i)
    text += i % 5 == 0 ? "kernel vmlinuz\n" : i % 17 == 0 ? "x\r" : "a";
  WriteText("boot.cfg", text);
  const fs::path dir = root_.string() + "-outside";
  fs::create_directories(dir);
  const std::string base =
      "cd " + dir.string() + " && timeout 60 tftp 127.0.0.1 " + std::to_string(port());
  ASSERT_EQ(std::system((base + " -m binary -c get pxelinux.0 bin.out").c_str()), 0);
  EXPECT_EQ(ReadAll(dir / "bin.out"), data);
  // netascii there and back: the client undoes the conversion.
  ASSERT_EQ(std::system((base + " -m netascii -c get boot.cfg txt.out").c_str()), 0);
  auto got = ReadAll(dir / "txt.out");
  EXPECT_EQ(std::string(got.begin(), got.end()), text);
}

}  // namespace
}  // namespace ingot::tftp

namespace ingot::tftp {
namespace {

// Both resolutions over the same tree: what each serves and what each refuses, without a server.
TEST(DirectorySource, Resolutions) {
  const fs::path base = fs::temp_directory_path() / ("ingot-tftp-ds-" + std::to_string(getpid()));
  fs::remove_all(base);
  const fs::path root = base / "root";
  fs::create_directories(root / "sub");
  fs::create_directories(base / "outside");
  std::ofstream(base / "outside" / "secret") << "secret";
  std::ofstream(root / "sub" / "inside") << "inside";
  fs::create_symlink(base / "outside" / "secret", root / "abs-link");
  fs::create_symlink("../outside/secret", root / "rel-link");
  fs::create_symlink(base / "outside", root / "dir-link");
  fs::create_symlink("sub/inside", root / "good-link");
  fs::create_symlink("sub", root / "good-dir-link");
  ASSERT_EQ(mkfifo((root / "fifo").c_str(), 0644), 0);

  for (Resolution res : {Resolution::kBeneath, Resolution::kNoSymlinks}) {
    auto src = DirectorySource::Create(root.string(), res);
    ASSERT_TRUE(src.ok());
    const bool beneath = res == Resolution::kBeneath;
    auto ok = (*src)->Open("sub/inside");
    ASSERT_TRUE(ok.ok());
    EXPECT_EQ((*ok)->Size(), 6u);
    EXPECT_EQ((*src)->Open("good-link").ok(), beneath);
    EXPECT_EQ((*src)->Open("good-dir-link/inside").ok(), beneath);
    for (const char* bad : {"abs-link", "rel-link", "dir-link/secret", "sub", "fifo", "../x",
                            "sub/../sub/inside", "/sub/inside"}) {
      auto r = (*src)->Open(bad);
      EXPECT_FALSE(r.ok()) << bad;
    }
    EXPECT_EQ((*src)->Open("abs-link").status().code(), Code::kRefused);
    EXPECT_EQ((*src)->Open("missing").status().code(), Code::kNotFound);
    EXPECT_EQ((*src)->Open("sub/inside/x").status().code(), Code::kNotFound);
  }
  fs::remove_all(base);
}

}  // namespace
}  // namespace ingot::tftp
