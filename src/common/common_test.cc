#include <gtest/gtest.h>

#include "common/result.h"
#include "common/time.h"
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
