// nbd::Server on 127.0.0.1:0 over an in-memory export, driven by a small client written from the
// spec (so every edge of the protocol can be poked), and by libnbd's nbdinfo and qemu-io when they
// are installed (the clients users have).
#include "nbd/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "nbd/wire.h"

namespace ingot::nbd {
namespace {

// A disk in memory; its second half is a "hole" in block status. Counts flushes.
class MemoryExport final : public Export {
 public:
  explicit MemoryExport(size_t size, bool ro = false) : data_(size), ro_(ro) {
    for (size_t i = 0; i < size / 2; ++i) data_[i] = uint8_t(i * 13 + 1);
  }
  uint64_t Size() const override { return data_.size(); }
  bool read_only() const override { return ro_; }
  Status Read(uint64_t off, std::span<uint8_t> buf) override {
    std::lock_guard<std::mutex> l(mu_);
    if (off == 12345 && buf.size() == 7) return IoError("disk on fire at /secret/path");
    std::memcpy(buf.data(), data_.data() + off, buf.size());
    return Status::Ok();
  }
  Status Write(uint64_t off, std::span<const uint8_t> d, bool fua) override {
    std::lock_guard<std::mutex> l(mu_);
    if (off == 12345 && d.size() == 7) return IoError("disk on fire at /secret/path");
    std::memcpy(data_.data() + off, d.data(), d.size());
    fua_writes += fua;
    return Status::Ok();
  }
  Status Flush() override {
    flushes++;
    return Status::Ok();
  }
  Status Trim(uint64_t off, uint64_t len, bool) override {
    std::lock_guard<std::mutex> l(mu_);
    std::memset(data_.data() + off, 0, len);
    return Status::Ok();
  }
  Status WriteZeroes(uint64_t off, uint64_t len, bool, bool) override { return Trim(off, len, false); }
  Result<ExportExtent> BlockStatus(uint64_t off, uint64_t max) override {
    const uint64_t half = data_.size() / 2;
    if (off < half) return ExportExtent{std::min(max, half - off), false, false};
    return ExportExtent{std::min(max, data_.size() - off), true, true};
  }
  std::vector<uint8_t> data_;
  bool ro_;
  std::mutex mu_;
  std::atomic<int> flushes{0}, fua_writes{0};
};

class MapResolver final : public ExportResolver {
 public:
  Result<std::shared_ptr<Export>> Resolve(std::string_view name, std::string_view peer) override {
    auto it = exports.find(std::string(name));
    if (it == exports.end()) return NotFound("no export '" + std::string(name) + "'");
    if (name == "denied") return PermissionDenied("not from " + std::string(peer));
    return it->second;
  }
  std::vector<std::string> List(std::string_view) override {
    std::vector<std::string> n;
    for (auto& [k, v] : exports) n.push_back(k);
    return n;
  }
  std::map<std::string, std::shared_ptr<Export>> exports;
};

// A blocking client that speaks just enough NBD to test the server.
class Client {
 public:
  // `from`: the loopback address to connect from (all of 127/8 is this host), to play other clients.
  explicit Client(uint16_t port, const char* from = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (from != nullptr) {
      sockaddr_in b{};
      b.sin_family = AF_INET;
      inet_pton(AF_INET, from, &b.sin_addr);
      ::bind(fd_, reinterpret_cast<sockaddr*>(&b), sizeof b);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { ::close(fd_); }
  bool Recv(void* p, size_t n) { return ::recv(fd_, p, n, MSG_WAITALL) == ssize_t(n); }
  bool Send(const std::vector<uint8_t>& b) { return ::send(fd_, b.data(), b.size(), 0) == ssize_t(b.size()); }
  std::vector<uint8_t> RecvN(size_t n) {
    std::vector<uint8_t> b(n);
    if (n && !Recv(b.data(), n)) b.clear();
    return b;
  }
  bool Hello() {
    auto g = RecvN(18);
    if (g.size() != 18) return false;
    std::vector<uint8_t> f;
    PutU32(f, kClientFixedNewstyle | kClientNoZeroes);
    return Send(f);
  }
  void Option(uint32_t opt, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> b;
    PutU64(b, kIHaveOpt);
    PutU32(b, opt);
    PutU32(b, uint32_t(data.size()));
    b.insert(b.end(), data.begin(), data.end());
    Send(b);
  }
  // Reads option replies until ACK or an error; returns the types seen (and payloads).
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> Replies() {
    std::vector<std::pair<uint32_t, std::vector<uint8_t>>> r;
    while (true) {
      auto h = RecvN(20);
      if (h.size() != 20) break;
      uint32_t type = GetU32(&h[12]);
      r.emplace_back(type, RecvN(GetU32(&h[16])));
      if (type == kRepAck || (type & (1u << 31))) break;
    }
    return r;
  }
  static std::vector<uint8_t> Name(const std::string& n, bool with_infos = true) {
    std::vector<uint8_t> d;
    PutU32(d, uint32_t(n.size()));
    d.insert(d.end(), n.begin(), n.end());
    if (with_infos) PutU16(d, 0);
    return d;
  }
  // Handshake to transmission with structured replies and base:allocation. Returns the flags.
  uint16_t Go(const std::string& name, bool structured = true) {
    if (!Hello()) return 0;
    if (structured) {
      Option(kOptStructuredReply, {});
      Replies();
      auto d = Name(name, false);
      PutU32(d, 1);
      std::string q = kBaseAllocation;
      PutU32(d, uint32_t(q.size()));
      d.insert(d.end(), q.begin(), q.end());
      Option(kOptSetMetaContext, d);
      Replies();
    }
    Option(kOptGo, Name(name));
    uint16_t flags = 0;
    for (auto& [type, p] : Replies()) {
      if (type == kRepInfo && GetU16(p.data()) == kInfoExport) flags = GetU16(&p[10]);
    }
    return flags;
  }
  void Request(uint16_t type, uint64_t off, uint32_t len, uint16_t flags = 0,
               const std::vector<uint8_t>& payload = {}) {
    std::vector<uint8_t> b;
    PutU32(b, kRequestMagic);
    PutU16(b, flags);
    PutU16(b, type);
    PutU64(b, ++cookie_);
    PutU64(b, off);
    PutU32(b, len);
    b.insert(b.end(), payload.begin(), payload.end());
    Send(b);
  }
  // Simple reply: its error.
  uint32_t SimpleReply() {
    auto h = RecvN(16);
    if (h.size() != 16 || GetU32(h.data()) != kSimpleReplyMagic) return 0xffffffff;
    return GetU32(&h[4]);
  }
  struct Chunk {
    uint16_t flags, type;
    std::vector<uint8_t> payload;
  };
  std::vector<Chunk> StructuredReply() {
    std::vector<Chunk> r;
    while (true) {
      auto h = RecvN(20);
      if (h.size() != 20 || GetU32(h.data()) != kStructuredReplyMagic) break;
      Chunk c{GetU16(&h[4]), GetU16(&h[6]), RecvN(GetU32(&h[16]))};
      r.push_back(c);
      if (c.flags & kReplyFlagDone) break;
    }
    return r;
  }
  bool ok_ = false;
  int fd_ = -1;
  uint64_t cookie_ = 0;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = std::make_shared<MemoryExport>(4 << 20);
    resolver_.exports["disk"] = disk_;
    resolver_.exports["denied"] = disk_;
    resolver_.exports["ro"] = std::make_shared<MemoryExport>(1 << 20, true);
    server_ = std::make_unique<Server>(ServerOptions{.port = 0, .max_connections_per_client = 4,
                                                     .handshake_timeout = std::chrono::seconds(2),
                                                     .max_payload = 1 << 20},
                                       resolver_);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::shared_ptr<MemoryExport> disk_;
  MapResolver resolver_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, StructuredReadWriteFlushAndBlockStatus) {
  Client c(server_->port());
  uint16_t flags = c.Go("disk");
  ASSERT_NE(flags & kTxHasFlags, 0);
  EXPECT_EQ(flags & kTxReadOnly, 0);
  EXPECT_NE(flags & kTxSendFlush, 0);
  EXPECT_NE(flags & kTxSendFua, 0);
  EXPECT_NE(flags & kTxSendDf, 0);
  // Write with FUA, read it back.
  std::vector<uint8_t> d(5000, 0x42);
  c.Request(kCmdWrite, 1000, 5000, kCmdFlagFua, d);
  EXPECT_EQ(c.SimpleReply(), 0u);
  EXPECT_EQ(disk_->fua_writes.load(), 1);
  c.Request(kCmdRead, 1000, 5000);
  auto chunks = c.StructuredReply();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].type, kReplyTypeOffsetData);
  EXPECT_EQ(GetU64(chunks[0].payload.data()), 1000u);
  EXPECT_EQ(std::vector<uint8_t>(chunks[0].payload.begin() + 8, chunks[0].payload.end()), d);
  // A read over data then the hole: a data chunk then a hole chunk, the last DONE.
  c.Request(kCmdRead, (2 << 20) - 4096, 512 * 1024);
  chunks = c.StructuredReply();
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].type, kReplyTypeOffsetData);
  EXPECT_EQ(chunks[0].payload.size(), 8u + 4096);
  EXPECT_EQ(chunks[1].type, kReplyTypeOffsetHole);
  EXPECT_EQ(GetU64(chunks[1].payload.data()), uint64_t(2 << 20));
  EXPECT_EQ(GetU32(&chunks[1].payload[8]), 512u * 1024 - 4096);
  EXPECT_NE(chunks[1].flags & kReplyFlagDone, 0);
  // With DF: one data chunk, zeros included.
  c.Request(kCmdRead, (2 << 20) - 4096, 8192, kCmdFlagDf);
  chunks = c.StructuredReply();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].payload.size(), 8u + 8192);
  // Block status: data then hole|zero.
  c.Request(kCmdBlockStatus, 0, 4 << 20);
  chunks = c.StructuredReply();
  ASSERT_EQ(chunks.size(), 1u);
  ASSERT_EQ(chunks[0].type, kReplyTypeBlockStatus);
  ASSERT_EQ(chunks[0].payload.size(), 4u + 16);
  EXPECT_EQ(GetU32(chunks[0].payload.data()), kBaseAllocationId);
  EXPECT_EQ(GetU32(&chunks[0].payload[4]), 2u << 20);
  EXPECT_EQ(GetU32(&chunks[0].payload[8]), 0u);
  EXPECT_EQ(GetU32(&chunks[0].payload[16]), kStateHole | kStateZero);
  c.Request(kCmdBlockStatus, 0, 4 << 20, kCmdFlagReqOne);
  chunks = c.StructuredReply();
  ASSERT_EQ(chunks[0].payload.size(), 4u + 8);
  c.Request(kCmdFlush, 0, 0);
  EXPECT_EQ(c.SimpleReply(), 0u);
  EXPECT_EQ(disk_->flushes.load(), 1);
  // Errors: a read past the end (structured error), a write past the end, a server fault whose
  // message does not leak.
  c.Request(kCmdRead, 4 << 20, 1);
  chunks = c.StructuredReply();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].type, kReplyTypeError);
  EXPECT_EQ(GetU32(chunks[0].payload.data()), kEinval);
  c.Request(kCmdWrite, (4 << 20) - 1, 2, 0, {1, 2});
  EXPECT_EQ(c.SimpleReply(), kEnospc);
  c.Request(kCmdWrite, 12345, 7, 0, std::vector<uint8_t>(7, 1));
  EXPECT_EQ(c.SimpleReply(), kEio);
  c.Request(kCmdRead, 12345, 7);
  chunks = c.StructuredReply();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].type, kReplyTypeError);
  EXPECT_EQ(GetU32(chunks[0].payload.data()), kEio);
  EXPECT_EQ(std::string(chunks[0].payload.begin() + 6, chunks[0].payload.end()), "I/O error");
  c.Request(kCmdDisc, 0, 0);
  EXPECT_TRUE(c.RecvN(1).empty());  // closed
}

