// libFuzzer target for the boot content's rules over hostile input: the layout detected from any
// ISO tree that opens (formats/iso9660.h) and its boot.ipxe, and the naming rules over the same
// bytes as text. Whatever is detected must name files that exist in the tree (a machine is never
// sent to a path the ISO lacks), and no accepted name may hold a '/', a '\\', a control byte, or
// be "." / "..".
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "boot/content.h"
#include "boot/layouts.h"
#include "formats/iso9660.h"
#include "io/memory.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckNameRules(std::string_view text) {
  using namespace ingot::boot;
  if (CheckName("x", text).ok()) {
    Check(!text.empty() && text.size() <= 255 && text != "." && text != ".." && text[0] != '.');
    for (char c : text) Check(c != '/' && c != '\\' && static_cast<unsigned char>(c) >= 0x20);
  }
  if (CheckFilePath(FileSpace::kFiles, text).ok()) {
    for (size_t pos = 0; pos <= text.size();) {
      size_t slash = text.find('/', pos);
      if (slash == std::string_view::npos) slash = text.size();
      std::string_view part = text.substr(pos, slash - pos);
      Check(!part.empty() && part != "." && part != "..");
      pos = slash + 1;
    }
  }
  if (CheckTreeName(text).ok()) Check(!IsReservedPrefix(text));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckNameRules(std::string_view(reinterpret_cast<const char*>(data), size < 300 ? size : 300));
  ingot::io::MemorySource src(std::vector<uint8_t>(data, data + size));
  ingot::formats::iso9660::Options options;
  options.max_entries = 100000;
  auto tree = ingot::formats::iso9660::Tree::Open(src, options);
  if (!tree.ok()) return 0;
  ingot::boot::BootSpec spec = ingot::boot::DetectLayout(**tree);
  auto exists = [&](const std::string& path) {
    auto e = (*tree)->Lookup(path);
    return e.ok() && (*e)->type == ingot::formats::iso9660::EntryType::kFile;
  };
  if (!spec.kernel.empty() && spec.kernel[0] != '/') Check(exists(spec.kernel));
  for (const std::string& i : spec.initrds) Check(exists(i.substr(0, i.find(' '))));
  ingot::boot::OsTree t{.name = "n", .version = "v", .iso = "i.iso", .boot = spec};
  std::string script = ingot::boot::RenderIpxe(t, "http://h/n/v/", "http://h/iso/i.iso");
  Check(spec.kernel.empty() == script.empty());
  return 0;
}
