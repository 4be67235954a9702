// The synchronous client: a non-blocking socket with poll(2) for every wait (so the no-progress
// timeout holds everywhere), Beast's parser for responses.
#include "http/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstring>
#include <vector>

#include "io/file.h"

namespace ingot::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

constexpr size_t kChunk = 1 << 20;
constexpr size_t kErrorBodyCap = 1 << 20;

}  // namespace

Result<Url> ParseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("unsupported URL '" + std::string(url) + "': only http:// is supported");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url out;
  if (slash != std::string_view::npos) out.base_path = std::string(rest.substr(slash));
  while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return InvalidArgument("malformed URL '" + std::string(url) + "'");
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':')
        return InvalidArgument("malformed URL '" + std::string(url) + "'");
      port = authority.substr(close + 2);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return InvalidArgument("URL '" + std::string(url) + "' has no host");
  out.host = std::string(host);
  if (!port.empty()) {
    uint32_t p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535)
        return InvalidArgument("bad port in URL '" + std::string(url) + "'");
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535) return InvalidArgument("bad port in URL '" + std::string(url) + "'");
    out.port = static_cast<uint16_t>(p);
  }
  return out;
}

// A connected non-blocking socket meeting Beast's SyncReadStream requirements, with a no-progress
// timeout on every wait.
class Client::Stream {
 public:
  Stream(io::UniqueFd fd, std::chrono::milliseconds timeout)
      : fd_(std::move(fd)), timeout_(timeout) {}

  template <typename MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      for (;;) {
        ssize_t n = ::recv(fd_.get(), b.data(), b.size(), 0);
        if (n > 0) return static_cast<size_t>(n);
        if (n == 0) {
          ec = asio::error::eof;
          return 0;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
          ec = boost::system::error_code(errno, boost::system::system_category());
          return 0;
        }
        if (!Wait(POLLIN, ec)) return 0;
      }
    }
    return 0;
  }
  template <typename MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  Status WriteAll(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      ssize_t n = ::send(fd_.get(), p, size, MSG_NOSIGNAL);
      if (n > 0) {
        p += n;
        size -= static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        boost::system::error_code ec;
        if (!Wait(POLLOUT, ec))
          return Timeout("sending to the server: no progress for " + TimeoutText());
        continue;
      }
      return FromErrno(errno, "sending to the server");
    }
    return Status::Ok();
  }

  beast::flat_buffer& buffer() { return buffer_; }
  std::string TimeoutText() const { return std::to_string(timeout_.count()) + " ms"; }
  bool timed_out() const { return timed_out_; }

 private:
  bool Wait(short events, boost::system::error_code& ec) {
    pollfd p{fd_.get(), events, 0};
    for (;;) {
      int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(timeout_.count(), INT32_MAX)));
      if (r > 0) return true;
      if (r == 0) {
        timed_out_ = true;
        ec = asio::error::timed_out;
        return false;
      }
      if (errno != EINTR) {
        ec = boost::system::error_code(errno, boost::system::system_category());
        return false;
      }
    }
  }

  io::UniqueFd fd_;
  std::chrono::milliseconds timeout_;
  beast::flat_buffer buffer_;
  bool timed_out_ = false;
};

Client::Client(Url url, std::chrono::milliseconds io_timeout)
    : url_(std::move(url)), io_timeout_(io_timeout) {}
Client::~Client() = default;

void Client::Disconnect() { stream_.reset(); }

Status Client::Connect() {
  std::string where = url_.host + ":" + std::to_string(url_.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(url_.host.c_str(), std::to_string(url_.port).c_str(), &hints, &res);
  if (rc != 0) return Unavailable("cannot resolve " + url_.host + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  Status last = Unavailable("cannot connect to " + where);
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    io::UniqueFd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last = FromErrno(errno, "socket");
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = Unavailable("cannot connect to " + where + ": " + strerror(errno));
        continue;
      }
      pollfd p{fd.get(), POLLOUT, 0};
      int r;
      do {
        r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(io_timeout_.count(), INT32_MAX)));
      } while (r < 0 && errno == EINTR);
      if (r == 0) {
        last = Timeout("cannot connect to " + where + ": timed out");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (r < 0 || err != 0) {
        last = Unavailable("cannot connect to " + where + ": " + strerror(r < 0 ? errno : err));
        continue;
      }
    }
    stream_ = std::make_unique<Stream>(std::move(fd), io_timeout_);
    return Status::Ok();
  }
  return last;
}

