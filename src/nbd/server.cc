#include "nbd/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <new>
#include <deque>

#include "common/log.h"
#include "nbd/wire.h"

namespace ingot::nbd {

struct Server::Connection {
  int fd = -1;
  std::string peer;  // numeric address, for resolving and limits
  std::string peer_text;  // address:port, for logs
  std::string export_name;  // once in transmission
  bool in_transmission = false;
  bool holds_write = false;  // a claim on export_name in writers_
  std::atomic<bool> done{false};
  std::thread thread;
};

namespace {

// Options larger than this are not something any client sends (names are at most 4 KiB each).
constexpr uint32_t kMaxOptionData = 64 * 1024;
// Zero runs shorter than this are sent as data: a hole chunk costs a header and a block-status
// lookup, and tiny runs only fragment the reply.
constexpr uint64_t kMinHole = 64 * 1024;

bool RecvAll(int fd, void* buf, size_t n) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, MSG_WAITALL);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
  }
  return true;
}

// Sends every byte of the iovecs (MSG_NOSIGNAL: a client going away is an error, not a signal).
bool SendAll(int fd, struct iovec* iov, int count, int flags = 0) {
  while (count > 0) {
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = size_t(count);
    ssize_t w = ::sendmsg(fd, &m, MSG_NOSIGNAL | flags);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    size_t left = size_t(w);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

bool SendAll(int fd, const std::vector<uint8_t>& b, int flags = 0) {
  if (b.empty()) return true;
  iovec iov{const_cast<uint8_t*>(b.data()), b.size()};
  return SendAll(fd, &iov, 1, flags);
}

// Discards n bytes of payload (a write we refuse still has its data on the wire).
bool Skip(int fd, uint64_t n) {
  uint8_t buf[16384];
  while (n > 0) {
    size_t k = size_t(std::min<uint64_t>(n, sizeof buf));
    if (!RecvAll(fd, buf, k)) return false;
    n -= k;
  }
  return true;
}

uint32_t ErrorValue(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument:
    case Code::kOutOfRange:
      return kEinval;
    case Code::kStorageFull:
    case Code::kTooLarge:
      return kEnospc;
    case Code::kPermissionDenied:
    case Code::kRefused:
      return kEperm;
    case Code::kUnsupported:
      return kEnotsup;
    case Code::kUnavailable:
    case Code::kCancelled:
      return kEshutdown;
    default:
      return kEio;
  }
}

std::string PeerHost(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a)->sin_addr, buf, sizeof buf);
  } else if (a.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a);
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; access lists name a.b.c.d.
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    }
  }
  return buf;
}

uint16_t PeerPort(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&a)->sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&a)->sin6_port);
  return 0;
}

