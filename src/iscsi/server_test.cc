// iscsi::Server on 127.0.0.1:0 over an in-memory export, driven by a small initiator written from
// RFC 7143 (so every step can be checked), and by libiscsi's iscsi-ls and qemu-img's iSCSI driver
// when they are installed (the initiators users have).
#include "iscsi/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "iscsi/wire.h"

namespace ingot::iscsi {
namespace {

class MemoryExport final : public nbd::Export {
 public:
  explicit MemoryExport(size_t size) : data_(size) {
    for (size_t i = 0; i < size; ++i) data_[i] = uint8_t(i * 13 + 1);
  }
  uint64_t Size() const override { return data_.size(); }
  bool read_only() const override { return false; }
  Status Read(uint64_t off, std::span<uint8_t> buf) override {
    std::lock_guard<std::mutex> l(mu_);
    std::memcpy(buf.data(), data_.data() + off, buf.size());
    return Status::Ok();
  }
  Status Write(uint64_t off, std::span<const uint8_t> d, bool fua) override {
    std::lock_guard<std::mutex> l(mu_);
    if (off == 4096 * 512 && d.size() == 512) return IoError("disk on fire at /secret/path");
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
    trims++;
    return Status::Ok();
  }
  Status WriteZeroes(uint64_t off, uint64_t len, bool may_punch, bool) override {
    std::lock_guard<std::mutex> l(mu_);
    std::memset(data_.data() + off, 0, len);
    zeroes++;
    punches += may_punch;
    return Status::Ok();
  }
  Result<nbd::ExportExtent> BlockStatus(uint64_t off, uint64_t max) override {
    if (off >= zero_from) return nbd::ExportExtent{std::min(max, data_.size() - off), true, true};
    return nbd::ExportExtent{std::min(max, zero_from - off), false, false};
  }
  uint64_t zero_from = UINT64_MAX;
  std::vector<uint8_t> data_;
  std::mutex mu_;
  std::atomic<int> flushes{0}, fua_writes{0}, trims{0}, zeroes{0}, punches{0};
};

// Volumes "vol" (for anyone) and "private" (only iqn.2000-01.test:owner), "gone" (detached).
class MapResolver final : public TargetResolver {
 public:
  Result<std::shared_ptr<nbd::Export>> ResolveTarget(std::string_view volume,
                                                     std::string_view initiator,
                                                     std::string_view) override {
    if (volume == "gone") return Unavailable("volume 'gone' is not attached");
    auto it = exports.find(std::string(volume));
    if (it == exports.end() || (volume == "private" && initiator != "iqn.2000-01.test:owner")) {
      return NotFound("no target for this initiator");
    }
    return it->second;
  }
  std::vector<std::string> ListTargets(std::string_view initiator, std::string_view) override {
    std::vector<std::string> n;
    for (auto& [k, v] : exports) {
      if (k != "private" || initiator == "iqn.2000-01.test:owner") n.push_back(k);
    }
    return n;
  }
  std::map<std::string, std::shared_ptr<nbd::Export>> exports;
};

// A minimal initiator: one connection, one command at a time.
class Initiator {
 public:
  explicit Initiator(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Initiator() { ::close(fd_); }

  void Send(const std::vector<uint8_t>& b) {
    ASSERT_EQ(::send(fd_, b.data(), b.size(), MSG_NOSIGNAL), ssize_t(b.size()));
  }
  // Reads one PDU; false when the connection closed.
  bool Recv(std::vector<uint8_t>& bhs, std::vector<uint8_t>& data) {
    bhs.resize(kBhsSize);
    if (!RecvAll(bhs.data(), kBhsSize)) return false;
    uint32_t len = uint32_t(bhs[5]) << 16 | uint32_t(bhs[6]) << 8 | bhs[7];
    data.resize(Padded(len));
    if (!RecvAll(data.data(), data.size())) return false;
    data.resize(len);
    return true;
  }
  bool RecvAll(uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= size_t(r);
    }
    return true;
  }

