// The http store against a local server (http::Server on a free 127.0.0.1 port), reached through
// fetch's rules: allowed here by allowed_networks, refused without it.
#include "store/http/http_store.h"

#include <gtest/gtest.h>

#include <atomic>

#include "http/server.h"

namespace ingot::store {
namespace {

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
  return s;
}

class HttpStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    body_ = Pattern(300000);
    auto s = http::Server::Start({.port = 0}, [this](http::Request& r) { return Handle(r); });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    base_ = "http://127.0.0.1:" + std::to_string(server_->port());
    fetch_.filter.allowed_ports = {server_->port()};
    fetch_.filter.allowed_networks = {"127.0.0.0/8"};
  }
  void TearDown() override { server_->Stop(); }

  http::Response Handle(http::Request& r) {
    ++requests_;
    http::Response resp;
    if (r.path == "/image" || r.path == "/no-range") {
      uint64_t from = 0;
      auto range = r.headers.Get("Range");
      if (range && r.path == "/image" && range->starts_with("bytes=") && range->ends_with("-")) {
        from = std::stoull(std::string(range->substr(6, range->size() - 7)));
        ++ranged_;
        resp.status = 206;
        resp.headers.Set("Content-Range", "bytes " + std::to_string(from) + "-" +
                                              std::to_string(body_.size() - 1) + "/" +
                                              std::to_string(body_.size()));
      }
      resp.body = body_.substr(from);
      return resp;
    }
    resp.status = 404;
    resp.body = "no";
    return resp;
  }

  HttpStore Store() { return HttpStore({.id = "web", .fetch = fetch_}); }

  std::string body_;
  std::unique_ptr<http::Server> server_;
  std::string base_;
  fetch::FetchOptions fetch_;
  std::atomic<int> requests_{0};
  std::atomic<int> ranged_{0};
};

TEST_F(HttpStoreTest, DriverIsReadOnlyAndExternal) {
  StoreConfig config{.id = "web", .driver = "http", .read_only = true};
  auto made = MakeHttpStore(config, fetch_);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_TRUE((*made)->capabilities().external);
  EXPECT_FALSE((*made)->capabilities().local_file);
  EXPECT_EQ((*made)->Create("x").status().code(), Code::kPermissionDenied);
  EXPECT_TRUE((*made)->Delete(base_ + "/image").ok());  // never ours to remove
  EXPECT_EQ(requests_.load(), 0);
  auto keys = (*made)->ListKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());

  config.read_only = false;
  EXPECT_EQ(MakeHttpStore(config, fetch_).status().code(), Code::kInvalidArgument);
  config.read_only = true;
  config.options["timeout"] = "3";
  EXPECT_EQ(MakeHttpStore(config, fetch_).status().code(), Code::kInvalidArgument);
}

TEST_F(HttpStoreTest, UrlsAreKeys) {
  HttpStore s = Store();
  auto key = s.KeyOfUrl(base_ + "/image#new");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  ASSERT_TRUE(key->has_value());
  EXPECT_EQ(**key, base_ + "/image#new");  // kept as written, fragment and all
  EXPECT_EQ(s.UrlOf(**key), base_ + "/image#new");
  key = s.KeyOfUrl("HTTP://127.0.0.1:" + std::to_string(server_->port()) + "/image");
  ASSERT_TRUE(key.ok() && key->has_value());
  // Not this store's: other schemes.
  for (const char* other :
       {"file:///etc/passwd", "gopher://info.cern.ch", "s3://b/k", "httpx://a"}) {
    key = s.KeyOfUrl(other);
    ASSERT_TRUE(key.ok()) << other;
    EXPECT_FALSE(key->has_value()) << other;
  }
  // Refused by the URL rules (here: the port).
  key = s.KeyOfUrl("http://127.0.0.1:22/image");
  EXPECT_EQ(key.status().code(), Code::kInvalidArgument);
  EXPECT_NE(key.status().message().find("fetch.port"), std::string::npos);
  EXPECT_EQ(requests_.load(), 0);  // no request to map a URL
}

TEST_F(HttpStoreTest, SizeAndSequentialRead) {
  HttpStore s = Store();
  auto size = s.SizeOf(base_ + "/image#frag");
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, body_.size());
  auto src = s.Open(base_ + "/image");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ((*src)->Size(), body_.size());
  std::string got;
  std::vector<uint8_t> buf(70000);
  for (uint64_t at = 0;;) {
    auto n = (*src)->ReadAt(at, buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    got.append(reinterpret_cast<const char*>(buf.data()), *n);
    at += *n;
  }
  EXPECT_EQ(got, body_);
  EXPECT_EQ(ranged_.load(), 0);  // one GET for a sequential read
}

TEST_F(HttpStoreTest, SeeksWithRangeOrBySkipping) {
  HttpStore s = Store();
  for (const char* path : {"/image", "/no-range"}) {
    auto src = s.Open(base_ + path);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    std::vector<uint8_t> buf(1000);
    auto n = (*src)->ReadAt(250000, buf);
    ASSERT_TRUE(n.ok()) << path << ": " << n.status().ToString();
    ASSERT_EQ(*n, 1000u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), 1000),
              body_.substr(250000, 1000))
        << path;
    n = (*src)->ReadAt(10, buf);  // backwards
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), 1000), body_.substr(10, 1000));
    n = (*src)->ReadAt(body_.size() - 10, buf);  // the end: fewer bytes
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 10u);
    n = (*src)->ReadAt(body_.size(), buf);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0u);
  }
  EXPECT_GE(ranged_.load(), 1);
}

TEST_F(HttpStoreTest, ErrorsAndTheAddressRule) {
  HttpStore s = Store();
  EXPECT_EQ(s.SizeOf(base_ + "/missing").status().code(), Code::kNotFound);
  EXPECT_EQ(s.Open(base_ + "/missing").status().code(), Code::kNotFound);
  // Without allowed_networks, loopback is refused before anything is sent.
  fetch_.filter.allowed_networks.clear();
  HttpStore strict = Store();
  const int before = requests_.load();
  auto size = strict.SizeOf(base_ + "/image");
  EXPECT_EQ(size.status().code(), Code::kRefused);
  EXPECT_NE(size.status().message().find("fetch.address"), std::string::npos);
  EXPECT_EQ(requests_.load(), before);
}

}  // namespace
}  // namespace ingot::store
