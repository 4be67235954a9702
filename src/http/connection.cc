#include "http/connection.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>

#include "common/log.h"
#include "common/text.h"
#include "http/request_head.h"
#include "io/memory.h"

namespace ingot::http {

using namespace std::string_view_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// Body bytes that may be discarded after a handler returns without reading them all, if they have
// already arrived; past this (or when more is still to come) the connection is closed instead.
constexpr uint64_t kDrainLimit = 1 << 20;
// Chunk size of streamed responses: large enough that the worker/I-O hand-off per chunk is noise.
constexpr size_t kStreamChunk = 1 << 20;
// How long a closing connection waits for the peer to finish sending before the socket is closed; a
// close with unread data sends RST, which can destroy the response before the client has read it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr size_t kScratch = 64 * 1024;

// "Sun, 22 Nov 2026 02:33:01 GMT", recomputed at most once a second per thread.
const std::string& HttpDate() {
  thread_local time_t cached_at = 0;
  thread_local std::string cached;
  time_t now = time(nullptr);
  if (now != cached_at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_at = now;
  }
  return cached;
}

// Whether a response field's name or value can go into the head as it is: no CR or LF (which would
// let a handler forge fields), and in a name no ':' or space either. memchr, not find_first_of
// (which calls memchr once per byte of the text).
bool SafeValue(std::string_view v) {
  return std::memchr(v.data(), '\r', v.size()) == nullptr &&
         std::memchr(v.data(), '\n', v.size()) == nullptr;
}
bool SafeName(std::string_view name) {
  for (char c : name) {
    if (c == '\r' || c == '\n' || c == ':' || c == ' ') return false;
  }
  return true;
}

std::string_view ReasonPhrase(int status) {
  std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return reason == "<unknown-status>" ? std::string_view("Unknown") : reason;
}

bool IsBeastParseError(const boost::system::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::need_more && ec != bhttp::error::need_buffer;
}

// A plain-text answer the server makes itself (refusals, limits, timeouts).
Response Simple(int status, std::string_view text) {
  Response r;
  r.status = status;
  r.headers.Set("Content-Type", "text/plain");
  r.body = std::string(text) + "\n";
  return r;
}

// Runs a handler phase, turning an exception into a 500.
template <typename F>
auto Guarded(F f, const std::string& target) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    log::Error("handler threw", {{"error", e.what()}, {"target", target}});
    return Simple(500, "Internal Server Error");
  }
}

}  // namespace

