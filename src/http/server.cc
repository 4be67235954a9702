// The HTTP/1.1 server: Boost.Asio coroutines on `io_threads` for all network I/O, a fixed pool of
// worker threads for handlers. A connection is one coroutine on its own strand; while its handler
// runs the coroutine is suspended, and the handler's blocking body reads (and streamed response
// writes) are short coroutines spawned onto the same strand and waited for on the worker thread.
// Nothing blocks an I/O thread, so idle, slow and stalled connections cost only their buffers.
//
// Timeouts: one watchdog timer per connection closes the socket when the current deadline passes;
// every network operation sets the deadline (header, idle or I/O timeout) before it starts, so a
// deadline is "no progress for that long", never a cap on a whole transfer.
#include "http/server.h"

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"

namespace ingot::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// Body bytes that may be discarded after a handler returns without reading them all; past this the
// connection is closed instead, which is cheaper than reading a multi-gigabyte upload nobody wants.
constexpr uint64_t kDrainLimit = 1 << 20;
// Chunk size of streamed responses: large enough that the worker/I-O hand-off per chunk is noise.
constexpr size_t kStreamChunk = 1 << 20;
// How long a closing connection waits for the peer to finish sending before the socket is closed; a
// close with unread data sends RST, which can destroy the response before the client has read it.
constexpr std::chrono::milliseconds kLingerTime{1000};

