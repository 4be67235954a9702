// The rules (pure), and Open/Read against a canned HTTP server on a free 127.0.0.1 port. The
// server is raw sockets on purpose: stalls, short bodies and broken chunking are what it is for.
#include "fetch/fetch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "fetch/url_text.h"

namespace ingot::fetch {
namespace {

using std::chrono::milliseconds;

// A tiny HTTP/1.1 server: one thread per connection, one request per connection, answers from
// `handler(fd, path, head)`.
class CannedServer {
 public:
  using Handler = std::function<void(int fd, const std::string& path, const std::string& head)>;

  explicit CannedServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    socklen_t len = sizeof(a);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~CannedServer() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    ::close(listen_fd_);
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : connections_) t.join();
  }

  uint16_t port() const { return port_; }
  int requests(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[path];
  }
  int total_requests() {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& [path, count] : counts_) n += count;
    return n;
  }
  // Sleeps up to `ms`, less when the server stops: how stalling handlers hang.
  void Stall(milliseconds ms) {
    auto end = std::chrono::steady_clock::now() + ms;
    while (!stop_ && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(milliseconds(10));
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      head.append(buf, static_cast<size_t>(n));
    }
    size_t sp1 = head.find(' ');
    size_t sp2 = head.find(' ', sp1 + 1);
    if (sp1 != std::string::npos && sp2 != std::string::npos) {
      std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
      std::string path = target.substr(0, target.find('?'));
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++counts_[path];
      }
      handler_(fd, path, head);
    }
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> connections_;
  std::map<std::string, int> counts_;
};

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void Respond(int fd, int status, const std::string& headers, const std::string& body) {
  SendAll(fd, "HTTP/1.1 " + std::to_string(status) + " X\r\nConnection: close\r\n" + headers +
                  "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
}

void Redirect(int fd, int status, const std::string& location) {
  Respond(fd, status, "Location: " + location + "\r\n", "moved");
}

constexpr size_t kBigSize = (8 << 20) + 12345;  // not a multiple of any buffer size used

uint8_t BodyByte(size_t i) { return static_cast<uint8_t>(i * 31 + (i >> 13)); }

std::string BigBody() {
  std::string body(kBigSize, '\0');
  for (size_t i = 0; i < kBigSize; ++i) body[i] = static_cast<char>(BodyByte(i));
  return body;
}

std::string HeaderValue(const std::string& head, const std::string& name) {
  size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "-";
  at += name.size() + 4;
  return head.substr(at, head.find("\r\n", at) - at);
}

FilterOptions PortOnly(uint16_t port) {
  FilterOptions f;
  f.allowed_ports = {port};
  return f;
}

FilterOptions Loopback(uint16_t port) {
  FilterOptions f = PortOnly(port);
  f.allowed_hosts = {"127.0.0.1"};
  return f;
}

// Reads the whole body with `chunk`-byte reads.
Result<std::string> ReadAll(Download& d, size_t chunk) {
  std::string out;
  std::vector<uint8_t> buf(chunk);
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, d.Read(buf));
    if (n == 0) return out;
    if (n > chunk) return Internal("read more than asked");
    out.append(reinterpret_cast<const char*>(buf.data()), n);
  }
}

// ---- CheckUrl, pure ----

TEST(CheckUrlTest, ParsesAndCanonicalizes) {
  FilterOptions any;
  any.allowed_ports = {};
  auto u = CheckUrl("HTTP://Example.COM./a/b?x=1#frag", any);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path_and_query, "/a/b?x=1");

  u = CheckUrl("https://[0:0:0:0:0:FFFF:7f00:1]:8443", any);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "::ffff:127.0.0.1");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->path_and_query, "/");

  u = CheckUrl("https://h:?q", any);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path_and_query, "/?q");

  // Every numeric shorthand the resolver takes is one address.
  for (const char* host : {"127.1", "2130706433", "0x7f000001", "0x7f.1", "017700000001",
                           "127.0.0.1.", "0177.0.0.01"}) {
    u = CheckUrl(std::string("http://") + host + "/", any);
    ASSERT_TRUE(u.ok()) << host << ": " << u.status().ToString();
    EXPECT_EQ(u->host, "127.0.0.1") << host;
  }
  // Not numbers, so names.
  for (const char* host : {"127.0.0.0x", "1.2.3.4.5", "08.1", "4294967296", "1.2.3.256"}) {
    u = CheckUrl(std::string("http://") + host + "/", any);
    ASSERT_TRUE(u.ok()) << host << ": " << u.status().ToString();
    EXPECT_EQ(u->host, host) << host;
  }
}