// An operation a worker thread started on the strand and will wait for.
class Connection::Pending {
 public:
  void Done() {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_one();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

class Connection::BodyReader final : public io::Reader {
 public:
  explicit BodyReader(Connection& c) : c_(c) {}
  Result<size_t> Read(std::span<uint8_t> buf) override { return c_.ReadBodyBlocking(buf); }

 private:
  Connection& c_;
};

Connection::Connection(ServerCore& server, tcp::socket socket, std::string client,
                       bool over_limit)
    : server_(server),
      socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      client_(std::move(client)),
      over_limit_(over_limit) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) {
    remote_ = ep.address().is_v6()
                  ? "[" + ep.address().to_string() + "]:" + std::to_string(ep.port())
                  : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
}

void Connection::SetDeadline(std::chrono::milliseconds timeout) {
  SetDeadlineAt(Clock::now() + timeout);
}

void Connection::SetDeadlineAt(Clock::time_point when) {
  deadline_ = when;
  if (deadline_ < timer_.expiry()) timer_.cancel();  // the watchdog re-arms for the earlier one
}

void Connection::ClearDeadline() { deadline_ = Clock::time_point::max(); }

Connection::Clock::time_point Connection::ProgressDeadline(Clock::time_point start, uint64_t bytes,
                                                           Clock::time_point cap) const {
  const ServerOptions& opt = server_.options();
  Clock::time_point d = std::min(Clock::now() + opt.io_timeout, cap);
  if (opt.min_data_rate > 0) {
    // One second earned per min_data_rate bytes (capped at 1 TiB so the product cannot overflow).
    auto earned = std::chrono::microseconds(
        static_cast<int64_t>(std::min<uint64_t>(bytes, 1ull << 40) * 1000000 / opt.min_data_rate));
    d = std::min(d, start + opt.min_rate_grace + earned);
  }
  return d;
}

asio::awaitable<void> Connection::Watchdog() {
  auto self = shared_from_this();
  while (!closed_) {
    timer_.expires_at(deadline_);
    co_await timer_.async_wait(kNoThrow);
    if (closed_) break;
    if (deadline_ <= Clock::now()) {
      timed_out_ = true;
      boost::system::error_code ignored;
      socket_.close(ignored);
      break;
    }
  }
}

void Connection::CloseIfIdle() {
  if (!in_exchange_) CloseNow();
}

void Connection::CloseNow() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

Status Connection::IoFailure(const boost::system::error_code& ec, std::string_view what) const {
  if (timed_out_) {
    return Timeout(std::string(what) +
                   ": the client stalled or fell under the minimum data rate or past the deadline");
  }
  if (ec == asio::error::eof || ec == bhttp::error::partial_message ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
      ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
    return Cancelled(std::string(what) + ": the client went away (" + ec.message() + ")");
  }
  if (IsBeastParseError(ec)) return InvalidArgument(std::string(what) + ": " + ec.message());
  return IoError(std::string(what) + ": " + ec.message());
}

asio::awaitable<void> Connection::Run() {
  auto self = shared_from_this();
  asio::co_spawn(executor(), Watchdog(), asio::detached);
  const ServerOptions& opt = server_.options();
  bool first = true;
  while (!server_.stopping() && socket_.is_open()) {
    parser_.emplace();
    parser_->header_limit(
        static_cast<uint32_t>(std::min<size_t>(opt.max_header_bytes, UINT32_MAX)));
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    SetDeadline(first || buffer_.size() > 0 ? opt.header_timeout : opt.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(socket_, buffer_, *parser_, kNoThrow);
    if (ec) {
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
        co_await WriteSimpleError(431, "Request Header Fields Too Large");
      } else if (IsBeastParseError(ec)) {
        co_await WriteSimpleError(400, "Bad Request");
      }
      break;
    }
    first = false;
    if (!co_await Serve()) break;
  }
  co_await CloseGracefully();
  closed_ = true;
  timer_.cancel();
  server_.Forget(this);
}

asio::awaitable<void> Connection::WriteSimpleError(int status, std::string_view message) {
  std::string body = std::string(message) + "\n";
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) +
                     "\r\nContent-Type: text/plain\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\nConnection: close\r\nDate: " + HttpDate() +
                     "\r\n\r\n";
  bool ok = false;
  co_await WriteAll(&ok, asio::buffer(head), asio::buffer(body));
}

asio::awaitable<void> Connection::CloseGracefully() {
  if (!socket_.is_open()) co_return;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    if (!scratch_) scratch_.reset(new uint8_t[kScratch]);
    SetDeadline(kLingerTime);
    for (;;) {
      auto [rec, n] =
          co_await socket_.async_read_some(asio::buffer(scratch_.get(), kScratch), kNoThrow);
      if (rec) break;
    }
  }
  ClearDeadline();
  socket_.close(ec);
}

