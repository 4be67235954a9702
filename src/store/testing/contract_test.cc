// The Store contract (store.h), run against every driver: file always; Swift and S3 against a
// real Swift (with its s3api) when the test bed's environment is set (scripts/testbed.sh env;
// tests/integration/stores_contract.sh starts the test bed and runs this binary), else skipped.
//
// What every driver must show: bytes invisible until Commit and then readable exactly; an
// abandoned object leaves nothing (no temporary file, segment or multipart upload); reads at any
// offset; Delete removes every segment or part; wrong credentials fail the start with a message
// naming them; 5xx answers are retried; location URLs map back to their keys.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "common/uuid.h"
#include "store/file/file_store.h"
#include "store/remote/transport.h"
#include "store/s3/s3_store.h"
#include "store/swift/swift_store.h"

namespace ingot::store {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; i += 4) {
    uint32_t v = rng();
    for (size_t j = 0; j < 4 && i + j < n; ++j) out[i + j] = static_cast<uint8_t>(v >> (8 * j));
  }
  return out;
}

// A TCP proxy to 127.0.0.1:`upstream` that answers the first `fail_first` connections itself with
// "503 Service Unavailable" (what a Swift proxy or S3 front end says when overloaded), then
// forwards everything.
class FlakyProxy {
 public:
  FlakyProxy(uint16_t upstream, int fail_first) : upstream_(upstream), fail_left_(fail_first) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_ = std::thread([this] { AcceptLoop(); });
  }
  ~FlakyProxy() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    accept_.join();
    ::close(listen_fd_);
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : pumps_) t.join();
  }
  uint16_t port() const { return port_; }
  int failed() const { return failed_.load(); }

 private:
  void AcceptLoop() {
    while (!stop_) {
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0) return;
      if (fail_left_.fetch_sub(1) > 0) {
        // Read the request head, then refuse it.
        char buf[65536];
        std::string head;
        while (head.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          head.append(buf, static_cast<size_t>(n));
        }
        const char kResp[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)!::send(c, kResp, sizeof kResp - 1, MSG_NOSIGNAL);
        ::shutdown(c, SHUT_WR);
        ::close(c);
        ++failed_;
        continue;
      }
      int u = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(upstream_);
      if (::connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        ::close(u);
        continue;
      }
      std::lock_guard lock(mu_);
      fds_.push_back(c);
      fds_.push_back(u);
      pumps_.emplace_back([c, u] { Pump(c, u); });
    }
  }
  static void Pump(int a, int b) {
    std::vector<char> buf(1 << 20);
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    for (;;) {
      if (::poll(p, 2, 1000) < 0) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(p[i].fd, buf.data(), buf.size(), 0);
        if (n <= 0) {
          done = true;
          break;
        }
        for (ssize_t off = 0; off < n;) {
          ssize_t w = ::send(p[1 - i].fd, buf.data() + off, static_cast<size_t>(n - off),
                             MSG_NOSIGNAL);
          if (w <= 0) {
            done = true;
            break;
          }
          off += w;
        }
      }
      if (done) break;
    }
    ::shutdown(a, SHUT_RDWR);
    ::shutdown(b, SHUT_RDWR);
  }

  uint16_t upstream_;
  std::atomic<int> fail_left_;
  std::atomic<int> failed_{0};
  std::atomic<bool> stop_{false};
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
};

uint16_t PortOf(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t colon = url.find(':', scheme + 3);
  return static_cast<uint16_t>(std::atoi(url.c_str() + colon + 1));
}

std::string WithPort(const std::string& url, uint16_t port) {
  const size_t scheme = url.find("://");
  const size_t colon = url.find(':', scheme + 3);
  size_t end = url.find('/', colon);
  if (end == std::string::npos) end = url.size();
  return url.substr(0, colon + 1) + std::to_string(port) + url.substr(end);
}

// How the store under test is built.
struct Variant {
  bool bad_credentials = false;
  uint16_t proxy_port = 0;  // talk to the store through this port (FlakyProxy)
};

