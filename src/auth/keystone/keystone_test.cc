#include "auth/keystone/keystone.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>

#include "common/time.h"

namespace ingot::auth::keystone {
namespace {

// A Keystone stand-in at the wire: tokens it knows, revocation events, calls counted. The real
// Keystone is exercised by tests/integration/keystone.sh and the tempest run.
class FakeKeystone final : public Transport {
 public:
  std::mutex mu;
  std::map<std::string, std::string> tokens;  // subject token -> token document
  std::string events = R"({"events": []})";
  std::atomic<int> validations{0};
  std::atomic<int> service_logins{0};
  bool down = false;

  Result<WireResponse> Send(const WireRequest& req) override {
    std::lock_guard<std::mutex> lock(mu);
    if (down) return Unavailable("connection refused");
    WireResponse r;
    if (req.method == "POST") {
      ++service_logins;
      EXPECT_NE(req.body.find("\"glance\""), std::string::npos);
      r.status = 201;
      r.headers = {{"x-subject-token", "service-token"}};
      r.body = Doc("glance-id", "service-project", {"service", "admin"}, "s-audit", 3600);
      return r;
    }
    std::string auth, subject;
    for (const auto& [k, v] : req.headers) {
      if (k == "X-Auth-Token") auth = v;
      if (k == "X-Subject-Token") subject = v;
    }
    if (auth != "service-token") {
      r.status = 401;
      return r;
    }
    if (req.url.find("/v3/OS-REVOKE/events") != std::string::npos) {
      r.status = 200;
      r.body = events;
      return r;
    }
    EXPECT_NE(req.url.find("/v3/auth/tokens"), std::string::npos);
    ++validations;
    auto it = tokens.find(subject);
    if (it == tokens.end()) {
      r.status = 404;
      return r;
    }
    r.status = 200;
    r.body = it->second;
    return r;
  }

  static std::string Doc(const std::string& user, const std::string& project,
                         const std::vector<std::string>& roles, const std::string& audit,
                         int64_t expires_in_s) {
    std::string rs;
    for (const auto& role : roles) {
      if (!rs.empty()) rs += ",";
      rs += R"({"id": "id-)" + role + R"(", "name": ")" + role + R"("})";
    }
    return R"({"token": {"methods": ["password"], "user": {"id": ")" + user +
           R"(", "domain": {"id": "default"}}, "project": {"id": ")" + project +
           R"(", "domain": {"id": "default"}}, "roles": [)" + rs + R"(], "audit_ids": [")" +
           audit + R"("], "issued_at": ")" + FormatIso8601Micros(NowMicros() - 1'000'000) +
           R"(", "expires_at": ")" + FormatIso8601Micros(NowMicros() + expires_in_s * 1'000'000) +
           R"("}})";
  }
};

struct Fixture {
  FakeKeystone* fake;
  std::unique_ptr<Authenticator> auth;
};

Fixture Make(int cache_time = 300, int poll = 0) {
  auto transport = std::make_unique<FakeKeystone>();
  FakeKeystone* fake = transport.get();
  KeystoneOptions o;
  o.auth_url = "http://keystone.test:5000";
  o.www_authenticate_uri = "http://keystone.test:5000/v3";
  o.username = "glance";
  o.password = "pw";
  o.project_name = "service";
  o.token_cache_time = cache_time;
  o.revocation_poll_seconds = poll;
  o.http_request_max_retries = 0;
  auto identity = std::make_shared<Identity>(o, std::move(transport));
  return {fake, MakeKeystoneAuth(identity)};
}

http::Headers WithToken(const std::string& t) {
  http::Headers h;
  h.Set("X-Auth-Token", t);
  return h;
}

TEST(KeystoneAuthTest, MapsTheTokenAndCachesTheValidation) {
  auto [fake, auth] = Make();
  fake->tokens["t1"] = FakeKeystone::Doc("u1", "p1", {"reader", "member"}, "a1", 3600);
  auto ctx = auth->Authenticate(WithToken("t1"));
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ(*ctx->user, "u1");
  EXPECT_EQ(*ctx->project, "p1");
  EXPECT_EQ(*ctx->project_domain, "default");
  EXPECT_TRUE(ctx->HasRole("member"));
  EXPECT_FALSE(ctx->is_admin());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(auth->Authenticate(WithToken("t1")).ok());
  EXPECT_EQ(fake->validations.load(), 1);
  EXPECT_EQ(fake->service_logins.load(), 1);
  EXPECT_EQ(auth->Challenge(), "Keystone uri=\"http://keystone.test:5000/v3\"");
}

