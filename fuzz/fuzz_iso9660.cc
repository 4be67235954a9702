// libFuzzer target for the ISO 9660 tree reader (formats/iso9660.h): any bytes must give a Status,
// never a crash, a hang or an unbounded allocation; whatever opens must keep the reader's
// invariants, checked here on every entry: extents inside the source, names that are safe path
// components, unique and sorted within their directory, Lookup agreeing with Walk, and reads
// through the extents working.
#include <algorithm>
#include <cstdlib>
#include <vector>

#include "formats/iso9660.h"
#include "io/memory.h"

namespace {

using ingot::formats::iso9660::Entry;
using ingot::formats::iso9660::EntryType;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ingot::io::MemorySource src(std::vector<uint8_t>(data, data + size));
  ingot::formats::iso9660::Options options;
  options.max_entries = 100000;  // the defaults are for real images; keep each run quick
  auto tree = ingot::formats::iso9660::Tree::Open(src, options);
  if (!tree.ok()) return 0;
  const auto& t = **tree;
  size_t visited = 0;
  std::vector<uint8_t> buf(4096);
  ingot::Status s = t.Walk([&](const std::string& path, const Entry& e) -> ingot::Status {
    ++visited;
    Check(size_t(std::count(path.begin(), path.end(), '/')) <= options.max_depth);
    Check(!e.name.empty() && e.name != "." && e.name != ".." &&
          e.name.find('/') == std::string::npos && e.name.find('\0') == std::string::npos);
    uint64_t sum = 0;
    for (const auto& x : e.extents) {
      Check(x.length > 0 && x.offset <= size && x.length <= size - x.offset);
      sum += x.length;
    }
    Check(e.type == EntryType::kFile ? sum == e.size : e.extents.empty());
    if (e.type == EntryType::kSymlink) Check(e.size == e.symlink_target.size());
    auto found = t.Lookup(path);
    Check(found.ok() && *found == &e);
    if (e.type == EntryType::kDirectory) {
      auto kids = t.ListDir(path);
      Check(kids.ok());
      for (size_t i = 1; i < kids->size(); ++i) Check((*kids)[i - 1]->name < (*kids)[i]->name);
    }
    if (e.type == EntryType::kFile && e.size > 0) {
      auto n = ingot::formats::iso9660::ReadFile(src, e, e.size / 2, buf);
      Check(n.ok() && *n == std::min<uint64_t>(buf.size(), e.size - e.size / 2));
    }
    return ingot::Status::Ok();
  });
  Check(s.ok() && visited < t.entry_count());
  return 0;
}