std::optional<Response> Connection::Admit(Request& req, bool* admitted) {
  *admitted = false;
  const ServerOptions& opt = server_.options();
  auto& msg = parser_->get();
  Framing framing = CheckFraming(FramingFieldsOf(msg.version(), msg));
  if (framing.refusal != 0) {
    log::Info("http.refused", {{"remote", remote_}, {"status", framing.refusal},
                               {"reason", framing.reason}});
    return Simple(framing.refusal,
                  std::string(ReasonPhrase(framing.refusal)) + ": " + framing.reason);
  }
  auto target = ParseTarget(req.target);
  if (!target) return Simple(400, "Bad Request: the request target is malformed");
  req.path = std::move(target->path);
  req.query = std::move(target->query);
  for (const auto& field : msg) {
    req.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  req.remote_address = remote_;
  req.chunked = framing.kind == Framing::Kind::kChunked;
  if (auto cl = parser_->content_length(); cl && !req.chunked) req.content_length = *cl;

  bool unlimited = std::find(opt.unlimited_paths.begin(), opt.unlimited_paths.end(), req.path) !=
                   opt.unlimited_paths.end();
  auto busy = [&](std::string_view what) {
    Response r = Simple(503, "Service Unavailable: too many " + std::string(what) +
                                 "; retry after " + std::to_string(opt.retry_after_seconds) +
                                 " s");
    r.headers.Set("Retry-After", std::to_string(opt.retry_after_seconds));
    return r;
  };
  if (over_limit_ && !unlimited) return busy("connections");
  if (!server_.BeginExchange(client_, unlimited)) return busy("requests in flight");
  *admitted = true;
  return std::nullopt;
}

asio::awaitable<void> Connection::OnWorker(std::function<void()> job) {
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&](auto done) {
        auto shared_done = std::make_shared<decltype(done)>(std::move(done));
        server_.workers().Submit([shared_done, &job] {
          job();
          asio::post(std::move(*shared_done));
        });
      },
      asio::use_awaitable);
}

void Connection::Settle(Response&& resp, bool head_only) {
  response_ = std::move(resp);
  if (response_.stream && !head_only) {
    BlockOn([this]() -> asio::awaitable<void> {
      DiscardArrivedBody();
      co_return;
    }());
    bool chunked = false;
    uint64_t length = 0;
    const std::string& head = BuildHead(response_, head_only, &chunked, &length);
    WriteStreamedResponse(response_, head, chunked, length);
    written_ = true;
  }
}

asio::awaitable<bool> Connection::Serve() {
  auto& msg = parser_->get();
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());

  in_exchange_ = true;
  keep_alive_ = parser_->keep_alive();
  broken_ = false;
  continue_sent_ = false;
  body_status_ = Status::Ok();
  bytes_in_ = 0;
  bytes_out_ = 0;
  written_ = false;
  response_ = Response();
  body_deadline_ = Clock::time_point::max();
  body_start_ = response_start_ = Clock::now();  // re-set when each one begins
  bool head_only = req.method == "HEAD";
  auto start = Clock::now();
  ClearDeadline();  // a handler may take its time; I/O it starts sets its own deadline

  bool admitted = false;
  std::optional<Response> refused = Admit(req, &admitted);
  direct_body_ = !req.chunked && req.content_length.has_value();
  body_remaining_ = direct_body_ ? *req.content_length : 0;
  expect_continue_ = msg.version() >= 11 && IEquals(msg[bhttp::field::expect], "100-continue") &&
                     req.has_body();
  if (refused) {
    keep_alive_ = false;  // the body, if any, is never read: nothing more on this connection is
                          // trusted
    response_ = std::move(*refused);
  } else {
    // The inline handler first (message.h): what it answers costs no hand-off to a worker.
    std::optional<Response> quick;
    if (const InlineHandler& first_look = server_.inline_handler()) {
      quick = Guarded([&]() -> std::optional<Response> { return first_look(req); }, req.target);
    }
    std::optional<NeedBody> need;
    if (quick && !quick->stream) {
      response_ = std::move(*quick);
    } else if (quick) {
      co_await OnWorker([&] { Settle(std::move(*quick), head_only); });
    } else {
      co_await OnWorker([&] {
        HeadResult h = Guarded([&] { return server_.handler()(req); }, req.target);
        if (auto* r = std::get_if<Response>(&h)) {
          Settle(std::move(*r), head_only);
        } else {
          need = std::move(std::get<NeedBody>(h));
        }
      });
    }
    if (need) co_await ServeBody(*need, req, head_only);
  }
  if (over_limit_) keep_alive_ = false;

  if (!written_) {
    DiscardArrivedBody();
    co_await WriteResponse(response_, head_only);
  }
  bool ok = !broken_;
  ClearDeadline();

  Exchange e;
  e.method = std::move(req.method);
  e.target = std::move(req.target);
  e.route = std::move(response_.route);
  e.status = response_.status;
  e.bytes_in = bytes_in_;
  e.bytes_out = bytes_out_;
  e.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  e.completed = ok;
  const std::string& id_header = server_.options().request_id_header;
  if (!id_header.empty()) {
    if (auto id = response_.headers.Get(id_header)) e.request_id = std::string(*id);
  }
  e.remote_address = remote_;
  server_.Observe(e);
  response_ = Response();  // close its file or stream now, not at the next request
  in_exchange_ = false;
  if (admitted) server_.EndExchange(client_);
  co_return keep_alive_ && !broken_ && BodyDone();
}

