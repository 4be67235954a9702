#include "nbd/wire.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ingot::nbd {
namespace {

struct Reply {
  uint32_t option = 0;
  uint32_t type = 0;
  std::vector<uint8_t> payload;
};

// Splits option replies the way a client reads them.
std::vector<Reply> Replies(const std::vector<uint8_t>& out) {
  std::vector<Reply> r;
  size_t pos = 0;
  while (pos < out.size()) {
    EXPECT_GE(out.size() - pos, 20u);
    EXPECT_EQ(GetU64(&out[pos]), kOptReplyMagic);
    Reply x;
    x.option = GetU32(&out[pos + 8]);
    x.type = GetU32(&out[pos + 12]);
    uint32_t len = GetU32(&out[pos + 16]);
    x.payload.assign(out.begin() + pos + 20, out.begin() + pos + 20 + len);
    r.push_back(x);
    pos += 20 + len;
  }
  return r;
}

std::vector<uint8_t> GoData(const std::string& name, std::vector<uint16_t> infos = {}) {
  std::vector<uint8_t> d;
  PutU32(d, uint32_t(name.size()));
  d.insert(d.end(), name.begin(), name.end());
  PutU16(d, uint16_t(infos.size()));
  for (uint16_t i : infos) PutU16(d, i);
  return d;
}

std::vector<uint8_t> MetaData(const std::string& name, std::vector<std::string> queries) {
  std::vector<uint8_t> d;
  PutU32(d, uint32_t(name.size()));
  d.insert(d.end(), name.begin(), name.end());
  PutU32(d, uint32_t(queries.size()));
  for (auto& q : queries) {
    PutU32(d, uint32_t(q.size()));
    d.insert(d.end(), q.begin(), q.end());
  }
  return d;
}

class NegotiationTest : public ::testing::Test {
 protected:
  Negotiation n_{[this](std::string_view name, bool final) -> Result<ExportDescription> {
                   lookups_.push_back(std::string(name) + (final ? "!" : "?"));
                   if (name == "vol1") {
                     return ExportDescription{.size = 1 << 20,
                                              .transmission_flags = kTxHasFlags | kTxSendFlush,
                                              .description = "volume one"};
                   }
                   if (name == "secret") return PermissionDenied("not from this address");
                   return NotFound("no such volume");
                 },
                 [] { return std::vector<std::string>{"vol1", "vol2"}; }};
  std::vector<std::string> lookups_;
  std::vector<uint8_t> out_;
};

TEST(Wire, GreetingIsFixedNewstyle) {
  auto g = Greeting();
  ASSERT_EQ(g.size(), 18u);
  EXPECT_EQ(std::string(g.begin(), g.begin() + 8), "NBDMAGIC");
  EXPECT_EQ(std::string(g.begin() + 8, g.begin() + 16), "IHAVEOPT");
  EXPECT_EQ(GetU16(&g[16]), kFlagFixedNewstyle | kFlagNoZeroes);
}

TEST_F(NegotiationTest, ClientFlags) {
  EXPECT_FALSE(n_.OnClientFlags(0));                                // old newstyle
  EXPECT_FALSE(n_.OnClientFlags(kClientFixedNewstyle | 1u << 7));   // unknown bit
  EXPECT_TRUE(n_.OnClientFlags(kClientFixedNewstyle | kClientNoZeroes));
}

TEST_F(NegotiationTest, GoAnswersInfoThenAck) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  auto next = n_.OnOption(kOptGo, GoData("vol1", {kInfoName, kInfoDescription}), out_);
  EXPECT_EQ(next, Negotiation::Next::kTransmission);
  auto r = Replies(out_);
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].type, kRepInfo);
  ASSERT_EQ(r[0].payload.size(), 12u);
  EXPECT_EQ(GetU16(&r[0].payload[0]), kInfoExport);
  EXPECT_EQ(GetU64(&r[0].payload[2]), 1u << 20);
  EXPECT_EQ(GetU16(&r[0].payload[10]), kTxHasFlags | kTxSendFlush);
  EXPECT_EQ(GetU16(&r[1].payload[0]), kInfoName);
  EXPECT_EQ(std::string(r[1].payload.begin() + 2, r[1].payload.end()), "vol1");
  EXPECT_EQ(std::string(r[2].payload.begin() + 2, r[2].payload.end()), "volume one");
  EXPECT_EQ(GetU16(&r[3].payload[0]), kInfoBlockSize);
  EXPECT_EQ(GetU32(&r[3].payload[10]), 32u << 20);
  EXPECT_EQ(r[4].type, kRepAck);
  EXPECT_EQ(n_.export_name(), "vol1");
  EXPECT_EQ(lookups_, std::vector<std::string>{"vol1!"});
}

