// Test support shared by the formats tests: scratch directories, shell commands, and images built
// with the real qemu-img / qemu-io (Debian's qemu-utils) holding data patterns at scattered
// offsets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ingot::formats::testing {

// A fresh directory under /tmp, removed (with its contents) on destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh.
CommandResult RunCommand(const std::string& command);

// The data pattern tests write: (offset, length, byte) triples, written with `qemu-io -c "write
// -P"`.
struct Write {
  uint64_t offset;
  uint64_t length;
  int pattern;
};
// A default layout over a disk of `virtual_size` bytes (>= 64 MiB): data at the start, in the
// middle (crossing a 64 KiB boundary, an odd 4 KiB-aligned stretch), near the end, and holes
// between.
std::vector<Write> ScatteredWrites(uint64_t virtual_size);

// Creates a raw file of `virtual_size` bytes holding `writes` (via qemu-io).
void MakeRaw(const std::string& path, uint64_t virtual_size, const std::vector<Write>& writes);

// Converts `raw` to `path` with `qemu-img convert -f raw -O <format> [options] [-c]`.
void QemuConvert(const std::string& raw, const std::string& path, const std::string& format,
                 const std::string& options = "", bool compress = false);

// `qemu-img info --output=json` fields.
std::string QemuInfoFormat(const std::string& path);
uint64_t QemuInfoVirtualSize(const std::string& path);

// The whole file, as bytes.
std::vector<uint8_t> ReadAll(const std::string& path);
void WriteAll(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace ingot::formats::testing
