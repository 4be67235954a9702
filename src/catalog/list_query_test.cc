#include "catalog/list_query.h"

#include <gtest/gtest.h>

namespace ingot::catalog {
namespace {

TEST(ParseListQueryTest, Defaults) {
  auto q = ParseListQuery({});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->limit, 25);
}

}  // namespace
}  // namespace ingot::catalog
