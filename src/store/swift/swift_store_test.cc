// The Swift driver against a small Swift of our own (tempauth v1 and the object calls the driver
// makes), to show what a real Swift only does under load: refusing a token it issued (tempauth's
// token expired or fell out of memcached). The store contract against a real Swift is
// testing/contract_test.cc with the test bed.
#include "store/swift/swift_store.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <map>
#include <set>
#include <thread>

#include "http/server.h"
#include "io/hash.h"

namespace ingot::store {
namespace {

namespace json = boost::json;

std::string Md5(std::string_view s) {
  return *io::HexDigestOf("md5", {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

// Tokens are "tk<n>", a new one per authentication (like tempauth once the old one is gone).
class FakeSwift {
 public:
  FakeSwift() {
    auto s = http::Server::Start(
        {.port = 0}, http::StreamEveryBody([this](http::Request& r) { return Handle(r); }));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  ~FakeSwift() { server_->Stop(); }

  std::string auth_url() const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + "/auth/v1.0";
  }
  // Forgets every token issued so far: the next request with one gets 401.
  void RevokeTokens() {
    std::lock_guard lock(mu_);
    valid_.clear();
  }
  // Refuses every token, also fresh ones (Swift's token validation failing).
  void RefuseEveryToken() {
    std::lock_guard lock(mu_);
    refuse_all_ = true;
  }
  // Revokes every token once `n` segments were stored.
  void RevokeAfterSegments(int n) {
    std::lock_guard lock(mu_);
    revoke_after_segments_ = n;
  }
  int auths() {
    std::lock_guard lock(mu_);
    return auths_;
  }
  int refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }
  int segments_stored() {
    std::lock_guard lock(mu_);
    return segments_;
  }

 private:
  http::Response Answer(int status, std::string body = "") {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

  http::Response Handle(http::Request& r) {
    if (r.path == "/auth/v1.0") {
      if (r.headers.Get("X-Auth-User").value_or("") != "test:tester" ||
          r.headers.Get("X-Auth-Key").value_or("") != "testing") {
        return Answer(401, "Unauthorized");
      }
      std::lock_guard lock(mu_);
      const std::string token = "tk" + std::to_string(++auths_);
      valid_.insert(token);
      http::Response resp = Answer(200);
      resp.headers.Set("X-Auth-Token", token);
      resp.headers.Set("X-Storage-Url",
                       "http://127.0.0.1:" + std::to_string(server_->port()) + "/v1/AUTH_test");
      return resp;
    }
    const std::string prefix = "/v1/AUTH_test/";
    if (!r.path.starts_with(prefix)) return Answer(404);
    const std::string name = r.path.substr(prefix.size());
    std::string body;
    if (r.body != nullptr) {
      auto b = r.ReadBody(64 << 20);
      if (!b.ok()) return Answer(400);
      body = std::move(*b);
    }
    std::lock_guard lock(mu_);
    const std::string token(r.headers.Get("X-Auth-Token").value_or(""));
    if (refuse_all_ || valid_.count(token) == 0) {
      ++refused_;
      return Answer(401, "<html><h1>Unauthorized</h1><p>This server could not verify that you "
                         "are authorized to access the document you requested.</p></html>");
    }
    if (name.find('/') == std::string::npos) {
      // A container: creating one always works; a listing is empty.
      return r.method == "PUT" ? Answer(201) : Answer(200, "[]");
    }
    if (r.method == "PUT") {
      std::string etag;
      if (r.QueryValue("multipart-manifest") == "put") {
        std::string etags, bytes;
        const json::value manifest = json::parse(body);
        for (const json::value& e : manifest.as_array()) {
          const std::string path(e.as_object().at("path").as_string());
          auto it = objects_.find(path.substr(1));
          if (it == objects_.end()) return Answer(400, "missing segment " + path);
          bytes += it->second;
          etags += std::string(e.as_object().at("etag").as_string());
        }
        etag = Md5(etags);
        objects_[name] = std::move(bytes);
      } else {
        etag = Md5(body);
        if (r.headers.Get("ETag").value_or(etag) != etag) return Answer(422);
        objects_[name] = std::move(body);
        if (name.find("_segments/") != std::string::npos &&
            ++segments_ == revoke_after_segments_) {
          valid_.clear();
        }
      }
      http::Response resp = Answer(201);
      resp.headers.Set("ETag", "\"" + etag + "\"");
      return resp;
    }
    auto it = objects_.find(name);
    if (it == objects_.end()) return Answer(404);
    if (r.method == "DELETE") {
      objects_.erase(it);
      return Answer(204);
    }
    if (r.method == "HEAD") {
      http::Response resp = Answer(200);
      resp.headers.Set("Content-Length", std::to_string(it->second.size()));
      return resp;
    }
    // GET, ranged (the only kind the driver sends for bytes): "bytes=<first>-<last>".
    const std::string range(r.headers.Get("Range").value_or(""));
    if (!range.starts_with("bytes=")) return Answer(200, it->second);
    const size_t dash = range.find('-');
    const uint64_t first = std::stoull(range.substr(6, dash - 6));
    const uint64_t last = std::min<uint64_t>(std::stoull(range.substr(dash + 1)),
                                             it->second.size() - 1);
    return Answer(206, it->second.substr(first, last - first + 1));
  }

  std::unique_ptr<http::Server> server_;
  std::mutex mu_;
  std::set<std::string> valid_;
  std::map<std::string, std::string> objects_;
  int auths_ = 0;
  int refused_ = 0;
  int segments_ = 0;
  int revoke_after_segments_ = -1;
  bool refuse_all_ = false;
};

class SwiftAuthTest : public ::testing::Test {
 protected:
  std::unique_ptr<SwiftStore> OpenStore() {
    SwiftStoreOptions o;
    o.auth_address = swift_.auth_url();
    o.user = "test:tester";
    o.key = "testing";
    o.large_object_size = 1 << 20;
    o.large_object_chunk_size = 1 << 20;
    o.upload_concurrency = 2;
    o.retry.first_backoff = std::chrono::milliseconds(1);
    auto s = SwiftStore::Open(std::move(o));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static std::string Pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 4099) & 0xff);
    return s;
  }

  static Status Put(Store& store, const std::string& key, const std::string& bytes) {
    INGOT_ASSIGN_OR_RETURN(std::unique_ptr<PendingObject> p, store.Create(key));
    INGOT_RETURN_IF_ERROR(
        p->Write({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}));
    return p->Commit();
  }

  static Result<std::string> ReadAll(Store& store, const std::string& key) {
    INGOT_ASSIGN_OR_RETURN(std::unique_ptr<io::ByteSource> src, store.Open(key));
    std::string out(src->Size(), '\0');
    uint64_t at = 0;
    while (at < out.size()) {
      INGOT_ASSIGN_OR_RETURN(size_t n, src->ReadAt(at, {reinterpret_cast<uint8_t*>(out.data()) + at,
                                                        out.size() - at}));
      if (n == 0) return IoError("short read at " + std::to_string(at));
      at += n;
    }
    return out;
  }

  FakeSwift swift_;
};

TEST_F(SwiftAuthTest, ARefusedTokenIsRenewedAndTheRequestSentAgain) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string bytes = Pattern(300000);
  ASSERT_TRUE(Put(*store, "img1", bytes).ok());
  ASSERT_EQ(swift_.auths(), 1);

  swift_.RevokeTokens();
  auto size = store->SizeOf("img1");  // HEAD
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, bytes.size());
  EXPECT_EQ(swift_.auths(), 2);
  EXPECT_EQ(swift_.refused(), 1);

