#include "tftp/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "io/file.h"
#include "tftp/netascii.h"
#include "tftp/packet.h"
#include "tftp/path.h"

namespace ingot::tftp {
namespace {

using Clock = std::chrono::steady_clock;

// Largest datagram we read: a request or an ACK is small, but a client may send anything.
constexpr size_t kReceiveBuffer = 65536;
constexpr uint64_t kListenId = 0;
constexpr uint64_t kWakeId = 1;

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;

  bool SameAs(const Endpoint& o) const {
    if (addr.ss_family != o.addr.ss_family) return false;
    if (addr.ss_family == AF_INET) {
      auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      auto* b = reinterpret_cast<const sockaddr_in*>(&o.addr);
      return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (addr.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      auto* b = reinterpret_cast<const sockaddr_in6*>(&o.addr);
      return a->sin6_port == b->sin6_port &&
             std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }
    return false;
  }
  // "1.2.3.4" or "::1".
  std::string Host() const {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (addr.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, buf, sizeof buf);
    } else if (addr.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, buf,
                sizeof buf);
    }
    return buf;
  }
  uint16_t Port() const {
    if (addr.ss_family == AF_INET)
      return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6)
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
    return 0;
  }
  // "1.2.3.4:5" or "[::1]:5", for logs and as a key.
  std::string Text() const {
    std::string h = Host();
    if (addr.ss_family == AF_INET6) h = "[" + h + "]";
    return h + ":" + std::to_string(Port());
  }
};

Result<io::UniqueFd> UdpSocket(int family) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno, "socket");
  return io::UniqueFd(fd);
}

// A transfer's socket: bound to the address the request came to (so a multi-homed server answers
// from the address the client asked), port chosen by the kernel.
Result<io::UniqueFd> TransferSocket(const Endpoint& local) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, UdpSocket(local.addr.ss_family));
  Endpoint bind_to = local;
  if (bind_to.addr.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&bind_to.addr)->sin_port = 0;
  } else {
    reinterpret_cast<sockaddr_in6*>(&bind_to.addr)->sin6_port = 0;
  }
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&bind_to.addr), bind_to.len) != 0) {
    return FromErrno(errno, "bind TFTP transfer socket");
  }
  // A window of large blocks must fit in the send buffer or its tail is dropped locally.
  int sndbuf = 4 << 20;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  return fd;
}

// A client's file name as logged: long enough to recognise, short enough that a hostile 64 KiB name
// does not fill the log (the logger escapes what is kept).
std::string_view Shown(std::string_view name) { return name.substr(0, 256); }

// Best effort: a lost datagram is what retransmission is for.
void SendTo(int fd, const std::vector<uint8_t>& packet, const Endpoint& to) {
  ssize_t n;
  do {
    n = sendto(fd, packet.data(), packet.size(), 0, reinterpret_cast<const sockaddr*>(&to.addr),
               to.len);
  } while (n < 0 && errno == EINTR);
}

// A transfer in progress. Block numbers are absolute (1, 2, … past 65535); the wire carries the low
// 16 bits.
struct Transfer {
  uint64_t id = 0;
  io::UniqueFd sock;
  Endpoint peer;
  std::string client;  // peer.Text()
  std::string path;
  std::unique_ptr<io::ByteSource> source;
  Mode mode = Mode::kOctet;
  uint32_t blksize = kDefaultBlksize;
  uint32_t windowsize = 1;
  std::chrono::milliseconds timeout{1000};
  std::vector<std::pair<std::string, std::string>> oack;
  bool oack_pending = false;
  uint64_t last_acked = 0;              // every block up to here is acknowledged
  uint64_t last_sent = 0;               // highest block sent in the current window
  std::optional<uint64_t> final_block;  // the short block that ends the file, once known
  int retries = 0;
  Clock::time_point deadline;
  Clock::time_point started;
  uint64_t bytes_sent = 0;
  uint64_t retransmits = 0;
  // netascii: checkpoints[i] is where block checkpoint_base + i starts.
  std::deque<NetasciiCheckpoint> checkpoints;
  uint64_t checkpoint_base = 1;
  std::vector<uint8_t> block, packet, scratch;
  bool done = false;
};

}  // namespace

