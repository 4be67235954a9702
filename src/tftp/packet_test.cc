// The pure parts: packets, option negotiation, the file-name rule, netascii.
#include "tftp/packet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/memory.h"
#include "tftp/netascii.h"
#include "tftp/path.h"

namespace ingot::tftp {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(Packet, ParsesRequestWithOptions) {
  std::vector<uint8_t> d;
  EncodeRequest(Opcode::kRrq, "pxelinux.0", "octet", {{"blksize", "1428"}, {"tsize", "0"}}, d);
  auto p = ParsePacket(d);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->opcode, Opcode::kRrq);
  EXPECT_EQ(p->request.filename, "pxelinux.0");
  EXPECT_EQ(p->request.mode, "octet");
  ASSERT_EQ(p->request.options.size(), 2u);
  EXPECT_EQ(p->request.options[0].name, "blksize");
  EXPECT_EQ(p->request.options[0].value, "1428");
  EXPECT_EQ(p->request.options[1].name, "tsize");
}

TEST(Packet, ToleratesNulPaddingAfterRequest) {
  const auto d = Bytes(std::string("\0\1file\0octet\0\0\0\0", 16));
  auto p = ParsePacket(d);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->request.options.empty());
}

TEST(Packet, RefusesMalformed) {
  for (std::string s :
       {std::string("\0", 1), std::string("\0\1file", 6), std::string("\0\1file\0octet", 12),
        std::string("\0\1\0octet\0", 9), std::string("\0\1f\0octet\0blksize\0", 18),
        std::string("\0\1f\0octet\0blksize\0 512", 22), std::string("\0\7x\0", 4),
        std::string("\0\4\0", 3), std::string("\0\3\0", 3),
        std::string("\0\1f\0octet\0\0x\0", 13)}) {
    EXPECT_FALSE(ParsePacket(Bytes(s)).ok()) << s.size();
  }
}

TEST(Packet, TooManyOptions) {
  std::vector<std::pair<std::string, std::string>> opts;
  for (int i = 0; i < 40; ++i) opts.emplace_back("x" + std::to_string(i), "1");
  std::vector<uint8_t> d;
  EncodeRequest(Opcode::kRrq, "f", "octet", opts, d);
  EXPECT_FALSE(ParsePacket(d).ok());
}

TEST(Packet, AckErrorData) {
  std::vector<uint8_t> d;
  EncodeAck(65535, d);
  auto a = ParsePacket(d);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->opcode, Opcode::kAck);
  EXPECT_EQ(a->ack.block, 65535);
  EncodeError(ErrorCode::kOptionRefused, "no", d);
  auto e = ParsePacket(d);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->error.code, 8);
  EXPECT_EQ(e->error.message, "no");
  const uint8_t payload[] = {1, 2, 3};
  EncodeData(7, payload, d);
  auto x = ParsePacket(d);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->data.block, 7);
  EXPECT_EQ(x->data.payload.size(), 3u);
  // An error message without its NUL is still read.
  const auto raw = Bytes(std::string("\0\5\0\1abc", 7));
  auto unterminated = ParsePacket(raw);
  ASSERT_TRUE(unterminated.ok());
  EXPECT_EQ(unterminated->error.message, "abc");
}

TEST(Packet, Mode) {
  EXPECT_EQ(*ParseMode("OCTET"), Mode::kOctet);
  EXPECT_EQ(*ParseMode("NetAscii"), Mode::kNetascii);
  EXPECT_FALSE(ParseMode("mail").ok());
  EXPECT_FALSE(ParseMode("").ok());
}

std::vector<Option> Opts(std::initializer_list<std::pair<const char*, const char*>> l) {
  std::vector<Option> v;
  for (auto& [n, val] : l) v.push_back(Option{n, val});
  return v;
}

TEST(Negotiate, ClampsAndAnswers) {
  NegotiationLimits lim;  // max blksize 1468, window 64
  auto n = Negotiate(Opts({{"BLKSIZE", "9000"},
                           {"tsize", "0"},
                           {"windowsize", "100"},
                           {"timeout", "3"},
                           {"unknown", "x"}}),
                     12345, lim);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, 1468u);
  EXPECT_EQ(n->windowsize, 64u);
  ASSERT_TRUE(n->timeout_seconds);
  EXPECT_EQ(*n->timeout_seconds, 3u);
  std::vector<std::pair<std::string, std::string>> want = {
      {"blksize", "1468"}, {"tsize", "12345"}, {"windowsize", "64"}, {"timeout", "3"}};
  EXPECT_EQ(n->oack, want);
}