asio::awaitable<void> Connection::ServeBody(NeedBody& need, Request& req, bool head_only) {
  const ServerOptions& opt = server_.options();
  auto run_next = [&](io::Reader* body) -> asio::awaitable<void> {
    req.body = body;
    co_await OnWorker([&] {
      Response r = Guarded([&] { return need.next(req); }, req.target);
      Settle(std::move(r), head_only);
    });
    req.body = nullptr;
  };
  auto too_large = [&] {
    keep_alive_ = false;
    response_ = need.too_large ? need.too_large() : Simple(413, "Request Entity Too Large");
  };
  if (!req.has_body()) {
    io::StringReader empty("");
    co_await run_next(&empty);
    co_return;
  }
  if (req.content_length && *req.content_length > need.limit) {
    // Answered before a byte of the body is read; the connection closes after the answer.
    too_large();
    co_return;
  }
  body_start_ = Clock::now();
  if (need.mode == NeedBody::Mode::kBuffered) {
    if (opt.buffered_body_deadline.count() > 0)
      body_deadline_ = body_start_ + opt.buffered_body_deadline;
    std::string body;
    Status s = co_await ReadWhole(need.limit, &body);
    if (s.code() == Code::kTooLarge) {
      too_large();
    } else if (!s.ok()) {
      log::Info("http.body_failed", {{"remote", remote_}, {"error", s.message()}});
      response_ = Simple(s.code() == Code::kTimeout ? 408 : 400,
                         s.code() == Code::kTimeout ? "Request Timeout" : "Bad Request");
    } else {
      io::StringReader reader(body);
      co_await run_next(&reader);
    }
    co_return;
  }
  if (!server_.AcquireStreamedBody()) {
    keep_alive_ = false;
    response_ = Simple(503, "Service Unavailable: too many uploads in progress; retry after " +
                                std::to_string(opt.retry_after_seconds) + " s");
    response_.headers.Set("Retry-After", std::to_string(opt.retry_after_seconds));
    co_return;
  }
  if (opt.streamed_body_deadline.count() > 0)
    body_deadline_ = body_start_ + opt.streamed_body_deadline;
  // A worker takes the body only once its first bytes are here.
  Status ready = co_await AwaitBodyBytes();
  if (ready.ok()) {
    BodyReader reader(*this);
    co_await run_next(&reader);
  } else {
    log::Info("http.body_failed", {{"remote", remote_}, {"error", ready.message()}});
    response_ = Simple(408, "Request Timeout");
  }
  server_.ReleaseStreamedBody();
}

asio::awaitable<Status> Connection::ReadWhole(uint64_t limit, std::string* out) {
  if (direct_body_) out->reserve(static_cast<size_t>(body_remaining_));
  if (!scratch_) scratch_.reset(new uint8_t[kScratch]);
  while (!BodyDone()) {
    Result<size_t> n = size_t{0};
    co_await ReadBodyInto(std::span<uint8_t>(scratch_.get(), kScratch), &n);
    if (!n.ok()) co_return n.status();
    if (*n > limit - out->size()) {
      co_return TooLarge("request body is over the limit of " + std::to_string(limit) + " bytes");
    }
    out->append(reinterpret_cast<const char*>(scratch_.get()), *n);
  }
  co_return Status::Ok();
}