class Server::Loop {
 public:
  Loop(const ServerOptions& options, FileSource& files, Counters& counters)
      : options_(options), files_(files), counters_(counters) {}

  Status Bind(uint16_t& bound_port);
  void Run();
  void Wake() {
    uint64_t one = 1;
    (void)!write(wake_.get(), &one, sizeof one);
  }

 private:
  void OnRequestReadable();
  void HandleRequest(std::span<const uint8_t> datagram, const Endpoint& peer,
                     const Endpoint& local);
  void Refuse(const Endpoint& local, const Endpoint& peer, ErrorCode code,
              std::string_view message);
  void OnTransferReadable(Transfer& t);
  void OnAck(Transfer& t, uint16_t block);
  void OnTimeout(Transfer& t);
  // Sends blocks last_acked+1 … last_acked+windowsize (fewer at the end of the file).
  void SendWindow(Transfer& t);
  Result<size_t> ReadBlock(Transfer& t, uint64_t block);
  void Finish(Transfer& t, bool ok, std::string_view outcome);

  const ServerOptions& options_;
  FileSource& files_;
  Counters& counters_;
  io::UniqueFd listen_;
  io::UniqueFd wake_;
  io::UniqueFd epoll_;
  Endpoint listen_addr_;
  uint64_t next_id_ = 2;
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers_;
  std::unordered_map<std::string, uint64_t> by_client_;  // "addr:port" -> transfer id
  std::unordered_map<std::string, size_t> per_host_;     // "addr" -> transfers
  std::vector<uint8_t> rx_ = std::vector<uint8_t>(kReceiveBuffer);
};

Status Server::Loop::Bind(uint16_t& bound_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(options_.port);
  const char* host = options_.host.empty() ? nullptr : options_.host.c_str();
  if (getaddrinfo(host, port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return InvalidArgument("TFTP listen address is not a numeric IP address: " + options_.host);
  }
  std::memcpy(&listen_addr_.addr, res->ai_addr, res->ai_addrlen);
  listen_addr_.len = res->ai_addrlen;
  freeaddrinfo(res);

  INGOT_ASSIGN_OR_RETURN(listen_, UdpSocket(listen_addr_.addr.ss_family));
  int on = 1;
  if (listen_addr_.addr.ss_family == AF_INET) {
    (void)setsockopt(listen_.get(), IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
  } else {
    (void)setsockopt(listen_.get(), IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
  }
  if (bind(listen_.get(), reinterpret_cast<const sockaddr*>(&listen_addr_.addr),
           listen_addr_.len) != 0) {
    return FromErrno(errno, "bind TFTP " + listen_addr_.Text());
  }
  Endpoint bound;
  bound.len = sizeof bound.addr;
  if (getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&bound.addr), &bound.len) != 0) {
    return FromErrno(errno, "getsockname");
  }
  listen_addr_ = bound;
  bound_port = bound.Port();

  int wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wfd < 0) return FromErrno(errno, "eventfd");
  wake_ = io::UniqueFd(wfd);
  int efd = epoll_create1(EPOLL_CLOEXEC);
  if (efd < 0) return FromErrno(errno, "epoll_create1");
  epoll_ = io::UniqueFd(efd);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  if (epoll_ctl(efd, EPOLL_CTL_ADD, listen_.get(), &ev) != 0) return FromErrno(errno, "epoll_ctl");
  ev.data.u64 = kWakeId;
  if (epoll_ctl(efd, EPOLL_CTL_ADD, wfd, &ev) != 0) return FromErrno(errno, "epoll_ctl");
  log::Info("tftp.bound", {{"address", listen_addr_.Text()}});
  return Status::Ok();
}