// "Sun, 22 Nov 2026 02:33:01 GMT", recomputed at most once a second per thread.
std::string HttpDate() {
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

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// True when a comma-separated header value (e.g. Connection) lists `token`.
bool HasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (IEquals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

bool IsBeastParseError(const boost::system::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
         ec != bhttp::error::need_more && ec != bhttp::error::need_buffer;
}

// Splits "a=1&b=x+y" into decoded pairs; a malformed escape keeps the raw text (as webob does).
void ParseQuery(std::string_view qs, std::vector<std::pair<std::string, std::string>>& out) {
  while (!qs.empty()) {
    size_t amp = qs.find('&');
    std::string_view item = qs.substr(0, amp);
    if (!item.empty()) {
      size_t eq = item.find('=');
      std::string_view k = item.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
      auto dk = PercentDecode(k, true);
      auto dv = PercentDecode(v, true);
      out.emplace_back(dk ? std::move(*dk) : std::string(k), dv ? std::move(*dv) : std::string(v));
    }
    if (amp == std::string_view::npos) break;
    qs.remove_prefix(amp + 1);
  }
}

// A fixed set of threads running queued jobs in order.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() { Join(); }

  void Submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  // Runs what is queued, then joins the threads.
  void Join() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

class ServerImpl;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerImpl& server, tcp::socket socket);

  asio::awaitable<void> Run();
  // Called on the strand by Server::Stop: closes the socket now, or only if no exchange is in
  // flight.
  void CloseIfIdle();
  void CloseNow();
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  class BodyReader;

  // One request/response; false when the connection must not be reused.
  asio::awaitable<bool> Serve();
  asio::awaitable<void> Watchdog();
  void SetDeadline(std::chrono::milliseconds timeout);
  void ClearDeadline();
  asio::awaitable<void> CloseGracefully();
  asio::awaitable<void> WriteSimpleError(int status, std::string_view message);

  // Strand-side operations; the worker thread runs them through BlockOn.
  asio::awaitable<void> ReadBodyInto(std::span<uint8_t> buf, Result<size_t>* out);
  asio::awaitable<void> FinishRequestBody();
  // Writes a, b and c in order (empty buffers are skipped).
  asio::awaitable<void> WriteAll(bool* ok, asio::const_buffer a, asio::const_buffer b = {},
                                 asio::const_buffer c = {});
  asio::awaitable<void> SendFile(int fd, uint64_t offset, uint64_t length, bool* ok);

  // An operation a worker thread started on the strand and will wait for.
  class Pending {
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
  // Starts `op` on the connection's strand; `pending` (which must outlive it) is signalled at the
  // end.
  void Launch(asio::awaitable<void> op, Pending* pending);
  // Runs `op` on the connection's strand and waits for it. Worker threads only.
  void BlockOn(asio::awaitable<void> op);
  Result<size_t> ReadBodyBlocking(std::span<uint8_t> buf);
  // Worker side of a Reader response body: pulls chunks and writes them through the strand.
  void WriteStreamedResponse(Response& resp, const std::string& head, bool chunked,
                             uint64_t length);

  Status IoFailure(const boost::system::error_code& ec, std::string_view what) const;
  bool BodyDone() const { return direct_body_ ? body_remaining_ == 0 : parser_->is_done(); }
  // Content-Length bodies bypass the parser: bytes go from the socket straight into the caller's
  // buffer, in reads as large as that buffer, with no copy.
  asio::awaitable<void> ReadDirect(std::span<uint8_t> buf, Result<size_t>* out);
  // The response head; settles keep_alive_ and the body framing.
  std::string BuildHead(Response& resp, bool head_only, bool* chunked, uint64_t* length);

  ServerImpl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool closed_ = false;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
  std::string remote_;

  // Per exchange.
  bool in_exchange_ = false;
  bool keep_alive_ = true;
  bool broken_ = false;  // the stream is unusable (I/O or framing error): close after this exchange
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  bool direct_body_ = false;     // a Content-Length body, read by ReadDirect
  uint64_t body_remaining_ = 0;  // bytes of a direct body not yet read
  Status body_status_;           // sticky body read failure
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  std::unique_ptr<uint8_t[]> scratch_;  // drain/linger buffer, allocated on first use
};

class ServerImpl final : public Server {
 public:
  ServerImpl(ServerOptions options, Handler handler, ExchangeObserver observer)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        observer_(std::move(observer)),
        acceptor_(asio::make_strand(ioc_)),
        work_(asio::make_work_guard(ioc_)),
        workers_(options_.worker_threads) {}

  ~ServerImpl() override { Stop(std::chrono::milliseconds(0)); }

  Status Listen() {
    boost::system::error_code ec;
    asio::ip::address address = asio::ip::make_address(options_.host, ec);
    tcp::endpoint endpoint;
    if (ec) {
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(options_.host, std::to_string(options_.port), ec);
      if (ec || results.empty()) {
        return InvalidArgument("cannot resolve listen host '" + options_.host +
                               "': " + ec.message());
      }
      endpoint = results.begin()->endpoint();
    } else {
      endpoint = tcp::endpoint(address, options_.port);
    }
    std::string where = options_.host + ":" + std::to_string(options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return IoError("cannot listen on " + where + ": " + ec.message());
    port_ = acceptor_.local_endpoint(ec).port();
    return Status::Ok();
  }

  void StartThreads() {
    asio::co_spawn(acceptor_.get_executor(), AcceptLoop(), asio::detached);
    for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
      io_threads_.emplace_back([this] { ioc_.run(); });
    }
  }

  uint16_t port() const override { return port_; }

  void Stop(std::chrono::milliseconds grace) override {
    std::lock_guard stop_lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_.store(true);
    asio::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
    });
    ForEachConnection([](const std::shared_ptr<Connection>& c) {
      asio::post(c->executor(), [c] { c->CloseIfIdle(); });
    });
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, grace, [&] { return exchanges_ == 0; });
    }
    ForEachConnection([](const std::shared_ptr<Connection>& c) {
      asio::post(c->executor(), [c] { c->CloseNow(); });
    });
    workers_.Join();
    {
      // Connections finish quickly once closed; the bound only guards against a bug hanging
      // shutdown.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(5), [&] { return connections_.empty(); });
    }
    work_.reset();
    ioc_.stop();
    for (auto& t : io_threads_) {
      if (t.joinable()) t.join();
    }
    io_threads_.clear();
    std::lock_guard lock(mu_);
    connections_.clear();
  }

  const ServerOptions& options() const { return options_; }
  const Handler& handler() const { return handler_; }
  WorkerPool& workers() { return workers_; }
  bool stopping() const { return stopping_.load(); }

  void Observe(const Exchange& e) {
    if (observer_) observer_(e);
  }

  void ExchangeStarted() {
    std::lock_guard lock(mu_);
    ++exchanges_;
  }
  void ExchangeEnded() {
    {
      std::lock_guard lock(mu_);
      --exchanges_;
    }
    cv_.notify_all();
  }
  void Forget(Connection* c) {
    {
      std::lock_guard lock(mu_);
      connections_.erase(c);
    }
    cv_.notify_all();
  }

 private:
  asio::awaitable<void> AcceptLoop() {
    asio::steady_timer backoff(acceptor_.get_executor());
    for (;;) {
      tcp::socket socket(asio::make_strand(ioc_));
      auto [ec] = co_await acceptor_.async_accept(socket, kNoThrow);
      if (stopping_.load() || !acceptor_.is_open()) co_return;
      if (ec) {
        // Out of descriptors or a transient failure: back off rather than spin.
        log::Warn("accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(kNoThrow);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto conn = std::make_shared<Connection>(*this, std::move(socket));
      {
        std::lock_guard lock(mu_);
        connections_.emplace(conn.get(), conn);
      }
      asio::co_spawn(conn->executor(), conn->Run(), asio::detached);
    }
  }

  template <typename F>
  void ForEachConnection(F f) {
    std::vector<std::shared_ptr<Connection>> conns;
    {
      std::lock_guard lock(mu_);
      for (auto& [_, weak] : connections_) {
        if (auto c = weak.lock()) conns.push_back(std::move(c));
      }
    }
    for (auto& c : conns) f(c);
  }

  ServerOptions options_;
  Handler handler_;
  ExchangeObserver observer_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  WorkerPool workers_;
  std::vector<std::thread> io_threads_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};

  std::mutex stop_mu_;
  bool stopped_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  int exchanges_ = 0;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
};