// One driver under the contract.
struct Driver {
  std::string name;
  // Empty when the driver cannot run here (why is given by `skip`).
  std::function<Result<std::unique_ptr<Store>>(const Variant&)> make;
  // What an object left behind: temporary files, segments, multipart uploads.
  std::function<int(Store&, const std::string& key)> leftovers;
  // The sizes at which the driver changes how it stores (segments, parts), for tests to cross.
  size_t part = 1 << 20;
  uint16_t upstream_port = 0;
  std::string skip;
};

std::string RunId() {
  static const std::string id = NewUuid().substr(0, 8);
  return id;
}

Driver FileDriver() {
  static const std::string root =
      (std::filesystem::temp_directory_path() / ("ingot-contract-" + RunId())).string();
  Driver d{.name = "file"};
  d.make = [](const Variant& v) -> Result<std::unique_ptr<Store>> {
    if (v.bad_credentials || v.proxy_port != 0) return Unsupported("no credentials, no network");
    StoreConfig c{.id = "file", .driver = "file", .options = {{"path", root}}};
    return MakeFileStore(c);
  };
  d.leftovers = [](Store&, const std::string& key) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(root)) {
      n += e.path().filename().string().starts_with(".tmp-" + key) ? 1 : 0;
    }
    return n;
  };
  return d;
}

// Counts the objects in `container` whose names start with `prefix`, through the Swift API.
int CountSwiftObjects(SwiftStore& swift, const std::string& container, const std::string& prefix) {
  auto r = swift.Call(remote::HttpRequest{.method = "GET"},
                      remote::PercentEncode(container, false) +
                          "?format=json&prefix=" + remote::PercentEncode(prefix, false));
  if (!r.ok()) return 1000;
  if (r->status == 404 || r->status == 204) return 0;
  int n = 0;
  for (size_t p = r->body.find("\"name\""); p != std::string::npos;
       p = r->body.find("\"name\"", p + 1)) {
    ++n;
  }
  return n;
}

StoreConfig SwiftConfig(const Variant& v, const std::string& container) {
  StoreConfig c{.id = "swift", .driver = "swift"};
  c.options = {{"swift_store_auth_address", Env("SWIFT_AUTH_URL")},
               {"swift_store_user", Env("SWIFT_USER")},
               {"swift_store_key", v.bad_credentials ? "wrong-key" : Env("SWIFT_KEY")},
               {"swift_store_container", container},
               {"swift_store_create_container_on_put", "true"},
               {"swift_store_large_object_size", "1"},
               {"swift_store_large_object_chunk_size", "1"},
               {"swift_store_upload_concurrency", "2"},
               {"swift_store_retries", "4"}};
  if (v.proxy_port != 0) {
    c.options["swift_store_endpoint"] = WithPort(Env("SWIFT_STORAGE_URL"), v.proxy_port);
  }
  return c;
}

Driver SwiftDriver() {
  Driver d{.name = "swift"};
  if (Env("SWIFT_AUTH_URL").empty()) {
    d.skip = "SWIFT_AUTH_URL is not set (run under scripts/testbed.sh)";
    return d;
  }
  const std::string container = "contract-" + RunId();
  d.upstream_port = PortOf(Env("SWIFT_STORAGE_URL"));
  d.make = [container](const Variant& v) { return MakeSwiftStore(SwiftConfig(v, container)); };
  d.leftovers = [container](Store& s, const std::string& key) {
    auto& swift = dynamic_cast<SwiftStore&>(s);
    return CountSwiftObjects(swift, swift.SegmentContainerOf(key), key + "/");
  };
  return d;
}