TEST_F(NegotiationTest, InfoDoesNotCommit) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  EXPECT_EQ(n_.OnOption(kOptInfo, GoData("vol1"), out_), Negotiation::Next::kContinue);
  EXPECT_EQ(Replies(out_).back().type, kRepAck);
  EXPECT_EQ(lookups_, std::vector<std::string>{"vol1?"});
}

TEST_F(NegotiationTest, RefusalsKeepTheConnection) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  EXPECT_EQ(n_.OnOption(kOptGo, GoData("nope"), out_), Negotiation::Next::kContinue);
  EXPECT_EQ(n_.OnOption(kOptGo, GoData("secret"), out_), Negotiation::Next::kContinue);
  auto r = Replies(out_);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, kRepErrUnknown);
  EXPECT_EQ(r[1].type, kRepErrPolicy);
  EXPECT_EQ(std::string(r[1].payload.begin(), r[1].payload.end()), "not from this address");
}

TEST_F(NegotiationTest, MalformedGoIsInvalid) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  auto d = GoData("vol1", {kInfoName});
  d.pop_back();  // the info list ends short
  EXPECT_EQ(n_.OnOption(kOptGo, d, out_), Negotiation::Next::kContinue);
  std::vector<uint8_t> huge;
  PutU32(huge, 0xffffffffu);  // a name length past the data
  n_.OnOption(kOptGo, huge, out_);
  auto r = Replies(out_);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, kRepErrInvalid);
  EXPECT_EQ(r[1].type, kRepErrInvalid);
  EXPECT_TRUE(lookups_.empty());
}

TEST_F(NegotiationTest, ExportNameOldStyle) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  std::string name = "vol1";
  EXPECT_EQ(n_.OnOption(kOptExportName, {reinterpret_cast<const uint8_t*>(name.data()), 4}, out_),
            Negotiation::Next::kTransmission);
  ASSERT_EQ(out_.size(), 8u + 2 + 124);  // client did not ask for no-zeroes
  EXPECT_EQ(GetU64(out_.data()), 1u << 20);
  Negotiation n2([](std::string_view, bool) -> Result<ExportDescription> { return NotFound("x"); },
                 [] { return std::vector<std::string>{}; });
  ASSERT_TRUE(n2.OnClientFlags(kClientFixedNewstyle | kClientNoZeroes));
  out_.clear();
  EXPECT_EQ(n2.OnOption(kOptExportName, {reinterpret_cast<const uint8_t*>(name.data()), 4}, out_),
            Negotiation::Next::kClose);  // no way to say no but closing
  EXPECT_TRUE(out_.empty());
}