void SetTimeout(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = t.count() / 1000;
  tv.tv_usec = (t.count() % 1000) * 1000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A payload buffer aligned to 4 KiB, so an export may write it with O_DIRECT (a std::vector's heap
// block is not), and not zero-filled (the socket fills it).
class PayloadBuffer {
 public:
  void Resize(size_t n) {
    if (n > capacity_) {
      void* p = nullptr;
      if (::posix_memalign(&p, 4096, std::max<size_t>(n, 4096)) != 0) throw std::bad_alloc();
      data_.reset(static_cast<uint8_t*>(p));
      capacity_ = n;
    }
    size_ = n;
  }
  uint8_t* data() { return data_.get(); }
  size_t size() const { return size_; }
  std::span<uint8_t> span() { return {data_.get(), size_}; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

// The transmission phase of one connection: this thread reads requests; workers run them.
class Transmission {
 public:
  Transmission(int fd, Export& exp, TransmissionState state, const std::string& name,
               internal::Counters& counters, size_t workers, uint64_t max_in_flight)
      : fd_(fd), exp_(exp), state_(state), name_(name), counters_(counters), workers_(workers),
        max_in_flight_(max_in_flight) {}

  // Serves until the client disconnects or breaks the protocol; says why.
  const char* Run() {
    std::vector<std::thread> threads;
    for (size_t i = 0; i < workers_; ++i) threads.emplace_back([this] { Work(); });
    const char* why = Receive();
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads) t.join();
    return why;
  }
  uint64_t requests() const { return requests_; }

 private:
  struct Job {
    Request r;
    Verdict v;
    PayloadBuffer payload;
  };

  const char* Receive() {
    while (!broken_) {
      uint8_t h[kRequestSize];
      if (!RecvAll(fd_, h, sizeof h)) return "client went away";
      auto req = ParseRequest(h);
      if (!req.ok()) return "bad request magic";
      ++requests_;
      counters_.requests++;
      auto job = std::make_unique<Job>();
      job->r = *req;
      job->v = CheckRequest(job->r, state_);
      if (job->v.close) return "write payload over the limit";
      if (job->r.type == kCmdDisc) {
        // Answer nothing; let what is in flight finish (Run joins the workers).
        return "client disconnected";
      }
      const bool carries = job->v.error == 0 &&
                           (job->r.type == kCmdWrite || job->r.type == kCmdRead);
      if (carries) Reserve(job->r.length);
      if (job->r.type == kCmdWrite) {
        if (job->v.error != 0) {
          if (!Skip(fd_, job->v.payload)) return "client went away";
        } else {
          job->payload.Resize(job->r.length);
          if (!RecvAll(fd_, job->payload.data(), job->r.length)) return "client went away";
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(std::move(job));
      }
      cv_.notify_one();
    }
    return "client went away";
  }

  // Waits until `n` more payload bytes fit in the connection's budget (one request always fits).
  void Reserve(uint64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return in_flight_ == 0 || in_flight_ + n <= max_in_flight_ || broken_; });
    in_flight_ += n;
  }
  void Release(uint64_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ -= n;
    }
    space_.notify_all();
  }

  void Work() {
    // sendfile(2) has no MSG_NOSIGNAL: a client gone mid-reply would raise SIGPIPE. Blocked here, it
    // stays pending on this thread instead of ending the process; the call fails with EPIPE.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::vector<uint8_t> out;
    PayloadBuffer buf;
    std::vector<StatusDescriptor> descriptors;
    while (true) {
      std::unique_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      const bool carries = job->v.error == 0 &&
                           (job->r.type == kCmdWrite || job->r.type == kCmdRead);
      if (!broken_ && !Execute(*job, buf, out, descriptors)) {
        broken_ = true;
        ::shutdown(fd_, SHUT_RDWR);  // the receiving thread sees it too
      }
      if (carries) Release(job->r.length);
      job.reset();
      if (buf.size() > (4u << 20)) buf = PayloadBuffer();  // keep idle memory small
    }
  }

  // One reply (or one chunk of one) goes out whole.
  bool Send(iovec* iov, int n) {
    std::lock_guard<std::mutex> lock(send_mu_);
    return SendAll(fd_, iov, n);
  }
  bool Send(const std::vector<uint8_t>& b) {
    iovec iov{const_cast<uint8_t*>(b.data()), b.size()};
    return Send(&iov, 1);
  }

  // Sends `head`, then the export's bytes [offset, offset + length): by sendfile(2) where the export
  // maps them to a file, else read into `buf`. Everything to be read is read before the first byte
  // goes out, so a read error can still be answered as an error. kCancelled: the connection is gone
  // (a reply cut short cannot be repaired).
  Status SendData(const std::vector<uint8_t>& head, uint64_t offset, uint64_t length,
                  PayloadBuffer& buf) {
    struct Piece {
      int fd;  // < 0: the bytes are in buf at `at`
      uint64_t at;
      uint64_t length;
    };
    std::vector<Piece> pieces;
    uint64_t pos = offset;
    const uint64_t end = offset + length;
    while (pos < end) {
      auto f = exp_.MapToFile(pos, end - pos);
      if (f && f->length > 0 && f->fd >= 0) {
        const uint64_t n = std::min(f->length, end - pos);
        pieces.push_back({f->fd, f->file_offset, n});
        pos += n;
        continue;
      }
      // Not in a file (zeros, a compressed or mapped format): the rest is read as one piece.
      buf.Resize(size_t(end - pos));
      INGOT_RETURN_IF_ERROR(exp_.Read(pos, buf.span()));
      pieces.push_back({-1, 0, end - pos});
      pos = end;
    }
    std::lock_guard<std::mutex> lock(send_mu_);
    if (!SendAll(fd_, head, pieces.empty() ? 0 : MSG_MORE)) return Cancelled("client went away");
    for (size_t i = 0; i < pieces.size(); ++i) {
      const Piece& p = pieces[i];
      if (p.fd < 0) {
        iovec iov{buf.data(), size_t(p.length)};
        if (!SendAll(fd_, &iov, 1)) return Cancelled("client went away");
        continue;
      }
      off_t o = off_t(p.at);
      uint64_t left = p.length;
      while (left > 0) {
        ssize_t n = ::sendfile(fd_, p.fd, &o, size_t(std::min<uint64_t>(left, 1u << 30)));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Cancelled("sendfile failed or the file ended early");
        left -= uint64_t(n);
      }
    }
    return Status::Ok();
  }

  // Runs one request and sends its reply. false: the connection is gone.
  bool Execute(Job& job, PayloadBuffer& buf, std::vector<uint8_t>& out,
               std::vector<StatusDescriptor>& descriptors) {
    const Request& r = job.r;
    out.clear();
    uint32_t error = job.v.error;
    std::string message;
    if (error == 0) {
      Status s;
      const bool fua = (r.flags & kCmdFlagFua) != 0;
      switch (r.type) {
        case kCmdRead: {
          if (!state_.structured) {
            AppendSimpleReply(out, 0, r.cookie);
            s = SendData(out, r.offset, r.length, buf);
            if (s.code() == Code::kCancelled) return false;
            if (!s.ok()) break;
            counters_.read += r.length;
            return true;
          }
          // Structured: data chunks and hole chunks in offset order, the last one DONE.
          struct Segment {
            uint64_t offset, length;
            bool hole;
          };
          std::vector<Segment> segments;
          uint64_t pos = r.offset;
          const uint64_t end = r.offset + r.length;
          const bool sparse = (r.flags & kCmdFlagDf) == 0;
          while (pos < end) {
            bool hole = false;
            uint64_t len = end - pos;
            if (sparse) {
              Result<ExportExtent> e = exp_.BlockStatus(pos, end - pos);
              if (!e.ok()) {
                s = e.status();
                break;
              }
              len = std::min<uint64_t>(std::max<uint64_t>(e->length, 1), end - pos);
              hole = e->zero && len >= kMinHole;
            }
            if (!segments.empty() && segments.back().hole == hole) {
              segments.back().length += len;
            } else {
              segments.push_back({pos, len, hole});
            }
            pos += len;
          }
          if (!s.ok()) break;
          for (size_t i = 0; i < segments.size() && s.ok(); ++i) {
            const Segment& g = segments[i];
            const uint16_t done = i + 1 == segments.size() ? kReplyFlagDone : 0;
            out.clear();
            if (g.hole) {
              AppendStructuredHeader(out, done, kReplyTypeOffsetHole, r.cookie, 12);
              PutU64(out, g.offset);
              PutU32(out, uint32_t(g.length));
              if (!Send(out)) return false;
              continue;
            }
            AppendStructuredHeader(out, done, kReplyTypeOffsetData, r.cookie,
                                   uint32_t(8 + g.length));
            PutU64(out, g.offset);
            s = SendData(out, g.offset, g.length, buf);
            if (s.code() == Code::kCancelled) return false;
          }
          if (!s.ok()) break;
          if (segments.empty()) {  // a zero-length read
            out.clear();
            AppendStructuredHeader(out, kReplyFlagDone, kReplyTypeNone, r.cookie, 0);
            if (!Send(out)) return false;
          }
          counters_.read += r.length;
          return true;
        }
        case kCmdWrite:
          s = exp_.Write(r.offset, job.payload.span(), fua);
          if (s.ok()) counters_.written += r.length;
          break;
        case kCmdFlush:
          s = exp_.Flush();
          break;
        case kCmdTrim:
          s = exp_.Trim(r.offset, r.length, fua);
          break;
        case kCmdWriteZeroes:
          s = exp_.WriteZeroes(r.offset, r.length, (r.flags & kCmdFlagNoHole) == 0, fua);
          break;
        case kCmdBlockStatus: {
          descriptors.clear();
          uint64_t pos = r.offset;
          const uint64_t end = r.offset + r.length;
          const bool one_only = (r.flags & kCmdFlagReqOne) != 0;
          while (pos < end) {
            Result<ExportExtent> e = exp_.BlockStatus(pos, end - pos);
            if (!e.ok()) {
              s = e.status();
              break;
            }
            uint64_t len = std::min<uint64_t>(std::max<uint64_t>(e->length, 1), end - pos);
            uint32_t f = (e->hole ? kStateHole : 0) | (e->zero ? kStateZero : 0);
            if (!descriptors.empty() && descriptors.back().flags == f) {
              descriptors.back().length += uint32_t(len);
            } else {
              if (one_only && !descriptors.empty()) break;
              // Bound the reply: a client asks again from where the answer stops.
              if (descriptors.size() >= 1024) break;
              descriptors.push_back({uint32_t(len), f});
            }
            pos += len;
          }
          if (!s.ok()) break;
          AppendBlockStatus(out, r.cookie, kBaseAllocationId, descriptors);
          return Send(out);
        }
        default:
          s = Internal("unhandled command");
      }
      if (!s.ok()) {
        error = ErrorValue(s);
        if (IsServerFault(s.code())) {
          log::Error("nbd.io", {{"export", name_},
                                {"command", unsigned(r.type)},
                                {"offset", r.offset},
                                {"length", unsigned(r.length)},
                                {"error", s.ToString()}});
          message = "I/O error";
        } else {
          message = s.message();
        }
      }
    }
    out.clear();
    if (error != 0) {
      counters_.errors++;
      if (state_.structured && (r.type == kCmdRead || r.type == kCmdBlockStatus)) {
        AppendStructuredError(out, r.cookie, error, message);
      } else {
        AppendSimpleReply(out, error, r.cookie);
      }
    } else {
      AppendSimpleReply(out, 0, r.cookie);
    }
    return Send(out);
  }

  const int fd_;
  Export& exp_;
  const TransmissionState state_;
  const std::string& name_;
  internal::Counters& counters_;
  const size_t workers_;
  const uint64_t max_in_flight_;
  uint64_t requests_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;     // a job queued, or closing
  std::condition_variable space_;  // payload budget freed
  std::deque<std::unique_ptr<Job>> queue_;
  uint64_t in_flight_ = 0;
  bool closing_ = false;
  std::atomic<bool> broken_{false};
  std::mutex send_mu_;
};

}  // namespace