Driver S3Driver() {
  Driver d{.name = "s3", .part = 5 << 20};
  if (Env("S3_ENDPOINT").empty()) {
    d.skip = "S3_ENDPOINT is not set (run under scripts/testbed.sh)";
    return d;
  }
  const std::string bucket = "contract-" + RunId();
  d.upstream_port = PortOf(Env("S3_ENDPOINT"));
  d.make = [bucket](const Variant& v) -> Result<std::unique_ptr<Store>> {
    StoreConfig c{.id = "s3", .driver = "s3"};
    c.options = {{"s3_store_host", v.proxy_port != 0 ? WithPort(Env("S3_ENDPOINT"), v.proxy_port)
                                                     : Env("S3_ENDPOINT")},
                 {"s3_store_access_key", Env("S3_ACCESS_KEY")},
                 {"s3_store_secret_key", v.bad_credentials ? "wrong-secret" : Env("S3_SECRET_KEY")},
                 {"s3_store_bucket", bucket},
                 {"s3_store_region", Env("S3_REGION").empty() ? "us-east-1" : Env("S3_REGION")},
                 {"s3_store_create_bucket_on_put", "true"},
                 {"s3_store_large_object_size", "5"},
                 {"s3_store_large_object_chunk_size", "5"},
                 {"s3_store_thread_pools", "3"},
                 {"s3_store_retries", "4"}};
    return MakeS3Store(c);
  };
  d.leftovers = [bucket](Store& s, const std::string& key) {
    auto& s3 = dynamic_cast<S3Store&>(s);
    auto uploads = s3.ListUploads(key);
    int n = uploads.ok() ? static_cast<int>(uploads->size()) : 1000;
    // s3api keeps parts as Swift objects in "<bucket>+segments": none may outlive their object.
    auto swift = MakeSwiftStore(SwiftConfig(Variant{}, "unused-" + RunId()));
    if (swift.ok()) {
      n += CountSwiftObjects(dynamic_cast<SwiftStore&>(**swift), bucket + "+segments", key);
    }
    return n;
  };
  return d;
}

class StoreContract : public ::testing::TestWithParam<Driver (*)()> {
 protected:
  void SetUp() override {
    driver_ = GetParam()();
    if (!driver_.skip.empty()) GTEST_SKIP() << driver_.skip;
    auto s = driver_.make(Variant{});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  std::string Put(const std::vector<uint8_t>& bytes, size_t write_size = 100000) {
    const std::string key = NewUuid();
    auto obj = store_->Create(key);
    EXPECT_TRUE(obj.ok()) << obj.status().ToString();
    if (!obj.ok()) return key;
    for (size_t off = 0; off < bytes.size(); off += write_size) {
      const size_t n = std::min(write_size, bytes.size() - off);
      EXPECT_TRUE((*obj)->Write({bytes.data() + off, n}).ok());
    }
    Status s = (*obj)->Commit();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return key;
  }

  std::vector<uint8_t> ReadAll(Store& store, const std::string& key, size_t chunk = 300000) {
    auto src = store.Open(key);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    if (!src.ok()) return {};
    std::vector<uint8_t> out((*src)->Size());
    for (uint64_t off = 0; off < out.size();) {
      auto n = (*src)->ReadAt(off, {out.data() + off, std::min<size_t>(chunk, out.size() - off)});
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      off += *n;
    }
    return out;
  }

  Driver driver_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, InvisibleUntilCommitThenExact) {
  // Big enough to be segmented / multipart on every driver (three parts and a bit).
  const auto bytes = RandomBytes(3 * driver_.part + 12345, 1);
  const std::string key = NewUuid();
  auto obj = store_->Create(key);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  ASSERT_TRUE((*obj)->Write(bytes).ok());
  EXPECT_EQ((*obj)->bytes_written(), bytes.size());
  EXPECT_EQ(store_->SizeOf(key).status().code(), Code::kNotFound);
  auto keys = store_->ListKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(std::count(keys->begin(), keys->end(), key), 0);
  ASSERT_TRUE((*obj)->Commit().ok());
  obj->reset();
  auto size = store_->SizeOf(key);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, bytes.size());
  EXPECT_TRUE(ReadAll(*store_, key) == bytes);
  keys = store_->ListKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(std::count(keys->begin(), keys->end(), key), 1);
  EXPECT_EQ(store_->Create(key).status().code(), Code::kAlreadyExists);
  EXPECT_TRUE(store_->Delete(key).ok());
}