TEST_F(NegotiationTest, StructuredRepliesAndBaseAllocation) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  // Contexts before structured replies: refused.
  n_.OnOption(kOptSetMetaContext, MetaData("vol1", {"base:allocation"}), out_);
  EXPECT_EQ(Replies(out_).back().type, kRepErrInvalid);
  out_.clear();
  EXPECT_EQ(n_.OnOption(kOptStructuredReply, {}, out_), Negotiation::Next::kContinue);
  EXPECT_EQ(Replies(out_).back().type, kRepAck);
  out_.clear();
  n_.OnOption(kOptListMetaContext, MetaData("vol1", {"base:"}), out_);
  auto r = Replies(out_);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, kRepMetaContext);
  EXPECT_EQ(std::string(r[0].payload.begin() + 4, r[0].payload.end()), "base:allocation");
  out_.clear();
  n_.OnOption(kOptSetMetaContext, MetaData("vol1", {"qemu:dirty-bitmap:x", "base:allocation"}),
              out_);
  r = Replies(out_);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].type, kRepMetaContext);
  EXPECT_EQ(GetU32(r[0].payload.data()), kBaseAllocationId);
  EXPECT_EQ(r[1].type, kRepAck);
  out_.clear();
  n_.OnOption(kOptGo, GoData("vol1"), out_);
  EXPECT_TRUE(n_.structured_replies());
  EXPECT_TRUE(n_.base_allocation());
}

TEST_F(NegotiationTest, ContextForAnotherExportDoesNotCarryOver) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  n_.OnOption(kOptStructuredReply, {}, out_);
  out_.clear();
  n_.OnOption(kOptSetMetaContext, MetaData("nope", {"base:allocation"}), out_);
  EXPECT_EQ(Replies(out_).back().type, kRepErrUnknown);
  n_.OnOption(kOptGo, GoData("vol1"), out_);
  EXPECT_FALSE(n_.base_allocation());
}

TEST_F(NegotiationTest, ListAbortUnknown) {
  ASSERT_TRUE(n_.OnClientFlags(kClientFixedNewstyle));
  n_.OnOption(kOptList, {}, out_);
  auto r = Replies(out_);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].type, kRepServer);
  EXPECT_EQ(GetU32(r[0].payload.data()), 4u);
  EXPECT_EQ(r[2].type, kRepAck);
  out_.clear();
  n_.OnOption(kOptStartTls, {}, out_);
  n_.OnOption(99, {}, out_);
  n_.OnOption(kOptExtendedHeaders, {}, out_);
  r = Replies(out_);
  ASSERT_EQ(r.size(), 3u);
  for (auto& x : r) EXPECT_EQ(x.type, kRepErrUnsup);
  out_.clear();
  EXPECT_EQ(n_.OnOption(kOptAbort, {}, out_), Negotiation::Next::kClose);
}

TEST(Wire, OptionHeader) {
  std::vector<uint8_t> h;
  PutU64(h, kIHaveOpt);
  PutU32(h, kOptGo);
  PutU32(h, 10);
  auto o = ParseOptionHeader(h);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->option, kOptGo);
  EXPECT_EQ(o->length, 10u);
  h[0] ^= 1;
  EXPECT_FALSE(ParseOptionHeader(h).ok());
}

std::vector<uint8_t> RequestBytes(uint16_t flags, uint16_t type, uint64_t off, uint32_t len) {
  std::vector<uint8_t> h;
  PutU32(h, kRequestMagic);
  PutU16(h, flags);
  PutU16(h, type);
  PutU64(h, 0x1122334455667788ull);
  PutU64(h, off);
  PutU32(h, len);
  return h;
}

TEST(Wire, ParseRequest) {
  auto r = ParseRequest(RequestBytes(kCmdFlagFua, kCmdWrite, 4096, 512));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->flags, kCmdFlagFua);
  EXPECT_EQ(r->type, kCmdWrite);
  EXPECT_EQ(r->cookie, 0x1122334455667788ull);
  EXPECT_EQ(r->offset, 4096u);
  EXPECT_EQ(r->length, 512u);
  auto bad = RequestBytes(0, kCmdRead, 0, 1);
  bad[3] = 0;
  EXPECT_FALSE(ParseRequest(bad).ok());
}

