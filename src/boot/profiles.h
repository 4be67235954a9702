// What a profile looks like to a machine: its iPXE and GRUB scripts, the holding script of a
// machine that has no profile yet, its kernel command line, its cloud-init NoCloud documents and
// its EC2/OpenStack-style metadata — each rendered from the profile's templates and the machine's
// variables (templates.h, machines.h: VariablesFor).
//
// URLs: a kernel or initrd given as an http(s)/tftp URL is used as it is; a path is taken beneath
// the boot root — or, when relative and the profile names an OS tree, beneath the tree
// `/{name}/{version}/` (an absolute path stays the listener's: "/files/wimboot") — and
// prefixed with `base_url`, the address the machine used to reach Ingot's boot listener (so a
// machine behind NAT or on another interface gets a URL it can reach). The generated iPXE kernel
// line names the first initrd (`initrd=NAME`): UEFI iPXE needs it to hand the initrd to Linux.
//
// Pure functions: no I/O; thread-safe.
#pragma once

#include <string>

#include "boot/machines.h"

namespace ingot::boot {

// How the OS tree a profile names boots, as the boot content detected it from its ISO (paths
// relative to the tree; an initrd may be "PATH NAME"; "{base}" and "{iso}" in args stand for the
// tree's and the ISO's URLs). Used when the profile gives no kernel of its own.
struct OsBoot {
  std::string kernel;
  std::vector<std::string> initrds;
  std::string args;
  std::string iso_url;  // absolute
};

struct RenderContext {
  std::string base_url;  // "http://10.0.2.2:9090", no trailing '/'
  // Query string that identifies the machine in URLs the script fetches back ("mac=…&uuid=…").
  std::string identity_query;
  int holding_retry_seconds = 30;
  // Scripts check every kernel and initrd with iPXE's imgverify against URL.sig (a detached CMS
  // signature the boot listener serves beside each asset).
  bool signed_assets = false;
  // The named OS tree's boot layout, when the profile names one and it is known.
  std::optional<OsBoot> os;
};

// The URL of a kernel/initrd path of profile `p`.
std::string AssetUrl(const Profile& p, const std::string& path, const RenderContext& ctx);

// The full set of variables a template of `p` sees for `m`: VariablesFor plus base_url, the
// profile's kernel/initrd URLs (kernel_url, initrd_url, initrd_urls) and nocloud_url/metadata_url.
Variables TemplateVariables(const Machine& m, const Profile& p, const RenderContext& ctx);

// "#!ipxe" script: the profile's own ipxe template, or kernel + initrds + boot.
Result<std::string> RenderIpxe(const Machine& m, const Profile& p, const RenderContext& ctx);
// A GRUB script: the profile's own grub template, or linux + initrd.
Result<std::string> RenderGrub(const Machine& m, const Profile& p, const RenderContext& ctx);
// The kernel command line alone (args rendered in the iPXE context).
Result<std::string> RenderArgs(const Machine& m, const Profile& p, const RenderContext& ctx);

// The script a machine without a profile gets: it says so on the console, waits, and asks again
// (so assigning it a profile is enough to boot it). `message` is shown as is (no control chars).
std::string HoldingIpxe(const Machine& m, const RenderContext& ctx);
std::string HoldingGrub(const Machine& m, const RenderContext& ctx);
// The script that makes iPXE identify itself: chains boot.ipxe with its MAC, SMBIOS UUID, serial,
// hostname and build architecture in the query (iPXE fills ${net0/mac} and friends).
std::string IdentifyIpxe(const RenderContext& ctx);
// An iPXE script that only shows an error (a template failed to render) and retries.
std::string ErrorIpxe(std::string_view message, const RenderContext& ctx);

// cloud-init NoCloud: meta-data (YAML: instance-id, local-hostname), user-data and vendor-data
// (the profile's templates; "#cloud-config\n{}\n"-free empty documents when unset).
std::string NoCloudMetaData(const Machine& m);
Result<std::string> NoCloudUserData(const Machine& m, const Profile* p, const RenderContext& ctx);
Result<std::string> NoCloudVendorData(const Machine& m, const Profile* p, const RenderContext& ctx);

// EC2-style metadata: the keys under /latest/meta-data/ and each key's value.
std::vector<std::string> Ec2MetaDataKeys();
std::optional<std::string> Ec2MetaDataValue(const Machine& m, std::string_view key);
// OpenStack's /openstack/latest/meta_data.json.
std::string OpenStackMetaData(const Machine& m);

}  // namespace ingot::boot
