#include "boot/layouts.h"

namespace ingot::boot {
namespace iso = formats::iso9660;
namespace {

// The path of a regular file at `path` (exact names first, then a case-insensitive match per
// component, because plain ISO 9660 names of some media are upper case), or "".
std::string FindFile(const iso::Tree& tree, const std::string& path) {
  if (auto e = tree.Lookup(path); e.ok() && (*e)->type == iso::EntryType::kFile) return path;
  std::string dir, found;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string want = path.substr(pos, slash - pos);
    auto kids = tree.ListDir(dir);
    if (!kids.ok()) return "";
    std::string match;
    for (const iso::Entry* k : *kids) {
      if (k->name.size() != want.size()) continue;
      bool same = true;
      for (size_t i = 0; i < want.size() && same; ++i) {
        same = std::tolower(static_cast<unsigned char>(k->name[i])) ==
               std::tolower(static_cast<unsigned char>(want[i]));
      }
      if (same) {
        match = k->name;
        break;
      }
    }
    if (match.empty()) return "";
    dir += (dir.empty() ? "" : "/") + match;
    pos = slash + 1;
  }
  auto e = tree.Lookup(dir);
  return e.ok() && (*e)->type == iso::EntryType::kFile ? dir : "";
}

// The first of `names` under `dir` that exists.
std::string FirstOf(const iso::Tree& tree, const std::string& dir,
                    std::initializer_list<const char*> names) {
  for (const char* n : names) {
    std::string p = FindFile(tree, dir.empty() ? n : dir + "/" + n);
    if (!p.empty()) return p;
  }
  return "";
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

}  // namespace

BootSpec DetectLayout(const iso::Tree& tree) {
  BootSpec b;
  {
    std::string bootmgr = FindFile(tree, "bootmgr"), bcd = FindFile(tree, "boot/bcd"),
                sdi = FindFile(tree, "boot/boot.sdi"), wim = FindFile(tree, "sources/boot.wim");
    if (!bootmgr.empty() && !bcd.empty() && !sdi.empty() && !wim.empty()) {
      b.layout = "windows-pe";
      b.kernel = "/files/wimboot";  // absolute: wimboot is not on the ISO
      b.initrds = {bootmgr + " bootmgr", bcd + " BCD", sdi + " boot.sdi", wim + " boot.wim"};
      return b;
    }
  }
  {
    std::string cfg = FindFile(tree, "boot.cfg"), b00 = FindFile(tree, "b.b00"),
                mboot = FindFile(tree, "mboot.c32");
    if (!cfg.empty() && !b00.empty() && !mboot.empty()) {
      b.layout = "esxi";
      b.kernel = mboot;
      b.args = "-c {base}" + cfg;
      return b;
    }
  }
  {
    std::string k = FirstOf(tree, "casper", {"vmlinuz", "vmlinuz.efi"});
    std::string i = FirstOf(tree, "casper", {"initrd", "initrd.gz", "initrd.lz", "initrd.img"});
    if (!k.empty() && !i.empty()) {
      b.layout = "casper";
      b.kernel = k;
      b.initrds = {i};
      b.args = "boot=casper ip=dhcp url={iso}";
      return b;
    }
  }
  for (const char* dir : {"install.amd", "install.a64", "install.386", "install",
                          "install/netboot/ubuntu-installer/amd64"}) {
    std::string k = FirstOf(tree, dir, {"vmlinuz", "linux"});
    std::string i = FirstOf(tree, dir, {"initrd.gz"});
    if (!k.empty() && !i.empty()) {
      b.layout = "debian-installer";
      b.kernel = k;
      b.initrds = {i};
      b.args = "";
      return b;
    }
  }
  {
    std::string k = FindFile(tree, "images/pxeboot/vmlinuz");
    std::string i = FindFile(tree, "images/pxeboot/initrd.img");
    if (!k.empty() && !i.empty()) {
      b.layout = "rhel";
      b.kernel = k;
      b.initrds = {i};
      b.args = "inst.repo={base} ip=dhcp";
      return b;
    }
  }
  {
    std::string k = FindFile(tree, "isolinux/vmlinuz");
    std::string i = FindFile(tree, "isolinux/initrd.img");
    if (!k.empty() && !i.empty()) {
      b.layout = "photon";
      b.kernel = k;
      b.initrds = {i};
      b.args = "root=/dev/ram0 loglevel=3 repo={base}RPMS";
      return b;
    }
  }
  return b;
}

std::string ExpandArgs(const std::string& args, const std::string& base_url,
                       const std::string& iso_url) {
  return Replace(Replace(args, "{base}", base_url), "{iso}", iso_url);
}

std::string RenderIpxe(const OsTree& tree, const std::string& base_url,
                       const std::string& iso_url) {
  const BootSpec& b = tree.boot;
  if (b.kernel.empty()) return "";
  // An absolute path ("/files/wimboot") is relative to the listener, not to the tree.
  std::string origin = base_url;
  if (size_t scheme = origin.find("://"); scheme != std::string::npos) {
    size_t slash = origin.find('/', scheme + 3);
    if (slash != std::string::npos) origin.resize(slash);
  }
  auto url = [&](const std::string& path) {
    return path.front() == '/' ? origin + path : base_url + path;
  };
  std::string s = "#!ipxe\n# " + tree.name + " " + tree.version + " (" + b.layout +
                  "), served by Ingot from " + tree.iso + "\n";
  if (b.layout == "windows-pe") {
    s += "kernel " + url(b.kernel) + "\n";
  } else {
    std::string args = ExpandArgs(b.args, base_url, iso_url);
    // A UEFI kernel's EFI stub finds its initrd by name (iPXE names each after its file).
    if (b.layout != "esxi") {
      for (const std::string& i : b.initrds) {
        args += std::string(args.empty() ? "" : " ") + "initrd=" + i.substr(i.rfind('/') + 1);
      }
    }
    s += "kernel " + url(b.kernel) + (args.empty() ? "" : " " + args) + "\n";
  }
  for (const std::string& i : b.initrds) {
    size_t space = i.find(' ');
    if (space == std::string::npos) {
      s += "initrd " + url(i) + "\n";
    } else {
      s += "initrd -n " + i.substr(space + 1) + " " + url(i.substr(0, space)) + "\n";
    }
  }
  s += "boot\n";
  return s;
}

}  // namespace ingot::boot