TEST(CheckUrlTest, RefusesSchemes) {
  FilterOptions f;
  for (const char* url : {"ftp://example.com/x", "file:///etc/passwd", "gopher://example.com:70/",
                          "FILE://localhost/etc/passwd", "data:text/plain,x"}) {
    auto u = CheckUrl(url, f);
    ASSERT_FALSE(u.ok()) << url;
    EXPECT_EQ(u.status().code(), Code::kRefused) << url;
    EXPECT_EQ(u.status().message().rfind("fetch.scheme: ", 0), 0u) << u.status().ToString();
  }
  EXPECT_EQ(CheckUrl("ftp://e/x", f).status().message(),
            "fetch.scheme: ftp is not an allowed scheme");
  f.disallowed_schemes = {"HTTP"};
  EXPECT_EQ(CheckUrl("http://e/x", f).status().message(),
            "fetch.scheme: http is a disallowed scheme");
  // Allowed by the operator but not something we speak.
  FilterOptions open;
  open.allowed_schemes = {};
  EXPECT_EQ(CheckUrl("ftp://e/x", open).status().code(), Code::kRefused);
}

TEST(CheckUrlTest, RefusesPorts) {
  FilterOptions f;
  EXPECT_TRUE(CheckUrl("http://example.com/", f).ok());
  EXPECT_TRUE(CheckUrl("https://example.com:443/", f).ok());
  auto u = CheckUrl("http://example.com:22/", f);
  EXPECT_EQ(u.status().code(), Code::kRefused);
  EXPECT_EQ(u.status().message(), "fetch.port: 22 is not an allowed port");
  EXPECT_EQ(CheckUrl("https://example.com:80/", f).status().code(), Code::kOk);
  f.disallowed_ports = {443};
  u = CheckUrl("https://example.com/", f);
  EXPECT_EQ(u.status().message(), "fetch.port: 443 is a disallowed port");
}

TEST(CheckUrlTest, RefusesHosts) {
  FilterOptions f;
  f.disallowed_hosts = {"127.0.0.1", "Evil.Example", "[::1]"};
  for (const char* url :
       {"http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f.0.0.1/",
        "http://EVIL.example./", "http://[0::1]/", "http://[0000:0000::0001]:80/"}) {
    auto u = CheckUrl(url, f);
    EXPECT_EQ(u.status().code(), Code::kRefused) << url;
    EXPECT_EQ(u.status().message().rfind("fetch.host: ", 0), 0u) << u.status().ToString();
  }
  EXPECT_TRUE(CheckUrl("http://good.example/", f).ok());

  f = FilterOptions{};
  f.allowed_hosts = {"images.example", "192.0.2.7"};
  EXPECT_TRUE(CheckUrl("http://IMAGES.example/x", f).ok());
  EXPECT_TRUE(CheckUrl("http://192.0.2.7/x", f).ok());
  EXPECT_TRUE(CheckUrl("http://3221225991/x", f).ok());  // 192.0.2.7 spelled as one number
  auto u = CheckUrl("http://other.example/x", f);
  EXPECT_EQ(u.status().code(), Code::kRefused);
  EXPECT_EQ(u.status().message(), "fetch.host: other.example is not an allowed host");
}