TEST(Wire, CheckRequest) {
  TransmissionState s{.size = 1 << 20, .read_only = false, .structured = true,
                      .base_allocation = true, .max_payload = 65536};
  auto check = [&](uint16_t flags, uint16_t type, uint64_t off, uint32_t len) {
    return CheckRequest(Request{flags, type, 1, off, len}, s);
  };
  EXPECT_EQ(check(0, kCmdRead, 0, 4096).error, 0u);
  EXPECT_EQ(check(kCmdFlagDf, kCmdRead, 0, 4096).error, 0u);
  EXPECT_EQ(check(0, kCmdRead, (1 << 20) - 1, 2).error, kEinval);          // past the end
  EXPECT_EQ(check(0, kCmdRead, ~0ull, 2).error, kEinval);                   // overflow
  EXPECT_EQ(check(0, kCmdRead, 0, 65537).error, kEinval);                   // over max payload
  EXPECT_EQ(check(kCmdFlagReqOne, kCmdRead, 0, 1).error, kEinval);          // flag of another cmd
  EXPECT_EQ(check(0, kCmdWrite, (1 << 20) - 1, 2).error, kEnospc);
  EXPECT_EQ(check(0, kCmdWrite, (1 << 20) - 1, 2).payload, 2u);             // still to be skipped
  EXPECT_TRUE(check(0, kCmdWrite, 0, 65537).close);
  EXPECT_EQ(check(kCmdFlagNoHole, kCmdWriteZeroes, 0, 1 << 20).error, 0u);
  EXPECT_EQ(check(kCmdFlagFastZero, kCmdWriteZeroes, 0, 4096).error, kEinval);  // not offered
  EXPECT_EQ(check(kCmdFlagReqOne, kCmdBlockStatus, 0, 1 << 20).error, 0u);
  EXPECT_EQ(check(0, kCmdBlockStatus, 0, 0).error, kEinval);
  EXPECT_EQ(check(0, kCmdFlush, 0, 0).error, 0u);
  EXPECT_EQ(check(0, kCmdCache, 0, 4096).error, kEinval);
  EXPECT_EQ(check(0, 77, 0, 0).error, kEinval);
  s.read_only = true;
  EXPECT_EQ(check(0, kCmdWrite, 0, 512).error, kEperm);
  EXPECT_EQ(check(0, kCmdTrim, 0, 512).error, kEperm);
  EXPECT_EQ(check(0, kCmdFlush, 0, 0).error, 0u);
  s.base_allocation = false;
  EXPECT_EQ(check(0, kCmdBlockStatus, 0, 4096).error, kEinval);
  s.structured = false;
  EXPECT_EQ(check(kCmdFlagDf, kCmdRead, 0, 4096).error, kEinval);
}

TEST(Wire, ReplyEncodings) {
  std::vector<uint8_t> out;
  AppendSimpleReply(out, kEio, 7);
  ASSERT_EQ(out.size(), kSimpleReplySize);
  EXPECT_EQ(GetU32(out.data()), kSimpleReplyMagic);
  EXPECT_EQ(GetU32(out.data() + 4), kEio);
  out.clear();
  StatusDescriptor d[2] = {{4096, kStateHole | kStateZero}, {512, 0}};
  AppendBlockStatus(out, 9, kBaseAllocationId, d);
  ASSERT_EQ(out.size(), kStructuredHeaderSize + 4 + 16);
  EXPECT_EQ(GetU32(out.data()), kStructuredReplyMagic);
  EXPECT_EQ(GetU16(out.data() + 4), kReplyFlagDone);
  EXPECT_EQ(GetU16(out.data() + 6), kReplyTypeBlockStatus);
  EXPECT_EQ(GetU32(out.data() + 16), 20u);
  EXPECT_EQ(GetU32(out.data() + 24), 4096u);
  EXPECT_EQ(GetU32(out.data() + 28), kStateHole | kStateZero);
  out.clear();
  AppendStructuredError(out, 9, kEinval, "bad");
  EXPECT_EQ(GetU16(out.data() + 6), kReplyTypeError);
  EXPECT_EQ(GetU32(out.data() + 16), 9u);
  EXPECT_EQ(GetU16(out.data() + 24), 3u);
}

}  // namespace
}  // namespace ingot::nbd
