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

// Glance's valid_state_targets, written out: every move our events make must be one Glance allows.
TEST(TransitionTest, EveryEventMakesAMoveGlanceAllows) {
  using S = ImageStatus;
  const std::map<S, std::set<S>> glance = {
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
      if (CanTransition(from, to)) {
        EXPECT_EQ(glance.at(from).count(to), 1u) << StatusName(from) << " -> " << StatusName(to);
      }
    }
  }
  EXPECT_TRUE(CanTransition(S::kQueued, S::kSaving));
  EXPECT_TRUE(CanTransition(S::kSaving, S::kQueued));
  EXPECT_FALSE(CanTransition(S::kDeleted, S::kActive));
  EXPECT_FALSE(CanTransition(S::kActive, S::kSaving));
}

Image InStatus(ImageStatus s) {
  Image im;
  StoredStatus::Restore(im, s);
  return im;
}

TEST(TransitionTest, MovesAndRefusesWithGlanceMessages) {
  using S = ImageStatus;
  Image im = InStatus(S::kQueued);
  ASSERT_TRUE(Transition(im, ImageEvent::kStartUpload).ok());
  EXPECT_EQ(im.status(), S::kSaving);
  ASSERT_TRUE(Transition(im, ImageEvent::kFinishUpload).ok());
  EXPECT_EQ(im.status(), S::kActive);

  Status again = Transition(im, ImageEvent::kStartUpload);
  EXPECT_EQ(again.code(), Code::kConflict);
  EXPECT_EQ(again.message(), "Image status transition from active to saving is not allowed");
  EXPECT_EQ(im.status(), S::kActive);  // unchanged on refusal

  ASSERT_TRUE(Transition(im, ImageEvent::kDeactivate).ok());
  EXPECT_EQ(im.status(), S::kDeactivated);
  EXPECT_TRUE(Transition(im, ImageEvent::kDeactivate).ok());  // idempotent, as in Glance
  ASSERT_TRUE(Transition(im, ImageEvent::kReactivate).ok());
  EXPECT_TRUE(Transition(im, ImageEvent::kReactivate).ok());
  EXPECT_EQ(im.status(), S::kActive);

  Image queued = InStatus(S::kQueued);
  Status s = Transition(queued, ImageEvent::kDeactivate);
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
  EXPECT_EQ(s.message(), "Not allowed to deactivate image in status 'queued'");
  s = Transition(queued, ImageEvent::kReactivate);
  EXPECT_EQ(s.message(), "Not allowed to reactivate image in status 'queued'");

  Image gone = InStatus(S::kDeleted);
  EXPECT_EQ(Transition(gone, ImageEvent::kDelete).code(), Code::kConflict);
}

TEST(TransitionTest, EveryEventHasARow) {
  for (ImageEvent e : {ImageEvent::kStartUpload, ImageEvent::kFinishUpload, ImageEvent::kAbortUpload,
                       ImageEvent::kStage, ImageEvent::kStartImport, ImageEvent::kFinishImport,
                       ImageEvent::kAbortImport, ImageEvent::kDeactivate, ImageEvent::kReactivate,
                       ImageEvent::kDelete}) {
    EXPECT_FALSE(EventName(e).empty());
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
