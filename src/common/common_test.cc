#include <gtest/gtest.h>

#include "common/log.h"
#include "common/regex.h"
#include "common/result.h"
#include "common/time.h"
#include "common/utf8.h"
#include "common/uuid.h"

namespace ingot {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  INGOT_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, PropagatesErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST(StatusTest, FromErrnoMapsCodes) {
  EXPECT_EQ(FromErrno(ENOENT, "open x").code(), Code::kNotFound);
  EXPECT_NE(FromErrno(ENOENT, "open x").message().find("open x"), std::string::npos);
  EXPECT_EQ(FromErrno(EIO, "read").code(), Code::kIoError);
  // A store file we cannot open or a bad ioctl argument is the server's fault, never the client's.
  EXPECT_EQ(FromErrno(EACCES, "open /srv/x").code(), Code::kIoError);
  EXPECT_EQ(FromErrno(EPERM, "open /srv/x").code(), Code::kIoError);
  EXPECT_EQ(FromErrno(EINVAL, "fallocate").code(), Code::kIoError);
  EXPECT_EQ(FromErrno(ENOSPC, "write").code(), Code::kStorageFull);
  EXPECT_TRUE(IsServerFault(FromErrno(EACCES, "open").code()));
  EXPECT_FALSE(IsServerFault(Code::kNotFound));
}

TEST(RegexTest, UntrustedPatternsAreBoundedBeforeTheLibrarySeesThem) {
  auto ip = CompileUntrustedRegex(R"(^(\d{1,3}\.){3}\d{1,3}$)", 1024);
  ASSERT_TRUE(ip.ok()) << ip.status().ToString();
  EXPECT_TRUE(std::regex_match("10.0.0.1", *ip));
  // Six digits pass to the library, which refuses an automaton past its state limit.
  EXPECT_FALSE(CompileUntrustedRegex("a{999999}", 1024).ok());
  // libstdc++ would overflow a long parsing these (undefined behaviour).
  for (const char* p :
       {"a{8888888888888888888}", "a{1,8888888888888888888}", R"((a)\99999999999)"}) {
    auto r = CompileUntrustedRegex(p, 1024);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("more than 6 digits"), std::string::npos);
  }
  EXPECT_NE(CompileUntrustedRegex("(", 1024).status().message().find("does not compile"),
            std::string::npos);
  EXPECT_NE(CompileUntrustedRegex(std::string(20, 'a'), 10).status().message().find("longer"),
            std::string::npos);
}

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));      // é € 😀
  EXPECT_TRUE(IsValidUtf8("\xef\xbf\xbf\xf4\x8f\xbf\xbf"));                   // U+FFFF, U+10FFFF
  EXPECT_TRUE(IsValidUtf8(std::string_view("nul\0inside", 10)));             // NUL is a character
  EXPECT_EQ(Utf8SequenceLength("\xe2\x82\xac!"), 3u);
}

TEST(Utf8Test, RefusesIllFormedText) {
  for (std::string_view bad : {
           "\xff", "\xfe", "abcdefgh\xff",     // never in UTF-8, also after an ASCII run
           "\x80", "a\xbf",                    // a lone continuation byte
           "\xc3", "\xe2\x82", "\xf0\x9f\x98",  // truncated sequences
           "\xc0\xaf", "\xc1\xbf",              // overlong two-byte forms of '/' and DEL
           "\xe0\x80\xaf", "\xf0\x80\x80\xaf",  // overlong three- and four-byte forms
           "\xed\xa0\x80", "\xed\xbf\xbf",      // UTF-16 surrogates
           "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",  // past U+10FFFF
           "\xc3\x28",                          // a lead byte followed by ASCII
       }) {
    EXPECT_FALSE(IsValidUtf8(bad)) << testing::PrintToString(std::string(bad));
  }
  EXPECT_EQ(Utf8SequenceLength("\xff"), 0u);
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
}

TEST(LogTest, ValuesCannotForgeLines) {
  EXPECT_EQ(log::FormatValue("plain"), "plain");
  EXPECT_EQ(log::FormatValue("caf\xc3\xa9"), "caf\xc3\xa9");  // well-formed UTF-8 stays readable
  EXPECT_EQ(log::FormatValue(""), "\"\"");
  EXPECT_EQ(log::FormatValue("a b"), "\"a b\"");
  EXPECT_EQ(log::FormatValue("k=v"), "\"k=v\"");
  EXPECT_EQ(log::FormatValue("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(log::FormatValue("back\\slash"), "\"back\\\\slash\"");
  // A refused image's backing-file name trying to write a fake error line and colour the terminal.
  std::string forged = log::FormatValue("x.img\r\nts=1 level=error event=pwned\x1b[2K");
  EXPECT_EQ(forged, "\"x.img\\r\\nts=1 level=error event=pwned\\x1b[2K\"");
  EXPECT_EQ(log::FormatValue("del\x7f"), "\"del\\x7f\"");
  EXPECT_EQ(log::FormatValue("bad\xff\xfe"), "\"bad\\xff\\xfe\"");
  EXPECT_EQ(log::FormatValue("c1\xc2\x9b"), "\"c1\\xc2\\x9b\"");       // the 8-bit CSI
  EXPECT_EQ(log::FormatValue("trunc\xe2\x82"), "\"trunc\\xe2\\x82\"");
  EXPECT_EQ(log::FormatValue(std::string_view("n\0l", 3)), "\"n\\x00l\"");
  EXPECT_EQ(log::FormatValue("tab\there"), "\"tab\\there\"");
  for (int c = 0; c < 256; ++c) {
    std::string v = log::FormatValue(std::string(1, static_cast<char>(c)));
    for (char b : v) {
      auto u = static_cast<unsigned char>(b);
      EXPECT_TRUE(u >= 0x20 && u < 0x7f) << "byte " << c << " leaks as " << u;
    }
  }
}


TEST(TimeTest, RoundTripsIso8601) {
  auto t = ParseIso8601("2026-11-23T11:30:16Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatIso8601(*t), "2026-11-23T11:30:16Z");
  EXPECT_EQ(*ParseIso8601("2026-11-23T12:30:16+01:00"), *t);
  EXPECT_EQ(*ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseIso8601("2026-11-23T11:30:16.5Z"), *t + 500000);
  EXPECT_FALSE(ParseIso8601("yesterday").has_value());
  EXPECT_FALSE(ParseIso8601("2026-13-01T00:00:00Z").has_value());
  // Micros: the per-second cache never serves another second's text.
  EXPECT_EQ(FormatIso8601Micros(*t + 5), "2026-11-23T11:30:16.000005Z");
  EXPECT_EQ(FormatIso8601Micros(*t + 999999), "2026-11-23T11:30:16.999999Z");
  EXPECT_EQ(FormatIso8601Micros(*t + 1000000), "2026-11-23T11:30:17.000000Z");
  EXPECT_EQ(FormatIso8601Micros(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(*ParseIso8601(FormatIso8601Micros(*t + 123456)), *t + 123456);
}

TEST(UuidTest, GeneratesValidDistinctIds) {
  std::string a = NewUuid(), b = NewUuid();
  EXPECT_TRUE(IsUuid(a));
  EXPECT_NE(a, b);
  EXPECT_EQ(a[14], '4');
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("0000000000000000000000000000000000000"));
}

}  // namespace
}  // namespace ingot