TEST_F(ServerTest, SimpleRepliesWithoutStructured) {
  Client c(server_->port());
  uint16_t flags = c.Go("disk", false);
  EXPECT_EQ(flags & kTxSendDf, 0);
  c.Request(kCmdRead, 0, 100);
  EXPECT_EQ(c.SimpleReply(), 0u);
  auto data = c.RecvN(100);
  EXPECT_EQ(data, std::vector<uint8_t>(disk_->data_.begin(), disk_->data_.begin() + 100));
  c.Request(kCmdBlockStatus, 0, 100);  // no context negotiated
  EXPECT_EQ(c.SimpleReply(), kEinval);
}

TEST_F(ServerTest, OneWriterAtATime) {
  Client a(server_->port(), "127.0.0.1");
  uint16_t fa = a.Go("disk");
  EXPECT_EQ(fa & kTxReadOnly, 0);
  EXPECT_NE(fa & kTxCanMultiConn, 0);
  // Another connection of the same client may write too (qemu's and nbdcopy's multi-conn).
  Client a2(server_->port(), "127.0.0.1");
  EXPECT_EQ(a2.Go("disk") & kTxReadOnly, 0);
  a2.Request(kCmdDisc, 0, 0);
  a2.RecvN(1);
  Client b(server_->port(), "127.0.0.2");
  EXPECT_NE(b.Go("disk") & kTxReadOnly, 0);  // another machine: a holds the writer slot
  b.Request(kCmdWrite, 0, 4, 0, {1, 2, 3, 4});
  EXPECT_EQ(b.SimpleReply(), kEperm);
  b.Request(kCmdRead, 0, 4);
  EXPECT_EQ(b.StructuredReply().size(), 1u);  // reading is fine
  // The writer leaves; the next connection may write.
  a.Request(kCmdDisc, 0, 0);
  a.RecvN(1);
  for (int i = 0; i < 100 && server_->stats().active > 1; ++i) usleep(10000);
  Client c(server_->port(), "127.0.0.3");
  EXPECT_EQ(c.Go("disk") & kTxReadOnly, 0);
  // A read-only export is offered read-only.
  Client d(server_->port());
  EXPECT_NE(d.Go("ro") & kTxReadOnly, 0);
}