void Server::Loop::Run() {
  epoll_event events[64];
  bool running = true;
  while (running) {
    int wait_ms = -1;
    const auto now = Clock::now();
    for (const auto& [id, t] : transfers_) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t->deadline - now).count();
      left = std::max<int64_t>(left + 1, 0);  // round up so we do not spin just before a deadline
      if (wait_ms < 0 || left < wait_ms) wait_ms = static_cast<int>(std::min<int64_t>(left, 60000));
    }
    int n = epoll_wait(epoll_.get(), events, 64, wait_ms);
    if (n < 0 && errno != EINTR) {
      log::Error("tftp_epoll_failed", {{"error", std::strerror(errno)}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kWakeId) {
        running = false;
      } else if (id == kListenId) {
        OnRequestReadable();
      } else if (auto it = transfers_.find(id); it != transfers_.end() && !it->second->done) {
        OnTransferReadable(*it->second);
      }
    }
    const auto after = Clock::now();
    for (auto& [id, t] : transfers_) {
      if (!t->done && t->deadline <= after) OnTimeout(*t);
    }
    for (auto it = transfers_.begin(); it != transfers_.end();) {
      if (it->second->done) {
        Transfer& t = *it->second;
        by_client_.erase(t.client);
        if (auto h = per_host_.find(t.peer.Host()); h != per_host_.end() && --h->second == 0) {
          per_host_.erase(h);
        }
        (void)epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, t.sock.get(), nullptr);
        it = transfers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  transfers_.clear();
  by_client_.clear();
  per_host_.clear();
}

void Server::Loop::OnRequestReadable() {
  // Bounded per wake-up so a flood of requests cannot starve running transfers.
  for (int i = 0; i < 64; ++i) {
    Endpoint peer;
    iovec iov{rx_.data(), rx_.size()};
    alignas(cmsghdr) char control[256];
    msghdr msg{};
    msg.msg_name = &peer.addr;
    msg.msg_namelen = sizeof peer.addr;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t got = recvmsg(listen_.get(), &msg, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN, or an ICMP error queued on the socket
    }
    peer.len = msg.msg_namelen;
    // The address the client sent to: the transfer answers from it.
    Endpoint local = listen_addr_;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
          local.addr.ss_family == AF_INET) {
        in_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        // The local address the packet arrived on (for a broadcast, the interface's own address,
        // not the broadcast address in the header).
        if (info.ipi_spec_dst.s_addr != 0) {
          reinterpret_cast<sockaddr_in*>(&local.addr)->sin_addr = info.ipi_spec_dst;
        }
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
                 local.addr.ss_family == AF_INET6) {
        in6_pktinfo info;
        std::memcpy(&info, CMSG_DATA(c), sizeof info);
        reinterpret_cast<sockaddr_in6*>(&local.addr)->sin6_addr = info.ipi6_addr;
        if (IN6_IS_ADDR_LINKLOCAL(&info.ipi6_addr)) {
          reinterpret_cast<sockaddr_in6*>(&local.addr)->sin6_scope_id = info.ipi6_ifindex;
        }
      }
    }
    HandleRequest(std::span<const uint8_t>(rx_.data(), static_cast<size_t>(got)), peer, local);
  }
}

void Server::Loop::Refuse(const Endpoint& local, const Endpoint& peer, ErrorCode code,
                          std::string_view message) {
  ++counters_.refused;
  std::vector<uint8_t> packet;
  EncodeError(code, message, packet);
  // From a fresh TID, as the answer to a request comes from the server's new TID (RFC 1350 §4).
  auto sock = TransferSocket(local);
  SendTo(sock.ok() ? sock->get() : listen_.get(), packet, peer);
}