TEST(CheckUrlTest, RejectsMalformed) {
  FilterOptions f;
  f.allowed_ports = {};
  for (const char* url : {"http://user@example.com/",
                          "http://user:pw@example.com/",
                          "http://a.example@127.0.0.1/",
                          "http://example.com /",
                          "http://exa mple.com/",
                          "http://example.com/\x01",
                          "http://ex\tample/",
                          "http://example.com/\xc3\xa9",
                          "example.com/x",
                          "/relative",
                          "http:example.com",
                          "http:/x",
                          "http://",
                          "http:///x",
                          "http://:80/",
                          "http://example.com:0/",
                          "http://example.com:65536/",
                          "http://example.com:8o/",
                          "http://example.com:123456/",
                          "http://[::1/",
                          "http://[::1]x/",
                          "http://[fe80::1%25eth0]/",
                          "http://[v1.x]/",
                          "http://ex%61mple.com/",
                          "http://::1/",
                          "http://a..b/",
                          "http://.a/",
                          "http://a../",
                          "http://[127.0.0.1]/",
                          "://x",
                          "1http://x/",
                          ""}) {
    auto u = CheckUrl(url, f);
    ASSERT_FALSE(u.ok()) << url;
    EXPECT_EQ(u.status().code(), Code::kInvalidArgument) << url << ": " << u.status().ToString();
    EXPECT_EQ(u.status().message().rfind("fetch.url: ", 0), 0u) << u.status().ToString();
  }
  EXPECT_EQ(CheckUrl(std::string("http://e/") + std::string(20000, 'a'), f).status().code(),
            Code::kInvalidArgument);
}

TEST(ResolveReferenceTest, Cases) {
  auto base = CheckUrl("http://h:8080/a/b/c?q=1", FilterOptions{.allowed_ports = {}});
  ASSERT_TRUE(base.ok());
  auto resolve = [&](std::string_view ref) {
    auto r = internal::ResolveReference(*base, ref);
    return r.ok() ? *r : "error";
  };
  EXPECT_EQ(resolve("https://x.example/y"), "https://x.example/y");
  EXPECT_EQ(resolve("//x.example/y"), "http://x.example/y");
  EXPECT_EQ(resolve("/y?z"), "http://h:8080/y?z");
  EXPECT_EQ(resolve("?z"), "http://h:8080/a/b/c?z");
  EXPECT_EQ(resolve("d"), "http://h:8080/a/b/d");
  EXPECT_EQ(resolve("../d#f"), "http://h:8080/a/d");
  EXPECT_EQ(resolve("./"), "http://h:8080/a/b/");
  EXPECT_EQ(resolve("../../../../d"), "http://h:8080/d");
  EXPECT_EQ(resolve(""), "http://h:8080/a/b/c?q=1");
  EXPECT_EQ(resolve("#f"), "http://h:8080/a/b/c?q=1");
}

// ---- the address rule, pure ----

TEST(IsNonPublicAddressTest, RefusesNonPublic) {
  for (const char* a : {"127.0.0.1",
                        "127.255.255.254",
                        "0.0.0.0",
                        "0.1.2.3",
                        "10.0.0.1",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "100.64.0.1",
                        "100.127.255.255",
                        "169.254.169.254",
                        "192.0.0.8",
                        "192.0.2.1",
                        "198.18.0.1",
                        "198.19.255.255",
                        "198.51.100.7",
                        "203.0.113.9",
                        "224.0.0.1",
                        "239.255.255.250",
                        "240.0.0.1",
                        "255.255.255.255",
                        "127.1",
                        "2130706433",
                        "0x7f000001",
                        "::1",
                        "::",
                        "[::1]",
                        "::ffff:127.0.0.1",
                        "::ffff:10.1.2.3",
                        "::ffff:169.254.169.254",
                        "::127.0.0.1",
                        "::8.8.8.8",
                        "::ffff:0:192.168.0.1",
                        "64:ff9b::127.0.0.1",
                        "64:ff9b::a00:1",
                        "64:ff9b:1::808:808",
                        "2002:7f00:1::",
                        "2002:c0a8:101::1",
                        "fe80::1",
                        "febf::1",
                        "fec0::1",
                        "fc00::1",
                        "fd12:3456::1",
                        "ff02::1",
                        "ff0e::1",
                        "2001:db8::1",
                        "2001:db8:ffff::1",
                        "2001::1",
                        "100::1",
                        "3fff::1",
                        "2001:2::1",
                        "2001:10::1",
                        "4000::1",
                        "not an address",
                        "",
                        "1.2.3.4.5",
                        "::ffff:1.2.3",
                        "fe80::1%eth0"}) {
    EXPECT_TRUE(IsNonPublicAddress(a)) << a;
  }
}