class Connection::BodyReader final : public io::Reader {
 public:
  explicit BodyReader(Connection& c) : c_(c) {}
  Result<size_t> Read(std::span<uint8_t> buf) override { return c_.ReadBodyBlocking(buf); }

 private:
  Connection& c_;
};

Connection::Connection(ServerImpl& server, tcp::socket socket)
    : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()) {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) {
    remote_ = ep.address().is_v6()
                  ? "[" + ep.address().to_string() + "]:" + std::to_string(ep.port())
                  : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
}

void Connection::SetDeadline(std::chrono::milliseconds timeout) {
  deadline_ = Clock::now() + timeout;
  if (deadline_ < timer_.expiry())
    timer_.cancel();  // the watchdog re-arms for the earlier deadline
}

void Connection::ClearDeadline() { deadline_ = Clock::time_point::max(); }

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
  if (timed_out_) return Timeout(std::string(what) + ": no progress within the I/O timeout");
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
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(message) +
      "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\nDate: " + HttpDate() + "\r\n\r\n";
  bool ok = false;
  co_await WriteAll(&ok, asio::buffer(head), asio::buffer(body));
}

asio::awaitable<void> Connection::CloseGracefully() {
  if (!socket_.is_open()) co_return;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    if (!scratch_) scratch_.reset(new uint8_t[64 * 1024]);
    SetDeadline(kLingerTime);
    for (;;) {
      auto [rec, n] =
          co_await socket_.async_read_some(asio::buffer(scratch_.get(), 64 * 1024), kNoThrow);
      if (rec) break;
    }
  }
  ClearDeadline();
  socket_.close(ec);
}

std::string Connection::BuildHead(Response& resp, bool head_only, bool* chunked, uint64_t* length) {
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
    announced = resp.file->length;
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

  std::string head;
  head.reserve(256);
  head += "HTTP/1.1 ";
  head += std::to_string(resp.status);
  head += ' ';
  std::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(resp.status));
  head += reason == "<unknown-status>" ? std::string_view("Unknown") : reason;
  head += "\r\n";
  bool has_date = false;
  bool has_server = false;
  for (const auto& [name, value] : resp.headers.fields()) {
    if (IEquals(name, "Content-Length") || IEquals(name, "Transfer-Encoding") ||
        IEquals(name, "Connection")) {
      continue;
    }
    // Header injection: a value carrying CR or LF would let a caller forge fields.
    if (value.find_first_of("\r\n") != std::string::npos ||
        name.find_first_of("\r\n: ") != std::string::npos) {
      continue;
    }
    has_date |= IEquals(name, "Date");
    has_server |= IEquals(name, "Server");
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!no_body_status || handler_length) {
    if (*chunked) {
      head += "Transfer-Encoding: chunked\r\n";
    } else if (announced || handler_length) {
      head += "Content-Length: ";
      head += std::to_string(announced ? *announced : *handler_length);
      head += "\r\n";
    }
  }
  if (!has_date) {
    head += "Date: ";
    head += HttpDate();
    head += "\r\n";
  }
  if (!has_server && !opt.server_name.empty()) {
    head += "Server: ";
    head += opt.server_name;
    head += "\r\n";
  }
  if (!keep_alive_) {
    head += "Connection: close\r\n";
  } else if (parser_->get().version() < 11) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  if (no_body_status || head_only) {
    *length = 0;
    *chunked = false;
  }
  return head;
}