void Server::Loop::HandleRequest(std::span<const uint8_t> datagram, const Endpoint& peer,
                                 const Endpoint& local) {
  const std::string client = peer.Text();
  auto parsed = ParsePacket(datagram);
  if (!parsed.ok()) {
    // Tiny garbage gets no answer: an answer larger than the question would make us a reflector.
    log::Debug("tftp_bad_request", {{"client", client}, {"error", parsed.status().message()}});
    if (datagram.size() < 4) {
      ++counters_.dropped;
      return;
    }
    Refuse(local, peer, ErrorCode::kIllegalOperation, "Illegal TFTP operation");
    return;
  }
  const Packet& p = *parsed;
  if (p.opcode == Opcode::kWrq) {
    log::Warn("tftp_refused", {{"client", client},
                               {"file", Shown(p.request.filename)},
                               {"reason", "write request on a read-only server"}});
    Refuse(local, peer, ErrorCode::kAccessViolation, "Access violation");
    return;
  }
  if (p.opcode != Opcode::kRrq) {
    if (p.opcode == Opcode::kError) return;  // never answer an error with an error
    Refuse(local, peer, ErrorCode::kIllegalOperation, "Illegal TFTP operation");
    return;
  }
  // A client that retransmits its RRQ before our first answer arrived already has a transfer.
  if (by_client_.count(client) != 0) return;
  const std::string host = peer.Host();
  if (transfers_.size() >= options_.max_transfers ||
      (per_host_.count(host) != 0 && per_host_[host] >= options_.max_transfers_per_client)) {
    ++counters_.dropped;
    log::Warn("tftp_busy", {{"client", client},
                            {"file", Shown(p.request.filename)},
                            {"transfers", static_cast<uint64_t>(transfers_.size())}});
    return;
  }

  const Request& rq = p.request;
  auto mode = ParseMode(rq.mode);
  if (!mode.ok()) {
    log::Info("tftp_refused", {{"client", client},
                               {"file", Shown(rq.filename)},
                               {"mode", Shown(rq.mode)},
                               {"reason", "unsupported mode"}});
    Refuse(local, peer, ErrorCode::kIllegalOperation, "Unsupported transfer mode");
    return;
  }
  auto path = NormalizePath(rq.filename, options_.max_path_length);
  if (!path.ok()) {
    log::Warn(
        "tftp_refused",
        {{"client", client}, {"file", Shown(rq.filename)}, {"reason", path.status().message()}});
    Refuse(local, peer, ErrorCode::kAccessViolation, "Access violation");
    return;
  }
  auto source = files_.Open(*path);
  if (!source.ok()) {
    const Status& s = source.status();
    if (s.code() == Code::kNotFound) {
      log::Info("tftp_not_found", {{"client", client}, {"file", *path}});
      Refuse(local, peer, ErrorCode::kFileNotFound, "File not found");
    } else if (s.code() == Code::kRefused || s.code() == Code::kPermissionDenied) {
      log::Warn("tftp_refused", {{"client", client}, {"file", *path}, {"reason", s.message()}});
      Refuse(local, peer, ErrorCode::kAccessViolation, "Access violation");
    } else {
      log::Error("tftp_open_failed",
                 {{"client", client}, {"file", *path}, {"error", s.ToString()}});
      Refuse(local, peer, ErrorCode::kNotDefined, "Server error");
    }
    return;
  }
  NegotiationLimits limits{.max_blksize = options_.max_blksize,
                           .max_windowsize = options_.max_windowsize,
                           .allow_timeout_option = options_.honour_timeout_option};
  std::optional<uint64_t> tsize;
  if (*mode == Mode::kOctet) tsize = (*source)->Size();
  auto negotiated = Negotiate(rq.options, tsize, limits);
  if (!negotiated.ok()) {
    log::Info("tftp_refused",
              {{"client", client}, {"file", *path}, {"reason", negotiated.status().message()}});
    Refuse(local, peer, ErrorCode::kOptionRefused, "Option negotiation refused");
    return;
  }
  auto sock = TransferSocket(local);
  if (!sock.ok()) sock = TransferSocket(listen_addr_);  // the address went away meanwhile
  if (!sock.ok()) {
    log::Error("tftp_socket_failed", {{"client", client}, {"error", sock.status().ToString()}});
    ++counters_.dropped;
    return;
  }

  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->sock = std::move(*sock);
  t->peer = peer;
  t->client = client;
  t->path = std::move(*path);
  t->source = std::move(*source);
  t->mode = *mode;
  t->blksize = negotiated->blksize;
  t->windowsize = negotiated->windowsize;
  t->timeout = negotiated->timeout_seconds
                   ? std::chrono::milliseconds(*negotiated->timeout_seconds * 1000)
                   : options_.timeout;
  t->oack = std::move(negotiated->oack);
  t->started = Clock::now();
  t->block.resize(t->blksize);
  if (t->mode == Mode::kNetascii) t->checkpoints.push_back(NetasciiCheckpoint{});

  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = t->id;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, t->sock.get(), &ev) != 0) {
    log::Error("tftp_epoll_failed", {{"error", std::strerror(errno)}});
    ++counters_.dropped;
    return;
  }
  ++counters_.started;
  log::Debug("tftp_transfer_start", {{"client", client},
                                     {"file", t->path},
                                     {"blksize", t->blksize},
                                     {"windowsize", t->windowsize}});
  Transfer& ref = *t;
  by_client_[client] = t->id;
  ++per_host_[host];
  transfers_.emplace(t->id, std::move(t));
  if (!ref.oack.empty()) {
    ref.oack_pending = true;
    EncodeOack(ref.oack, ref.packet);
    SendTo(ref.sock.get(), ref.packet, ref.peer);
    ref.deadline = Clock::now() + ref.timeout;
  } else {
    SendWindow(ref);
  }
}

