// The boot service's per-machine routes.
//
// Southbound (no auth; consulted before the file tree, see Southbound::AddRoute):
//   GET /boot.ipxe?mac=…&uuid=…[&serial=…&hostname=…&arch=…]
//       the machine's iPXE script: its profile's, or the holding script while it has none (it is
//       recorded as discovered the first time it asks). Without mac and uuid: a script that makes
//       iPXE chain back here with its ${net0/mac}, ${uuid}, ${serial}, ${hostname}, ${buildarch}.
//   GET /boot.grub?mac=…        the same as a GRUB script (${net_default_mac} without a mac).
//   GET /nocloud/{id}/meta-data | user-data | vendor-data
//       cloud-init's NoCloud seed (kernel argument ds=nocloud-net;s={{.nocloud_url}}).
//   GET /metadata/{id}/{version}/meta-data/[KEY] | user-data, /metadata/{id}/openstack/{version}/
//       meta_data.json | user_data — EC2/OpenStack-style metadata of one machine; and the same
//       without /metadata/{id} for the machine that last booted from the caller's address.
//   GET PATH.sig  a detached CMS signature of the script or asset PATH (when signing is on), for
//       iPXE's imgverify.
//
// Northbound (/boot/v1, each route with its policy rule):
//   /boot/v1/profiles[/{name}]   GET, POST; GET, PUT, PATCH, DELETE
//   /boot/v1/machines[/{id}]     GET (?state=, ?mac=), POST; GET, PATCH, DELETE ({id} may be a MAC)
//   /boot/v1/machines/{id}/boot?format=ipxe|grub   what the machine would be given, rendered now
//       (a template error answers 400 with its line and variable).
//
// Thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "api/route.h"
#include "api/boot/paths.h"
#include "boot/machines_service.h"
#include "boot/profiles.h"
#include "http/message.h"

namespace ingot::boot {
class AssetSigner;
}

namespace ingot::api::boot {

struct MachineRoutesOptions {
  int holding_retry_seconds = 30;
  size_t max_json_body = 1 << 20;
  // The southbound listener's URL as machines reach it ("http://192.0.2.1:9090"), for previews
  // on the northbound API; the southbound routes use each request's Host.
  std::string southbound_url;
  // How an OS tree boots (the boot content's detected layout), by name and version; nullopt when
  // there is no such ready tree. `base_url` is the southbound URL the script will use.
  std::function<std::optional<ingot::boot::OsBoot>(const std::string& name,
                                                   const std::string& version,
                                                   const std::string& base_url)>
      os_tree;
  // Signs scripts and assets (GET PATH.sig); null: signing is off.
  const ingot::boot::AssetSigner* signer = nullptr;
  // Opens a file of the boot tree to sign it (Southbound::OpenFile).
  std::function<Result<std::unique_ptr<io::ByteSource>>(const std::vector<std::string>&)> open_file;
};

class MachineRoutes {
 public:
  MachineRoutes(ingot::boot::MachineService& service, MachineRoutesOptions options)
      : service_(service), options_(std::move(options)) {}

  // The southbound route (SouthboundRoute): nullopt for paths it does not own.
  std::optional<http::Response> Southbound(const http::Request& req, const BootPath& path);
  // Its SouthboundRouteBlocks: true for the paths Southbound() may answer (they read the machine
  // records); Southbound() answers nothing else (it asks this first).
  bool SouthboundBlocks(const http::Request& req, const BootPath& path) const;
  // Adds the /boot/v1 routes.
  void Register(ApiRouter& router);
  // The southbound URL once its listener is bound (port 0 picks one). Call before the API serves.
  void set_southbound_url(std::string url) { options_.southbound_url = std::move(url); }

 private:
  http::Response Script(const http::Request& req, bool grub);
  std::optional<http::Response> NoCloud(const http::Request& req,
                                        const std::vector<std::string_view>& parts);
  std::optional<http::Response> Metadata(const http::Request& req, const ingot::boot::Machine& m,
                                         const std::vector<std::string_view>& rest);
  std::optional<http::Response> Signature(const http::Request& req);
  ingot::boot::RenderContext ContextFor(const ingot::boot::Machine& m,
                                        const std::optional<ingot::boot::Profile>& p,
                                        const std::string& base_url) const;

  ingot::boot::MachineService& service_;
  MachineRoutesOptions options_;
};

}  // namespace ingot::api::boot