Server::Server(ServerOptions options, ExportResolver& resolver)
    : options_(std::move(options)), resolver_(resolver),
      writers_(options_.writers != nullptr ? *options_.writers : own_writers_) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, options_.host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(options_.port);
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, options_.host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(options_.port);
    len = sizeof *a6;
  } else {
    return InvalidArgument("nbd listen address '" + options_.host + "' is not a numeric address");
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno, "nbd socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 128) != 0) {
    Status s = FromErrno(errno, "nbd bind " + options_.host + ":" + std::to_string(options_.port));
    ::close(fd);
    return s;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = PeerPort(bound);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    Status s = FromErrno(errno, "nbd eventfd");
    ::close(fd);
    return s;
  }
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void Server::Stop() {
  if (listen_fd_ < 0) return;
  uint64_t one = 1;
  (void)::write(wake_fd_, &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : connections_) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
    }
  }
  Reap(true);
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void Server::Reap(bool all) {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    if (c->thread.joinable()) c->thread.join();
  }
}

void Server::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    Reap(false);
    if (n < 0 && errno != EINTR) {
      log::Error("nbd.poll", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents != 0) return;
    if (n <= 0 || (fds[0].revents & POLLIN) == 0) continue;
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->peer = PeerHost(peer);
    c->peer_text = (peer.ss_family == AF_INET6 && c->peer.find(':') != std::string::npos
                        ? "[" + c->peer + "]"
                        : c->peer) +
                   ":" + std::to_string(PeerPort(peer));
    std::lock_guard<std::mutex> lock(mu_);
    size_t same = 0;
    for (auto& o : connections_) same += (o->peer == c->peer && !o->done.load());
    if (connections_.size() >= options_.max_connections ||
        same >= options_.max_connections_per_client) {
      counters_.refused++;
      log::Warn("nbd.refused", {{"peer", c->peer_text}, {"reason", "connection limit"}});
      ::close(fd);
      continue;
    }
    Connection* raw = c.get();
    connections_.push_back(std::move(c));
    raw->thread = std::thread([this, raw] {
      Serve(*raw);
      std::lock_guard<std::mutex> l(mu_);
      if (raw->holds_write) writers_.Release(raw->export_name);
      ::close(raw->fd);
      raw->fd = -1;
      raw->in_transmission = false;
      raw->done = true;
    });
  }
}

