#include "formats/testing/image_fixtures.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace ingot::formats::testing {

ScratchDir::ScratchDir() {
  char tmpl[] = "/tmp/ingot-formats-XXXXXX";
  const char* p = ::mkdtemp(tmpl);
  EXPECT_NE(p, nullptr);
  path_ = p ? p : "/tmp";
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (path_ != "/tmp") std::filesystem::remove_all(path_, ec);
}

CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  if (!f) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(f);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::vector<Write> ScatteredWrites(uint64_t size) {
  const uint64_t mib = 1 << 20;
  return {
      {0, 64 * 1024, 0x11},                     // the first cluster
      {3 * mib + 60 * 1024, 12 * 1024, 0x22},   // crosses a 64 KiB boundary
      {size / 2, 2 * mib, 0x33},                // a longer run in the middle
      {size / 2 + 5 * mib + 4096, 4096, 0x44},  // a lone 4 KiB block
      {size - 128 * 1024, 128 * 1024, 0x55},    // the very end
  };
}

void MakeRaw(const std::string& path, uint64_t size, const std::vector<Write>& writes) {
  CommandResult r = RunCommand("truncate -s " + std::to_string(size) + " '" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string cmd = "qemu-io -f raw";
  for (const Write& w : writes) {
    cmd += " -c 'write -P " + std::to_string(w.pattern) + " " + std::to_string(w.offset) + " " +
           std::to_string(w.length) + "'";
  }
  r = RunCommand(cmd + " '" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void QemuConvert(const std::string& raw, const std::string& path, const std::string& format,
                 const std::string& options, bool compress) {
  std::string cmd = "qemu-img convert -f raw -O " + format;
  if (!options.empty()) cmd += " -o " + options;
  if (compress) cmd += " -c";
  CommandResult r = RunCommand(cmd + " '" + raw + "' '" + path + "'");
  ASSERT_EQ(r.exit_code, 0) << cmd << ": " << r.output;
}

namespace {
std::string InfoField(const std::string& path, const std::string& field) {
  CommandResult r = RunCommand("qemu-img info --output=json '" + path +
                               "' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"" +
                               field + "\"])'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  while (!r.output.empty() && (r.output.back() == '\n')) r.output.pop_back();
  return r.output;
}
}  // namespace

std::string QemuInfoFormat(const std::string& path) { return InfoField(path, "format"); }
uint64_t QemuInfoVirtualSize(const std::string& path) {
  return std::stoull(InfoField(path, "virtual-size"));
}

std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace ingot::formats::testing
