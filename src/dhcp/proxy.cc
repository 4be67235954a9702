#include "dhcp/proxy.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace ingot::dhcp {
namespace {

std::string Dotted(const std::array<uint8_t, 4>& a) {
  return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." +
         std::to_string(a[3]);
}

}  // namespace

std::optional<Answered> Answer(const Packet& request, const ProxyOptions& o, bool boot_server_port,
                               std::string* why) {
  auto set_why = [&](std::string w) {
    if (why != nullptr) *why = std::move(w);
  };
  std::optional<PxeClient> client = ClientOf(request);
  if (!client) {
    set_why("not a client request with a message type");
    return std::nullopt;
  }
  if (!client->pxe && !client->http) {
    set_why("not a PXE or HTTP boot client (option 60)");
    return std::nullopt;
  }
  MessageType reply_type;
  if (client->type == MessageType::kDiscover && !boot_server_port) {
    reply_type = MessageType::kOffer;
  } else if (client->type == MessageType::kRequest) {
    if (!boot_server_port) {
      // On port 67 a REQUEST is for the DHCP server that offered the address, unless it names us.
      const std::string* sid = request.Option(option::kServerId);
      if (sid == nullptr || sid->size() != 4 ||
          std::memcmp(sid->data(), o.server.data(), 4) != 0) {
        set_why("a REQUEST for another server");
        return std::nullopt;
      }
    }
    reply_type = MessageType::kAck;
  } else {
    set_why("message type not answered by a proxy");
    return std::nullopt;
  }

  Answered a;
  a.client = *client;
  const uint16_t arch = client->arch.value_or(0);  // PXE 2.1 ROMs without option 93 are BIOS
  bool tftp = true;
  if (client->ipxe) {
    a.bootfile = o.http_base + "/boot.ipxe";
    tftp = false;
  } else if (client->http) {
    if (arch == static_cast<uint16_t>(Arch::kEfiX64Http)) {
      a.bootfile = o.http_base + "/" + o.uefi_bootfile;
    } else if (arch == static_cast<uint16_t>(Arch::kEfiArm64Http)) {
      a.bootfile = o.http_base + "/" + o.arm64_bootfile;
    } else {
      set_why("HTTP boot client of architecture " + std::to_string(arch) + " (no first stage for it)");
      return std::nullopt;
    }
    tftp = false;
  } else if (arch == static_cast<uint16_t>(Arch::kBiosX86)) {
    a.bootfile = o.bios_bootfile;
  } else if (arch == static_cast<uint16_t>(Arch::kEfiBc) ||
             arch == static_cast<uint16_t>(Arch::kEfiX64)) {
    a.bootfile = o.uefi_bootfile;
  } else if (arch == static_cast<uint16_t>(Arch::kEfiArm64)) {
    a.bootfile = o.arm64_bootfile;
  } else {
    set_why("PXE client of architecture " + std::to_string(arch) + " (no first stage for it)");
    return std::nullopt;
  }
  if (a.bootfile.empty() || a.bootfile.size() > 127) {
    set_why("no first stage configured for this client");
    return std::nullopt;
  }

  Packet& r = a.reply;
  r.op = 2;
  r.htype = request.htype;
  r.hlen = request.hlen;
  r.xid = request.xid;
  r.flags = request.flags;
  r.giaddr = request.giaddr;
  r.ciaddr = request.ciaddr;
  r.chaddr = request.chaddr;
  // No yiaddr: the address is the site DHCP server's to give.
  if (tftp) r.siaddr = o.server;
  r.file = a.bootfile;
  r.options[option::kMessageType] = std::string(1, static_cast<char>(reply_type));
  r.options[option::kServerId] = std::string(reinterpret_cast<const char*>(o.server.data()), 4);
  r.options[option::kVendorClass] = client->http ? "HTTPClient" : "PXEClient";
  if (!client->raw_guid.empty()) r.options[option::kClientGuid] = client->raw_guid;
  if (client->pxe && !client->ipxe) {
    // PXE vendor options: discovery control 8 = boot the file named in this reply.
    r.options[option::kVendorSpecific] = std::string("\x06\x01\x08\xff", 4);
  }
  if (tftp) r.options[option::kTftpServer] = Dotted(o.server);
  r.options[option::kBootfile] = a.bootfile;
  set_why("");
  return a;
}

