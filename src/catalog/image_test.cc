#include "catalog/image.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace ingot::catalog {
namespace {

constexpr ImageStatus kAll[] = {
    ImageStatus::kQueued,      ImageStatus::kSaving,    ImageStatus::kActive,
    ImageStatus::kKilled,      ImageStatus::kDeleted,   ImageStatus::kPendingDelete,
    ImageStatus::kDeactivated, ImageStatus::kUploading, ImageStatus::kImporting,
};

TEST(ImageStatusTest, NamesRoundTrip) {
  std::set<std::string_view> names;
  for (ImageStatus s : kAll) {
    names.insert(StatusName(s));
    EXPECT_EQ(ParseStatus(StatusName(s)), s);
  }
  EXPECT_EQ(names.size(), std::size(kAll));
  EXPECT_EQ(StatusName(ImageStatus::kPendingDelete), "pending_delete");
  EXPECT_FALSE(ParseStatus("Active").has_value());
  EXPECT_FALSE(ParseStatus("").has_value());
}

TEST(VisibilityTest, NamesRoundTrip) {
  for (Visibility v :
       {Visibility::kPublic, Visibility::kPrivate, Visibility::kShared, Visibility::kCommunity}) {
    EXPECT_EQ(ParseVisibility(VisibilityName(v)), v);
  }
  EXPECT_EQ(VisibilityName(Visibility::kCommunity), "community");
  EXPECT_FALSE(ParseVisibility("all").has_value());
}

TEST(MemberStatusTest, NamesRoundTrip) {
  for (MemberStatus m :
       {MemberStatus::kPending, MemberStatus::kAccepted, MemberStatus::kRejected}) {
    EXPECT_EQ(ParseMemberStatus(MemberStatusName(m)), m);
  }
  EXPECT_FALSE(ParseMemberStatus("all").has_value());
}

// The whole table, written out from Glance's valid_state_targets: every pair not listed is refused.
TEST(CanTransitionTest, MatchesGlanceTable) {
  using S = ImageStatus;
  const std::map<S, std::set<S>> allowed = {
      {S::kQueued, {S::kSaving, S::kUploading, S::kImporting, S::kActive, S::kDeleted}},
      {S::kSaving, {S::kActive, S::kKilled, S::kDeleted, S::kQueued}},
      {S::kUploading, {S::kImporting, S::kQueued, S::kDeleted}},
      {S::kImporting, {S::kActive, S::kDeleted, S::kQueued}},
      {S::kActive, {S::kPendingDelete, S::kDeleted, S::kDeactivated}},
      {S::kKilled, {S::kDeleted}},
      {S::kPendingDelete, {S::kDeleted, S::kActive}},
      {S::kDeleted, {}},
      {S::kDeactivated, {S::kActive, S::kDeleted}},
  };
  for (S from : kAll) {
    for (S to : kAll) {
      EXPECT_EQ(CanTransition(from, to), allowed.at(from).count(to) == 1)
          << StatusName(from) << " -> " << StatusName(to);
    }
  }
}

Image Owned(Visibility v, std::optional<std::string> owner = "owner") {
  Image im;
  im.id = "11111111-1111-1111-1111-111111111111";
  im.visibility = v;
  im.owner = std::move(owner);
  return im;
}

TEST(IsVisibleTest, GlanceRules) {
  const Viewer admin{std::nullopt, true};
  const Viewer owner{"owner", false};
  const Viewer other{"other", false};
  const Viewer anonymous{std::nullopt, false};
  const auto accepted = std::optional<MemberStatus>(MemberStatus::kAccepted);
  const auto pending = std::optional<MemberStatus>(MemberStatus::kPending);
  const auto rejected = std::optional<MemberStatus>(MemberStatus::kRejected);

  for (Visibility v :
       {Visibility::kPublic, Visibility::kPrivate, Visibility::kShared, Visibility::kCommunity}) {
    EXPECT_TRUE(IsVisible(Owned(v), admin, std::nullopt)) << VisibilityName(v);
    EXPECT_TRUE(IsVisible(Owned(v), owner, std::nullopt)) << VisibilityName(v);
    // Ownerless images are everyone's in Glance.
    EXPECT_TRUE(IsVisible(Owned(v, std::nullopt), anonymous, std::nullopt)) << VisibilityName(v);
  }
  EXPECT_TRUE(IsVisible(Owned(Visibility::kPublic), other, std::nullopt));
  EXPECT_TRUE(IsVisible(Owned(Visibility::kPublic), anonymous, std::nullopt));
  EXPECT_TRUE(IsVisible(Owned(Visibility::kCommunity), other, std::nullopt));
  EXPECT_TRUE(IsVisible(Owned(Visibility::kCommunity), anonymous, std::nullopt));
  EXPECT_FALSE(IsVisible(Owned(Visibility::kPrivate), other, std::nullopt));
  EXPECT_FALSE(IsVisible(Owned(Visibility::kPrivate), anonymous, std::nullopt));
  // A membership of a private image grants nothing; of a shared one, any status shows it.
  EXPECT_FALSE(IsVisible(Owned(Visibility::kPrivate), other, accepted));
  EXPECT_FALSE(IsVisible(Owned(Visibility::kShared), other, std::nullopt));
  EXPECT_TRUE(IsVisible(Owned(Visibility::kShared), other, accepted));
  EXPECT_TRUE(IsVisible(Owned(Visibility::kShared), other, pending));
  EXPECT_TRUE(IsVisible(Owned(Visibility::kShared), other, rejected));
  EXPECT_FALSE(IsVisible(Owned(Visibility::kShared), anonymous, accepted));
}

}  // namespace
}  // namespace ingot::catalog