Status Client::SendRequest(const ClientRequest& req, const Progress& progress) {
  std::string head;
  head.reserve(512);
  head += req.method;
  head += ' ';
  head += url_.base_path;
  head += req.target.empty() ? "/" : req.target;
  head += " HTTP/1.1\r\n";
  if (!req.headers.Get("Host")) {
    bool v6 = url_.host.find(':') != std::string::npos;
    head += "Host: " + (v6 ? "[" + url_.host + "]" : url_.host) + ":" + std::to_string(url_.port) +
            "\r\n";
  }
  if (!req.headers.Get("User-Agent")) head += "User-Agent: ingot-cli\r\n";
  for (const auto& [name, value] : req.headers.fields()) {
    if (strcasecmp(name.c_str(), "Content-Length") == 0 ||
        strcasecmp(name.c_str(), "Transfer-Encoding") == 0) {
      continue;
    }
    head += name + ": " + value + "\r\n";
  }
  bool chunked = req.body_stream != nullptr && !req.body_length;
  std::optional<uint64_t> total;
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else {
    total = req.body_stream ? *req.body_length : req.body.size();
    bool bodyless_method = req.method == "GET" || req.method == "HEAD" || req.method == "DELETE";
    if (*total > 0 || !bodyless_method)
      head += "Content-Length: " + std::to_string(*total) + "\r\n";
  }
  head += "\r\n";
  if (!req.body_stream) {
    head += req.body;  // request bodies given as strings are small JSON documents
    INGOT_RETURN_IF_ERROR(stream_->WriteAll(head.data(), head.size()));
    if (progress && !req.body.empty()) progress(req.body.size(), total);
    return Status::Ok();
  }
  INGOT_RETURN_IF_ERROR(stream_->WriteAll(head.data(), head.size()));
  std::vector<uint8_t> buf(kChunk);
  uint64_t sent = 0;
  for (;;) {
    size_t want = buf.size();
    if (total) {
      if (sent == *total) break;
      want = static_cast<size_t>(std::min<uint64_t>(want, *total - sent));
    }
    INGOT_ASSIGN_OR_RETURN(size_t n, req.body_stream->Read(std::span<uint8_t>(buf.data(), want)));
    if (n == 0) {
      if (total) {
        return IoError("the request body ended after " + std::to_string(sent) + " of " +
                       std::to_string(*total) + " bytes");
      }
      break;
    }
    if (chunked) {
      char line[32];
      int len = snprintf(line, sizeof(line), "%zx\r\n", n);
      INGOT_RETURN_IF_ERROR(stream_->WriteAll(line, static_cast<size_t>(len)));
    }
    INGOT_RETURN_IF_ERROR(stream_->WriteAll(buf.data(), n));
    if (chunked) INGOT_RETURN_IF_ERROR(stream_->WriteAll("\r\n", 2));
    sent += n;
    if (progress) progress(sent, total);
  }
  if (chunked) INGOT_RETURN_IF_ERROR(stream_->WriteAll("0\r\n\r\n", 5));
  return Status::Ok();
}

Result<ClientResponse> Client::ReadResponse(const ClientRequest& req, io::Writer* sink,
                                            const Progress& progress) {
  auto& buffer = stream_->buffer();
  if (buffer.capacity() < 64 * 1024) buffer.reserve(64 * 1024);
  auto fail = [&](const boost::system::error_code& ec) -> Status {
    if (stream_->timed_out())
      return Timeout("waiting for the server: no progress for " + stream_->TimeoutText());
    if (ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
        ec == bhttp::error::partial_message) {
      return Unavailable("the server closed the connection");
    }
    return IoError("reading the response: " + ec.message());
  };
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  boost::system::error_code ec;
  for (;;) {  // skip interim 1xx responses
    parser.emplace();
    parser->body_limit(std::numeric_limits<uint64_t>::max());
    parser->header_limit(1 << 20);
    parser->skip(req.method == "HEAD");
    bhttp::read_header(*stream_, buffer, *parser, ec);
    if (ec) return fail(ec);
    header_received_ = true;
    int s = parser->get().result_int();
    if (s < 100 || s >= 200) break;
  }
  ClientResponse out;
  auto& msg = parser->get();
  out.status = msg.result_int();
  out.reason = std::string(msg.reason());
  for (const auto& f : msg) out.headers.Add(std::string(f.name_string()), std::string(f.value()));
  bool to_sink = sink != nullptr && out.status >= 200 && out.status < 300;
  std::optional<uint64_t> total;
  if (auto cl = parser->content_length()) total = *cl;
  std::vector<uint8_t> buf(to_sink ? kChunk : 64 * 1024);
  uint64_t received = 0;
  while (!parser->is_done()) {
    msg.body().data = buf.data();
    msg.body().size = buf.size();
    bhttp::read(*stream_, buffer, *parser, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    size_t n = buf.size() - msg.body().size;
    if (ec) return fail(ec);
    received += n;
    if (to_sink) {
      INGOT_RETURN_IF_ERROR(sink->Write(std::span<const uint8_t>(buf.data(), n)));
      if (progress) progress(received, total);
    } else if (out.body.size() < kErrorBodyCap) {
      out.body.append(reinterpret_cast<const char*>(buf.data()),
                      std::min(n, kErrorBodyCap - out.body.size()));
    }
  }
  if (!parser->keep_alive()) Disconnect();
  return out;
}

Result<ClientResponse> Client::Send(const ClientRequest& req, io::Writer* sink,
                                    const Progress& progress) {
  for (int attempt = 0;; ++attempt) {
    bool reused = stream_ != nullptr;
    header_received_ = false;
    if (!stream_) INGOT_RETURN_IF_ERROR(Connect());
    Status sent = SendRequest(req, progress);
    if (!sent.ok() && stream_->timed_out()) {
      Disconnect();
      return sent;
    }
    // Even when sending failed the server may have answered (e.g. refused an upload and closed).
    auto resp = ReadResponse(req, sink, progress);
    if (resp.ok()) return resp;
    Disconnect();
    // A kept-alive connection the server closed meanwhile: retry once if the request can be
    // replayed.
    if (reused && attempt == 0 && req.body_stream == nullptr && !header_received_ &&
        resp.status().code() == Code::kUnavailable) {
      continue;
    }
    return sent.ok() ? resp.status() : sent;
  }
}

}  // namespace ingot::http
