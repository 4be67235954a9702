#include "boot/machines_sqlite.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "boot/machines_service.h"

namespace ingot::boot {
namespace {

class MachinesSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ingot-machines-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Reopen();
  }
  void TearDown() override {
    service_.reset();
    repo_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  void Reopen() {
    service_.reset();
    repo_.reset();
    auto db = catalog::sqlite::Database::Open(dir_ + "/catalog.db");
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto repo = SqliteMachineRepository::Open(*db);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);
    service_ = std::make_unique<MachineService>(*repo_);
  }
  Profile P(std::string name, std::string selector = "") {
    Profile p;
    p.name = std::move(name);
    p.selector = std::move(selector);
    p.kernel = "vmlinuz";
    p.initrds = {"initrd.gz"};
    p.args = "console={{.tty}}";
    p.variables = {{"tty", "ttyS0"}};
    return p;
  }
  std::string dir_;
  std::unique_ptr<SqliteMachineRepository> repo_;
  std::unique_ptr<MachineService> service_;
};

TEST_F(MachinesSqliteTest, UnknownMachineIsDiscoveredThenAssignedAndSurvivesRestart) {
  auto r = service_->Identify({.mac = "52-54-00-AA-00-01", .address = "10.0.2.15"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->discovered_now);
  EXPECT_FALSE(r->profile);
  EXPECT_EQ(r->machine.state, MachineState::kDiscovered);
  EXPECT_EQ(r->machine.mac, "52:54:00:aa:00:01");
  const std::string id = r->machine.id;

  // Again: the same record, not a new one.
  r = service_->Identify({.mac = "52:54:00:aa:00:01", .uuid = "8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->discovered_now);
  EXPECT_EQ(r->machine.id, id);
  EXPECT_EQ(r->machine.uuid, "8c9ab0e2-1d4f-4e3b-9a1b-0123456789ab");  // learned

  ASSERT_TRUE(service_->CreateProfile(P("installer")).ok());
  Machine m = *service_->GetMachine(id);
  m.profile = "installer";
  m.labels = {{"rack", "r1"}};
  auto replaced = service_->ReplaceMachine(m);
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  EXPECT_EQ(replaced->state, MachineState::kAssigned);

  Reopen();  // a restart: everything is in the database
  auto by_uuid = service_->Identify({.uuid = "8C9AB0E2-1D4F-4E3B-9A1B-0123456789AB"});
  ASSERT_TRUE(by_uuid.ok());
  EXPECT_EQ(by_uuid->machine.id, id);
  ASSERT_TRUE(by_uuid->profile);
  EXPECT_EQ(by_uuid->profile->name, "installer");
  EXPECT_EQ(by_uuid->why, MatchResult::Why::kAssigned);
  EXPECT_EQ(by_uuid->machine.labels.at("rack"), "r1");
  auto listed = service_->ListMachines(MachineState::kAssigned);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(service_->ListMachines(MachineState::kDiscovered)->size(), 0u);
  auto by_addr = service_->MachineByAddress("10.0.2.15");
  ASSERT_TRUE(by_addr.ok());
  EXPECT_FALSE(*by_addr);  // the last request came without an address
}

TEST_F(MachinesSqliteTest, ProfileRules) {
  ASSERT_TRUE(service_->CreateProfile(P("a", "rack = r1")).ok());
  EXPECT_EQ(service_->CreateProfile(P("a")).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(service_->CreateProfile(P("b", "rack =")).status().code(), Code::kInvalidArgument);
  Profile d = P("d");
  d.is_default = true;
  ASSERT_TRUE(service_->CreateProfile(d).ok());
  Profile d2 = P("d2");
  d2.is_default = true;
  EXPECT_EQ(service_->CreateProfile(d2).status().code(), Code::kConflict);
  // Selector match over the stored profiles, with the default behind it.
  auto r = service_->Identify({.mac = "52:54:00:aa:00:02"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->profile->name, "d");
  Machine m = r->machine;
  m.labels = {{"rack", "r1"}};
  ASSERT_TRUE(service_->ReplaceMachine(m).ok());
  r = service_->Identify({.mac = "52:54:00:aa:00:02"});
  EXPECT_EQ(r->profile->name, "a");
  EXPECT_EQ(r->why, MatchResult::Why::kSelector);
  // Assigning a profile that does not exist is refused; deleting one in use too.
  m = r->machine;
  m.profile = "nope";
  EXPECT_EQ(service_->ReplaceMachine(m).status().code(), Code::kInvalidArgument);
  m.profile = "a";
  ASSERT_TRUE(service_->ReplaceMachine(m).ok());
  EXPECT_EQ(service_->DeleteProfile("a").code(), Code::kConflict);
  m.profile = "";
  ASSERT_TRUE(service_->ReplaceMachine(m).ok());
  EXPECT_TRUE(service_->DeleteProfile("a").ok());
  EXPECT_EQ(service_->DeleteProfile("a").code(), Code::kNotFound);
}

TEST_F(MachinesSqliteTest, IdentityIsUnique) {
  Machine a;
  a.mac = "52:54:00:aa:00:03";
  ASSERT_TRUE(service_->CreateMachine(a).ok());
  Machine b;
  b.mac = "52-54-00-AA-00-03";
  EXPECT_EQ(service_->CreateMachine(b).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(service_->Identify({}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(service_->Identify({.mac = "nope"}).status().code(), Code::kInvalidArgument);
  // An all-zero SMBIOS UUID is no identity.
  EXPECT_EQ(service_->Identify({.uuid = "00000000-0000-0000-0000-000000000000"}).status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace ingot::boot
