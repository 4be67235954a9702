#include "deploy/os_volume.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/log.h"

namespace ingot::deploy {
namespace {

constexpr uint64_t kMapPage = 4096;
constexpr std::string_view kMagicLine = "format=ingot-os-volume-1";

Status PreadAll(int fd, uint64_t offset, std::span<uint8_t> buf, const char* what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t r = ::pread(fd, buf.data() + done, buf.size() - done, off_t(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return FromErrno(errno, std::string("read ") + what);
    if (r == 0) {  // past the file's end: a sparse tail reads as zeros
      std::memset(buf.data() + done, 0, buf.size() - done);
      return Status::Ok();
    }
    done += size_t(r);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, uint64_t offset, std::span<const uint8_t> buf, const char* what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t w = ::pwrite(fd, buf.data() + done, buf.size() - done, off_t(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return FromErrno(errno, std::string("write ") + what);
    done += size_t(w);
  }
  return Status::Ok();
}

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

const std::vector<uint8_t>& Zeros() {
  static const std::vector<uint8_t> z(1 << 20, 0);
  return z;
}

}  // namespace

Result<VolumeMeta> ParseVolumeMeta(std::string_view text) {
  VolumeMeta m;
  bool magic = false, have_size = false, have_base = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty()) continue;
    if (line == kMagicLine) {
      magic = true;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return Corruption("volume.meta: line without '='");
    std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
    bool ok = true;
    if (k == "size") {
      ok = ParseNumber(v, m.size);
      have_size = ok;
    } else if (k == "cluster_size") {
      ok = ParseNumber(v, m.cluster_size);
    } else if (k == "base") {
      m.base = std::string(v);
      have_base = !v.empty();
    } else if (k == "base_format") {
      m.base_format = std::string(v);
    } else if (k == "base_file_size") {
      ok = ParseNumber(v, m.base_file_size);
    } else if (k == "base_mtime_ns") {
      ok = ParseNumber(v, m.base_mtime_ns);
    } else if (k == "created") {
      ok = ParseNumber(v, m.created_unix);
    }  // unknown keys: written by a newer version for information only
    if (!ok) return Corruption("volume.meta: bad value for " + std::string(k));
  }
  if (!magic) return Corruption("volume.meta: not an Ingot OS volume (format line missing)");
  if (!have_size || !have_base) return Corruption("volume.meta: size or base missing");
  const uint32_t cs = m.cluster_size;
  if (cs < 4096 || cs > (2u << 20) || (cs & (cs - 1)) != 0) {
    return Corruption("volume.meta: cluster_size must be a power of two in [4096, 2 MiB]");
  }
  if (m.size == 0 || m.size > (1ull << 50)) return Corruption("volume.meta: size out of range");
  return m;
}

std::string FormatVolumeMeta(const VolumeMeta& m) {
  std::string s(kMagicLine);
  s += "\nsize=" + std::to_string(m.size);
  s += "\ncluster_size=" + std::to_string(m.cluster_size);
  s += "\nbase=" + m.base;
  s += "\nbase_format=" + m.base_format;
  s += "\nbase_file_size=" + std::to_string(m.base_file_size);
  s += "\nbase_mtime_ns=" + std::to_string(m.base_mtime_ns);
  s += "\ncreated=" + std::to_string(m.created_unix);
  s += "\n";
  return s;
}

Status OsVolume::Format(const std::string& dir, const VolumeMeta& meta) {
  const uint64_t clusters = (meta.size + meta.cluster_size - 1) / meta.cluster_size;
  // Everything is created first and synced after: the first fsync then commits all of it in one
  // journal transaction (ext4, xfs), and the others find nothing left to do.
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd overlay,
                         io::OpenFile(dir + "/overlay", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC));
  if (::ftruncate(overlay.get(), off_t(meta.size)) != 0) return FromErrno(errno, "size overlay");
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd map,
                         io::OpenFile(dir + "/map", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC));
  if (::ftruncate(map.get(), off_t(clusters)) != 0) return FromErrno(errno, "size map");
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd m,
                         io::OpenFile(dir + "/volume.meta", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC));
  std::string text = FormatVolumeMeta(meta);
  INGOT_RETURN_IF_ERROR(io::WriteAll(
      m.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, "volume.meta"));
  if (::fsync(m.get()) != 0) return FromErrno(errno, "fsync volume.meta");
  if (::fsync(map.get()) != 0) return FromErrno(errno, "fsync map");
  if (::fsync(overlay.get()) != 0) return FromErrno(errno, "fsync overlay");
  return Status::Ok();
}