asio::awaitable<Status> Connection::SendContinue() {
  if (!expect_continue_ || continue_sent_) co_return Status::Ok();
  continue_sent_ = true;
  static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
  bool ok = false;
  co_await WriteAll(&ok, asio::buffer(k100.data(), k100.size()));
  if (!ok) {
    body_status_ = timed_out_ ? Timeout("writing 100 Continue: no progress within the I/O timeout")
                              : Cancelled("writing 100 Continue: the client went away");
    broken_ = true;
  }
  co_return body_status_;
}

asio::awaitable<Status> Connection::AwaitBodyBytes() {
  // A client waiting for 100 Continue sends nothing until the handler's first read asks for it.
  if (expect_continue_ && !continue_sent_) co_return Status::Ok();
  if (buffer_.size() > 0) co_return Status::Ok();
  SetDeadlineAt(ProgressDeadline(body_start_, 0, body_deadline_));
  auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, kNoThrow);
  ClearDeadline();
  if (!ec && !socket_.is_open()) ec = asio::error::operation_aborted;
  if (ec) {
    body_status_ = IoFailure(ec, "waiting for the request body");
    broken_ = true;
    co_return body_status_;
  }
  co_return Status::Ok();
}

void Connection::DiscardArrivedBody() {
  if (broken_ || BodyDone()) return;
  if (expect_continue_ && !continue_sent_) {
    // The client is waiting for our word before sending the body; the final answer tells it not to.
    keep_alive_ = false;
    return;
  }
  if (!body_status_.ok() || !direct_body_) {
    keep_alive_ = false;
    return;
  }
  uint64_t drained = 0;
  size_t n = static_cast<size_t>(std::min<uint64_t>(buffer_.size(), body_remaining_));
  buffer_.consume(n);
  body_remaining_ -= n;
  drained += n;
  if (!scratch_) scratch_.reset(new uint8_t[kScratch]);
  boost::system::error_code ec;
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
  while (!ec && body_remaining_ > 0 && drained < kDrainLimit) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kScratch, body_remaining_));
    size_t got = socket_.read_some(asio::buffer(scratch_.get(), want), ec);
    body_remaining_ -= got;
    drained += got;
  }
  if (body_remaining_ > 0) keep_alive_ = false;  // the rest is not here yet: close, don't wait
}

asio::awaitable<void> Connection::ReadBodyInto(std::span<uint8_t> buf, Result<size_t>* out) {
  if (!body_status_.ok()) {
    *out = body_status_;
    co_return;
  }
  if (Status s = co_await SendContinue(); !s.ok()) {
    *out = s;
    co_return;
  }
  if (direct_body_) {
    co_await ReadDirect(buf, out);
    co_return;
  }
  auto& p = *parser_;
  // Beast reads at most min(64 KiB, free capacity) per call; give it the 64 KiB.
  if (buffer_.capacity() < kScratch) buffer_.reserve(kScratch);
  size_t filled = 0;
  while (filled < buf.size() && !p.is_done()) {
    p.get().body().data = buf.data() + filled;
    p.get().body().size = buf.size() - filled;
    SetDeadlineAt(ProgressDeadline(body_start_, bytes_in_ + filled, body_deadline_));
    auto [ec, n] = co_await bhttp::async_read_some(socket_, buffer_, p, kNoThrow);
    filled += (buf.size() - filled) - p.get().body().size;
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      ClearDeadline();
      body_status_ = IoFailure(ec, "reading the request body");
      broken_ = true;
      bytes_in_ += filled;
      *out = body_status_;
      co_return;
    }
    // Return what has arrived once the socket has nothing more ready: the caller wants bytes to
    // work on, not a full buffer.
    boost::system::error_code aec;
    if (filled > 0 && socket_.available(aec) == 0) break;
  }
  ClearDeadline();
  bytes_in_ += filled;
  *out = filled;
}

