// proxyDHCP (PXE specification 2.1 §2.2.4; pixiecore's and Tinkerbell's "proxy" mode): answers PXE
// clients' DHCP with boot options only — no address — beside the site's DHCP server, which keeps
// assigning addresses. Off by default ([proxydhcp] enabled).
//
// Who gets what (Answer): only clients whose vendor class (option 60) starts with "PXEClient" or
// "HTTPClient" are answered; everything else is the site DHCP server's business.
//   - iPXE (user class "iPXE" or option 175): the HTTP URL of boot.ipxe — the machine's own script
//     (so an iPXE first stage never loads itself again: the chain-loading loop is broken here).
//   - UEFI HTTP boot (HTTPClient; arch 16 x86-64, 19 arm64): an HTTP URL of the UEFI first stage.
//   - PXE ROMs (PXEClient): a TFTP file from this server (siaddr, options 66/67): arch 0 (BIOS) the
//     BIOS first stage, 7 and 9 (x86-64 UEFI) the UEFI one, 11 (arm64 UEFI) the arm64 one; other
//     architectures get nothing (logged).
// DISCOVER on port 67 gets an OFFER, REQUEST on 4011 (or on 67 naming this server) an ACK; both
// carry PXE discovery control 8 (boot from the file named here, skip boot server discovery).
//
// ProxyDhcpServer: UDP sockets on [listen]:port and :pxe_port (SO_BROADCAST, optionally bound to
// one interface), one thread; replies go to 255.255.255.255:68 (the client has no address yet),
// to the relay (giaddr) or to the sender of a port-4011 request.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "dhcp/packet.h"
#include "io/file.h"

namespace ingot::dhcp {

struct ProxyOptions {
  std::array<uint8_t, 4> server{};  // this server's IPv4 address as clients reach it
  std::string http_base;            // "http://192.0.2.1:9090" (no trailing '/')
  std::string bios_bootfile = "undionly.kpxe";
  std::string uefi_bootfile = "ipxe.efi";
  std::string arm64_bootfile = "ipxe-arm64.efi";
};

struct Answered {
  Packet reply;
  PxeClient client;
  std::string bootfile;  // what it was given (a TFTP file name or an HTTP URL)
};

// The reply to `request` received on the DHCP port (boot_server_port false) or the PXE boot server
// port 4011 (true); nullopt when it is not answered (`why` says why, for the log).
std::optional<Answered> Answer(const Packet& request, const ProxyOptions& options,
                               bool boot_server_port, std::string* why);

struct ServerOptions {
  std::string listen = "0.0.0.0";
  std::string interface;  // SO_BINDTODEVICE when set
  uint16_t port = 67;
  uint16_t pxe_port = 4011;  // 0: not served
  ProxyOptions proxy;
};

class ProxyDhcpServer {
 public:
  // Called for every answered client (on the server's thread): the machines service records it.
  using OnClient = std::function<void(const Answered&, const std::string& from)>;
  explicit ProxyDhcpServer(ServerOptions options, OnClient on_client = {})
      : options_(std::move(options)), on_client_(std::move(on_client)) {}
  ~ProxyDhcpServer();
  // Binds the sockets and starts the thread. kInvalidArgument / kIoError naming what failed.
  Status Start();
  void Stop();
  uint16_t port() const { return bound_port_; }

 private:
  void Loop();
  void Handle(int fd, bool boot_server_port);
  ServerOptions options_;
  OnClient on_client_;
  io::UniqueFd dhcp_fd_, pxe_fd_, wake_fd_;
  uint16_t bound_port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ingot::dhcp