TEST(Negotiate, HonoursLargeBlksizeWhenConfigured) {
  NegotiationLimits lim{.max_blksize = 65464};
  auto n = Negotiate(Opts({{"blksize", "65464"}}), 1, lim);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, 65464u);
  n = Negotiate(Opts({{"blksize", "70000"}}), 1, lim);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, 65464u);
  n = Negotiate(Opts({{"blksize", "8"}}), 1, lim);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, 8u);
}

TEST(Negotiate, NoOptionsNoOack) {
  auto n = Negotiate({}, 5, {});
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->oack.empty());
  EXPECT_EQ(n->blksize, 512u);
  EXPECT_EQ(n->windowsize, 1u);
  // Only unknown options: still no OACK.
  n = Negotiate(Opts({{"rollover", "0"}}), 5, {});
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->oack.empty());
}

TEST(Negotiate, TsizeOmittedWithoutSize) {
  auto n = Negotiate(Opts({{"tsize", "0"}}), std::nullopt, {});
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->oack.empty());
}

TEST(Negotiate, RefusesBadValues) {
  for (auto [name, value] :
       std::vector<std::pair<const char*, const char*>>{{"blksize", "7"},
                                                        {"blksize", "abc"},
                                                        {"blksize", "-512"},
                                                        {"blksize", ""},
                                                        {"blksize", "99999999999999999999999"},
                                                        {"windowsize", "0"},
                                                        {"windowsize", "65536"},
                                                        {"timeout", "0"},
                                                        {"timeout", "256"},
                                                        {"tsize", "x"}}) {
    EXPECT_FALSE(Negotiate(Opts({{name, value}}), 1, {}).ok()) << name << "=" << value;
  }
}

TEST(Negotiate, FirstDuplicateWins) {
  auto n = Negotiate(Opts({{"blksize", "1024"}, {"blksize", "9"}}), 1, {});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->blksize, 1024u);
  EXPECT_EQ(n->oack.size(), 1u);
}

TEST(Path, Normalises) {
  EXPECT_EQ(*NormalizePath("pxelinux.0"), "pxelinux.0");
  EXPECT_EQ(*NormalizePath("/boot//x/./y"), "boot/x/y");
  EXPECT_EQ(*NormalizePath("\\Boot\\pxeboot.n12"), "Boot/pxeboot.n12");
  EXPECT_EQ(*NormalizePath("a..b/..c"), "a..b/..c");
}

TEST(Path, Refuses) {
  for (std::string s :
       {std::string("../etc/passwd"), std::string("a/../../b"), std::string("..\\..\\windows"),
        std::string("a/.."), std::string("/"), std::string(""), std::string("./."),
        std::string("a\0b", 3), std::string(2000, 'a'), std::string(300, 'b') + "/c"}) {
    auto r = NormalizePath(s);
    EXPECT_FALSE(r.ok()) << s;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kRefused);
    }
  }
}

TEST(Netascii, Encode) {
  EXPECT_EQ(NetasciiEncode(Bytes("a\nb\rc\r\n")), Bytes(std::string("a\r\nb\r\0c\r\0\r\n", 11)));
}

// Blocks produced from checkpoints, whatever the block size, concatenate to the whole conversion,
// including when a CR LF or CR NUL pair straddles two blocks.
TEST(Netascii, FillAcrossBlocks) {
  std::string text;
  for (int i = 0; i < 300; ++i) text += (i % 7 == 0) ? "\n" : (i % 11 == 0) ? "\r" : "x";
  const std::vector<uint8_t> want = NetasciiEncode(Bytes(text));
  for (size_t blk : {1, 2, 3, 8, 13, 512}) {
    io::MemorySource src(Bytes(text));
    NetasciiCheckpoint cp;
    std::vector<uint8_t> out, block(blk), scratch;
    while (true) {
      NetasciiCheckpoint before = cp;
      auto n = NetasciiFill(src, cp, block, scratch);
      ASSERT_TRUE(n.ok());
      // Producing the same block again from its checkpoint gives the same bytes.
      std::vector<uint8_t> again(blk);
      auto m = NetasciiFill(src, before, again, scratch);
      ASSERT_TRUE(m.ok());
      ASSERT_EQ(*m, *n);
      ASSERT_EQ(std::vector<uint8_t>(again.begin(), again.begin() + *m),
                std::vector<uint8_t>(block.begin(), block.begin() + *n));
      out.insert(out.end(), block.begin(), block.begin() + *n);
      if (*n < blk) break;
    }
    EXPECT_EQ(out, want) << "blksize " << blk;
  }
}

}  // namespace
}  // namespace ingot::tftp
