// One client connection: the HTTP/1.1 state machine (head → checks → handler → body → response →
// keep-alive), as a coroutine on its own strand. Network I/O never blocks a thread; handlers run on
// the server's worker pool, and while one runs the coroutine is suspended. A streamed body's
// blocking reads (and a streamed response's writes) are short coroutines the worker starts on the
// strand and waits for.
//
// Deadlines: one watchdog timer per connection closes the socket when the current deadline passes.
// Every network operation sets it before it starts: the header, idle or I/O timeout, and for
// bodies and responses also the minimum data rate (Apache's mod_reqtimeout model: `min_rate_grace`
// plus one second per `min_data_rate` bytes moved) and the body's total deadline.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "http/server.h"
#include "http/worker_pool.h"

namespace ingot::http {

class Connection;

// What a connection needs from the server that accepted it.
class ServerCore {
 public:
  virtual ~ServerCore() = default;
  virtual const ServerOptions& options() const = 0;
  virtual const Handler& handler() const = 0;
  virtual const InlineHandler& inline_handler() const = 0;  // may be empty
  virtual WorkerPool& workers() = 0;
  virtual bool stopping() const = 0;
  virtual void Observe(const Exchange& e) = 0;
  // Admits one request from `client` (its address without the port). False past a limit, unless
  // `unlimited`; a true answer is matched by EndExchange.
  virtual bool BeginExchange(const std::string& client, bool unlimited) = 0;
  virtual void EndExchange(const std::string& client) = 0;
  // A slot for a streamed request body (max_streamed_bodies); false when none is free.
  virtual bool AcquireStreamedBody() = 0;
  virtual void ReleaseStreamedBody() = 0;
  // The connection has ended.
  virtual void Forget(Connection* c) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `over_limit`: accepted past a connection limit; it may only ask for an unlimited path, once.
  Connection(ServerCore& server, boost::asio::ip::tcp::socket socket, std::string client,
             bool over_limit);

  const std::string& client() const { return client_; }
  boost::asio::awaitable<void> Run();
  // Called on the strand by Server::Stop: closes the socket now, or only if no exchange is in
  // flight.
  void CloseIfIdle();
  void CloseNow();
  boost::asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  using Clock = std::chrono::steady_clock;
  class BodyReader;
  class Pending;

  // One request/response; false when the connection must not be reused.
  boost::asio::awaitable<bool> Serve();
  // Checks the head and builds the Request; a refusal (400, 501, 503) when it must not go on.
  std::optional<Response> Admit(Request& req, bool* admitted);
  // Runs `job` on a worker thread and resumes on the strand when it has returned.
  boost::asio::awaitable<void> OnWorker(std::function<void()> job);
  // Worker side: `resp` is the handler's answer; a streamed response is written from here.
  void Settle(Response&& resp, bool head_only);
  // Takes the body a handler asked for and calls its `next`.
  boost::asio::awaitable<void> ServeBody(NeedBody& need, Request& req, bool head_only);
  // Reads a whole body, up to `limit` bytes, on the strand.
  boost::asio::awaitable<Status> ReadWhole(uint64_t limit, std::string* out);
  // Waits until body bytes are ready (or the body deadline passes).
  boost::asio::awaitable<Status> AwaitBodyBytes();
  // The response head, then the body the handler chose.
  boost::asio::awaitable<void> WriteResponse(Response& resp, bool head_only);

  boost::asio::awaitable<void> Watchdog();
  void SetDeadline(std::chrono::milliseconds timeout);
  void SetDeadlineAt(Clock::time_point when);
  void ClearDeadline();
  // Now + io_timeout, earlier if the transfer that began at `start` and has moved `bytes` falls
  // under the minimum data rate, and no later than `cap`.
  Clock::time_point ProgressDeadline(Clock::time_point start, uint64_t bytes,
                                     Clock::time_point cap = Clock::time_point::max()) const;
  boost::asio::awaitable<void> CloseGracefully();
  boost::asio::awaitable<void> WriteSimpleError(int status, std::string_view message);

  // Strand-side operations; the worker thread runs them through BlockOn.
  boost::asio::awaitable<void> ReadBodyInto(std::span<uint8_t> buf, Result<size_t>* out);
  boost::asio::awaitable<void> ReadDirect(std::span<uint8_t> buf, Result<size_t>* out);
  boost::asio::awaitable<Status> SendContinue();
  // Discards body bytes that have already arrived; never waits for more.
  void DiscardArrivedBody();
  // Writes a, b and c in order (empty buffers are skipped).
  boost::asio::awaitable<void> WriteAll(bool* ok, boost::asio::const_buffer a,
                                        boost::asio::const_buffer b = {},
                                        boost::asio::const_buffer c = {});
  // As much of a response head (to be followed by a file body: sent with MSG_MORE) as the socket
  // takes now; *ok false on a hard error.
  size_t SendHeadNow(const std::string& head, bool* ok);
  // Sends the file range [*offset, *offset + *length) while the socket takes it, moving both on.
  enum class SendState { kDone, kAgain, kFailed };
  SendState SendFileNow(int fd, uint64_t* offset, uint64_t* length);
  // The same to its end, waiting for the socket when it must.
  boost::asio::awaitable<void> SendFile(int fd, uint64_t offset, uint64_t length, bool* ok);

  // Starts `op` on the connection's strand; `pending` (which must outlive it) is signalled at the
  // end.
  void Launch(boost::asio::awaitable<void> op, Pending* pending);
  // Runs `op` on the connection's strand and waits for it. Worker threads only.
  void BlockOn(boost::asio::awaitable<void> op);
  Result<size_t> ReadBodyBlocking(std::span<uint8_t> buf);
  // Worker side of a Reader response body: pulls chunks and writes them through the strand.
  void WriteStreamedResponse(Response& resp, const std::string& head, bool chunked,
                             uint64_t length);

  Status IoFailure(const boost::system::error_code& ec, std::string_view what) const;
  bool BodyDone() const { return direct_body_ ? body_remaining_ == 0 : parser_->is_done(); }
  // The response head; settles keep_alive_ and the body framing.
  // The head is written into head_ (valid until the next call).
  const std::string& BuildHead(Response& resp, bool head_only, bool* chunked, uint64_t* length);

  ServerCore& server_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  bool closed_ = false;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::buffer_body>> parser_;
  std::string remote_;  // "address:port"
  std::string client_;  // address: the key of the per-client limits
  bool over_limit_ = false;

  // Per exchange.
  bool in_exchange_ = false;
  bool keep_alive_ = true;
  bool broken_ = false;  // the stream is unusable (I/O or framing error): close after this exchange
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  bool direct_body_ = false;     // a Content-Length body, read by ReadDirect
  uint64_t body_remaining_ = 0;  // bytes of a direct body not yet read
  Status body_status_;           // sticky body read failure
  Clock::time_point body_start_;
  Clock::time_point body_deadline_ = Clock::time_point::max();
  Clock::time_point response_start_;
  uint64_t bytes_in_ = 0;
  std::atomic<uint64_t> bytes_out_{0};  // a streamed response's worker adds to it
  Response response_;            // the answer being written
  bool written_ = false;         // a streamed response already written by the worker
  std::unique_ptr<uint8_t[]> scratch_;  // drain/linger buffer, allocated on first use
  std::string head_;                    // the response head being written (BuildHead)
};

}  // namespace ingot::http