asio::awaitable<bool> Connection::Serve() {
  auto& msg = parser_->get();
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  std::string_view target = req.target;
  // Absolute form ("http://host/path"), which proxies send and servers must accept: keep the path.
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() > scheme.size() && IEquals(target.substr(0, scheme.size()), scheme)) {
      size_t slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  size_t qmark = target.find('?');
  auto path = PercentDecode(target.substr(0, qmark));
  if (!path || target.empty() || (target.front() != '/' && target != "*")) {
    co_await WriteSimpleError(400, "Bad Request");
    co_return false;
  }
  req.path = std::move(*path);
  if (qmark != std::string_view::npos) ParseQuery(target.substr(qmark + 1), req.query);
  for (const auto& field : msg) {
    req.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  req.remote_address = remote_;
  req.chunked = parser_->chunked();
  if (auto cl = parser_->content_length()) req.content_length = *cl;
  direct_body_ = !req.chunked && req.content_length.has_value();
  body_remaining_ = direct_body_ ? *req.content_length : 0;
  BodyReader reader(*this);
  req.body = &reader;

  in_exchange_ = true;
  keep_alive_ = parser_->keep_alive();
  broken_ = false;
  continue_sent_ = false;
  body_status_ = Status::Ok();
  bytes_in_ = 0;
  bytes_out_ = 0;
  auto expect = msg[bhttp::field::expect];
  expect_continue_ = msg.version() >= 11 && IEquals(expect, "100-continue") && !BodyDone();
  bool head_only = req.method == "HEAD";
  server_.ExchangeStarted();
  auto start = Clock::now();
  ClearDeadline();  // a handler may take its time; I/O it starts sets its own deadline

  Response resp;
  bool written = false;  // a streamed response is written by the worker itself
  bool ok = true;
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&](auto done) {
        auto shared_done = std::make_shared<decltype(done)>(std::move(done));
        server_.workers().Submit([this, shared_done, &req, &resp, &written, &ok, head_only] {
          try {
            resp = server_.handler()(req);
          } catch (const std::exception& e) {
            log::Error("handler threw", {{"error", e.what()}, {"target", req.target}});
            resp = Response();
            resp.status = 500;
            resp.body = "Internal Server Error\n";
          }
          if (resp.stream && !head_only) {
            BlockOn(FinishRequestBody());
            bool chunked = false;
            uint64_t length = 0;
            std::string head = BuildHead(resp, head_only, &chunked, &length);
            WriteStreamedResponse(resp, head, chunked, length);
            ok = !broken_;
            written = true;
          }
          asio::post(std::move(*shared_done));
        });
      },
      asio::use_awaitable);

  if (!written) {
    co_await FinishRequestBody();
    bool chunked = false;
    uint64_t length = 0;
    std::string head = BuildHead(resp, head_only, &chunked, &length);
    if (resp.file && length > 0) {
      co_await WriteAll(&ok, asio::buffer(head));
      if (ok) co_await SendFile(resp.file->fd.get(), resp.file->offset, length, &ok);
    } else if (!resp.file && !resp.stream && length > 0) {
      co_await WriteAll(&ok, asio::buffer(head), asio::buffer(resp.body.data(), length));
      if (ok) bytes_out_ += length;
    } else {
      co_await WriteAll(&ok, asio::buffer(head));
    }
  }
  if (!ok) broken_ = true;
  ClearDeadline();

  Exchange e;
  e.method = std::move(req.method);
  e.target = std::move(req.target);
  e.route = std::move(resp.route);
  e.status = resp.status;
  e.bytes_in = bytes_in_;
  e.bytes_out = bytes_out_;
  e.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
  e.completed = ok;
  if (auto id = resp.headers.Get("x-openstack-request-id")) e.request_id = std::string(*id);
  e.remote_address = remote_;
  server_.Observe(e);
  in_exchange_ = false;
  server_.ExchangeEnded();
  co_return keep_alive_ && !broken_ && BodyDone();
}

asio::awaitable<void> Connection::FinishRequestBody() {
  if (broken_ || BodyDone()) co_return;
  if (expect_continue_ && !continue_sent_) {
    // The client is waiting for our word before sending the body; the final answer tells it not to.
    keep_alive_ = false;
    co_return;
  }
  if (!body_status_.ok()) {
    broken_ = true;
    co_return;
  }
  if (!scratch_) scratch_.reset(new uint8_t[64 * 1024]);
  uint64_t drained = 0;
  while (!BodyDone() && drained < kDrainLimit) {
    Result<size_t> n = size_t{0};
    co_await ReadBodyInto(std::span<uint8_t>(scratch_.get(), 64 * 1024), &n);
    if (!n.ok()) {
      broken_ = true;
      co_return;
    }
    drained += *n;
  }
  if (!BodyDone()) keep_alive_ = false;
}