Result<size_t> Server::Loop::ReadBlock(Transfer& t, uint64_t block) {
  std::span<uint8_t> out(t.block.data(), t.blksize);
  if (t.mode == Mode::kOctet) {
    const uint64_t offset = (block - 1) * t.blksize;
    const uint64_t size = t.source->Size();
    if (offset >= size) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(t.blksize, size - offset));
    size_t filled = 0;
    while (filled < want) {
      INGOT_ASSIGN_OR_RETURN(size_t got,
                             t.source->ReadAt(offset + filled, out.subspan(filled, want - filled)));
      if (got == 0) break;  // the file shrank under us: end it here
      filled += got;
    }
    return filled;
  }
  // netascii: from the checkpoint of this block; remember where the next one starts.
  if (block < t.checkpoint_base || block - t.checkpoint_base >= t.checkpoints.size()) {
    return Internal("netascii block without a checkpoint");
  }
  NetasciiCheckpoint cp = t.checkpoints[block - t.checkpoint_base];
  INGOT_ASSIGN_OR_RETURN(size_t filled, NetasciiFill(*t.source, cp, out, t.scratch));
  if (block - t.checkpoint_base + 1 == t.checkpoints.size()) t.checkpoints.push_back(cp);
  return filled;
}

void Server::Loop::SendWindow(Transfer& t) {
  const uint64_t first = t.last_acked + 1;
  uint64_t last = t.last_acked + t.windowsize;
  if (t.final_block) last = std::min(last, *t.final_block);
  for (uint64_t b = first; b <= last; ++b) {
    auto got = ReadBlock(t, b);
    if (!got.ok()) {
      log::Error("tftp_read_failed",
                 {{"client", t.client}, {"file", t.path}, {"error", got.status().ToString()}});
      EncodeError(ErrorCode::kNotDefined, "Read error", t.packet);
      SendTo(t.sock.get(), t.packet, t.peer);
      Finish(t, false, "read error");
      return;
    }
    if (b <= t.last_sent) ++t.retransmits;
    EncodeData(static_cast<uint16_t>(b & 0xffff), std::span<const uint8_t>(t.block.data(), *got),
               t.packet);
    SendTo(t.sock.get(), t.packet, t.peer);
    if (b > t.last_sent) t.bytes_sent += *got;
    t.last_sent = std::max(t.last_sent, b);
    if (*got < t.blksize) {
      t.final_block = b;
      break;
    }
  }
  t.deadline = Clock::now() + t.timeout;
}

