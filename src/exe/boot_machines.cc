#include "exe/boot_machines.h"

#include <arpa/inet.h>

#include <cstring>

#include "catalog/sqlite/database.h"
#include "common/log.h"

namespace ingot::exe {

std::function<void(api::ApiRouter&)> BootMachines::ApiRoutes() {
  return [this](api::ApiRouter& router) {
    if (routes) routes->Register(router);
  };
}

void BootMachines::Stop() {
  if (dhcp) dhcp->Stop();
}

Result<std::unique_ptr<BootMachines>> StartBootMachines(const config::Config& config,
                                                        api::boot::Southbound* southbound) {
  auto m = std::make_unique<BootMachines>();
  if (!config.machines.enabled) return m;
  INGOT_ASSIGN_OR_RETURN(auto db, catalog::sqlite::Database::Open(config.data_dir + "/catalog.db"));
  INGOT_ASSIGN_OR_RETURN(m->repo, boot::SqliteMachineRepository::Open(db));
  m->service = std::make_unique<boot::MachineService>(*m->repo);
  if (!config.machines.signing_cert.empty()) {
    INGOT_ASSIGN_OR_RETURN(m->signer, boot::AssetSigner::Open(config.machines.signing_cert,
                                                              config.machines.signing_key,
                                                              config.machines.signing_chain));
  }
  api::boot::MachineRoutesOptions o;
  o.holding_retry_seconds = static_cast<int>(config.machines.holding_retry_seconds);
  o.southbound_url = config.machines.public_url;
  if (o.southbound_url.empty() && !config.boot_listen.empty()) {
    o.southbound_url = "http://" + config.boot_listen;
  }
  BootMachines* self = m.get();
  o.os_tree = [self](const std::string& name, const std::string& version,
                     const std::string& base) -> std::optional<boot::OsBoot> {
    if (!self->os_trees) return std::nullopt;
    return self->os_trees(name, version, base);
  };
  o.signer = m->signer.get();
  if (southbound != nullptr) {
    o.open_file = [southbound](const std::vector<std::string>& c) { return southbound->OpenFile(c); };
  }
  m->routes = std::make_unique<api::boot::MachineRoutes>(*m->service, std::move(o));
  if (southbound != nullptr) {
    api::boot::MachineRoutes* routes = m->routes.get();
    southbound->AddRoute(
        [routes](const http::Request& req, const api::boot::BootPath& path) {
          return routes->Southbound(req, path);
        },
        [routes](const http::Request& req, const api::boot::BootPath& path) {
          return routes->SouthboundBlocks(req, path);
        });
  }
  log::Info("boot.machines", {{"signing", m->signer ? "on" : "off"}});
  return m;
}

namespace {

// How a PXE client's architecture (RFC 4578 option 93) is recorded on the machine.
std::string ArchName(std::optional<uint16_t> arch) {
  switch (arch.value_or(0)) {
    case 0: return "x86-bios";
    case 6: return "ia32-efi";
    case 7:
    case 9:
    case 16: return "x86_64-efi";
    case 10: return "arm32-efi";
    case 11:
    case 19: return "arm64-efi";
    default: return "pxe-arch-" + std::to_string(*arch);
  }
}

}  // namespace

Status OnBootListening(BootMachines& machines, const config::Config& config, uint16_t boot_port) {
  if (machines.routes && config.machines.public_url.empty() && !config.boot_listen.empty()) {
    auto at = config::ParseListen(config.boot_listen);
    if (at.ok()) {
      std::string host = at->first == "0.0.0.0" || at->first == "::" ? "127.0.0.1" : at->first;
      if (host.find(':') != std::string::npos) host = "[" + host + "]";
      machines.routes->set_southbound_url("http://" + host + ":" + std::to_string(boot_port));
    }
  }
  const config::ProxyDhcpConfig& c = config.proxydhcp;
  if (!c.enabled) return Status::Ok();
  dhcp::ServerOptions o;
  o.listen = c.listen;
  o.interface = c.interface;
  o.port = static_cast<uint16_t>(c.port);
  o.pxe_port = static_cast<uint16_t>(c.pxe_port);
  struct in_addr server {};
  if (c.server_address.empty() || inet_pton(AF_INET, c.server_address.c_str(), &server) != 1) {
    return InvalidArgument(
        "proxydhcp.server_address: the IPv4 address machines reach this server at is needed");
  }
  std::memcpy(o.proxy.server.data(), &server, 4);
  o.proxy.http_base = !config.machines.public_url.empty()
                          ? config.machines.public_url
                          : "http://" + c.server_address + ":" + std::to_string(boot_port);
  while (!o.proxy.http_base.empty() && o.proxy.http_base.back() == '/') o.proxy.http_base.pop_back();
  o.proxy.bios_bootfile = c.bios_bootfile;
  o.proxy.uefi_bootfile = c.uefi_bootfile;
  o.proxy.arm64_bootfile = c.arm64_bootfile;
  boot::MachineService* service = machines.service.get();
  machines.dhcp = std::make_unique<dhcp::ProxyDhcpServer>(
      o, [service](const dhcp::Answered& a, const std::string& from) {
        if (service == nullptr || a.client.mac.empty()) return;
        // Recorded as the machine asks: an unknown one shows up as discovered before it even
        // fetches its first stage. (Its address comes later, from the site DHCP server.)
        auto r = service->Identify({.mac = a.client.mac,
                                    .uuid = a.client.guid,
                                    .arch = ArchName(a.client.arch),
                                    .address = ""});
        if (!r.ok()) {
          log::Warn("proxydhcp.record", {{"mac", a.client.mac}, {"error", r.status().message()}});
        }
      });
  INGOT_RETURN_IF_ERROR(machines.dhcp->Start());
  log::Info("proxydhcp.serving", {{"listen", c.listen + ":" + std::to_string(c.port)},
                                  {"pxe_port", static_cast<int>(c.pxe_port)},
                                  {"interface", c.interface},
                                  {"http", o.proxy.http_base}});
  return Status::Ok();
}

std::function<std::optional<boot::OsBoot>(const std::string&, const std::string&,
                                          const std::string&)>
OsTreeLookup(BootContent& content) {
  boot::ContentService* service = content.service.get();
  return [service](const std::string& name, const std::string& version,
                   const std::string& base) -> std::optional<boot::OsBoot> {
    if (service == nullptr) return std::nullopt;
    auto tree = service->GetTree(name, version);
    if (!tree.ok() || tree->status != boot::TreeStatus::kOk || tree->boot.kernel.empty()) {
      return std::nullopt;
    }
    // The ISO is served at /iso/NAME (api/boot/content_southbound.cc).
    return boot::OsBoot{tree->boot.kernel, tree->boot.initrds, tree->boot.args,
                        base + "/iso/" + tree->iso};
  };
}

}  // namespace ingot::exe