asio::awaitable<void> Connection::ReadBodyInto(std::span<uint8_t> buf, Result<size_t>* out) {
  const ServerOptions& opt = server_.options();
  if (!body_status_.ok()) {
    *out = body_status_;
    co_return;
  }
  if (expect_continue_ && !continue_sent_) {
    continue_sent_ = true;
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    bool ok = false;
    co_await WriteAll(&ok, asio::buffer(k100.data(), k100.size()));
    if (!ok) {
      body_status_ = timed_out_
                         ? Timeout("writing 100 Continue: no progress within the I/O timeout")
                         : Cancelled("writing 100 Continue: the client went away");
      broken_ = true;
      *out = body_status_;
      co_return;
    }
  }
  if (direct_body_) {
    co_await ReadDirect(buf, out);
    co_return;
  }
  auto& p = *parser_;
  // Beast reads at most min(64 KiB, free capacity) per call; give it the 64 KiB.
  if (buffer_.capacity() < 64 * 1024) buffer_.reserve(64 * 1024);
  size_t filled = 0;
  while (filled < buf.size() && !p.is_done()) {
    p.get().body().data = buf.data() + filled;
    p.get().body().size = buf.size() - filled;
    SetDeadline(opt.io_timeout);
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
      if (filled > 0)
        break;  // hand over what has arrived; the caller wants bytes, not a full buffer
      SetDeadline(server_.options().io_timeout);
      auto [wec] = co_await socket_.async_wait(tcp::socket::wait_read, kNoThrow);
      ClearDeadline();
      ec = wec;
      if (!ec && !socket_.is_open()) ec = asio::error::operation_aborted;
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

asio::awaitable<void> Connection::WriteAll(bool* ok, asio::const_buffer a, asio::const_buffer b,
                                           asio::const_buffer c) {
  SetDeadline(server_.options().io_timeout);
  std::array<asio::const_buffer, 3> buffers{a, b, c};
  auto [ec, n] = co_await asio::async_write(socket_, buffers, kNoThrow);
  ClearDeadline();
  *ok = !ec;
}

asio::awaitable<void> Connection::SendFile(int fd, uint64_t offset, uint64_t length, bool* ok) {
  *ok = false;
  boost::system::error_code ec;
  socket_.native_non_blocking(true, ec);
  if (ec) co_return;
  int sock = socket_.native_handle();
  while (length > 0) {
    off_t off = 0;
    if (offset > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) co_return;
    off = static_cast<off_t>(offset);
    size_t count = static_cast<size_t>(std::min<uint64_t>(length, 0x7ffff000));
    ssize_t n = ::sendfile(sock, fd, &off, count);
    if (n > 0) {
      offset += static_cast<uint64_t>(n);
      length -= static_cast<uint64_t>(n);
      bytes_out_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) {
      // The file is shorter than the range promised in Content-Length: the response cannot be
      // completed.
      log::Error("sendfile hit the end of the file early", {{"remaining", length}});
      co_return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) co_return;
    SetDeadline(server_.options().io_timeout);
    auto [wec] = co_await socket_.async_wait(tcp::socket::wait_write, kNoThrow);
    ClearDeadline();
    if (wec || !socket_.is_open()) co_return;
  }
  *ok = true;
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

void Connection::WriteStreamedResponse(Response& resp, const std::string& head, bool chunked,
                                       uint64_t length) {
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
    cur ^= 1;
  }
  // Both writes must be over before the buffers go away.
  bool last_ok = settle(slots[0]) & settle(slots[1]);
  if (failed || !last_ok) {
    broken_ = true;
    return;
  }
  bytes_out_ += sent;
  if (chunked) {
    BlockOn(WriteAll(&ok, asio::buffer("0\r\n\r\n", 5)));
    if (!ok) broken_ = true;
  } else if (sent != length) {
    log::Error("response stream ended early", {{"sent", sent}, {"length", length}});
    broken_ = true;
  }
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler handler,
                                              ExchangeObserver observer) {
  if (!handler) return InvalidArgument("http::Server needs a handler");
  auto server =
      std::make_unique<ServerImpl>(std::move(options), std::move(handler), std::move(observer));
  INGOT_RETURN_IF_ERROR(server->Listen());
  server->StartThreads();
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace ingot::http