  // The download: its HEAD and its ranged GETs (the parallel reader's workers).
  std::unique_ptr<io::ByteSource> src;
  {
    auto s = store->Open("img1");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    src = std::move(*s);
  }
  swift_.RevokeTokens();
  std::string got(bytes.size(), '\0');
  uint64_t at = 0;
  while (at < got.size()) {
    auto n = src->ReadAt(at, {reinterpret_cast<uint8_t*>(got.data()) + at, got.size() - at});
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_GT(*n, 0u);
    at += *n;
  }
  EXPECT_TRUE(got == bytes);
  EXPECT_EQ(swift_.auths(), 3);

  swift_.RevokeTokens();
  EXPECT_TRUE(store->Delete("img1").ok());
  EXPECT_EQ(store->SizeOf("img1").status().code(), Code::kNotFound);
  EXPECT_EQ(swift_.auths(), 4);
}

TEST_F(SwiftAuthTest, ConcurrentRequestsShareOneReauthentication) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Put(*store, "img2", "hello").ok());
  swift_.RevokeTokens();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        auto size = store->SizeOf("img2");
        if (size.ok() && *size == 5) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
  // Every request refused the old token dropped only that token: one new one for all of them.
  EXPECT_EQ(swift_.auths(), 2);
}

TEST_F(SwiftAuthTest, ASegmentUploadSurvivesARefusedToken) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string bytes = Pattern((5 << 20) + 12345);  // 6 segments of 1 MiB
  swift_.RevokeAfterSegments(2);
  Status s = Put(*store, "img3", bytes);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(swift_.segments_stored(), 6);
  EXPECT_GE(swift_.auths(), 2);
  EXPECT_GE(swift_.refused(), 1);
  auto got = ReadAll(*store, "img3");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(*got == bytes);
}

TEST_F(SwiftAuthTest, AFreshTokenRefusedAgainIsUnavailableNotMissing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(Put(*store, "img4", "bytes").ok());
  swift_.RefuseEveryToken();
  auto size = store->SizeOf("img4");
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.status().code(), Code::kUnavailable) << size.status().ToString();
  EXPECT_NE(size.status().message().find("Swift refused (HTTP 401) the token"), std::string::npos)
      << size.status().ToString();
  // One re-authentication, one more try: no loop.
  EXPECT_EQ(swift_.auths(), 2);
  EXPECT_EQ(swift_.refused(), 2);
}

TEST_F(SwiftAuthTest, WrongCredentialsStopTheStart) {
  SwiftStoreOptions o;
  o.auth_address = swift_.auth_url();
  o.user = "test:tester";
  o.key = "wrong";
  auto s = SwiftStore::Open(std::move(o));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kIoError);
  EXPECT_NE(s.status().message().find("refused the credentials"), std::string::npos);
}

}  // namespace
}  // namespace ingot::store