TEST_F(ServerTest, RefusalsAndListing) {
  Client c(server_->port());
  ASSERT_TRUE(c.Hello());
  c.Option(kOptGo, Client::Name("nope"));
  auto r = c.Replies();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, kRepErrUnknown);
  c.Option(kOptGo, Client::Name("denied"));
  r = c.Replies();
  EXPECT_EQ(r[0].first, kRepErrPolicy);
  c.Option(kOptGo, Client::Name(""));
  EXPECT_EQ(c.Replies()[0].first, kRepErrUnknown);  // no default export
  c.Option(kOptList, {});
  r = c.Replies();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].first, kRepServer);
  // Still usable after refusals.
  c.Option(kOptGo, Client::Name("disk"));
  EXPECT_EQ(c.Replies().back().first, kRepAck);
}

TEST_F(ServerTest, LimitsAndHostileBytes) {
  // Option data past the limit: closed.
  {
    Client c(server_->port());
    ASSERT_TRUE(c.Hello());
    std::vector<uint8_t> b;
    PutU64(b, kIHaveOpt);
    PutU32(b, kOptGo);
    PutU32(b, 1 << 30);
    c.Send(b);
    EXPECT_TRUE(c.RecvN(1).empty());
  }
  // Bad client flags: closed.
  {
    Client c(server_->port());
    c.RecvN(18);
    std::vector<uint8_t> f;
    PutU32(f, 0x80);
    c.Send(f);
    EXPECT_TRUE(c.RecvN(1).empty());
  }
  // A write payload over max_payload: closed.
  {
    Client c(server_->port());
    c.Go("disk");
    c.Request(kCmdWrite, 0, 2 << 20);
    EXPECT_TRUE(c.RecvN(1).empty());
  }
  // A read over max_payload: EINVAL, connection lives.
  {
    Client c(server_->port());
    c.Go("disk");
    c.Request(kCmdRead, 0, 2 << 20);
    auto chunks = c.StructuredReply();
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0].type, kReplyTypeError);
    c.Request(kCmdFlush, 0, 0);
    EXPECT_EQ(c.SimpleReply(), 0u);
  }
  // Silence during negotiation: closed after the handshake timeout.
  {
    Client c(server_->port());
    c.RecvN(18);
    EXPECT_TRUE(c.RecvN(1).empty());
  }
  // Per-client connection limit (4): the fifth is closed before the greeting.
  {
    std::vector<std::unique_ptr<Client>> held;
    for (int i = 0; i < 4; ++i) {
      held.push_back(std::make_unique<Client>(server_->port()));
      ASSERT_EQ(held.back()->RecvN(18).size(), 18u);
    }
    Client extra(server_->port());
    EXPECT_TRUE(extra.RecvN(18).empty());
  }
}