TEST(IsNonPublicAddressTest, AllowsPublic) {
  for (const char* a :
       {"8.8.8.8",         "1.1.1.1",          "93.184.216.34",        "172.15.255.255",
        "172.32.0.1",      "100.63.255.255",   "100.128.0.1",          "169.253.1.1",
        "192.0.1.1",       "192.0.3.1",        "198.17.255.255",       "198.20.0.1",
        "223.255.255.255", "11.0.0.1",         "2606:4700:4700::1111", "2a00:1450:4001::200e",
        "::ffff:8.8.8.8",  "64:ff9b::808:808", "2002:808:808::1",      "2001:4860:4860::8888"}) {
    EXPECT_FALSE(IsNonPublicAddress(a)) << a;
  }
}

// ---- Open and Read against the canned server ----

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    big_ = BigBody();
    server_ =
        std::make_unique<CannedServer>([this](int fd, const std::string& path,
                                              const std::string& head) { Handle(fd, path, head); });
    port_ = server_->port();
    base_ = "http://127.0.0.1:" + std::to_string(port_);
    options_.filter = Loopback(port_);
  }
  void TearDown() override { server_.reset(); }

  void Handle(int fd, const std::string& path, const std::string& head) {
    std::string self = "127.0.0.1:" + std::to_string(port_);
    if (path == "/big") {
      SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                      std::to_string(big_.size()) + "\r\n\r\n");
      for (size_t at = 0; at < big_.size(); at += 65536) {
        if (!SendAll(fd, std::string_view(big_).substr(at, 65536))) return;
      }
    } else if (path == "/chunked") {
      SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      size_t at = 0, step = 1;
      while (at < big_.size()) {
        size_t n = std::min(big_.size() - at, (step++ * 7919) % 100000 + 1);
        char size[32];
        snprintf(size, sizeof(size), "%zx\r\n", n);
        if (!SendAll(fd, size) || !SendAll(fd, std::string_view(big_).substr(at, n)) ||
            !SendAll(fd, "\r\n")) {
          return;
        }
        at += n;
      }
      SendAll(fd, "0\r\nX-Trailer: t\r\n\r\n");
    } else if (path == "/text") {
      Respond(fd, 200, "Content-Type: text/plain\r\n", "hello");
    } else if (path == "/echo-header") {
      Respond(fd, 200, "", HeaderValue(head, "X-Test"));
    } else if (path == "/redirect-rel") {
      Redirect(fd, 302, "./big?x=1");
    } else if (path == "/to-echo") {
      Redirect(fd, 308, "/echo-header");
    } else if (path == "/to-localhost") {
      Redirect(fd, 302, "http://localhost:" + std::to_string(port_) + "/big");
    } else if (path == "/to-ftp") {
      Redirect(fd, 302, "ftp://127.0.0.1/x");
    } else if (path == "/to-file") {
      Redirect(fd, 301, "file:///etc/passwd");
    } else if (path == "/to-port22") {
      Redirect(fd, 307, "http://127.0.0.1:22/");
    } else if (path == "/to-other") {
      Redirect(fd, 303, "http://127.0.0.1:" + std::to_string(other_port_) + "/echo-header");
    } else if (path == "/loop") {
      Redirect(fd, 302, "http://" + self + "/loop");
    } else if (path == "/no-location") {
      Respond(fd, 302, "", "");
    } else if (path == "/403") {
      Respond(fd, 403, "", "no");
    } else if (path == "/500") {
      Respond(fd, 500, "", "oops");
    } else if (path == "/503") {
      Respond(fd, 503, "", "later");
    } else if (path == "/stall-head") {
      server_->Stall(milliseconds(5000));
    } else if (path == "/stall-body") {
      SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
      server_->Stall(milliseconds(5000));
    } else if (path == "/short") {
      SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
    } else if (path == "/short-chunked") {
      SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    } else {
      Respond(fd, 404, "", "no such thing");
    }
  }

  std::string big_;
  std::unique_ptr<CannedServer> server_;
  uint16_t port_ = 0;
  uint16_t other_port_ = 0;
  std::string base_;
  FetchOptions options_;
};