// Content-Length bodies bypass the parser: bytes go from the socket straight into the caller's
// buffer, in reads as large as that buffer, with no copy.
asio::awaitable<void> Connection::ReadDirect(std::span<uint8_t> buf, Result<size_t>* out) {
  size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), body_remaining_));
  size_t filled = 0;
  // Bytes that arrived with the headers come first.
  if (buffer_.size() > 0 && want > 0) {
    filled = asio::buffer_copy(asio::buffer(buf.data(), want), buffer_.data());
    buffer_.consume(filled);
  }
  boost::system::error_code ec;
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);
  while (!ec && filled < want) {
    size_t n = socket_.read_some(asio::buffer(buf.data() + filled, want - filled), ec);
    filled += n;
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      if (filled > 0) break;  // hand over what has arrived; the caller wants bytes, not a full buffer
      SetDeadlineAt(ProgressDeadline(body_start_, bytes_in_, body_deadline_));
      auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, kNoThrow);
      ClearDeadline();
      ec = wec;
      if (!ec && !socket_.is_open()) ec = asio::error::operation_aborted;
    } else if (!ec && n == 0) {
      ec = asio::error::eof;
    }
  }
  body_remaining_ -= filled;
  bytes_in_ += filled;
  if (ec) {
    body_status_ = IoFailure(ec, "reading the request body");
    broken_ = true;
    *out = body_status_;
    co_return;
  }
  *out = filled;
}

asio::awaitable<void> Connection::WriteResponse(Response& resp, bool head_only) {
  bool ok = true;
  bool chunked = false;
  uint64_t length = 0;
  const std::string& head = BuildHead(resp, head_only, &chunked, &length);
  response_start_ = Clock::now();
  if (resp.file && length > 0) {
    // What the socket takes at once is written here, without a coroutine of its own; only what
    // must wait for the socket goes through the event loop (WriteAll, SendFile).
    size_t sent = SendHeadNow(head, &ok);
    if (ok && sent < head.size()) {
      co_await WriteAll(&ok, asio::buffer(head.data() + sent, head.size() - sent));
    }
    // `length` is the whole body (BuildHead: FileRange::total); the first range, then the others.
    const int fd = resp.file->descriptor();
    for (size_t i = 0; ok && i <= resp.file->more.size(); ++i) {
      FileSegment r = i == 0 ? FileSegment{resp.file->offset, resp.file->length}
                             : resp.file->more[i - 1];
      if (r.length == 0) continue;
      SendState state = SendFileNow(fd, &r.offset, &r.length);
      if (state == SendState::kAgain) {
        co_await SendFile(fd, r.offset, r.length, &ok);
      } else {
        ok = state == SendState::kDone;
      }
    }
  } else if (!resp.file && !resp.stream && length > 0) {
    co_await WriteAll(&ok, asio::buffer(head), asio::buffer(resp.body.data(), length));
    if (ok) bytes_out_ += length;
  } else {
    co_await WriteAll(&ok, asio::buffer(head));
  }
  if (!ok) broken_ = true;
}

asio::awaitable<void> Connection::WriteAll(bool* ok, asio::const_buffer a, asio::const_buffer b,
                                           asio::const_buffer c) {
  SetDeadlineAt(ProgressDeadline(response_start_, bytes_out_));
  std::array<asio::const_buffer, 3> buffers{a, b, c};
  auto [ec, n] = co_await asio::async_write(socket_, buffers, kNoThrow);
  ClearDeadline();
  *ok = !ec;
}

