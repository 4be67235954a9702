// ingotd's wiring of per-machine boot (boot/machines_service.h, api/boot/machines.h): the
// machines repository on the catalog file (component "boot_machines"), the signer when
// [machines] signing_cert/signing_key are set, the southbound routes (added before the boot
// content's, so /boot.ipxe and *.sig are answered here), the /boot/v1/profiles and
// /boot/v1/machines routes of the API, and the proxyDHCP responder when [proxydhcp] enabled.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "api/boot/machines.h"
#include "api/boot/southbound.h"
#include "api/route.h"
#include "boot/machines_signer.h"
#include "boot/machines_sqlite.h"
#include "config/config.h"
#include "dhcp/proxy.h"
#include "exe/boot_content.h"

namespace ingot::exe {

struct BootMachines {
  std::unique_ptr<boot::SqliteMachineRepository> repo;
  std::unique_ptr<boot::MachineService> service;
  std::unique_ptr<boot::AssetSigner> signer;
  std::unique_ptr<api::boot::MachineRoutes> routes;
  // How an OS tree boots, once the boot content is up (set after StartBootMachines).
  std::function<std::optional<boot::OsBoot>(const std::string&, const std::string&,
                                            const std::string&)>
      os_trees;
  std::unique_ptr<dhcp::ProxyDhcpServer> dhcp;  // the proxyDHCP responder, when on

  std::function<void(api::ApiRouter&)> ApiRoutes();
  void Stop();
};

// `southbound` may be null (no southbound listener: only the API routes are offered).
// `southbound_url` is the listener's URL as machines reach it (for previews and proxyDHCP).
Result<std::unique_ptr<BootMachines>> StartBootMachines(const config::Config& config,
                                                        api::boot::Southbound* southbound);

// Once the southbound listener is up on `boot_port`: the previews' URL (unless [machines]
// public_url says it), and the proxyDHCP responder when [proxydhcp] enabled — PXE clients get their
// first stage from this server, iPXE its boot.ipxe, and every client it answers is recorded
// (discovered) by the machines service.
Status OnBootListening(BootMachines& machines, const config::Config& config, uint16_t boot_port);

// How the boot content's OS trees boot (their detected layout), for profiles that name one: only
// trees whose status is OK.
std::function<std::optional<boot::OsBoot>(const std::string&, const std::string&,
                                          const std::string&)>
OsTreeLookup(BootContent& content);

}  // namespace ingot::exe