TEST_F(FetchTest, StreamsTheBodyExactly) {
  auto d = Open(base_ + "/big", options_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->status(), 200);
  EXPECT_EQ((*d)->content_length(), std::optional<uint64_t>(kBigSize));
  EXPECT_EQ((*d)->header("content-type"), "application/octet-stream");
  EXPECT_EQ((*d)->header("CONTENT-TYPE"), "application/octet-stream");
  EXPECT_EQ((*d)->header("x-missing"), "");
  EXPECT_EQ((*d)->final_url(), base_ + "/big");
  // Small, odd reads: every byte in order, none more than asked.
  std::vector<uint8_t> buf(1000);
  size_t at = 0;
  for (;;) {
    auto n = (*d)->Read(buf);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    ASSERT_LE(*n, buf.size());
    for (size_t i = 0; i < *n; ++i) ASSERT_EQ(buf[i], BodyByte(at + i)) << "at " << at + i;
    at += *n;
  }
  EXPECT_EQ(at, kBigSize);
  auto again = (*d)->Read(buf);  // the end stays the end
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0u);
}

TEST_F(FetchTest, ChunkedBodyHasNoContentLength) {
  auto d = Open(base_ + "/chunked", options_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE((*d)->content_length().has_value());
  auto body = ReadAll(**d, 4093);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_TRUE(*body == big_);
}

TEST_F(FetchTest, GetText) {
  auto text = GetText(base_ + "/text", options_);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "hello");
  auto big = GetText(base_ + "/big", options_);
  EXPECT_EQ(big.status().code(), Code::kTooLarge);
  auto chunked = GetText(base_ + "/chunked", options_, 100000);
  EXPECT_EQ(chunked.status().code(), Code::kTooLarge);
}

TEST_F(FetchTest, SendsExtraHeaders) {
  options_.headers = {{"X-Test", "token-1"}};
  auto text = GetText(base_ + "/echo-header", options_);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "token-1");
  // Kept across a redirect to the same origin.
  text = GetText(base_ + "/to-echo", options_);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "token-1");
  options_.headers = {{"X-Test", "a\r\nX-Injected: b"}};
  EXPECT_EQ(GetText(base_ + "/echo-header", options_).status().code(), Code::kInvalidArgument);
}

TEST_F(FetchTest, CrossOriginRedirectDropsHeaders) {
  CannedServer other([](int fd, const std::string& path, const std::string& head) {
    Respond(fd, 200, "", HeaderValue(head, "X-Test"));
  });
  other_port_ = other.port();
  options_.filter.allowed_ports = {port_, other_port_};
  options_.headers = {{"X-Test", "secret"}};
  auto d = Open(base_ + "/to-other", options_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->final_url(), "http://127.0.0.1:" + std::to_string(other_port_) + "/echo-header");
  auto body = ReadAll(**d, 100);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, "-");
}

TEST_F(FetchTest, AllowedNameConnectsToItsCheckedAddress) {
  // "localhost" is resolved once by us and pinned for curl (CURLOPT_RESOLVE).
  options_.filter.allowed_hosts = {"LOCALHOST"};
  auto text = GetText("http://localhost:" + std::to_string(port_) + "/text", options_);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "hello");
}

