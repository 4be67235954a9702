// Which installer an ISO holds, and how a machine boots it over the network: the kernel, the
// initrds and the arguments, found from the ISO's file tree alone (no file is read). Pure.
//
// Known layouts, tried in this order (the first whose files are all present wins):
//   windows-pe        bootmgr, boot/bcd, boot/boot.sdi, sources/boot.wim: booted through wimboot
//                     (kept by the operator in the files space: /files/wimboot)
//   esxi              boot.cfg with b.b00 and mboot.c32 (VMware's own loader reads boot.cfg)
//   casper            casper/vmlinuz with casper/initrd[.gz|.lz] (Ubuntu live/server): the live
//                     system fetches the whole ISO (url=)
//   debian-installer  install.amd|install.386|install.a64/vmlinuz + initrd.gz (Debian), or
//                     install/netboot/ubuntu-installer/amd64/linux + initrd.gz (older Ubuntu)
//   rhel              images/pxeboot/vmlinuz + initrd.img (RHEL, Rocky, Alma, CentOS, Fedora):
//                     inst.repo= the tree itself
//   photon            isolinux/vmlinuz + isolinux/initrd.img (VMware Photon OS): repo= RPMS/
// Anything else is a valid tree with layout "" (served, but no boot.ipxe).
#pragma once

#include <string>

#include "boot/content.h"
#include "formats/iso9660.h"

namespace ingot::boot {

BootSpec DetectLayout(const formats::iso9660::Tree& tree);

// The iPXE script for a tree: `base_url` is the tree's absolute URL ending in '/', `iso_url` the
// ISO's. Paths are absolute URLs, so the script works wherever it was chained from. "" when the
// layout is unknown.
std::string RenderIpxe(const OsTree& tree, const std::string& base_url, const std::string& iso_url);

// `args` with {base} and {iso} replaced.
std::string ExpandArgs(const std::string& args, const std::string& base_url,
                       const std::string& iso_url);

}  // namespace ingot::boot