TEST_P(StoreContract, SmallAndEmptyObjects) {
  const auto small = RandomBytes(1000, 2);
  const std::string k1 = Put(small);
  EXPECT_TRUE(ReadAll(*store_, k1) == small);
  const std::string k0 = Put({});
  auto size = store_->SizeOf(k0);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, 0u);
  auto src = store_->Open(k0);
  ASSERT_TRUE(src.ok());
  uint8_t b[16];
  auto n = (*src)->ReadAt(0, b);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_TRUE(store_->Delete(k1).ok());
  EXPECT_TRUE(store_->Delete(k0).ok());
}

TEST_P(StoreContract, AbandonedObjectLeavesNothing) {
  const auto bytes = RandomBytes(2 * driver_.part + 777, 3);
  const std::string key = NewUuid();
  {
    auto obj = store_->Create(key);
    ASSERT_TRUE(obj.ok());
    ASSERT_TRUE((*obj)->Write(bytes).ok());  // parts are on their way or stored by now
  }
  EXPECT_EQ(store_->SizeOf(key).status().code(), Code::kNotFound);
  EXPECT_EQ(driver_.leftovers(*store_, key), 0);
  // The key is free again.
  auto again = store_->Create(key);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

TEST_P(StoreContract, RangeReads) {
  const size_t part = driver_.part;
  const auto bytes = RandomBytes(2 * part + 4321, 4);
  const std::string key = Put(bytes);
  auto src = store_->Open(key);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ((*src)->Size(), bytes.size());
  // Backwards, across part boundaries, at the very end and past it.
  const std::vector<std::pair<uint64_t, size_t>> reads = {
      {bytes.size() - 10, 10}, {part - 5, 10}, {0, 7}, {2 * part - 1, 2}, {12345, 1}, {part, 4096}};
  for (const auto& [off, len] : reads) {
    std::vector<uint8_t> got(len);
    auto n = (*src)->ReadAt(off, got);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_GT(*n, 0u);
    got.resize(*n);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), bytes.begin() + static_cast<long>(off)))
        << "at " << off;
  }
  uint8_t b[8];
  auto past = (*src)->ReadAt(bytes.size(), b);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
  EXPECT_TRUE(store_->Delete(key).ok());
}

TEST_P(StoreContract, DeleteRemovesEverySegment) {
  const auto bytes = RandomBytes(3 * driver_.part + 1, 5);
  const std::string key = Put(bytes);
  ASSERT_TRUE(store_->SizeOf(key).ok());
  if (driver_.name != "file") {
    // The object really is in pieces (so the count below can see them).
    EXPECT_GT(driver_.leftovers(*store_, key), 1);
  }
  ASSERT_TRUE(store_->Delete(key).ok());
  EXPECT_EQ(store_->SizeOf(key).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Open(key).status().code(), Code::kNotFound);
  EXPECT_EQ(driver_.leftovers(*store_, key), 0);
  EXPECT_TRUE(store_->Delete(key).ok()) << "deleting what is gone is OK";
}

TEST_P(StoreContract, LocationUrlsMapBackToKeys) {
  const std::string key = Put(RandomBytes(100, 6));
  auto back = store_->KeyOfUrl(store_->UrlOf(key));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(**back, key);
  const std::string missing = NewUuid();
  EXPECT_EQ(store_->KeyOfUrl(store_->UrlOf(missing)).status().code(), Code::kNotFound);
  auto other = store_->KeyOfUrl("http://example.com/x");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  EXPECT_TRUE(store_->Delete(key).ok());
}

TEST_P(StoreContract, WrongCredentialsAreNamed) {
  if (driver_.name == "file") GTEST_SKIP() << "the file store has no credentials";
  auto s = driver_.make(Variant{.bad_credentials = true});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("credentials"), std::string::npos) << s.status().ToString();
}

TEST_P(StoreContract, ServerErrorsAreRetried) {
  if (driver_.name == "file") GTEST_SKIP() << "the file store has no server";
  FlakyProxy proxy(driver_.upstream_port, 3);
  auto s = driver_.make(Variant{.proxy_port = proxy.port()});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto bytes = RandomBytes(2 * driver_.part + 99, 7);
  const std::string key = NewUuid();
  {
    auto obj = (*s)->Create(key);
    ASSERT_TRUE(obj.ok()) << obj.status().ToString();
    ASSERT_TRUE((*obj)->Write(bytes).ok());
    Status c = (*obj)->Commit();
    ASSERT_TRUE(c.ok()) << c.ToString();
  }
  EXPECT_EQ(proxy.failed(), 3);
  EXPECT_TRUE(ReadAll(**s, key) == bytes);
  EXPECT_TRUE((*s)->Delete(key).ok());
}

