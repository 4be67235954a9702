// Test-only support for the VMDK/VHD/VHDX/VDI/ISO reader tests: build real images with qemu-img
// (the reference implementation) and compare what our DiskImage reads with what `qemu-img convert
// -O raw` produces from the same file.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "formats/driver.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::formats::testing {

// Little- and big-endian stores for hand-crafting hostile headers.
inline void PutLe32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (8 * i));
}
inline void PutLe64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  PutLe32(b, at, uint32_t(v));
  PutLe32(b, at + 4, uint32_t(v >> 32));
}
inline void PutBe32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = uint8_t(v >> (24 - 8 * i));
}
inline void PutBe64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  PutBe32(b, at, uint32_t(v >> 32));
  PutBe32(b, at + 4, uint32_t(v));
}

// A fresh directory under $TMPDIR, removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/ingot-fmt-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    if (!path_.empty()) (void)std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs a shell command; returns its stdout, and sets *ok to whether it exited 0.
inline std::string Shell(const std::string& cmd, bool* ok = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    if (ok) *ok = false;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (ok) *ok = rc == 0;
  return out;
}

// Runs `cmd` and fails the current test (with its output) when it does not exit 0.
inline bool MustRun(const std::string& cmd) {
  bool ok = false;
  std::string out = Shell(cmd, &ok);
  EXPECT_TRUE(ok) << cmd << "\n" << out;
  return ok;
}

inline std::vector<uint8_t> ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void WriteWholeFile(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

// A raw disk of `size` bytes with patterned data at scattered offsets and holes between them:
// 64 KiB at 0, 100 KiB at 1 MiB + 4 KiB (unaligned), 512 bytes at 5 MiB - 512 (end of a block), 1
// MiB at size - 1 MiB (the last block), so every reader sees allocated, partial and empty blocks.
inline bool MakePatternedRaw(const std::string& path, uint64_t size) {
  return MustRun("qemu-img create -q -f raw '" + path + "' " + std::to_string(size)) &&
         MustRun(
             "qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'write -P 0x5c 1052672 100k'"
             " -c 'write -P 0x11 5242368 512' -c 'write -P 0xe7 " +
             std::to_string(size - (1 << 20)) + " 1M' '" + path + "' >/dev/null");
}

// `qemu-img info`'s virtual size for the image, or 0 when it cannot tell.
// `qemu_format` is qemu's driver name ("vpc", "vmdk", ...): qemu only probes VHD at offset 0, so it
// takes a fixed VHD for raw unless told.
inline uint64_t QemuVirtualSize(const std::string& path, const std::string& qemu_format) {
  bool ok = false;
  std::string json =
      Shell("qemu-img info -f " + qemu_format + " --output=json '" + path + "'", &ok);
  size_t at = json.find("\"virtual-size\":");
  if (!ok || at == std::string::npos) return 0;
  return std::strtoull(json.c_str() + at + std::strlen("\"virtual-size\":"), nullptr, 10);
}

inline std::vector<uint8_t> ReadAll(DiskImage& image, size_t chunk = 1 << 20) {
  std::vector<uint8_t> out(image.Size());
  uint64_t off = 0;
  while (off < out.size()) {
    size_t n = std::min<uint64_t>(chunk, out.size() - off);
    auto r = image.ReadAt(off, std::span(out).subspan(off, n));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || *r == 0) break;
    off += *r;
  }
  return out;
}

// Checks everything a reader promises against qemu for the image at `path`:
// probe, Detect and inspect recognise it, the virtual size matches qemu-img info, the bytes read through
// our DiskImage (in odd-sized chunks, to cross block boundaries) equal `qemu-img convert -O raw`,
// every extent BlockStatus calls zero really reads as zeros, and `hole` (a virtual offset that was
// never written) is reported as zero; kNoHole skips that check for fully allocated images. Returns
// the ImageInfo for format-specific checks.
inline constexpr uint64_t kNoHole = ~0ull;
inline ImageInfo ExpectMatchesQemu(const Driver& driver, const std::string& qemu_format,
                                   const std::string& path, uint64_t hole) {
  ImageInfo info;
  auto file = io::FileSource::Open(path);
  EXPECT_TRUE(file.ok()) << file.status().ToString();
  if (!file.ok()) return info;
  EXPECT_TRUE(driver.probe(**file));
  // Through the registry too: the format is detected from the bytes alone, and no other driver
  // claims them.
  auto detected = Detect(**file);
  EXPECT_TRUE(detected.ok()) << detected.status().ToString();
  if (detected.ok()) {
    EXPECT_EQ(*detected, driver.format);
  }
  auto inspected = driver.inspect(**file);
  EXPECT_TRUE(inspected.ok()) << inspected.status().ToString();
  if (!inspected.ok()) return info;
  info = *inspected;
  EXPECT_EQ(info.format, driver.format);
  EXPECT_EQ(info.virtual_size, QemuVirtualSize(path, qemu_format));

  auto image = driver.open(**file);
  EXPECT_TRUE(image.ok()) << image.status().ToString();
  if (!image.ok()) return info;
  EXPECT_EQ((*image)->Size(), info.virtual_size);

  const std::string raw = path + ".qemu.raw";
  if (!MustRun("qemu-img convert -f " + qemu_format + " -O raw '" + path + "' '" + raw + "'"))
    return info;
  std::vector<uint8_t> want = ReadWholeFile(raw);
  std::vector<uint8_t> got = ReadAll(**image, 300 * 1024 + 512);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "virtual disk differs from qemu-img convert -O raw";

  uint64_t off = 0, zero_bytes = 0;
  while (off < (*image)->Size()) {
    auto e = (*image)->BlockStatus(off, (*image)->Size() - off);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    if (!e.ok()) break;
    EXPECT_EQ(e->offset, off);
    EXPECT_GE(e->length, 1u);
    if (e->zero) {  // NOLINT
      zero_bytes += e->length;
      for (uint64_t i = off; i < off + e->length && i < got.size(); ++i) {
        if (got[i] != 0) {
          ADD_FAILURE() << "extent at " << off << " marked zero but byte " << i << " is not";
          break;
        }
      }
    }
    if (off <= hole && hole < off + e->length) {
      EXPECT_TRUE(e->zero) << "hole at " << hole;
    }
    off += e->length;
  }
  if (hole != kNoHole) {
    EXPECT_GT(zero_bytes, 0u);
  }
  return info;
}

// Runs a driver's whole surface over hostile bytes: probe, inspect, open; returns inspect's status.
inline Status InspectBytes(const Driver& driver, std::vector<uint8_t> bytes) {
  io::MemorySource src(std::move(bytes));
  auto info = driver.inspect(src);
  auto image = driver.open(src);
  // open must refuse whatever inspect refused, for the same reason.
  EXPECT_EQ(info.ok(), image.ok());
  if (!info.ok() && !image.ok()) {
    EXPECT_EQ(info.status().message(), image.status().message());
  }
  return info.ok() ? Status::Ok() : info.status();
}

}  // namespace ingot::formats::testing
