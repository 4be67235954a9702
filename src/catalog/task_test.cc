#include "catalog/task.h"

#include <gtest/gtest.h>

#include <set>

namespace ingot::catalog {
namespace {

constexpr TaskStatus kAll[] = {TaskStatus::kPending, TaskStatus::kProcessing, TaskStatus::kSuccess,
                               TaskStatus::kFailure};

TEST(TaskStatusTest, NamesAreGlancesAndRoundTrip) {
  EXPECT_EQ(TaskStatusName(TaskStatus::kPending), "pending");
  EXPECT_EQ(TaskStatusName(TaskStatus::kProcessing), "processing");
  EXPECT_EQ(TaskStatusName(TaskStatus::kSuccess), "success");
  EXPECT_EQ(TaskStatusName(TaskStatus::kFailure), "failure");
  std::set<std::string_view> names;
  for (TaskStatus s : kAll) {
    names.insert(TaskStatusName(s));
    EXPECT_EQ(ParseTaskStatus(TaskStatusName(s)), s);
  }
  EXPECT_EQ(names.size(), std::size(kAll));
}

TEST(TaskStatusTest, ParseIsExact) {
  EXPECT_FALSE(ParseTaskStatus("").has_value());
  EXPECT_FALSE(ParseTaskStatus("Pending").has_value());
  EXPECT_FALSE(ParseTaskStatus("pending ").has_value());
  EXPECT_FALSE(ParseTaskStatus("succeeded").has_value());
  EXPECT_FALSE(ParseTaskStatus("unknown").has_value());
}

TEST(TaskStatusTest, OnlySuccessAndFailureAreFinal) {
  EXPECT_FALSE(IsFinal(TaskStatus::kPending));
  EXPECT_FALSE(IsFinal(TaskStatus::kProcessing));
  EXPECT_TRUE(IsFinal(TaskStatus::kSuccess));
  EXPECT_TRUE(IsFinal(TaskStatus::kFailure));
}

TEST(TaskTest, DefaultsAreANewImport) {
  Task t;
  EXPECT_EQ(t.type, "api_image_import");
  EXPECT_EQ(t.status, TaskStatus::kPending);
  EXPECT_EQ(t.version, 0);
  EXPECT_FALSE(t.lease_owner.has_value());
  EXPECT_FALSE(t.expires_at.has_value());
}

}  // namespace
}  // namespace ingot::catalog