INSTANTIATE_TEST_SUITE_P(Drivers, StoreContract,
                         ::testing::Values(&FileDriver, &SwiftDriver, &S3Driver),
                         [](const auto& info) { return info.param().name; });

// ---- Driver-specific behaviour beyond the contract ----

TEST(SwiftStore, NestedManifestsPastTheSegmentLimit) {
  if (Env("SWIFT_AUTH_URL").empty()) GTEST_SKIP() << "no test bed";
  SwiftStoreOptions o;
  o.auth_address = Env("SWIFT_AUTH_URL");
  o.user = Env("SWIFT_USER");
  o.key = Env("SWIFT_KEY");
  o.container = "nested-" + RunId();
  o.create_container_on_put = true;
  o.large_object_size = 1 << 20;
  o.large_object_chunk_size = 1 << 20;
  o.max_manifest_segments = 2;  // 5 segments -> 3 sub-manifests -> 2 -> top
  auto s = SwiftStore::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto bytes = RandomBytes(5 * (1 << 20) - 3, 8);
  const std::string key = NewUuid();
  auto obj = (*s)->Create(key);
  ASSERT_TRUE(obj.ok());
  ASSERT_TRUE((*obj)->Write(bytes).ok());
  Status c = (*obj)->Commit();
  ASSERT_TRUE(c.ok()) << c.ToString();
  auto src = (*s)->Open(key);
  ASSERT_TRUE(src.ok());
  std::vector<uint8_t> got(bytes.size());
  for (uint64_t off = 0; off < got.size();) {
    auto n = (*src)->ReadAt(off, {got.data() + off, got.size() - off});
    ASSERT_TRUE(n.ok() && *n > 0);
    off += *n;
  }
  EXPECT_TRUE(got == bytes);
  ASSERT_TRUE((*s)->Delete(key).ok());
  EXPECT_EQ(CountSwiftObjects(**s, (*s)->SegmentContainerOf(key), key + "/"), 0);
}

TEST(SwiftStore, ShardedContainersAndCrashedUploads) {
  if (Env("SWIFT_AUTH_URL").empty()) GTEST_SKIP() << "no test bed";
  SwiftStoreOptions o;
  o.auth_address = Env("SWIFT_AUTH_URL");
  o.user = Env("SWIFT_USER");
  o.key = Env("SWIFT_KEY");
  o.container = "shard-" + RunId();
  o.create_container_on_put = true;
  o.multiple_containers_seed = 2;
  o.incomplete_age_s = 0;
  auto s = SwiftStore::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::string key = "ab" + NewUuid().substr(2);
  EXPECT_EQ((*s)->ContainerOf(key), o.container + "_ab");
  auto obj = (*s)->Create(key);
  ASSERT_TRUE(obj.ok());
  ASSERT_TRUE((*obj)->Write(RandomBytes(10, 9)).ok());
  ASSERT_TRUE((*obj)->Commit().ok());
  auto keys = (*s)->ListKeys();
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(std::count(keys->begin(), keys->end(), key), 1);
  // A writer that crashed after sending a segment: RemoveIncomplete finds and removes it, and
  // leaves committed objects alone.
  const std::string crashed = "ab" + NewUuid().substr(2);
  const std::string seg = (*s)->SegmentContainerOf(crashed) + "/" + crashed + "/upload-x/00000001";
  auto put = (*s)->Call(remote::HttpRequest{.method = "PUT"}, seg);
  ASSERT_TRUE(put.ok() && put->ok());
  auto removed = (*s)->RemoveIncomplete();
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(CountSwiftObjects(**s, (*s)->SegmentContainerOf(crashed), crashed + "/"), 0);
  EXPECT_TRUE((*s)->SizeOf(key).ok());
  EXPECT_TRUE((*s)->Delete(key).ok());
}