TEST_F(FetchTest, LoopbackRefusedByDefault) {
  options_.filter = PortOnly(port_);  // no allowed_hosts: the address rule decides
  std::string p = ":" + std::to_string(port_);
  for (std::string url : {"http://127.0.0.1" + p + "/text", "http://localhost" + p + "/text",
                          "http://[::1]" + p + "/text", "http://127.1" + p + "/text",
                          "http://2130706433" + p + "/text", "http://0x7f000001" + p + "/text",
                          "http://0x7f.1" + p + "/text", "http://[::ffff:127.0.0.1]" + p + "/text",
                          "http://[::127.0.0.1]" + p + "/text", "http://0.0.0.0" + p + "/text",
                          "http://0" + p + "/text", "http://LocalHost." + p + "/"}) {
    auto d = Open(url, options_);
    ASSERT_FALSE(d.ok()) << url;
    EXPECT_EQ(d.status().code(), Code::kRefused) << url;
    EXPECT_EQ(d.status().message().rfind("fetch.address: ", 0), 0u) << d.status().ToString();
  }
  // With the default filter the port rule refuses first.
  auto d = Open(base_ + "/text", FetchOptions{});
  EXPECT_EQ(d.status().code(), Code::kRefused);
  EXPECT_EQ(d.status().message(),
            "fetch.port: " + std::to_string(port_) + " is not an allowed port");
  d = Open("http://127.0.0.1/", FetchOptions{});
  EXPECT_EQ(d.status().code(), Code::kRefused);
  EXPECT_EQ(d.status().message().rfind("fetch.address: ", 0), 0u) << d.status().ToString();
  EXPECT_EQ(server_->total_requests(), 0);  // nothing was sent
}

// allowed_networks: the operator's CIDR list lets addresses through the address rule while every
// host name stays allowed (allowed_hosts, when set, allows only the names it lists).
TEST_F(FetchTest, AllowedNetworksLetLoopbackThrough) {
  options_.filter = PortOnly(port_);
  options_.filter.allowed_networks = {"127.0.0.0/8"};
  for (std::string host : {"127.0.0.1", "localhost", "127.1"}) {
    auto text = GetText("http://" + host + ":" + std::to_string(port_) + "/text", options_);
    ASSERT_TRUE(text.ok()) << host << ": " << text.status().ToString();
    EXPECT_EQ(*text, "hello");
  }
  // Outside the listed networks the address rule still refuses.
  options_.filter.allowed_networks = {"10.0.0.0/8", "fd00::/8"};
  auto d = Open("http://127.0.0.1:" + std::to_string(port_) + "/text", options_);
  EXPECT_EQ(d.status().code(), Code::kRefused);
  EXPECT_EQ(d.status().message().rfind("fetch.address: ", 0), 0u) << d.status().ToString();
  // disallowed_hosts wins over a network.
  options_.filter.allowed_networks = {"127.0.0.0/8"};
  options_.filter.disallowed_hosts = {"127.0.0.1"};
  d = Open("http://localhost:" + std::to_string(port_) + "/text", options_);
  EXPECT_EQ(d.status().code(), Code::kRefused);
  // A name that does not resolve is a fetch failure (kUnavailable), not a refusal at the URL: the
  // import that names it is accepted and its task fails, as Glance's does.
  options_.filter.disallowed_hosts.clear();
  d = Open("http://does-not.exist.invalid:" + std::to_string(port_) + "/x", options_);
  EXPECT_EQ(d.status().code(), Code::kUnavailable) << d.status().ToString();
}