  // Logs in through both stages; returns the login status.
  uint16_t Login(const std::string& initiator, const std::string& target,
                 std::map<std::string, std::string> op = {}) {
    std::vector<uint8_t> text;
    AppendText(text, "InitiatorName", initiator);
    AppendText(text, "SessionType", target.empty() ? "Discovery" : "Normal");
    if (!target.empty()) AppendText(text, "TargetName", target);
    AppendText(text, "AuthMethod", "None");
    uint16_t st = LoginStep(0, 1, text);
    if (st != 0) return st;
    text.clear();
    if (op.empty()) {
      op = {{"HeaderDigest", "None"},
            {"DataDigest", "None"},
            {"InitialR2T", "No"},
            {"ImmediateData", "Yes"},
            {"MaxRecvDataSegmentLength", "4096"},
            {"MaxBurstLength", "8192"},
            {"FirstBurstLength", "2048"}};
    }
    for (auto& [k, v] : op) AppendText(text, k, v);
    return LoginStep(1, 3, text);
  }
  uint16_t LoginStep(uint8_t csg, uint8_t nsg, const std::vector<uint8_t>& text) {
    Bhs b{};
    b[0] = kOpLoginRequest | kImmediateBit;
    b[1] = uint8_t(kLoginTransit | csg << 2 | nsg);
    b[8] = 0x80;
    PutU32(&b[16], itt_++);
    PutU32(&b[24], cmd_sn_);
    PutU32(&b[28], exp_stat_sn_);
    Send(BuildPdu(b, text));
    std::vector<uint8_t> bhs, data;
    if (!Recv(bhs, data)) return 0xffff;
    EXPECT_EQ(bhs[0], kOpLoginResponse);
    exp_stat_sn_ = GetU32(&bhs[24]) + 1;
    last_keys = data;
    return GetU16(&bhs[36]);
  }

  struct Result {
    uint8_t status = 0xff;  // SCSI status; 0xff: no response
    std::vector<uint8_t> data;
    std::vector<uint8_t> sense;
    uint32_t r2ts = 0;
    uint8_t flags = 0;
    uint32_t residual = 0;
  };
  // One SCSI command. `out`: write data (immediate up to `immediate`, then unsolicited up to
  // `unsolicited`, the rest on R2T).
  Result Command(std::array<uint8_t, 16> cdb, uint32_t edtl, const std::vector<uint8_t>& out = {},
                 uint32_t immediate = 0, uint32_t unsolicited = 0, uint64_t lun = 0) {
    Bhs b{};
    b[0] = kOpScsiCommand;
    const bool write = !out.empty();
    immediate = std::min<uint32_t>(immediate, uint32_t(out.size()));
    unsolicited = std::min<uint32_t>(unsolicited, uint32_t(out.size()));
    b[1] = uint8_t((unsolicited > immediate ? 0 : kFinalBit) | (write ? kCmdWrite : kCmdRead));
    PutU64(&b[8], lun);
    const uint32_t itt = itt_++;
    PutU32(&b[16], itt);
    PutU32(&b[20], edtl);
    PutU32(&b[24], cmd_sn_++);
    PutU32(&b[28], exp_stat_sn_);
    std::memcpy(&b[32], cdb.data(), 16);
    Send(BuildPdu(b, std::span<const uint8_t>(out).subspan(0, immediate)));
    if (unsolicited > immediate)
      SendData(itt, kReservedTag, out, immediate, unsolicited - immediate);
    Result r;
    std::vector<uint8_t> bhs, data;
    while (Recv(bhs, data)) {
      const uint8_t op = bhs[0] & 0x3f;
      if (op == kOpDataIn) {
        EXPECT_EQ(GetU32(&bhs[40]), r.data.size());
        r.data.insert(r.data.end(), data.begin(), data.end());
        if (bhs[1] & kDataInStatus) {
          r.status = bhs[3];
          r.flags = bhs[1];
          r.residual = GetU32(&bhs[44]);
          exp_stat_sn_ = GetU32(&bhs[24]) + 1;
          return r;
        }
      } else if (op == kOpR2t) {
        ++r.r2ts;
        SendData(itt, GetU32(&bhs[20]), out, GetU32(&bhs[40]), GetU32(&bhs[44]));
      } else if (op == kOpScsiResponse) {
        EXPECT_EQ(GetU32(&bhs[16]), itt);
        r.status = bhs[3];
        r.flags = bhs[1];
        r.residual = GetU32(&bhs[44]);
        if (data.size() >= 2) r.sense.assign(data.begin() + 2, data.end());
        exp_stat_sn_ = GetU32(&bhs[24]) + 1;
        return r;
      } else {
        ADD_FAILURE() << "unexpected opcode " << int(op);
        return r;
      }
    }
    return r;
  }
  // Data-Out PDUs of at most 1024 bytes for [offset, offset+len).
  void SendData(uint32_t itt, uint32_t ttt, const std::vector<uint8_t>& out, uint32_t offset,
                uint32_t len) {
    uint32_t data_sn = 0;
    for (uint32_t pos = 0; pos < len;) {
      uint32_t n = std::min<uint32_t>(1024, len - pos);
      Bhs b{};
      b[0] = kOpDataOut;
      b[1] = pos + n == len ? kFinalBit : 0;
      PutU32(&b[16], itt);
      PutU32(&b[20], ttt);
      PutU32(&b[28], exp_stat_sn_);
      PutU32(&b[36], data_sn++);
      PutU32(&b[40], offset + pos);
      Send(BuildPdu(b, std::span<const uint8_t>(out).subspan(offset + pos, n)));
      pos += n;
    }
  }
  // A text request; returns the response's data.
  std::vector<uint8_t> TextRequest(const std::vector<uint8_t>& text) {
    Bhs b{};
    b[0] = kOpTextRequest;
    b[1] = kFinalBit;
    PutU32(&b[16], itt_++);
    PutU32(&b[20], kReservedTag);
    PutU32(&b[24], cmd_sn_++);
    Send(BuildPdu(b, text));
    std::vector<uint8_t> bhs, data;
    EXPECT_TRUE(Recv(bhs, data));
    EXPECT_EQ(bhs[0], kOpTextResponse);
    return data;
  }

