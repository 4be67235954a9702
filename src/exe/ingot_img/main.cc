// ingot-img: inspect, check and convert disk images with the formats library.
//
//   ingot-img info [--output human|json] FILE
//   ingot-img check FILE     (FILE "-": stdin, through the streaming inspector uploads use)
//   ingot-img convert [-f FMT] -O raw|qcow2 [-c] [-o compression_type=zlib|zstd] [--sync] [-p|-q] SRC DST
//     returns once the output is written (qemu-img's default); --sync: once it is durable
//
// Exit codes (scripts rely on them):
//   0  success; for `check`, the image is safe
//   1  usage error (bad arguments)
//   2  the image is refused by a safety rule (the message names the rule and the offending value)
//   3  the image is malformed or corrupt, or its format is not readable
//   4  an I/O error (missing file, full disk, ...)
//   5  anything else (a bug)
//   6  check -: the streaming inspector cannot decide from the regions it keeps
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "formats/convert.h"
#include "formats/format.h"
#include "formats/streaming.h"
#include "io/file.h"

namespace {

using namespace ingot;           // NOLINT
using namespace ingot::formats;  // NOLINT

constexpr int kExitOk = 0, kExitUsage = 1, kExitRefused = 2, kExitMalformed = 3, kExitIo = 4,
              kExitOther = 5;

int Usage() {
  std::fprintf(stderr,
               "usage: ingot-img info [--output human|json] FILE\n"
               "       ingot-img check FILE|-\n"
               "       ingot-img convert [-f FMT] -O raw|qcow2 [-c] [-o compression_type=zlib|zstd]"
               " [-t writeback|unsafe|none|writethrough|directsync] [--sync]"
               " [--write-path cache|cache-lazy|direct] [-m WORKERS] [-p|-q] SRC DST\n"
               "exit codes: 0 ok/safe, 1 usage, 2 refused by a safety rule, 3 malformed or "
               "unreadable, 4 I/O error, 5 other\n");
  return kExitUsage;
}

int Fail(const Status& s, const std::string& what) {
  int code = kExitOther;
  const char* kind = "error";
  switch (s.code()) {
    case Code::kRefused:
      code = kExitRefused;
      kind = "refused";
      break;
    case Code::kInvalidArgument:
    case Code::kOutOfRange:
    case Code::kCorruption:
    case Code::kUnsupported:
    case Code::kTooLarge:
      code = kExitMalformed;
      kind = "malformed or unreadable image";
      break;
    case Code::kIoError:
    case Code::kNotFound:
    case Code::kPermissionDenied:
    case Code::kAlreadyExists:
      code = kExitIo;
      kind = "I/O error";
      break;
    default:
      break;
  }
  std::fprintf(stderr, "ingot-img: %s: %s: %s\n", what.c_str(), kind, s.message().c_str());
  return code;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

// format_specific values are strings; qemu's JSON has booleans and numbers where they look like
// one.
std::string JsonValue(const std::string& v) {
  if (v == "true" || v == "false") return v;
  if (!v.empty() && v.size() < 19 && v.find_first_not_of("0123456789") == std::string::npos &&
      (v == "0" || v[0] != '0')) {
    return v;
  }
  if (!v.empty() && (v[0] == '[' || v[0] == '{')) return v;  // already JSON (e.g. vmdk extents)
  return JsonString(v);
}

std::string HumanSize(uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof buf, "%.3g %s", v, units[u]);
  }
  return buf;
}

// Bytes the file occupies on disk, as `qemu-img info` reports "actual-size".
uint64_t AllocatedBytes(const std::string& path, uint64_t fallback) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return fallback;
  return uint64_t(st.st_blocks) * 512;
}