size_t Server::CloseExport(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& c : connections_) {
    if (c->fd >= 0 && c->export_name == name) {
      ::shutdown(c->fd, SHUT_RDWR);
      ++n;
    }
  }
  return n;
}

std::vector<std::string> Server::ActiveExports() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> names;
  for (auto& c : connections_) {
    if (c->in_transmission && std::find(names.begin(), names.end(), c->export_name) == names.end()) {
      names.push_back(c->export_name);
    }
  }
  return names;
}

ServerStats Server::stats() const {
  ServerStats s;
  s.connections = counters_.connections;
  s.connections_refused = counters_.refused;
  s.requests = counters_.requests;
  s.request_errors = counters_.errors;
  s.bytes_read = counters_.read;
  s.bytes_written = counters_.written;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& c : connections_) s.active += c->in_transmission;
  return s;
}

void Server::Serve(Connection& c) {
  const int fd = c.fd;
  SetTimeout(fd, options_.handshake_timeout);
  std::shared_ptr<Export> chosen;
  bool writable = false;
  Negotiation* negotiation_ptr = nullptr;

  auto lookup = [&](std::string_view name, bool final) -> Result<ExportDescription> {
    if (name.empty()) return NotFound("no default export: name a volume");
    INGOT_ASSIGN_OR_RETURN(std::shared_ptr<Export> e, resolver_.Resolve(name, c.peer));
    bool ro = e->read_only();
    {
      std::lock_guard<std::mutex> lock(mu_);
      const std::string who = "nbd " + c.peer;
      if (!ro && !final) ro = !writers_.CanWrite(name, who);
      if (final) {
        // GO is final once it succeeds, so a connection claims at most once.
        if (!ro) {
          ro = !writers_.Claim(name, who);
          c.holds_write = !ro;
        }
        c.export_name = std::string(name);
      }
    }
    ExportDescription d;
    d.size = e->Size();
    d.transmission_flags = kTxHasFlags | kTxSendFlush | kTxSendFua | kTxCanMultiConn;
    if (ro) {
      d.transmission_flags |= kTxReadOnly;
    } else {
      d.transmission_flags |= kTxSendTrim | kTxSendWriteZeroes;
    }
    if (negotiation_ptr->structured_replies()) d.transmission_flags |= kTxSendDf;
    d.preferred_block = options_.preferred_block;
    d.max_block = options_.max_payload;
    if (final) {
      chosen = std::move(e);
      writable = !ro;
    }
    return d;
  };
  auto lister = [&]() { return resolver_.List(c.peer); };
  Negotiation negotiation(lookup, lister);
  negotiation_ptr = &negotiation;

  if (!SendAll(fd, Greeting())) return;
  uint8_t flags[4];
  if (!RecvAll(fd, flags, 4) || !negotiation.OnClientFlags(GetU32(flags))) {
    counters_.refused++;
    return;
  }
  std::vector<uint8_t> out;
  std::vector<uint8_t> data;
  while (true) {
    uint8_t h[kOptionHeaderSize];
    if (!RecvAll(fd, h, sizeof h)) {
      counters_.refused++;
      return;
    }
    auto header = ParseOptionHeader(h);
    if (!header.ok() || header->length > kMaxOptionData) {
      counters_.refused++;
      return;
    }
    data.resize(header->length);
    if (!RecvAll(fd, data.data(), data.size())) return;
    out.clear();
    Negotiation::Next next = negotiation.OnOption(header->option, data, out);
    if (!SendAll(fd, out)) return;
    if (next == Negotiation::Next::kClose) {
      if (header->option != kOptAbort) counters_.refused++;
      return;
    }
    if (next == Negotiation::Next::kTransmission) break;
  }
  if (!chosen) return;  // cannot happen: transmission needs a chosen export

  SetTimeout(fd, std::chrono::milliseconds(0));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  {
    std::lock_guard<std::mutex> lock(mu_);
    c.in_transmission = true;
  }
  counters_.connections++;
  log::Info("nbd.attach", {{"peer", c.peer_text},
                           {"export", c.export_name},
                           {"mode", writable ? "rw" : "ro"},
                           {"structured", negotiation.structured_replies() ? "yes" : "no"}});

  TransmissionState state{.size = chosen->Size(),
                          .read_only = !writable,
                          .structured = negotiation.structured_replies(),
                          .base_allocation = negotiation.base_allocation(),
                          .max_payload = options_.max_payload};
  Transmission t(fd, *chosen, state, c.export_name, counters_,
                 std::max<size_t>(1, options_.workers_per_connection),
                 std::max<uint64_t>(options_.max_payload, options_.max_bytes_in_flight));
  const char* why = t.Run();
  log::Info("nbd.detach", {{"peer", c.peer_text},
                           {"export", c.export_name},
                           {"requests", t.requests()},
                           {"reason", why}});
  // A client that goes away without FLUSH may still expect its completed writes to survive a
  // clean shutdown of the server; the export flushes when its last reference goes.
}


}  // namespace ingot::nbd