void Server::Loop::OnTransferReadable(Transfer& t) {
  for (int i = 0; i < 64 && !t.done; ++i) {
    Endpoint from;
    from.len = sizeof from.addr;
    ssize_t got = recvfrom(t.sock.get(), rx_.data(), rx_.size(), 0,
                           reinterpret_cast<sockaddr*>(&from.addr), &from.len);
    if (got < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (!from.SameAs(t.peer)) {
      // RFC 1350 §4: a packet from another TID gets ERROR 5 and leaves the transfer alone.
      std::vector<uint8_t> packet;
      EncodeError(ErrorCode::kUnknownTransferId, "Unknown transfer ID", packet);
      SendTo(t.sock.get(), packet, from);
      continue;
    }
    auto parsed = ParsePacket(std::span<const uint8_t>(rx_.data(), static_cast<size_t>(got)));
    if (parsed.ok() && parsed->opcode == Opcode::kAck) {
      OnAck(t, parsed->ack.block);
    } else if (parsed.ok() && parsed->opcode == Opcode::kError) {
      const bool refused_options = t.oack_pending && parsed->error.code == 8;
      log::Info("tftp_client_error", {{"client", t.client},
                                      {"file", t.path},
                                      {"code", static_cast<unsigned>(parsed->error.code)},
                                      {"message", parsed->error.message}});
      Finish(t, false, refused_options ? "client refused options" : "client error");
    } else {
      EncodeError(ErrorCode::kIllegalOperation, "Illegal TFTP operation", t.packet);
      SendTo(t.sock.get(), t.packet, t.peer);
      Finish(t, false, "illegal operation");
    }
  }
}

void Server::Loop::OnAck(Transfer& t, uint16_t block) {
  if (t.oack_pending) {
    if (block != 0) return;  // only the ACK of the OACK (block 0) moves us on
    t.oack_pending = false;
    t.retries = 0;
    SendWindow(t);
    return;
  }
  // The block this ACK names, among those in flight: last_acked < abs <= last_sent. The window is
  // at most 65535 blocks, so the low 16 bits name one block only.
  const uint16_t ahead =
      static_cast<uint16_t>(block - static_cast<uint16_t>(t.last_acked & 0xffff));
  if (ahead == 0) return;  // a duplicate: resending now is the Sorcerer's Apprentice bug
  const uint64_t abs = t.last_acked + ahead;
  if (abs > t.last_sent) return;  // not sent yet (or a stale ACK from 65536 blocks ago)
  t.last_acked = abs;
  t.retries = 0;
  while (!t.checkpoints.empty() && t.checkpoint_base <= abs) {
    t.checkpoints.pop_front();
    ++t.checkpoint_base;
  }
  if (t.final_block && abs == *t.final_block) {
    Finish(t, true, "complete");
    return;
  }
  // The whole window arrived, or the client acknowledged a part of it: either way, go on from the
  // block after the one acknowledged (RFC 7440 §4).
  SendWindow(t);
}

void Server::Loop::OnTimeout(Transfer& t) {
  if (++t.retries > options_.max_retries) {
    Finish(t, false, "timed out");
    return;
  }
  if (t.oack_pending) {
    EncodeOack(t.oack, t.packet);
    SendTo(t.sock.get(), t.packet, t.peer);
    t.deadline = Clock::now() + t.timeout;
    return;
  }
  SendWindow(t);
}

void Server::Loop::Finish(Transfer& t, bool ok, std::string_view outcome) {
  t.done = true;
  ++(ok ? counters_.completed : counters_.failed);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t.started);
  log::Write(ok ? log::Level::kInfo : log::Level::kWarn, "tftp_transfer",
             {{"client", t.client},
              {"file", t.path},
              {"outcome", outcome},
              {"bytes", t.bytes_sent},
              {"blksize", t.blksize},
              {"windowsize", t.windowsize},
              {"retransmits", t.retransmits},
              {"ms", static_cast<int64_t>(ms.count())}});
}

Server::Server(ServerOptions options, FileSource& files)
    : options_(std::move(options)), files_(files) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  if (loop_) return Status::Ok();
  auto loop = std::make_unique<Loop>(options_, files_, counters_);
  INGOT_RETURN_IF_ERROR(loop->Bind(port_));
  loop_ = std::move(loop);
  thread_ = std::thread([this] { loop_->Run(); });
  return Status::Ok();
}

void Server::Stop() {
  if (!loop_) return;
  loop_->Wake();
  if (thread_.joinable()) thread_.join();
  loop_.reset();
}

ServerStats Server::stats() const {
  ServerStats s;
  s.transfers_started = counters_.started.load();
  s.transfers_completed = counters_.completed.load();
  s.transfers_failed = counters_.failed.load();
  s.requests_refused = counters_.refused.load();
  s.requests_dropped = counters_.dropped.load();
  return s;
}

}  // namespace ingot::tftp