ProxyDhcpServer::~ProxyDhcpServer() { Stop(); }

Status ProxyDhcpServer::Start() {
  struct in_addr addr {};
  if (inet_pton(AF_INET, options_.listen.c_str(), &addr) != 1) {
    return InvalidArgument("proxydhcp.listen: '" + options_.listen + "' is not an IPv4 address");
  }
  auto open = [&](uint16_t port) -> Result<io::UniqueFd> {
    io::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return FromErrno(errno, "proxydhcp socket");
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) != 0) {
      return FromErrno(errno, "proxydhcp SO_BROADCAST");
    }
    if (!options_.interface.empty() &&
        ::setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, options_.interface.c_str(),
                     static_cast<socklen_t>(options_.interface.size())) != 0) {
      return FromErrno(errno, "proxydhcp: bind to interface " + options_.interface);
    }
    struct sockaddr_in sa {};
    sa.sin_family = AF_INET;
    sa.sin_addr = addr;
    sa.sin_port = htons(port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return FromErrno(errno, "proxydhcp: bind " + options_.listen + ":" + std::to_string(port));
    }
    return fd;
  };
  INGOT_ASSIGN_OR_RETURN(dhcp_fd_, open(options_.port));
  bound_port_ = options_.port;
  if (options_.pxe_port != 0) {
    INGOT_ASSIGN_OR_RETURN(pxe_fd_, open(options_.pxe_port));
  }
  wake_fd_ = io::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_) return FromErrno(errno, "proxydhcp eventfd");
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void ProxyDhcpServer::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof(one));
  thread_.join();
}

void ProxyDhcpServer::Loop() {
  while (!stop_) {
    struct pollfd fds[3] = {{dhcp_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0},
                            {pxe_fd_ ? pxe_fd_.get() : -1, POLLIN, 0}};
    int n = ::poll(fds, 3, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error("proxydhcp.poll", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[0].revents & POLLIN) Handle(dhcp_fd_.get(), false);
    if (fds[2].revents & POLLIN) Handle(pxe_fd_.get(), true);
  }
}

void ProxyDhcpServer::Handle(int fd, bool boot_server_port) {
  uint8_t buf[1500];
  for (;;) {
    struct sockaddr_in from {};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return;  // EAGAIN: drained
    char from_text[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &from.sin_addr, from_text, sizeof(from_text));
    auto packet = Parse(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    if (!packet.ok()) {
      log::Debug("proxydhcp.malformed", {{"from", from_text}, {"error", packet.status().message()}});
      continue;
    }
    std::string why;
    auto answer = Answer(*packet, options_.proxy, boot_server_port, &why);
    if (!answer) {
      log::Debug("proxydhcp.ignored", {{"from", from_text}, {"why", why}});
      continue;
    }
    std::vector<uint8_t> wire = Serialize(answer->reply);
    struct sockaddr_in to {};
    to.sin_family = AF_INET;
    if (boot_server_port) {
      to = from;  // the PXE boot server answers the sender
    } else if (packet->giaddr != std::array<uint8_t, 4>{}) {
      std::memcpy(&to.sin_addr, packet->giaddr.data(), 4);
      to.sin_port = htons(options_.port);
    } else {
      to.sin_addr.s_addr = htonl(INADDR_BROADCAST);
      to.sin_port = htons(static_cast<uint16_t>(options_.port + 1));
    }
    if (::sendto(fd, wire.data(), wire.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
      log::Warn("proxydhcp.send", {{"error", std::strerror(errno)}});
      continue;
    }
    const PxeClient& c = answer->client;
    log::Info("proxydhcp.answer",
              {{"mac", c.mac},
               {"type", answer->reply.type() == MessageType::kOffer ? "offer" : "ack"},
               {"arch", c.arch ? static_cast<int>(*c.arch) : -1},
               {"client", c.ipxe ? "ipxe" : c.http ? "http" : "pxe"},
               {"bootfile", answer->bootfile},
               {"port", boot_server_port ? 4011 : static_cast<int>(options_.port)}});
    if (on_client_) on_client_(*answer, from_text);
  }
}

}  // namespace ingot::dhcp