int Info(const std::vector<std::string>& args) {
  bool json = false;
  std::string path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--output" && i + 1 < args.size()) {
      json = args[++i] == "json";
    } else if (a.rfind("--output=", 0) == 0) {
      json = a.substr(9) == "json";
    } else if (!a.empty() && a[0] == '-') {
      return Usage();
    } else if (path.empty()) {
      path = a;
    } else {
      return Usage();
    }
  }
  if (path.empty()) return Usage();
  auto file = io::FileSource::Open(path);
  if (!file.ok()) return Fail(file.status(), path);
  auto info = Inspect(**file);
  if (!info.ok()) return Fail(info.status(), path);
  const ImageInfo& in = *info;
  const uint64_t actual = AllocatedBytes(path, in.actual_size);
  if (json) {
    std::string o = "{\n";
    o += "    \"virtual-size\": " + std::to_string(in.virtual_size) + ",\n";
    o += "    \"filename\": " + JsonString(path) + ",\n";
    if (in.cluster_size) o += "    \"cluster-size\": " + std::to_string(*in.cluster_size) + ",\n";
    o += "    \"format\": " + JsonString(std::string(FormatName(in.format))) + ",\n";
    o += "    \"actual-size\": " + std::to_string(actual) + ",\n";
    if (!in.compression.empty()) o += "    \"compression\": " + JsonString(in.compression) + ",\n";
    if (in.partition_table)
      o += "    \"partition-table\": " + JsonString(*in.partition_table) + ",\n";
    if (!in.snapshots.empty()) {
      o += "    \"snapshots\": [";
      for (size_t i = 0; i < in.snapshots.size(); ++i) {
        const Snapshot& s = in.snapshots[i];
        o += std::string(i ? "," : "") + "\n        {\"id\": " + JsonString(s.id) +
             ", \"name\": " + JsonString(s.name) +
             ", \"vm-state-size\": " + std::to_string(s.vm_state_size) +
             ", \"date-sec\": " + std::to_string(s.date_sec) + "}";
      }
      o += "\n    ],\n";
    }
    if (!in.format_specific.empty()) {
      o += "    \"format-specific\": {\n        \"type\": " +
           JsonString(std::string(FormatName(in.format))) + ",\n        \"data\": {";
      bool first = true;
      for (const auto& [k, v] : in.format_specific) {
        o += std::string(first ? "" : ",") + "\n            " + JsonString(k) + ": " + JsonValue(v);
        first = false;
      }
      o += "\n        }\n    },\n";
    }
    o += "    \"dirty-flag\": false\n}\n";
    std::fputs(o.c_str(), stdout);
    return kExitOk;
  }
  std::printf("image: %s\nfile format: %s\nvirtual size: %s (%llu bytes)\ndisk size: %s\n",
              path.c_str(), std::string(FormatName(in.format)).c_str(),
              HumanSize(in.virtual_size).c_str(), static_cast<unsigned long long>(in.virtual_size),
              HumanSize(actual).c_str());
  if (in.cluster_size) std::printf("cluster_size: %u\n", *in.cluster_size);
  if (!in.compression.empty()) std::printf("compression: %s\n", in.compression.c_str());
  if (in.partition_table) std::printf("partition table: %s\n", in.partition_table->c_str());
  if (!in.snapshots.empty()) {
    std::printf("Snapshot list:\nID        TAG               VM SIZE\n");
    for (const Snapshot& s : in.snapshots) {
      std::printf("%-9s %-17s %s\n", s.id.c_str(), s.name.c_str(),
                  HumanSize(s.vm_state_size).c_str());
    }
  }
  if (!in.format_specific.empty()) {
    std::printf("Format specific information:\n");
    for (const auto& [k, v] : in.format_specific) std::printf("    %s: %s\n", k.c_str(), v.c_str());
  }
  return kExitOk;
}

// `check -`: the image comes on stdin and goes through the streaming inspector, exactly as an
// upload does (one pass, bounded memory). Exit 6 when it cannot decide from the regions it keeps
// (the server then inspects the stored file).
constexpr int kExitUndecided = 6;
Result<ImageInfo> InspectStdin() {
  StreamingInspector inspector;
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(std::string("read stdin: ") + std::strerror(errno));
    if (n == 0) break;
    (void)inspector.Write(std::span<const uint8_t>(buf.data(), size_t(n)));
  }
  return inspector.Finish();
}

int Check(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0].empty() || (args[0][0] == '-' && args[0] != "-")) return Usage();
  const std::string& path = args[0];
  if (path == "-") {
    auto info = InspectStdin();
    if (!info.ok() && info.status().code() == Code::kUnavailable) {
      std::fprintf(stderr, "ingot-img: -: undecided: %s\n", info.status().message().c_str());
      return kExitUndecided;
    }
    if (!info.ok()) return Fail(info.status(), path);
    std::printf("-: safe %s image, virtual size %llu bytes. No errors were found on the image.\n",
                std::string(FormatName(info->format)).c_str(),
                static_cast<unsigned long long>(info->virtual_size));
    return kExitOk;
  }
  auto file = io::FileSource::Open(path);
  if (!file.ok()) return Fail(file.status(), path);
  auto info = Inspect(**file);
  if (!info.ok()) return Fail(info.status(), path);
  std::printf("%s: safe %s image, virtual size %llu bytes. No errors were found on the image.\n",
              path.c_str(), std::string(FormatName(info->format)).c_str(),
              static_cast<unsigned long long>(info->virtual_size));
  return kExitOk;
}