TEST(SwiftStore, OperatorMistakesAreServerFaults) {
  if (Env("SWIFT_AUTH_URL").empty()) GTEST_SKIP() << "no test bed";
  // A container that does not exist (and may not be created): the upload fails as a server fault
  // that names the fix, never as the client's 404.
  SwiftStoreOptions o;
  o.auth_address = Env("SWIFT_AUTH_URL");
  o.user = Env("SWIFT_USER");
  o.key = Env("SWIFT_KEY");
  o.container = "missing-" + RunId();
  auto s = SwiftStore::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto obj = (*s)->Create(NewUuid());
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  ASSERT_TRUE((*obj)->Write(RandomBytes(10, 11)).ok());
  Status c = (*obj)->Commit();
  EXPECT_EQ(c.code(), Code::kIoError) << c.ToString();
  EXPECT_NE(c.message().find("swift_store_create_container_on_put"), std::string::npos);
  // A Swift that is down at start does not stop the start; requests fail as unavailable (503)
  // until it is back.
  SwiftStoreOptions down = o;
  down.auth_address = "http://127.0.0.1:1/auth/v1.0";
  down.retry.attempts = 2;
  down.retry.first_backoff = std::chrono::milliseconds(10);
  auto d = SwiftStore::Open(down);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->SizeOf(NewUuid()).status().code(), Code::kUnavailable);
}

TEST(S3Store, VirtualHostedAddressing) {
  if (Env("S3_ENDPOINT").empty() || Env("S3_VHOST_DOMAIN").empty()) GTEST_SKIP() << "no test bed";
  S3StoreOptions o;
  // <bucket>.s3.localhost resolves to 127.0.0.1 (curl knows *.localhost), and s3api takes the
  // bucket from the Host header under its storage_domain.
  o.endpoint = "http://" + Env("S3_VHOST_DOMAIN") + ":" + std::to_string(PortOf(Env("S3_ENDPOINT")));
  o.access_key = Env("S3_ACCESS_KEY");
  o.secret_key = Env("S3_SECRET_KEY");
  o.bucket = "vhost-" + RunId();
  o.create_bucket_on_put = true;
  o.url_format = "virtual";
  o.large_object_chunk_size = 5 << 20;
  o.large_object_size = 5 << 20;
  auto s = S3Store::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->virtual_hosted());
  const auto bytes = RandomBytes(11 << 20, 10);
  const std::string key = NewUuid();
  auto obj = (*s)->Create(key);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  ASSERT_TRUE((*obj)->Write(bytes).ok());
  Status c = (*obj)->Commit();
  ASSERT_TRUE(c.ok()) << c.ToString();
  auto src = (*s)->Open(key);
  ASSERT_TRUE(src.ok());
  std::vector<uint8_t> got(bytes.size());
  for (uint64_t off = 0; off < got.size();) {
    auto n = (*src)->ReadAt(off, {got.data() + off, got.size() - off});
    ASSERT_TRUE(n.ok() && *n > 0) << (n.ok() ? "eof" : n.status().ToString());
    off += *n;
  }
  EXPECT_TRUE(got == bytes);
  EXPECT_TRUE((*s)->Delete(key).ok());
}

TEST(S3Store, XmlValues) {
  const std::string xml =
      "<R><Key>a&amp;b</Key><Key>c</Key><UploadId>x&lt;y</UploadId><Key>unterminated";
  EXPECT_EQ(XmlValues(xml, "Key"), (std::vector<std::string>{"a&b", "c"}));
  EXPECT_EQ(XmlValues(xml, "UploadId"), (std::vector<std::string>{"x<y"}));
  EXPECT_TRUE(XmlValues(xml, "Missing").empty());
}

TEST(Transport, RedactUrl) {
  EXPECT_EQ(remote::RedactUrl("http://u:p@h:1/x?sig=1"), "http://h:1/x");
  EXPECT_EQ(remote::RedactUrl("https://h/x"), "https://h/x");
}

}  // namespace
}  // namespace ingot::store