Result<std::unique_ptr<OsVolume>> OsVolume::Open(const std::string& dir) {
  std::unique_ptr<OsVolume> v(new OsVolume());
  v->dir_ = dir;
  INGOT_ASSIGN_OR_RETURN(v->dir_fd_, io::OpenFile(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (::flock(v->dir_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Conflict("volume is in use by another process");
    return FromErrno(errno, "lock " + dir);
  }
  std::string text;
  {
    INGOT_ASSIGN_OR_RETURN(io::UniqueFd m, io::OpenFile(dir + "/volume.meta", O_RDONLY | O_CLOEXEC));
    char buf[4096];
    ssize_t n;
    while ((n = ::read(m.get(), buf, sizeof buf)) > 0 && text.size() < 65536) text.append(buf, n);
    if (n < 0) return FromErrno(errno, "read volume.meta");
  }
  INGOT_ASSIGN_OR_RETURN(v->meta_, ParseVolumeMeta(text));
  const VolumeMeta& meta = v->meta_;

  // The golden image: the same file, unchanged since the clone, still passing its safety checks.
  const std::string base_path = meta.base.front() == '/' ? meta.base : dir + "/" + meta.base;
  INGOT_ASSIGN_OR_RETURN(v->base_file_, io::FileSource::Open(base_path));
  struct stat st{};
  if (::fstat(v->base_file_->fd(), &st) != 0) return FromErrno(errno, "stat base");
  const int64_t mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (uint64_t(st.st_size) != meta.base_file_size || mtime_ns != meta.base_mtime_ns) {
    return Corruption("golden image of volume " + dir + " changed since the clone");
  }
  auto format = formats::ParseFormatName(meta.base_format);
  if (!format) return Corruption("volume.meta: unknown base format " + meta.base_format);
  INGOT_ASSIGN_OR_RETURN(v->base_, formats::Open(*v->base_file_, *format));
  if (v->base_->Size() > meta.size) return Corruption("volume smaller than its base");
  v->base_is_raw_ = *format == formats::Format::kRaw;

  INGOT_ASSIGN_OR_RETURN(v->overlay_fd_, io::OpenFile(dir + "/overlay", O_RDWR | O_CLOEXEC));
  if (auto direct = io::OpenFile(dir + "/overlay", O_WRONLY | O_DIRECT | O_CLOEXEC); direct.ok()) {
    v->direct_fd_ = std::move(*direct);
  }  // else (tmpfs, some network file systems): buffered writes only
  INGOT_ASSIGN_OR_RETURN(v->map_fd_, io::OpenFile(dir + "/map", O_RDWR | O_CLOEXEC));
  v->clusters_ = (meta.size + meta.cluster_size - 1) / meta.cluster_size;
  struct stat ms{};
  if (::fstat(v->map_fd_.get(), &ms) != 0) return FromErrno(errno, "stat map");
  if (uint64_t(ms.st_size) != v->clusters_) return Corruption("volume map has the wrong size");
  v->states_ = std::make_unique<std::atomic<uint8_t>[]>(v->clusters_);
  std::vector<uint8_t> page(1 << 20);
  for (uint64_t at = 0; at < v->clusters_; at += page.size()) {
    std::span<uint8_t> chunk(page.data(), size_t(std::min<uint64_t>(page.size(), v->clusters_ - at)));
    INGOT_RETURN_IF_ERROR(PreadAll(v->map_fd_.get(), at, chunk, "map"));
    for (size_t i = 0; i < chunk.size(); ++i) {
      if (chunk[i] > kZero) return Corruption("volume map holds an unknown cluster state");
      v->states_[at + i].store(chunk[i], std::memory_order_relaxed);
    }
  }
  return v;
}

OsVolume::~OsVolume() {
  if (!overlay_fd_) return;
  if (Status s = Flush(); !s.ok()) {
    log::Error("volume.flush", {{"volume", dir_}, {"error", s.ToString()}});
  }
}

uint64_t OsVolume::ClusterEnd(uint64_t cluster) const {
  return std::min<uint64_t>((cluster + 1) * meta_.cluster_size, meta_.size);
}

void OsVolume::SetState(uint64_t cluster, ClusterState s) {
  if (State(cluster) == s) return;
  states_[cluster].store(s, std::memory_order_release);
  dirty_pages_.insert(cluster / kMapPage);
}

Status OsVolume::ReadBase(uint64_t offset, std::span<uint8_t> buf) {
  const uint64_t base_size = base_->Size();
  size_t in_base = 0;
  if (offset < base_size) {
    in_base = size_t(std::min<uint64_t>(buf.size(), base_size - offset));
    INGOT_RETURN_IF_ERROR(io::ReadExact(*base_, offset, buf.first(in_base)));
  }
  std::memset(buf.data() + in_base, 0, buf.size() - in_base);
  return Status::Ok();
}

Status OsVolume::Read(uint64_t offset, std::span<uint8_t> buf) {
  if (offset > meta_.size || buf.size() > meta_.size - offset) {
    return OutOfRange("read past the end of the volume");
  }
  const uint64_t cs = meta_.cluster_size;
  uint64_t pos = offset;
  const uint64_t end = offset + buf.size();
  while (pos < end) {
    uint64_t c = pos / cs;
    const ClusterState s = State(c);
    uint64_t run_end = std::min(ClusterEnd(c), end);
    while (run_end < end && State(run_end / cs) == s) run_end = std::min(ClusterEnd(run_end / cs), end);
    std::span<uint8_t> part = buf.subspan(size_t(pos - offset), size_t(run_end - pos));
    switch (s) {
      case kData:
        INGOT_RETURN_IF_ERROR(PreadAll(overlay_fd_.get(), pos, part, "overlay"));
        break;
      case kZero:
        std::memset(part.data(), 0, part.size());
        break;
      default:
        INGOT_RETURN_IF_ERROR(ReadBase(pos, part));
    }
    pos = run_end;
  }
  return Status::Ok();
}

Status OsVolume::WriteOverlay(uint64_t offset, std::span<const uint8_t> data) {
  const bool aligned = offset % 4096 == 0 && data.size() % 4096 == 0 &&
                       reinterpret_cast<uintptr_t>(data.data()) % 4096 == 0;
  if (direct_fd_ && aligned) {
    Status s = PwriteAll(direct_fd_.get(), offset, data, "overlay");
    // EINVAL: the device wants a larger alignment than 4 KiB; the page cache takes anything.
    if (s.ok() || s.code() != Code::kIoError) return s;
  }
  return PwriteAll(overlay_fd_.get(), offset, data, "overlay");
}

Status OsVolume::CopyOnWrite(uint64_t cluster, uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t start = cluster * meta_.cluster_size;
  const size_t n = size_t(ClusterEnd(cluster) - start);
  // Aligned, so the whole cluster can go to the overlay with O_DIRECT.
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  void* mem = nullptr;
  if (::posix_memalign(&mem, 4096, n) != 0) return Internal("out of memory for a cluster");
  std::unique_ptr<uint8_t, Free> owner(static_cast<uint8_t*>(mem));
  std::span<uint8_t> whole(owner.get(), n);
  if (State(cluster) == kBase) {
    INGOT_RETURN_IF_ERROR(ReadBase(start, whole));
  } else {
    std::memset(whole.data(), 0, n);  // kZero: the cluster reads as zeros
  }
  std::memcpy(whole.data() + (offset - start), data.data(), data.size());
  INGOT_RETURN_IF_ERROR(WriteOverlay(start, whole));
  data_dirty_ = true;
  SetState(cluster, kData);
  return Status::Ok();
}

Status OsVolume::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset > meta_.size || data.size() > meta_.size - offset) {
    return OutOfRange("write past the end of the volume");
  }
  std::lock_guard<std::mutex> lock(writer_);
  const uint64_t cs = meta_.cluster_size;
  uint64_t pos = offset;
  const uint64_t end = offset + data.size();
  while (pos < end) {
    const uint64_t c = pos / cs;
    const uint64_t c_start = c * cs, c_end = ClusterEnd(c);
    if (State(c) != kData && (pos > c_start || end < c_end)) {
      // A partial write of a cluster the overlay does not hold yet: copy the rest from the base.
      const uint64_t part_end = std::min(c_end, end);
      INGOT_RETURN_IF_ERROR(CopyOnWrite(
          c, pos, data.subspan(size_t(pos - offset), size_t(part_end - pos))));
      pos = part_end;
      continue;
    }
    // The longest run from here that needs no copy: clusters already held, or wholly overwritten.
    uint64_t run_end = std::min(c_end, end);
    while (run_end < end) {
      const uint64_t k = run_end / cs;
      const uint64_t k_end = ClusterEnd(k);
      if (State(k) != kData && end < k_end) break;
      run_end = std::min(k_end, end);
    }
    INGOT_RETURN_IF_ERROR(
        WriteOverlay(pos, data.subspan(size_t(pos - offset), size_t(run_end - pos))));
    data_dirty_ = true;
    for (uint64_t k = c; k * cs < run_end; ++k) SetState(k, kData);
    pos = run_end;
  }
  return Status::Ok();
}

Status OsVolume::ZeroWholeClusters(uint64_t first, uint64_t last, bool punch) {
  const uint64_t cs = meta_.cluster_size;
  const uint64_t start = first * cs, end = ClusterEnd(last - 1);
  if (punch) {
    // The state first, then the hole: a reader in between reads zeros either way.
    for (uint64_t k = first; k < last; ++k) SetState(k, kZero);
    if (::fallocate(overlay_fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(start),
                    off_t(end - start)) != 0 &&
        errno != EOPNOTSUPP) {
      return FromErrno(errno, "punch overlay");
    }
    data_dirty_ = true;
    return Status::Ok();
  }
  // Allocated zeros (NBD_CMD_FLAG_NO_HOLE): the client wants the space kept.
  if (::fallocate(overlay_fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off_t(start),
                  off_t(end - start)) != 0) {
    if (errno != EOPNOTSUPP) return FromErrno(errno, "zero overlay");
    for (uint64_t at = start; at < end;) {
      size_t n = size_t(std::min<uint64_t>(Zeros().size(), end - at));
      INGOT_RETURN_IF_ERROR(PwriteAll(overlay_fd_.get(), at, {Zeros().data(), n}, "overlay"));
      at += n;
    }
  }
  data_dirty_ = true;
  for (uint64_t k = first; k < last; ++k) SetState(k, kData);
  return Status::Ok();
}

Status OsVolume::WriteZeroes(uint64_t offset, uint64_t length, bool may_punch) {
  if (offset > meta_.size || length > meta_.size - offset) {
    return OutOfRange("zeroing past the end of the volume");
  }
  const uint64_t cs = meta_.cluster_size;
  const uint64_t end = offset + length;
  // Whole clusters [first, last); the partial edges are plain writes of zeros.
  uint64_t first = (offset + cs - 1) / cs;
  uint64_t last = end == meta_.size ? clusters_ : end / cs;
  auto write_zeros = [&](uint64_t from, uint64_t to) -> Status {
    while (from < to) {
      size_t n = size_t(std::min<uint64_t>(Zeros().size(), to - from));
      INGOT_RETURN_IF_ERROR(Write(from, {Zeros().data(), n}));
      from += n;
    }
    return Status::Ok();
  };
  if (first >= last) return write_zeros(offset, end);
  INGOT_RETURN_IF_ERROR(write_zeros(offset, first * cs));
  {
    std::lock_guard<std::mutex> lock(writer_);
    INGOT_RETURN_IF_ERROR(ZeroWholeClusters(first, last, may_punch));
  }
  return write_zeros(std::min(last * cs, meta_.size), end);
}

Status OsVolume::Trim(uint64_t offset, uint64_t length) {
  if (offset > meta_.size || length > meta_.size - offset) {
    return OutOfRange("trim past the end of the volume");
  }
  const uint64_t cs = meta_.cluster_size;
  const uint64_t end = offset + length;
  uint64_t first = (offset + cs - 1) / cs;
  uint64_t last = end == meta_.size ? clusters_ : end / cs;
  if (first >= last) return Status::Ok();
  std::lock_guard<std::mutex> lock(writer_);
  return ZeroWholeClusters(first, last, true);
}

Status OsVolume::Flush() {
  std::lock_guard<std::mutex> lock(writer_);
  if (data_dirty_) {
    if (::fdatasync(overlay_fd_.get()) != 0) return FromErrno(errno, "fdatasync overlay");
    data_dirty_ = false;
  }
  if (dirty_pages_.empty()) return Status::Ok();
  // Only now that the data is durable may the map say where it is.
  std::vector<uint8_t> page(kMapPage);
  for (uint64_t p : dirty_pages_) {
    const uint64_t first = p * kMapPage;
    const size_t n = size_t(std::min<uint64_t>(kMapPage, clusters_ - first));
    for (size_t i = 0; i < n; ++i) page[i] = states_[first + i].load(std::memory_order_relaxed);
    INGOT_RETURN_IF_ERROR(PwriteAll(map_fd_.get(), first, {page.data(), n}, "map"));
  }
  if (::fdatasync(map_fd_.get()) != 0) return FromErrno(errno, "fdatasync map");
  dirty_pages_.clear();
  return Status::Ok();
}

Result<VolumeExtent> OsVolume::BlockStatus(uint64_t offset, uint64_t max_length) {
  if (offset >= meta_.size || max_length == 0) {
    return OutOfRange("block status outside the volume");
  }
  const uint64_t cs = meta_.cluster_size;
  const uint64_t end = offset + std::min(max_length, meta_.size - offset);
  const uint64_t c = offset / cs;
  const ClusterState s = State(c);
  uint64_t run_end = std::min(ClusterEnd(c), end);
  while (run_end < end && State(run_end / cs) == s) run_end = std::min(ClusterEnd(run_end / cs), end);
  if (s == kData) return VolumeExtent{run_end - offset, true, false};
  if (s == kZero) return VolumeExtent{run_end - offset, false, true};
  // From the golden image: its own extents, and zeros past its end.
  const uint64_t base_size = base_->Size();
  if (offset >= base_size) return VolumeExtent{run_end - offset, false, true};
  INGOT_ASSIGN_OR_RETURN(formats::Extent e,
                         base_->BlockStatus(offset, std::min(run_end, base_size) - offset));
  if (e.length == 0) return Corruption("golden image reported an empty extent");
  return VolumeExtent{e.length, !e.zero, e.zero};
}

std::optional<OsVolume::FileRange> OsVolume::MapToFile(uint64_t offset,
                                                      uint64_t max_length) const {
  if (offset >= meta_.size || max_length == 0) return std::nullopt;
  const uint64_t cs = meta_.cluster_size;
  const uint64_t end = offset + std::min(max_length, meta_.size - offset);
  const uint64_t c = offset / cs;
  const ClusterState s = State(c);
  uint64_t run_end = std::min(ClusterEnd(c), end);
  while (run_end < end && State(run_end / cs) == s) run_end = std::min(ClusterEnd(run_end / cs), end);
  if (s == kData) return FileRange{overlay_fd_.get(), offset, run_end - offset};
  if (s == kBase && base_is_raw_ && offset < base_->Size()) {
    return FileRange{base_file_->fd(), offset, std::min(run_end, base_->Size()) - offset};
  }
  return std::nullopt;
}

uint64_t OsVolume::overlay_bytes() const {
  uint64_t n = 0;
  for (uint64_t k = 0; k < clusters_; ++k) {
    if (State(k) == kData) n += ClusterEnd(k) - k * meta_.cluster_size;
  }
  return n;
}

}  // namespace ingot::deploy