TEST_F(ServerTest, CloseExportEndsItsConnections) {
  Client a(server_->port());
  a.Go("disk");
  for (int i = 0; i < 100 && server_->ActiveExports().empty(); ++i) usleep(10000);
  ASSERT_EQ(server_->ActiveExports(), std::vector<std::string>{"disk"});
  EXPECT_EQ(server_->CloseExport("disk"), 1u);
  EXPECT_TRUE(a.RecvN(1).empty());
}

// Real clients: libnbd's nbdinfo (structured replies, block status) and qemu-io (writes, reads).
TEST_F(ServerTest, RealClients) {
  const std::string uri = "nbd://127.0.0.1:" + std::to_string(server_->port()) + "/disk";
  if (std::system("command -v nbdinfo >/dev/null 2>&1") == 0) {
    FILE* p = ::popen(("nbdinfo --map " + uri).c_str(), "r");
    std::string out;
    char buf[512];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    EXPECT_EQ(::pclose(p), 0);
    EXPECT_NE(out.find("0     2097152    0  data"), std::string::npos) << out;
    EXPECT_NE(out.find("2097152     2097152    3  hole,zero"), std::string::npos) << out;
  }
  if (std::system("command -v qemu-io >/dev/null 2>&1") == 0) {
    EXPECT_EQ(std::system(("qemu-io -f raw -c 'write -P 0x5c 65536 131072' -c 'flush' '" + uri +
                           "' >/dev/null")
                              .c_str()),
              0);
    EXPECT_EQ(disk_->data_[65536], 0x5c);
    EXPECT_EQ(disk_->data_[65536 + 131071], 0x5c);
    EXPECT_EQ(std::system(("qemu-io -f raw -c 'read -P 0x5c 65536 131072' '" + uri +
                           "' 2>&1 | grep -q 'read 131072'")
                              .c_str()),
              0);
  }
}

}  // namespace
}  // namespace ingot::nbd