TEST(NetworksTest, CheckNetwork) {
  for (const char* ok :
       {"127.0.0.0/8", "10.1.2.0/24", "0.0.0.0/0", "192.0.2.7", "192.0.2.7/32", "::1/128", "::1",
        "fd00::/8", "::/0", "2001:db8::/32", "::ffff:127.0.0.0/104"}) {
    EXPECT_TRUE(CheckNetwork(ok).ok()) << ok;
  }
  for (const char* bad : {"", "/8", "127.0.0.1/8", "127.0.0.0/33", "::/129", "127.0.0.0/",
                          "127.0.0.0/8x", "127.0.0.0/-1", "127.1/8", "localhost", "10.0.0.0/0008",
                          "fd00::1/8", "[::1]/128x", "1.2.3.4/ 8"}) {
    Status s = CheckNetwork(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(CheckNetwork("127.0.0.1/8").message(),
            "'127.0.0.1/8' has host bits set past its /8 prefix");
}

TEST(NetworksTest, InNetworks) {
  const std::vector<std::string> nets = {"127.0.0.0/8", "fd00::/8", "not a network"};
  EXPECT_TRUE(InNetworks("127.0.0.1", nets));
  EXPECT_TRUE(InNetworks("127.255.255.254", nets));
  EXPECT_TRUE(InNetworks("::ffff:127.0.0.1", nets));  // IPv4-mapped: its IPv4 address
  EXPECT_TRUE(InNetworks("fd12:3456::1", nets));
  EXPECT_TRUE(InNetworks("[fd00::1]", nets));
  EXPECT_FALSE(InNetworks("128.0.0.1", nets));
  EXPECT_FALSE(InNetworks("::1", nets));
  EXPECT_FALSE(InNetworks("fe80::1", nets));
  EXPECT_FALSE(InNetworks("127.1", nets));  // only the resolver's numeric text is compared
  EXPECT_FALSE(InNetworks("", nets));
  EXPECT_FALSE(InNetworks("127.0.0.1", {}));
  EXPECT_FALSE(InNetworks("127.0.0.1", {"127.0.0.1/8"}));  // a refused entry matches nothing
  EXPECT_TRUE(InNetworks("8.8.8.8", {"0.0.0.0/0"}));
  EXPECT_TRUE(InNetworks("192.0.2.7", {"192.0.2.7"}));
  EXPECT_FALSE(InNetworks("192.0.2.8", {"192.0.2.7"}));
  EXPECT_TRUE(InNetworks("10.1.2.200", {"10.1.2.128/25"}));
  EXPECT_FALSE(InNetworks("10.1.2.100", {"10.1.2.128/25"}));
}

TEST_F(FetchTest, DisallowedAddressBehindAName) {
  options_.filter.allowed_hosts = {"localhost"};
  options_.filter.disallowed_hosts = {"127.0.0.1"};
  auto d = Open("http://localhost:" + std::to_string(port_) + "/text", options_);
  EXPECT_EQ(d.status().code(), Code::kRefused);
  EXPECT_EQ(d.status().message().rfind("fetch.host: localhost resolves to", 0), 0u)
      << d.status().ToString();
  EXPECT_EQ(server_->total_requests(), 0);
}

TEST_F(FetchTest, FollowsARelativeRedirect) {
  auto d = Open(base_ + "/redirect-rel", options_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->final_url(), base_ + "/big?x=1");
  auto body = ReadAll(**d, 65536);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_TRUE(*body == big_);
}

TEST_F(FetchTest, RedirectToLocalhostRefused) {
  // Only 127.0.0.1 is allowed; the redirect's host is another name for it, and is checked anew.
  auto d = Open(base_ + "/to-localhost", options_);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kRefused);
  EXPECT_EQ(d.status().message().rfind("fetch.host: localhost", 0), 0u) << d.status().ToString();
  EXPECT_NE(d.status().message().find("(redirect 1 to http://localhost:"), std::string::npos)
      << d.status().ToString();
  EXPECT_EQ(server_->requests("/big"), 0);
}

TEST_F(FetchTest, TooManyRedirects) {
  options_.max_redirects = 3;
  auto d = Open(base_ + "/loop", options_);
  EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(d.status().message().rfind("fetch.redirects: more than 3", 0), 0u)
      << d.status().ToString();
  EXPECT_EQ(server_->requests("/loop"), 4);
  options_.max_redirects = 0;
  d = Open(base_ + "/redirect-rel", options_);
  EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
}

TEST_F(FetchTest, RedirectToDisallowedSchemeOrPort) {
  for (const char* path : {"/to-ftp", "/to-file"}) {
    auto d = Open(base_ + path, options_);
    EXPECT_EQ(d.status().code(), Code::kRefused) << path;
    EXPECT_EQ(d.status().message().rfind("fetch.scheme: ", 0), 0u) << d.status().ToString();
    EXPECT_NE(d.status().message().find("redirect 1"), std::string::npos);
  }
  auto d = Open(base_ + "/to-port22", options_);
  EXPECT_EQ(d.status().code(), Code::kRefused);
  EXPECT_EQ(d.status().message().rfind("fetch.port: 22 is not an allowed port", 0), 0u)
      << d.status().ToString();
  d = Open(base_ + "/no-location", options_);
  EXPECT_EQ(d.status().code(), Code::kInvalidArgument);
}

TEST_F(FetchTest, MaxBytes) {
  options_.max_bytes = 1 << 20;
  auto d = Open(base_ + "/big", options_);  // Content-Length says too much: the first Read fails
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  std::vector<uint8_t> buf(4096);
  EXPECT_EQ((*d)->Read(buf).status().code(), Code::kTooLarge);
  EXPECT_EQ((*d)->Read(buf).status().code(), Code::kTooLarge);

  d = Open(base_ + "/chunked", options_);  // no length: fails once past the cap
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  uint64_t total = 0;
  for (;;) {
    auto n = (*d)->Read(buf);
    if (!n.ok()) {
      EXPECT_EQ(n.status().code(), Code::kTooLarge);
      break;
    }
    ASSERT_GT(*n, 0u) << "ended cleanly past the cap";
    total += *n;
  }
  EXPECT_LE(total, options_.max_bytes);

  options_.max_bytes = kBigSize;  // exactly the size is fine
  d = Open(base_ + "/big", options_);
  ASSERT_TRUE(d.ok());
  auto body = ReadAll(**d, 1 << 16);
  EXPECT_TRUE(body.ok()) << body.status().ToString();
}

TEST_F(FetchTest, StalledHeadTimesOut) {
  options_.header_timeout = milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto d = Open(base_ + "/stall-head", options_);
  EXPECT_EQ(d.status().code(), Code::kUnavailable) << d.status().ToString();
  EXPECT_NE(d.status().message().find("header_timeout"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
}

TEST_F(FetchTest, StalledBodyTimesOut) {
  options_.stall_timeout = milliseconds(300);
  auto d = Open(base_ + "/stall-body", options_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto start = std::chrono::steady_clock::now();
  auto body = ReadAll(**d, 100);
  EXPECT_EQ(body.status().code(), Code::kUnavailable) << body.status().ToString();
  EXPECT_NE(body.status().message().find("stall_timeout"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(3000));
}

TEST_F(FetchTest, SlowReaderIsNotAStall) {
  // The stall clock runs only while Read waits: a consumer slower than stall_timeout is fine.
  options_.stall_timeout = milliseconds(200);
  auto d = Open(base_ + "/big", options_);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  std::vector<uint8_t> buf(1 << 16);
  ASSERT_TRUE((*d)->Read(buf).ok());
  std::this_thread::sleep_for(milliseconds(600));
  ASSERT_TRUE((*d)->Read(buf).ok());
  std::this_thread::sleep_for(milliseconds(600));
  auto rest = ReadAll(**d, 1 << 16);
  EXPECT_TRUE(rest.ok()) << rest.status().ToString();
}

TEST_F(FetchTest, StatusMapping) {
  EXPECT_EQ(Open(base_ + "/nothing-here", options_).status().code(), Code::kNotFound);
  EXPECT_EQ(Open(base_ + "/500", options_).status().code(), Code::kUnavailable);
  EXPECT_EQ(Open(base_ + "/503", options_).status().code(), Code::kUnavailable);
  EXPECT_EQ(Open(base_ + "/403", options_).status().code(), Code::kInvalidArgument);
}

TEST_F(FetchTest, BodyCutShortIsAnError) {
  for (const char* path : {"/short", "/short-chunked"}) {
    auto d = Open(base_ + path, options_);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    auto body = ReadAll(**d, 4);
    EXPECT_EQ(body.status().code(), Code::kUnavailable) << path << ": " << body.status().ToString();
  }
  auto d = Open(base_ + "/short", options_);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ((*d)->content_length(), std::optional<uint64_t>(1000));
}

TEST_F(FetchTest, UnreachableIsUnavailable) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t closed_port = ntohs(a.sin_port);
  ::close(fd);  // bound, never listened: nothing answers there
  options_.filter.allowed_ports = {closed_port};
  auto d = Open("http://127.0.0.1:" + std::to_string(closed_port) + "/", options_);
  EXPECT_EQ(d.status().code(), Code::kUnavailable) << d.status().ToString();
}

}  // namespace
}  // namespace ingot::fetch