size_t Connection::SendHeadNow(const std::string& head, bool* ok) {
  // MSG_MORE: the kernel holds the head until the body's first bytes join it (nginx's TCP_NOPUSH),
  // so a small file leaves in one segment; sendfile's last bytes push it out.
  *ok = true;
  boost::system::error_code ec;
  // The setter is an ioctl each time; the getter is asio's own record of the mode.
  if (!socket_.native_non_blocking()) socket_.native_non_blocking(true, ec);
  if (ec) return 0;  // the event loop writes it
  ssize_t n;
  do {
    n = ::send(socket_.native_handle(), head.data(), head.size(),
               MSG_MORE | MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno != EAGAIN && errno != EWOULDBLOCK) *ok = false;
  return 0;
}

Connection::SendState Connection::SendFileNow(int fd, uint64_t* offset, uint64_t* length) {
  boost::system::error_code ec;
  if (!socket_.native_non_blocking()) socket_.native_non_blocking(true, ec);
  if (ec) return SendState::kFailed;
  const int sock = socket_.native_handle();
  while (*length > 0) {
    if (*offset > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
      return SendState::kFailed;
    }
    off_t off = static_cast<off_t>(*offset);
    size_t count = static_cast<size_t>(std::min<uint64_t>(*length, 0x7ffff000));
    ssize_t n = ::sendfile(sock, fd, &off, count);
    if (n > 0) {
      *offset += static_cast<uint64_t>(n);
      *length -= static_cast<uint64_t>(n);
      bytes_out_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) {
      // The file is shorter than the range promised in Content-Length: the response cannot be
      // completed.
      log::Error("sendfile hit the end of the file early", {{"remaining", *length}});
      return SendState::kFailed;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN ? SendState::kAgain : SendState::kFailed;
  }
  return SendState::kDone;
}

asio::awaitable<void> Connection::SendFile(int fd, uint64_t offset, uint64_t length, bool* ok) {
  *ok = false;
  for (;;) {
    SendState state = SendFileNow(fd, &offset, &length);
    if (state != SendState::kAgain) {
      *ok = state == SendState::kDone;
      co_return;
    }
    SetDeadlineAt(ProgressDeadline(response_start_, bytes_out_));
    auto [wec] = co_await socket_.async_wait(tcp::socket::wait_write, kNoThrow);
    ClearDeadline();
    if (wec || !socket_.is_open()) co_return;
  }
}

void Connection::Launch(asio::awaitable<void> op, Pending* pending) {
  asio::co_spawn(executor(), std::move(op), [this, pending](std::exception_ptr e) {
    if (e) broken_ = true;
    pending->Done();
  });
}

void Connection::BlockOn(asio::awaitable<void> op) {
  Pending pending;
  Launch(std::move(op), &pending);
  pending.Wait();
}

Result<size_t> Connection::ReadBodyBlocking(std::span<uint8_t> buf) {
  if (buf.empty()) return size_t{0};
  Result<size_t> out = size_t{0};
  BlockOn(ReadBodyInto(buf, &out));
  return out;
}

const std::string& Connection::BuildHead(Response& resp, bool head_only, bool* chunked,
                                  uint64_t* length) {
  *chunked = false;
  *length = 0;
  const ServerOptions& opt = server_.options();
  bool no_body_status =
      (resp.status >= 100 && resp.status < 200) || resp.status == 204 || resp.status == 304;
  std::optional<uint64_t> handler_length;
  if (auto cl = resp.headers.Get("Content-Length")) handler_length = ParseUint(*cl);
  if (auto conn = resp.headers.Get("Connection"); conn && HasToken(*conn, "close"))
    keep_alive_ = false;
  if (server_.stopping()) keep_alive_ = false;

  // The body length this response announces.
  std::optional<uint64_t> announced;
  if (resp.file) {
    announced = resp.file->total();
  } else if (resp.stream) {
    announced = resp.stream_length ? resp.stream_length : handler_length;
  } else {
    announced = resp.body.size();
  }
  if (!no_body_status) {
    if (head_only && handler_length) {
      announced = handler_length;  // HEAD describes the GET; trust what the handler computed
    }
    if (announced) {
      *length = *announced;
    } else if (!head_only) {
      *chunked = true;
    }
  }

  // Written into the connection's own buffer: its capacity stays for the next response.
  std::string& head = head_;
  head.clear();
  head += "HTTP/1.1 "sv;
  AppendDecimal(head, static_cast<uint64_t>(resp.status));
  head += ' ';
  head += ReasonPhrase(resp.status);
  head += "\r\n"sv;
  bool has_date = false;
  bool has_server = false;
  for (const auto& [name, value] : resp.headers.fields()) {
    if (IEquals(name, "Content-Length") || IEquals(name, "Transfer-Encoding") ||
        IEquals(name, "Connection")) {
      continue;
    }
    // Header injection: a value carrying CR or LF would let a caller forge fields.
    if (!SafeValue(value) || !SafeName(name)) continue;
    has_date |= IEquals(name, "Date");
    has_server |= IEquals(name, "Server");
    head += name;
    head += ": "sv;
    head += value;
    head += "\r\n"sv;
  }
  if (!no_body_status || handler_length) {
    if (*chunked) {
      head += "Transfer-Encoding: chunked\r\n"sv;
    } else if (announced || handler_length) {
      head += "Content-Length: "sv;
      AppendDecimal(head, announced ? *announced : *handler_length);
      head += "\r\n"sv;
    }
  }
  if (!has_date) {
    head += "Date: "sv;
    head += HttpDate();
    head += "\r\n"sv;
  }
  if (!has_server && !opt.server_name.empty()) {
    head += "Server: "sv;
    head += opt.server_name;
    head += "\r\n"sv;
  }
  if (!keep_alive_) {
    head += "Connection: close\r\n"sv;
  } else if (parser_->get().version() < 11) {
    head += "Connection: keep-alive\r\n"sv;
  }
  head += "\r\n"sv;
  if (no_body_status || head_only) {
    *length = 0;
    *chunked = false;
  }
  return head;
}

void Connection::WriteStreamedResponse(Response& resp, const std::string& head, bool chunked,
                                       uint64_t length) {
  response_start_ = Clock::now();
  bool ok = false;
  BlockOn(WriteAll(&ok, asio::buffer(head)));
  if (!ok) {
    broken_ = true;
    return;
  }
  // Two buffers: the next chunk is read from the stream while the previous one is on its way out.
  // Socket writes stay strictly one after another.
  struct Slot {
    std::unique_ptr<uint8_t[]> data{new uint8_t[kStreamChunk]};
    char size_line[32];
    bool ok = false;
    std::optional<Pending> pending;
  };
  Slot slots[2];
  auto settle = [](Slot& s) {
    if (!s.pending) return true;
    s.pending->Wait();
    s.pending.reset();
    return s.ok;
  };
  uint64_t sent = 0;
  int cur = 0;
  bool failed = false;
  for (;;) {
    size_t want = kStreamChunk;
    if (!chunked) {
      if (sent == length) break;
      want = static_cast<size_t>(std::min<uint64_t>(want, length - sent));
    }
    Slot& s = slots[cur];
    auto n = resp.stream->Read(std::span<uint8_t>(s.data.get(), want));
    if (!settle(slots[cur ^ 1])) {
      failed = true;
      break;
    }
    if (!n.ok()) {
      log::Error("response stream failed", {{"error", n.status().ToString()}});
      failed = true;  // the client sees a truncated body and a closed connection
      break;
    }
    if (*n == 0) break;
    s.pending.emplace();
    if (chunked) {
      int len = snprintf(s.size_line, sizeof(s.size_line), "%zx\r\n", *n);
      Launch(WriteAll(&s.ok, asio::buffer(s.size_line, static_cast<size_t>(len)),
                      asio::buffer(s.data.get(), *n), asio::buffer("\r\n", 2)),
             &*s.pending);
    } else {
      Launch(WriteAll(&s.ok, asio::buffer(s.data.get(), *n)), &*s.pending);
    }
    sent += *n;
    bytes_out_ += *n;  // counted as it goes: the minimum-rate deadline reads it
    cur ^= 1;
  }
  // Both writes must be over before the buffers go away.
  bool last_ok = settle(slots[0]) & settle(slots[1]);
  if (failed || !last_ok) {
    broken_ = true;
    return;
  }
  if (chunked) {
    BlockOn(WriteAll(&ok, asio::buffer("0\r\n\r\n", 5)));
    if (!ok) broken_ = true;
  } else if (sent != length) {
    log::Error("response stream ended early", {{"sent", sent}, {"length", length}});
    broken_ = true;
  }
}

}  // namespace ingot::http
