// The listener: binds, accepts, applies the connection limits, owns the worker pool and the
// admission counters, and shuts down in order. The per-connection state machine is connection.cc.
#include "http/server.h"

#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "http/connection.h"
#include "http/worker_pool.h"

namespace ingot::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

class ServerImpl final : public Server, public ServerCore {
 public:
  ServerImpl(ServerOptions options, Handler handler, ExchangeObserver observer,
             InlineHandler inline_handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        observer_(std::move(observer)),
        inline_handler_(std::move(inline_handler)),
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

  // ServerCore
  const ServerOptions& options() const override { return options_; }
  const Handler& handler() const override { return handler_; }
  const InlineHandler& inline_handler() const override { return inline_handler_; }
  WorkerPool& workers() override { return workers_; }
  bool stopping() const override { return stopping_.load(); }
  void Observe(const Exchange& e) override {
    if (observer_) observer_(e);
  }

  bool BeginExchange(const std::string& client, bool unlimited) override {
    std::lock_guard lock(mu_);
    int& mine = per_client_[client].requests;
    if (!unlimited && (exchanges_ >= options_.max_requests_in_flight ||
                       mine >= options_.max_requests_in_flight_per_client)) {
      return false;
    }
    ++exchanges_;
    ++mine;
    return true;
  }

  void EndExchange(const std::string& client) override {
    {
      std::lock_guard lock(mu_);
      --exchanges_;
      auto it = per_client_.find(client);
      if (it != per_client_.end() && --it->second.requests == 0 && it->second.connections == 0)
        per_client_.erase(it);
    }
    cv_.notify_all();
  }

  bool AcquireStreamedBody() override {
    int now = streamed_.fetch_add(1);
    if (now < options_.max_streamed_bodies) return true;
    streamed_.fetch_sub(1);
    return false;
  }
  void ReleaseStreamedBody() override { streamed_.fetch_sub(1); }

  void Forget(Connection* c) override {
    {
      std::lock_guard lock(mu_);
      if (connections_.erase(c) > 0) {
        auto it = per_client_.find(c->client());
        if (it != per_client_.end() && --it->second.connections == 0 &&
            it->second.requests == 0) {
          per_client_.erase(it);
        }
      }
    }
    cv_.notify_all();
  }

 private:
  struct ClientCounts {
    int connections = 0;
    int requests = 0;
  };

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
      std::string client;
      if (auto ep = socket.remote_endpoint(ignored); !ignored) client = ep.address().to_string();
      std::shared_ptr<Connection> conn;
      {
        std::lock_guard lock(mu_);
        ClientCounts& counts = per_client_[client];
        // Past a limit the connection is still read, once, so that health checks answer; any
        // other request on it gets 503 (connection.cc).
        bool over = static_cast<int>(connections_.size()) >= options_.max_connections ||
                    counts.connections >= options_.max_connections_per_client;
        if (over) log::Warn("http.connection_limit", {{"client", client}});
        conn = std::make_shared<Connection>(*this, std::move(socket), client, over);
        ++counts.connections;
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
  InlineHandler inline_handler_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  WorkerPool workers_;
  std::vector<std::thread> io_threads_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> streamed_{0};

  std::mutex stop_mu_;
  bool stopped_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  int exchanges_ = 0;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
  std::unordered_map<std::string, ClientCounts> per_client_;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler handler,
                                              ExchangeObserver observer,
                                              InlineHandler inline_handler) {
  if (!handler) return InvalidArgument("http::Server needs a handler");
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(handler),
                                             std::move(observer), std::move(inline_handler));
  INGOT_RETURN_IF_ERROR(server->Listen());
  server->StartThreads();
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace ingot::http
