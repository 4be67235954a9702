// Plan scripts are untrusted text: parse, validate, render back and describe whatever arrives;
// what the renderer writes must parse to the same commands. The tail of the input is also read as
// a disk (partition tables, file-system signatures).
#include <cstdint>
#include <cstring>
#include <string_view>

#include "deploy/guestfish/disk.h"
#include "deploy/guestfish/script.h"

using namespace ingot::deploy::guestfish;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = ParseScript(text);
  if (parsed.ok()) {
    for (const Command& c : parsed->commands) {
      (void)Describe(c);
      (void)LocalFileArgs(c);
    }
    if (Validate(*parsed).ok()) {
      // What guestfish is given must read back as exactly these commands.
      std::string again;
      for (const Command& c : parsed->commands) again += Unparse(c);
      auto reparsed = ParseScript(again);
      if (!reparsed.ok() || reparsed->commands.size() != parsed->commands.size()) __builtin_trap();
      for (size_t i = 0; i < parsed->commands.size(); ++i) {
        const Command &a = parsed->commands[i], &b = reparsed->commands[i];
        if (a.name != b.name || a.args != b.args || a.heredoc != b.heredoc ||
            a.ignore_errors != b.ignore_errors) {
          __builtin_trap();
        }
      }
    }
  }
  DiskReader read = [&](uint64_t off, uint8_t* buf, size_t len) -> ingot::Status {
    if (off > size || len > size - off) return ingot::OutOfRange("past the end");
    std::memcpy(buf, data + off, len);
    return ingot::Status::Ok();
  };
  auto layout = ReadDiskLayout(read, size);
  if (layout.ok()) {
    for (const DiskPartition& p : layout->partitions) {
      if (p.offset > size || p.length > size - p.offset) __builtin_trap();
      (void)ProbeFilesystem(read, p.offset, p.length);
    }
  }
  (void)ProbeFilesystem(read, 0, size);
  return 0;
}
