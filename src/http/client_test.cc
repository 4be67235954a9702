// The client against the real server on a free 127.0.0.1 port.
#include "http/client.h"

#include <gtest/gtest.h>

#include <thread>

#include "io/hash.h"

namespace ingot::http {
namespace {

class CountingReader final : public io::Reader {
 public:
  explicit CountingReader(uint64_t size) : size_(size) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size_ - pos_));
    for (size_t i = 0; i < n; ++i) buf[i] = static_cast<uint8_t>((pos_ + i) % 251);
    pos_ += n;
    return n;
  }

 private:
  uint64_t size_, pos_ = 0;
};

class StringWriter final : public io::Writer {
 public:
  Status Write(std::span<const uint8_t> data) override {
    out.append(reinterpret_cast<const char*>(data.data()), data.size());
    return Status::Ok();
  }
  std::string out;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Server::Start({.port = 0}, StreamEveryBody([this](Request& r) { return Handle(r); }));
    ASSERT_TRUE(s.ok());
    server_ = std::move(*s);
    url_ = Url{"127.0.0.1", server_->port(), ""};
  }
  void TearDown() override { server_->Stop(); }

  Response Handle(Request& r) {
    Response resp;
    ++requests_;
    if (r.path == "/echo") {
      auto body = r.ReadBody(1 << 20);
      resp.body = r.method + " " + std::string(r.headers.Get("X-Auth-Token").value_or("-")) + " " +
                  (body.ok() ? *body : "error") + " " + (r.chunked ? "chunked" : "sized");
    } else if (r.path == "/count") {
      uint64_t n = 0;
      std::vector<uint8_t> buf(1 << 16);
      bool ok = true;
      for (;;) {
        auto got = r.body->Read(buf);
        if (!got.ok()) return resp;
        if (*got == 0) break;
        for (size_t i = 0; i < *got; ++i) ok &= buf[i] == static_cast<uint8_t>((n + i) % 251);
        n += *got;
      }
      resp.body = std::to_string(n) + (ok ? " ok" : " corrupt");
    } else if (r.path == "/big") {
      resp.body = std::string(3 << 20, 'b');
    } else if (r.path == "/close") {
      resp.headers.Set("Connection", "close");
      resp.body = "closing";
    } else if (r.path == "/slow") {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      resp.body = "late";
    } else {
      resp.status = 404;
      resp.body = "{\"message\": \"no such thing\"}";
    }
    return resp;
  }

  std::unique_ptr<Server> server_;
  Url url_;
  std::atomic<int> requests_{0};
};

TEST_F(ClientTest, StringBodiesAndHeaders) {
  Client c(url_);
  ClientRequest req;
  req.method = "POST";
  req.target = "/echo";
  req.headers.Set("X-Auth-Token", "tok");
  req.body = "payload";
  auto r = c.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST tok payload sized");
  EXPECT_EQ(r->headers.Get("content-length"), "22");
}

TEST_F(ClientTest, StreamedUploadsSizedAndChunked) {
  Client c(url_);
  constexpr uint64_t kSize = 10'000'019;
  CountingReader sized(kSize);
  ClientRequest req;
  req.method = "PUT";
  req.target = "/count";
  req.body_stream = &sized;
  req.body_length = kSize;
  uint64_t last_progress = 0;
  auto r = c.Send(req, nullptr, [&](uint64_t done, std::optional<uint64_t> total) {
    EXPECT_EQ(total, kSize);
    last_progress = done;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, std::to_string(kSize) + " ok");
  EXPECT_EQ(last_progress, kSize);

  CountingReader unsized(kSize);
  req.body_stream = &unsized;
  req.body_length.reset();
  r = c.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, std::to_string(kSize) + " ok");
}

TEST_F(ClientTest, DownloadsGoToTheSinkErrorsToTheBody) {
  Client c(url_);
  StringWriter sink;
  ClientRequest req;
  req.target = "/big";
  auto r = c.Send(req, &sink);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(sink.out, std::string(3 << 20, 'b'));
  req.target = "/missing";
  StringWriter sink2;
  r = c.Send(req, &sink2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "{\"message\": \"no such thing\"}");
  EXPECT_EQ(sink2.out, "");
}

TEST_F(ClientTest, ReconnectsAfterTheServerCloses) {
  Client c(url_);
  ClientRequest req;
  req.target = "/close";
  ASSERT_TRUE(c.Send(req).ok());
  req.target = "/echo";
  auto r = c.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "GET -  sized");
}

TEST_F(ClientTest, KeepsTheConnectionAlive) {
  Client c(url_);
  ClientRequest req;
  req.target = "/echo";
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.Send(req).ok());
  EXPECT_EQ(requests_.load(), 5);
}

TEST_F(ClientTest, TimesOutOnASilentServer) {
  Client c(url_, std::chrono::milliseconds(200));
  ClientRequest req;
  req.target = "/slow";
  auto r = c.Send(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
}

TEST(ClientConnect, RefusedIsUnavailable) {
  uint16_t port;
  {
    auto s = Server::Start({.port = 0}, [](Request&) { return Response(); });
    ASSERT_TRUE(s.ok());
    port = (*s)->port();
    (*s)->Stop();
  }
  Client c(Url{"127.0.0.1", port, ""});
  auto r = c.Send(ClientRequest{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
}

TEST(ParseUrl, Forms) {
  auto u = ParseUrl("http://127.0.0.1:9292");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 9292);
  EXPECT_EQ(u->base_path, "");
  u = ParseUrl("http://example.org/image/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->base_path, "/image");
  u = ParseUrl("http://[::1]:8080/x");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_FALSE(ParseUrl("https://x").ok());
  EXPECT_FALSE(ParseUrl("http://x:99999").ok());
  EXPECT_FALSE(ParseUrl("http://:80").ok());
  EXPECT_FALSE(ParseUrl("http://x:8a").ok());
}

}  // namespace
}  // namespace ingot::http