int Convert(const std::vector<std::string>& args) {
  std::optional<Format> in_fmt;
  std::string out_fmt;
  bool compress = false;
  ConvertOptions::Compression ctype = ConvertOptions::Compression::kZlib;
  int progress = isatty(STDERR_FILENO) ? 1 : 0;
  // qemu-img's semantics: return once the data is written (in the page cache); --sync (or -t none,
  // -t writethrough, -t directsync) returns only once it is durable.
  bool sync = false;
  std::string write_path = "cache";  // measured fastest on a slow disk and on tmpfs: see bench/formats
  unsigned workers = 0;
  std::vector<std::string> paths;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> const std::string* { return i + 1 < args.size() ? &args[++i] : nullptr; };
    if (a == "-f") {
      const std::string* v = value();
      if (!v) return Usage();
      in_fmt = ParseFormatName(*v);
      if (!in_fmt) {
        std::fprintf(stderr, "ingot-img: unknown format '%s'\n", v->c_str());
        return kExitUsage;
      }
    } else if (a == "-O") {
      const std::string* v = value();
      if (!v) return Usage();
      out_fmt = *v;
    } else if (a == "-c") {
      compress = true;
    } else if (a == "-o") {
      const std::string* v = value();
      if (!v) return Usage();
      if (*v == "compression_type=zstd") {
        ctype = ConvertOptions::Compression::kZstd;
      } else if (*v != "compression_type=zlib") {
        std::fprintf(stderr, "ingot-img: unsupported option '%s'\n", v->c_str());
        return kExitUsage;
      }
    } else if (a == "-m") {
      // Worker threads (qemu-img's -m is its count of parallel coroutines).
      const std::string* v = value();
      if (!v || v->empty() || v->find_first_not_of("0123456789") != std::string::npos)
        return Usage();
      workers = unsigned(std::min(64ul, std::stoul(*v)));
    } else if (a == "-t") {
      // qemu-img's cache modes: "none"/"directsync" are O_DIRECT, "writethrough"/"directsync" are
      // durable on return; "writeback" (the default) and "unsafe" return once written.
      const std::string* v = value();
      if (!v) return Usage();
      if (*v == "none" || *v == "directsync") write_path = "direct";
      if (*v == "none" || *v == "writethrough" || *v == "directsync") sync = true;
    } else if (a == "--sync") {
      sync = true;
    } else if (a == "--write-path") {
      // cache: page cache with early write-back (default); cache-lazy: page cache, kernel's own
      // write-back; direct: O_DIRECT from the workers.
      const std::string* v = value();
      if (!v || (*v != "cache" && *v != "cache-lazy" && *v != "direct")) return Usage();
      write_path = *v;
    } else if (a == "-p") {
      progress = 2;
    } else if (a == "-q") {
      progress = 0;
    } else if (!a.empty() && a[0] == '-') {
      return Usage();
    } else {
      paths.push_back(a);
    }
  }
  if (paths.size() != 2 || (out_fmt != "raw" && out_fmt != "qcow2")) return Usage();
  if (compress && out_fmt != "qcow2") {
    std::fprintf(stderr, "ingot-img: -c needs -O qcow2\n");
    return kExitUsage;
  }
  const std::string& src_path = paths[0];
  const std::string& dst_path = paths[1];
  auto file = io::FileSource::Open(src_path);
  if (!file.ok()) return Fail(file.status(), src_path);
  auto image = Open(**file, in_fmt);
  if (!image.ok()) return Fail(image.status(), src_path);

  ConvertOptions opts;
  if (compress) opts.compression = ctype;
  opts.flush = sync;
  opts.direct_io = write_path == "direct";
  opts.early_writeback = write_path == "cache";
  opts.threads = workers;
  int last_shown = -1;
  if (progress) {
    opts.progress = [&](uint64_t done, uint64_t total) {
      const int pct100 = total ? int(double(done) * 10000 / double(total)) : 10000;
      if (pct100 != last_shown) {
        std::fprintf(stderr, "\r    (%.2f/100%%)", pct100 / 100.0);
        last_shown = pct100;
      }
      return true;
    };
  }
  struct stat st, src_st;
  const bool existed = ::stat(dst_path.c_str(), &st) == 0;
  if (existed && ::stat(src_path.c_str(), &src_st) == 0 && st.st_dev == src_st.st_dev &&
      st.st_ino == src_st.st_ino) {
    std::fprintf(stderr, "ingot-img: %s: source and destination are the same file\n",
                 dst_path.c_str());
    return kExitUsage;
  }
  const bool regular_target = !existed || S_ISREG(st.st_mode);
  Status s;
  if (out_fmt == "raw") {
    s = ConvertToRawFile(**image, dst_path, opts);
  } else {
    auto sink = io::FileSink::Create(dst_path);
    s = sink.ok() ? ConvertToQcow2(**image, **sink, opts) : sink.status();
  }
  if (progress) std::fprintf(stderr, "\n");
  if (!s.ok()) {
    // Leave no half-converted file behind to be mistaken for a good one.
    if (regular_target) ::unlink(dst_path.c_str());
    return Fail(s, src_path + " -> " + dst_path);
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "info") return Info(args);
  if (cmd == "check") return Check(args);
  if (cmd == "convert") return Convert(args);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    Usage();
    return kExitOk;
  }
  return Usage();
}