  int fd_ = -1;
  uint32_t itt_ = 1;
  uint32_t cmd_sn_ = 1;
  uint32_t exp_stat_sn_ = 0;
  std::vector<uint8_t> last_keys;
};

std::array<uint8_t, 16> Cdb(std::initializer_list<uint8_t> bytes) {
  std::array<uint8_t, 16> c{};
  size_t i = 0;
  for (uint8_t b : bytes) c[i++] = b;
  return c;
}

std::array<uint8_t, 16> Rw10(uint8_t op, uint32_t lba, uint16_t blocks, bool fua = false) {
  auto c = Cdb({op, uint8_t(fua ? 0x08 : 0)});
  PutU32(&c[2], lba);
  PutU16(&c[7], blocks);
  return c;
}

constexpr const char* kOwner = "iqn.2000-01.test:owner";
constexpr const char* kOther = "iqn.2000-01.test:other";
constexpr const char* kVol = "iqn.2026-12.io.ingot:vol";

class IscsiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = std::make_shared<MemoryExport>(8 << 20);
    resolver_.exports["vol"] = disk_;
    resolver_.exports["private"] = std::make_shared<MemoryExport>(1 << 20);
    server_ = std::make_unique<Server>(ServerOptions{.port = 0, .max_transfer_bytes = 1 << 20},
                                       resolver_);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::shared_ptr<MemoryExport> disk_;
  MapResolver resolver_;
  std::unique_ptr<Server> server_;
};

TEST_F(IscsiServerTest, InquiryCapacityAndRead) {
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  auto r = i.Command(Cdb({kScsiInquiry, 0, 0, 0, 255}), 255);
  EXPECT_EQ(r.status, kStatusGood);
  ASSERT_EQ(r.data.size(), 66u);
  EXPECT_EQ(r.flags & kResidualUnderflow, kResidualUnderflow);
  EXPECT_EQ(r.residual, 255u - 66);
  // A READ with a smaller EDTL than it moves: overflow, also when the EDTL is 0.
  r = i.Command(Rw10(kScsiRead10, 0, 2), 512);
  EXPECT_EQ(r.data.size(), 512u);
  EXPECT_EQ(r.flags & kResidualOverflow, kResidualOverflow);
  EXPECT_EQ(r.residual, 512u);
  r = i.Command(Rw10(kScsiRead10, 0, 1), 0);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(r.flags & kResidualOverflow, kResidualOverflow);
  EXPECT_EQ(r.residual, 512u);
  // A command outside the CmdSN window is ignored: the next one is answered first.
  i.cmd_sn_ += 1000;
  Bhs stray{};
  stray[0] = kOpScsiCommand;
  stray[1] = kFinalBit;
  PutU32(&stray[16], 4242);
  PutU32(&stray[24], i.cmd_sn_);
  i.Send(BuildPdu(stray));
  i.cmd_sn_ -= 1000;
  r = i.Command(Cdb({kScsiTestUnitReady}), 0);
  EXPECT_EQ(r.status, kStatusGood);
  r = i.Command(Cdb({kScsiReadCapacity10}), 8);
  ASSERT_EQ(r.data.size(), 8u);
  EXPECT_EQ(GetU32(&r.data[0]), (8u << 20) / 512 - 1);
  // 64 KiB: Data-In PDUs of the initiator's 4096 bytes, sequences of its MaxBurstLength.
  r = i.Command(Rw10(kScsiRead10, 16, 128), 65536);
  EXPECT_EQ(r.status, kStatusGood);
  ASSERT_EQ(r.data.size(), 65536u);
  EXPECT_EQ(0, std::memcmp(r.data.data(), disk_->data_.data() + 16 * 512, 65536));
  r = i.Command(Rw10(kScsiRead10, (8u << 20) / 512, 1), 512);
  EXPECT_EQ(r.status, kStatusCheckCondition);
  ASSERT_EQ(r.sense.size(), 18u);
  EXPECT_EQ(r.sense[2], kSenseIllegalRequest);
  EXPECT_EQ(r.sense[12], 0x21);
  r = i.Command(Cdb({kScsiTestUnitReady}), 0, {}, 0, 0, /*lun=*/uint64_t(1) << 48);
  EXPECT_EQ(r.status, kStatusCheckCondition);
  EXPECT_EQ(r.sense[12], 0x25);
  EXPECT_EQ(server_->ActiveVolumes(), std::vector<std::string>{"vol"});
}

TEST_F(IscsiServerTest, WritesImmediateUnsolicitedAndSolicited) {
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  std::vector<uint8_t> data(40000 / 512 * 512);
  for (size_t k = 0; k < data.size(); ++k) data[k] = uint8_t(k * 7 + 3);
  const uint16_t blocks = uint16_t(data.size() / 512);
  // 1024 immediate, up to FirstBurstLength (2048) unsolicited, the rest in 8 KiB bursts.
  auto r =
      i.Command(Rw10(kScsiWrite10, 100, blocks, true), uint32_t(data.size()), data, 1024, 2048);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(r.r2ts, (data.size() - 2048 + 8191) / 8192);
  EXPECT_EQ(0, std::memcmp(disk_->data_.data() + 100 * 512, data.data(), data.size()));
  EXPECT_EQ(disk_->fua_writes.load(), 1);
  // All solicited.
  std::reverse(data.begin(), data.end());
  r = i.Command(Rw10(kScsiWrite10, 1000, blocks), uint32_t(data.size()), data, 0, 0);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(0, std::memcmp(disk_->data_.data() + 1000 * 512, data.data(), data.size()));
  r = i.Command(Cdb({kScsiSynchronizeCache10}), 0);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(disk_->flushes.load(), 1);
  // The export's failure is a MEDIUM ERROR; its message stays in the log.
  r = i.Command(Rw10(kScsiWrite10, 4096, 1), 512, std::vector<uint8_t>(512, 1), 512);
  EXPECT_EQ(r.status, kStatusCheckCondition);
  EXPECT_EQ(r.sense[2], kSenseMediumError);
  // Still in step after all that.
  r = i.Command(Rw10(kScsiRead10, 100, 1), 512);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(r.data[0], 3);
}

TEST_F(IscsiServerTest, UnmapAndWriteSame) {
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  std::vector<uint8_t> list(40, 0);
  PutU16(&list[0], 38);
  PutU16(&list[2], 32);
  PutU64(&list[8], 10);
  PutU32(&list[16], 2);
  PutU64(&list[24], 100);
  PutU32(&list[32], 1);
  auto c = Cdb({kScsiUnmap});
  PutU16(&c[7], 40);
  auto r = i.Command(c, 40, list, 0, 0);  // the parameter list solicited by R2T
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(disk_->punches.load(), 2);  // zeroes that may free: unmapped blocks read as zeros
  EXPECT_EQ(disk_->data_[10 * 512], 0);
  EXPECT_EQ(disk_->data_[100 * 512 + 511], 0);
  EXPECT_NE(disk_->data_[101 * 512], 0);
  PutU64(&list[24], (8u << 20) / 512);  // past the end: nothing is unmapped
  r = i.Command(c, 40, list, 40);
  EXPECT_EQ(r.status, kStatusCheckCondition);
  EXPECT_EQ(r.sense[12], 0x21);
  EXPECT_EQ(disk_->punches.load(), 2);
  // WRITE SAME(16): zeros with UNMAP punch; a pattern is written block by block.
  auto ws = Cdb({kScsiWriteSame16, 0x08});
  PutU64(&ws[2], 200);
  PutU32(&ws[10], 8);
  r = i.Command(ws, 512, std::vector<uint8_t>(512, 0), 512);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(disk_->punches.load(), 3);
  EXPECT_EQ(disk_->data_[200 * 512 + 8 * 512 - 1], 0);
  ws[1] = 0;
  std::vector<uint8_t> block(512);
  for (size_t k = 0; k < 512; ++k) block[k] = uint8_t(k | 1);
  r = i.Command(ws, 512, block, 512);
  EXPECT_EQ(r.status, kStatusGood);
  for (int b = 0; b < 8; ++b) {
    EXPECT_EQ(0, std::memcmp(disk_->data_.data() + (200 + b) * 512, block.data(), 512)) << b;
  }
  ws[1] = 0x01;  // NDOB: no data-out, zeros
  r = i.Command(ws, 0);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_EQ(disk_->data_[203 * 512 + 1], 0);
}

TEST_F(IscsiServerTest, VerifyComparesAndDataSnIsChecked) {
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  std::vector<uint8_t> same(disk_->data_.begin() + 1024, disk_->data_.begin() + 1024 + 2048);
  auto c = Cdb({kScsiVerify10, 0x02});
  PutU32(&c[2], 2);
  PutU16(&c[7], 4);
  auto r = i.Command(c, 2048, same, 512, 1024);
  EXPECT_EQ(r.status, kStatusGood);
  same[2000] ^= 1;
  r = i.Command(c, 2048, same, 0, 0);
  EXPECT_EQ(r.status, kStatusCheckCondition);
  EXPECT_EQ(r.sense[2], kSenseMiscompare);
  // A Data-Out whose DataSN skips one ends the connection (error recovery level 0).
  Bhs b{};
  b[0] = kOpScsiCommand;
  b[1] = kCmdWrite;  // no F: unsolicited data follows
  PutU32(&b[16], 777);
  PutU32(&b[20], 1024);
  PutU32(&b[24], i.cmd_sn_++);
  auto w = Rw10(kScsiWrite10, 0, 2);
  std::memcpy(&b[32], w.data(), 16);
  i.Send(BuildPdu(b));
  Bhs d{};
  d[0] = kOpDataOut;
  d[1] = kFinalBit;
  PutU32(&d[16], 777);
  PutU32(&d[20], kReservedTag);
  PutU32(&d[36], 1);  // should be 0
  i.Send(BuildPdu(d, std::vector<uint8_t>(1024, 0x5a)));
  std::vector<uint8_t> bhs, data;
  EXPECT_FALSE(i.Recv(bhs, data));
  EXPECT_NE(disk_->data_[0], 0x5a);
}

TEST_F(IscsiServerTest, GetLbaStatusFollowsBlockStatus) {
  disk_->zero_from = 4 << 20;  // the second half reads as zeros
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  auto c = Cdb({kScsiServiceActionIn16, 0x12});
  PutU64(&c[2], 1000);
  PutU32(&c[10], 4096);
  auto r = i.Command(c, 4096);
  EXPECT_EQ(r.status, kStatusGood);
  ASSERT_EQ(r.data.size(), 8u + 32);
  EXPECT_EQ(GetU64(&r.data[8]), 1000u);
  EXPECT_EQ(GetU32(&r.data[16]), (4u << 20) / 512 - 1000);
  EXPECT_EQ(r.data[20], 0);  // mapped
  EXPECT_EQ(GetU64(&r.data[24]), (4u << 20) / 512);
  EXPECT_EQ(GetU32(&r.data[32]), (4u << 20) / 512);
  EXPECT_EQ(r.data[36], 1);  // deallocated: reads as zeros
}

TEST_F(IscsiServerTest, SecondInitiatorIsReadOnly) {
  Initiator a(server_->port());
  ASSERT_EQ(a.Login(kOwner, kVol), 0);
  Initiator b(server_->port());
  ASSERT_EQ(b.Login(kOther, kVol), 0);
  auto r = b.Command(Cdb({kScsiModeSense6, 0, 0x3f, 0, 255}), 255);
  ASSERT_GE(r.data.size(), 4u);
  EXPECT_EQ(r.data[2] & 0x80, 0x80);
  r = a.Command(Cdb({kScsiModeSense6, 0, 0x3f, 0, 255}), 255);
  EXPECT_EQ(r.data[2] & 0x80, 0);
  r = b.Command(Rw10(kScsiWrite10, 0, 1), 512, std::vector<uint8_t>(512, 9), 512);
  EXPECT_EQ(r.status, kStatusCheckCondition);
  EXPECT_EQ(r.sense[2], kSenseDataProtect);
  EXPECT_EQ(r.sense[12], 0x27);
  EXPECT_NE(disk_->data_[0], 9);
  // Unsolicited data of a refused write is dropped, and the session goes on.
  r = b.Command(Rw10(kScsiWrite10, 0, 4), 2048, std::vector<uint8_t>(2048, 9), 512, 2048);
  EXPECT_EQ(r.status, kStatusCheckCondition);
  r = b.Command(Rw10(kScsiRead10, 0, 1), 512);
  EXPECT_EQ(r.status, kStatusGood);
  r = a.Command(Rw10(kScsiWrite10, 0, 1), 512, std::vector<uint8_t>(512, 9), 512);
  EXPECT_EQ(r.status, kStatusGood);
  r = b.Command(Rw10(kScsiRead10, 0, 1), 512);
  EXPECT_EQ(r.data[0], 9);  // one Export: the reader sees the writer's write
}

TEST_F(IscsiServerTest, WriterSlotFreedWhenItsSessionEnds) {
  {
    Initiator a(server_->port());
    ASSERT_EQ(a.Login(kOwner, kVol), 0);
    // A command answered: the session is in full feature phase, so it shows in ActiveVolumes.
    EXPECT_EQ(a.Command(Cdb({kScsiTestUnitReady}), 0).status, kStatusGood);
  }
  for (int k = 0; k < 200 && !server_->ActiveVolumes().empty(); ++k) usleep(10000);
  Initiator b(server_->port());
  ASSERT_EQ(b.Login(kOther, kVol), 0);
  auto r = b.Command(Rw10(kScsiWrite10, 0, 1), 512, std::vector<uint8_t>(512, 5), 512);
  EXPECT_EQ(r.status, kStatusGood);
}

TEST(IscsiWriterClaimsTest, SharedWithNbd) {
  // The NBD server holds "vol" for a machine: an iSCSI initiator gets it read-only until released.
  MapResolver resolver;
  auto disk = std::make_shared<MemoryExport>(1 << 20);
  resolver.exports["vol"] = disk;
  nbd::WriterClaims claims;
  ASSERT_TRUE(claims.Claim("vol", "nbd 10.0.0.5"));
  Server server(ServerOptions{.port = 0, .writers = &claims}, resolver);
  ASSERT_TRUE(server.Start().ok());
  {
    Initiator i(server.port());
    ASSERT_EQ(i.Login(kOwner, kVol), 0);
    auto r = i.Command(Rw10(kScsiWrite10, 0, 1), 512, std::vector<uint8_t>(512, 9), 512);
    EXPECT_EQ(r.sense.size() > 2 ? r.sense[2] : 0, kSenseDataProtect);
  }
  claims.Release("vol");
  for (int k = 0; k < 200 && !server.ActiveVolumes().empty(); ++k) usleep(10000);
  Initiator i(server.port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  auto r = i.Command(Rw10(kScsiWrite10, 0, 1), 512, std::vector<uint8_t>(512, 9), 512);
  EXPECT_EQ(r.status, kStatusGood);
  EXPECT_FALSE(claims.Claim("vol", "nbd 10.0.0.5"));  // the initiator holds it now
  EXPECT_FALSE(claims.CanWrite("vol", "nbd 10.0.0.5"));
}

TEST_F(IscsiServerTest, LoginRefusals) {
  {
    Initiator i(server_->port());
    EXPECT_EQ(i.Login(kOther, "iqn.2026-12.io.ingot:private"), kLoginNotFound);
  }
  {
    Initiator i(server_->port());
    EXPECT_EQ(i.Login(kOther, "iqn.2026-12.io.ingot:nothing"), kLoginNotFound);
  }
  {
    Initiator i(server_->port());
    EXPECT_EQ(i.Login(kOther, "iqn.1999-01.elsewhere:vol"), kLoginNotFound);
  }
  {
    Initiator i(server_->port());
    EXPECT_EQ(i.Login(kOther, "iqn.2026-12.io.ingot:gone"), kLoginServiceUnavailable);
  }
  {
    Initiator i(server_->port());
    EXPECT_EQ(i.Login(kOwner, "iqn.2026-12.io.ingot:private"), 0);
  }
  EXPECT_GE(server_->stats().refused, 4u);
}

TEST_F(IscsiServerTest, DiscoveryListsWhatTheInitiatorMaySee) {
  auto targets = [&](const char* who) {
    Initiator i(server_->port());
    EXPECT_EQ(i.Login(who, ""), 0);
    std::vector<uint8_t> q;
    AppendText(q, "SendTargets", "All");
    auto data = i.TextRequest(q);
    return std::string(data.begin(), data.end());
  };
  const std::string port = std::to_string(server_->port());
  std::string all = targets(kOwner);
  EXPECT_NE(all.find("TargetName=iqn.2026-12.io.ingot:private"), std::string::npos);
  EXPECT_NE(all.find("TargetName=iqn.2026-12.io.ingot:vol"), std::string::npos);
  EXPECT_NE(all.find(std::string("TargetAddress=127.0.0.1:") + port + ",1"), std::string::npos);
  std::string some = targets(kOther);
  EXPECT_EQ(some.find("private"), std::string::npos);
  EXPECT_NE(some.find("io.ingot:vol"), std::string::npos);
}

TEST_F(IscsiServerTest, LongSendTargetsAnswerIsContinued) {
  for (int k = 0; k < 40; ++k)
    resolver_.exports["volume-with-a-long-name-" + std::to_string(k)] = disk_;
  Initiator i(server_->port());
  // Login with MaxRecvDataSegmentLength=512: 41 targets do not fit in one Text Response.
  std::vector<uint8_t> text;
  AppendText(text, "InitiatorName", kOwner);
  AppendText(text, "SessionType", "Discovery");
  AppendText(text, "MaxRecvDataSegmentLength", "512");
  ASSERT_EQ(i.LoginStep(1, 3, text), 0);
  std::vector<uint8_t> q;
  AppendText(q, "SendTargets", "All");
  Bhs b{};
  b[0] = kOpTextRequest;
  b[1] = kFinalBit;
  PutU32(&b[16], 99);
  PutU32(&b[20], kReservedTag);
  PutU32(&b[24], i.cmd_sn_++);
  i.Send(BuildPdu(b, q));
  std::string all;
  int pieces = 0;
  std::vector<uint8_t> bhs, data;
  while (i.Recv(bhs, data)) {
    ASSERT_EQ(bhs[0], kOpTextResponse);
    ASSERT_LE(data.size(), 512u);
    all.append(data.begin(), data.end());
    ++pieces;
    if (bhs[1] & kFinalBit) {
      EXPECT_EQ(GetU32(&bhs[20]), kReservedTag);
      break;
    }
    EXPECT_EQ(bhs[1], kTextContinue);
    Bhs more{};
    more[0] = kOpTextRequest;
    more[1] = kFinalBit;
    PutU32(&more[16], 99);
    std::memcpy(&more[20], &bhs[20], 4);  // the TTT it gave
    PutU32(&more[24], i.cmd_sn_++);
    i.Send(BuildPdu(more));
  }
  EXPECT_GT(pieces, 2);
  EXPECT_EQ(all.back(), '\0');  // the pieces join into whole pairs
  size_t names = 0;
  for (size_t pos = 0; (pos = all.find("TargetName=", pos)) != std::string::npos; ++pos) ++names;
  EXPECT_EQ(names, 42u);
}

TEST_F(IscsiServerTest, NopLogoutTaskManagementAndClose) {
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  Bhs nop{};
  nop[0] = kOpNopOut | kImmediateBit;
  nop[1] = kFinalBit;
  PutU32(&nop[16], 77);
  PutU32(&nop[20], kReservedTag);
  i.Send(BuildPdu(nop, std::vector<uint8_t>{1, 2, 3}));
  std::vector<uint8_t> bhs, data;
  ASSERT_TRUE(i.Recv(bhs, data));
  EXPECT_EQ(bhs[0], kOpNopIn);
  EXPECT_EQ(GetU32(&bhs[16]), 77u);
  EXPECT_EQ(data, (std::vector<uint8_t>{1, 2, 3}));
  Bhs tmf{};
  tmf[0] = kOpTaskMgmtRequest | kImmediateBit;
  tmf[1] = kFinalBit | 5;  // LOGICAL UNIT RESET
  PutU32(&tmf[16], 78);
  i.Send(BuildPdu(tmf));
  ASSERT_TRUE(i.Recv(bhs, data));
  EXPECT_EQ(bhs[0], kOpTaskMgmtResponse);
  EXPECT_EQ(bhs[2], kTmfComplete);
  EXPECT_EQ(server_->CloseVolume("vol"), 1u);
  EXPECT_FALSE(i.Recv(bhs, data));

  Initiator j(server_->port());
  ASSERT_EQ(j.Login(kOwner, kVol), 0);
  Bhs logout{};
  logout[0] = kOpLogoutRequest | kImmediateBit;
  logout[1] = kFinalBit;
  PutU32(&logout[16], 79);
  j.Send(BuildPdu(logout));
  ASSERT_TRUE(j.Recv(bhs, data));
  EXPECT_EQ(bhs[0], kOpLogoutResponse);
  EXPECT_EQ(bhs[2], 0);
  EXPECT_FALSE(j.Recv(bhs, data));
}

TEST_F(IscsiServerTest, TooManyWritesWaitingForDataCloseTheConnection) {
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  // WRITEs of 1 MiB whose data never comes: R2Ts answer the first 16; the 17th ends the session.
  size_t r2ts = 0;
  for (uint32_t k = 0; k < 17; ++k) {
    Bhs b{};
    b[0] = kOpScsiCommand;
    b[1] = kFinalBit | kCmdWrite;
    PutU32(&b[16], 1000 + k);
    PutU32(&b[20], 1 << 20);
    PutU32(&b[24], k + 1);
    auto c = Rw10(kScsiWrite10, k * 8, 2048);
    std::memcpy(&b[32], c.data(), 16);
    i.Send(BuildPdu(b));
  }
  std::vector<uint8_t> bhs, data;
  while (i.Recv(bhs, data)) r2ts += (bhs[0] & 0x3f) == kOpR2t;
  EXPECT_EQ(r2ts, 16u);
}

TEST_F(IscsiServerTest, OversizedPduClosesTheConnection) {
  Initiator i(server_->port());
  ASSERT_EQ(i.Login(kOwner, kVol), 0);
  Bhs b{};
  b[0] = kOpNopOut | kImmediateBit;
  b[1] = kFinalBit;
  b[5] = 0x10;  // 1 MiB of data: over the 256 KiB we declared
  i.Send(std::vector<uint8_t>(b.begin(), b.end()));
  std::vector<uint8_t> bhs, data;
  EXPECT_FALSE(i.Recv(bhs, data));
}

bool Have(const char* tool) {
  std::string cmd = std::string("command -v ") + tool + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST_F(IscsiServerTest, LibiscsiLists) {
  if (!Have("iscsi-ls")) GTEST_SKIP() << "iscsi-ls (libiscsi-bin) not installed";
  const std::string url = "iscsi://127.0.0.1:" + std::to_string(server_->port());
  std::string out = Shell("iscsi-ls -s -i " + std::string(kOther) + " " + url + " 2>&1");
  EXPECT_NE(out.find("Target:" + std::string(kVol)), std::string::npos) << out;
  EXPECT_EQ(out.find("private"), std::string::npos) << out;
  EXPECT_NE(out.find("Lun:0"), std::string::npos) << out;
}

TEST_F(IscsiServerTest, QemuReadsAndWrites) {
  if (!Have("qemu-img") || !Have("qemu-io")) GTEST_SKIP() << "qemu-utils not installed";
  const std::string url =
      "iscsi://127.0.0.1:" + std::to_string(server_->port()) + "/" + kVol + "/0";
  char dir[] = "/tmp/iscsi_testXXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string raw = std::string(dir) + "/out.raw";
  std::string out = Shell("qemu-img convert -O raw '" + url + "' " + raw + " 2>&1");
  EXPECT_EQ(out.find("GET_LBA_STATUS"), std::string::npos) << out;
  if (out.find("Unknown protocol") != std::string::npos ||
      out.find("Unknown driver") != std::string::npos) {
    GTEST_SKIP() << "qemu has no iSCSI driver (qemu-block-extra): " << out;
  }
  std::ifstream f(raw, std::ios::binary);
  std::vector<uint8_t> got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(got == disk_->data_) << out;
  out = Shell(
      "qemu-io -f raw -c 'write -P 0xab 1M 300k' -c 'flush' -c 'discard 2M 1M' "
      "-c 'write -z 4M 1M' -c 'read -P 0 2M 1M' -c 'read -P 0 4M 1M' '" +
      url + "' 2>&1");
  EXPECT_NE(out.find("wrote 307200/307200"), std::string::npos) << out;
  EXPECT_NE(out.find("discard 1048576/1048576"), std::string::npos) << out;
  EXPECT_EQ(out.find("failed"), std::string::npos) << out;
  EXPECT_GE(disk_->punches.load(), 1) << out;  // discard is UNMAP; qemu may write zeros as data
  EXPECT_EQ(out.find("GET_LBA_STATUS"), std::string::npos) << out;
  EXPECT_EQ(disk_->data_[1 << 20], 0xab);
  EXPECT_EQ(disk_->data_[(1 << 20) + 307199], 0xab);
  EXPECT_GE(disk_->flushes.load(), 1);
  Shell("rm -rf " + std::string(dir));
}

}  // namespace
}  // namespace ingot::iscsi