// AuthenticateNow (the I/O thread's question) answers from the cache only: never a call to Keystone.
TEST(KeystoneAuthTest, AuthenticateNowAnswersFromTheCacheOnly) {
  auto [fake, auth] = Make();
  fake->tokens["t1"] = FakeKeystone::Doc("u1", "p1", {"reader"}, "a1", 3600);
  EXPECT_FALSE(auth->AuthenticateNow(WithToken("t1")));
  EXPECT_EQ(fake->validations.load(), 0);
  ASSERT_TRUE(auth->Authenticate(WithToken("t1")).ok());
  auto now = auth->AuthenticateNow(WithToken("t1"));
  ASSERT_TRUE(now && now->ok());
  EXPECT_EQ(*(*now)->user, "u1");
  EXPECT_FALSE(auth->AuthenticateNow(WithToken("other")));
  ASSERT_FALSE(auth->Authenticate(WithToken("other")).ok());  // refusals are cached too
  auto refused = auth->AuthenticateNow(WithToken("other"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status().code(), Code::kUnauthenticated);
  EXPECT_EQ(fake->validations.load(), 2);
}

TEST(KeystoneAuthTest, MissingUnknownAndExpiredTokensAre401) {
  auto [fake, auth] = Make();
  EXPECT_EQ(auth->Authenticate({}).status().code(), Code::kUnauthenticated);
  EXPECT_EQ(auth->Authenticate(WithToken("nope")).status().code(), Code::kUnauthenticated);
  // The bad token's answer is cached too.
  EXPECT_EQ(auth->Authenticate(WithToken("nope")).status().code(), Code::kUnauthenticated);
  EXPECT_EQ(fake->validations.load(), 1);
  // A token that expires in a second is not used past its expiry, whatever the cache time.
  fake->tokens["short"] = FakeKeystone::Doc("u1", "p1", {"reader"}, "a2", 1);
  ASSERT_TRUE(auth->Authenticate(WithToken("short")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  fake->tokens.erase("short");  // Keystone no longer validates it
  EXPECT_EQ(auth->Authenticate(WithToken("short")).status().code(), Code::kUnauthenticated);
}

TEST(KeystoneAuthTest, KeystoneDownIsUnavailableNotAPass) {
  auto [fake, auth] = Make();
  fake->down = true;
  EXPECT_EQ(auth->Authenticate(WithToken("t")).status().code(), Code::kUnavailable);
}

TEST(KeystoneAuthTest, RevocationEventsDropCachedValidations) {
  auto [fake, auth] = Make(300, 1);
  fake->tokens["t1"] = FakeKeystone::Doc("u1", "p1", {"member"}, "audit-1", 3600);
  fake->tokens["t2"] = FakeKeystone::Doc("u2", "p1", {"member"}, "audit-2", 3600);
  ASSERT_TRUE(auth->Authenticate(WithToken("t1")).ok());
  ASSERT_TRUE(auth->Authenticate(WithToken("t2")).ok());
  {
    std::lock_guard<std::mutex> lock(fake->mu);
    fake->tokens.erase("t1");
    fake->events = R"({"events": [{"audit_id": "audit-1", "issued_before": ")" +
                   FormatIso8601Micros(NowMicros()) + R"("}]})";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(auth->Authenticate(WithToken("t1")).status().code(), Code::kUnauthenticated);
  int before = fake->validations.load();
  EXPECT_TRUE(auth->Authenticate(WithToken("t2")).ok());  // still cached
  EXPECT_EQ(fake->validations.load(), before);
}

TEST(KeystoneAuthTest, ServiceTokenMustBeValidAndItsRolesAreKept) {
  auto [fake, auth] = Make();
  fake->tokens["user"] = FakeKeystone::Doc("u1", "p1", {"member"}, "a1", 3600);
  fake->tokens["nova"] = FakeKeystone::Doc("nova", "service", {"service"}, "a3", 3600);
  http::Headers h = WithToken("user");
  h.Set("X-Service-Token", "bogus");
  EXPECT_EQ(auth->Authenticate(h).status().code(), Code::kUnauthenticated);
  h.Set("X-Service-Token", "nova");
  auto ctx = auth->Authenticate(h);
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(*ctx->project, "p1");
  EXPECT_EQ(ctx->service_roles, std::vector<std::string>{"service"});
  EXPECT_FALSE(ctx->HasRole("service"));
}

TEST(KeystoneAuthTest, ParseTokenBodyRefusesWhatIsNotAToken) {
  EXPECT_FALSE(ParseTokenBody("").ok());
  EXPECT_FALSE(ParseTokenBody("[]").ok());
  EXPECT_FALSE(ParseTokenBody(R"({"token": {"user": {"id": "u"}}})").ok());
  auto t = ParseTokenBody(
      R"({"token": {"user": {"id": "u"}, "system": {"all": true}, "roles": [{"name": "admin"}],
          "expires_at": "2030-01-01T00:00:00.000000Z"}})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->context.system_scope, "all");
  EXPECT_FALSE(t->context.project.has_value());
}

TEST(KeystoneUrlTest, V3Base) {
  EXPECT_EQ(V3Base("http://k:5000"), "http://k:5000/v3");
  EXPECT_EQ(V3Base("http://k:5000/v3/"), "http://k:5000/v3");
  EXPECT_EQ(V3Base("https://k/identity"), "https://k/identity/v3");
}

}  // namespace
}  // namespace ingot::auth::keystone
