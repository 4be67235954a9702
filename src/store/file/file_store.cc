#include "store/file/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "common/uuid.h"

namespace ingot::store {
namespace {

constexpr std::string_view kTmpPrefix = ".tmp-";

// Keys are image ids; anything that could escape the root or hide as a temp file is refused.
bool ValidKey(const std::string& key) {
  if (key.empty() || key.size() > 128 || key[0] == '.') return false;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// The path with every symbolic link resolved; kNotFound (or the errno's code) when it cannot be.
Result<std::string> RealPath(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return FromErrno(errno, "realpath " + path);
  std::string out(real);
  std::free(real);
  return out;
}

// Frees what std::aligned_alloc returned.
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};

class FilePendingObject final : public PendingObject {
 public:
  // `direct`: the descriptor was opened with O_DIRECT; bytes are gathered into an aligned buffer
  // and written a whole buffer at a time, at offsets that are multiples of its size.
  FilePendingObject(io::UniqueFd fd, std::string tmp_path, std::string final_path,
                    uint64_t writeback_chunk, bool direct)
      : fd_(std::move(fd)),
        tmp_path_(std::move(tmp_path)),
        final_path_(std::move(final_path)),
        writeback_chunk_(writeback_chunk) {
    if (direct) {
      buffer_.reset(static_cast<uint8_t*>(std::aligned_alloc(kHoleBlock, kDirectBuffer)));
    }
  }

  ~FilePendingObject() override {
    if (!committed_) {
      fd_ = io::UniqueFd();
      ::unlink(tmp_path_.c_str());
    }
  }

  Status Write(std::span<const uint8_t> data) override {
    if (!buffer_) {
      INGOT_RETURN_IF_ERROR(WriteSkippingHoles(data, written_));
      written_ += data.size();
      StartWriteBack();
      return Status::Ok();
    }
    while (!data.empty()) {
      const size_t n = std::min(kDirectBuffer - fill_, data.size());
      std::memcpy(buffer_.get() + fill_, data.data(), n);
      fill_ += n;
      written_ += n;
      data = data.subspan(n);
      if (fill_ == kDirectBuffer) INGOT_RETURN_IF_ERROR(FlushBuffer());
    }
    return Status::Ok();
  }

  Status Commit() override {
    if (committed_) return Internal("object committed twice");
    if (buffer_ && fill_ > 0) {
      // The tail is written as whole blocks (O_DIRECT writes nothing shorter); the zero padding
      // goes with the ftruncate below.
      const size_t whole = (fill_ + kHoleBlock - 1) / kHoleBlock * kHoleBlock;
      std::memset(buffer_.get() + fill_, 0, whole - fill_);
      fill_ = whole;
      INGOT_RETURN_IF_ERROR(FlushBuffer());
    }
    if (::ftruncate(fd_.get(), static_cast<off_t>(written_)) != 0) {
      return FromErrno(errno, "ftruncate " + tmp_path_);
    }
    if (::fdatasync(fd_.get()) != 0) return FromErrno(errno, "fdatasync " + tmp_path_);
    if (::renameat2(AT_FDCWD, tmp_path_.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_NOREPLACE) !=
        0) {
      return FromErrno(errno, "rename " + tmp_path_ + " to " + final_path_);
    }
    committed_ = true;
    return io::SyncParentDir(final_path_);
  }

  uint64_t bytes_written() const override { return written_; }

 private:
  static constexpr uint64_t kHoleBlock = 4096;
  static constexpr size_t kDirectBuffer = 2 << 20;

  // Writes the buffer (whole blocks) at its offset in the file, which is a multiple of its size.
  Status FlushBuffer() {
    const uint64_t at = (written_ - 1) / kDirectBuffer * kDirectBuffer;
    Status s = WriteSkippingHoles({buffer_.get(), fill_}, at);
    fill_ = 0;
    return s;
  }

  // Runs of whole zero blocks are not written: they stay holes in the file (a raw disk image is
  // mostly zeros), and read back as zeros. Commit sets the length, so a trailing hole counts.
  Status WriteSkippingHoles(std::span<const uint8_t> data, uint64_t offset) {
    size_t pos = 0;
    while (pos < data.size()) {
      // The next block ends at a block boundary of the file, so holes line up with the file
      // system's blocks.
      const uint64_t off = offset + pos;
      const size_t block = static_cast<size_t>(
          std::min<uint64_t>(kHoleBlock - off % kHoleBlock, data.size() - pos));
      size_t run = 0;  // data (non-hole) bytes from pos
      while (pos + run < data.size()) {
        const uint64_t at = offset + pos + run;
        const size_t n = static_cast<size_t>(
            std::min<uint64_t>(kHoleBlock - at % kHoleBlock, data.size() - pos - run));
        if (n == kHoleBlock && AllZero(data.data() + pos + run, n)) break;
        run += n;
      }
      if (run > 0) {
        INGOT_RETURN_IF_ERROR(PWriteAll(data.subspan(pos, run), offset + pos));
        pos += run;
      } else {
        pos += block;  // a whole zero block: skipped
      }
    }
    return Status::Ok();
  }

  // Page-cache writes: ask the kernel to start writing each chunk now, without waiting for it. This
  // keeps dirty pages bounded and makes the final fdatasync cheap. Failure is harmless (fdatasync
  // still runs).
  void StartWriteBack() {
    if (writeback_chunk_ == 0 || written_ - flushed_ < writeback_chunk_) return;
    ::sync_file_range(fd_.get(), static_cast<off_t>(flushed_),
                      static_cast<off_t>(written_ - flushed_), SYNC_FILE_RANGE_WRITE);
    // Wait for the chunk before the previous one, so write-back keeps pace without stalling us.
    if (flushed_ >= writeback_chunk_) {
      ::sync_file_range(fd_.get(), static_cast<off_t>(flushed_ - writeback_chunk_),
                        static_cast<off_t>(writeback_chunk_),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                            SYNC_FILE_RANGE_WAIT_AFTER);
    }
    flushed_ = written_;
  }

  static bool AllZero(const uint8_t* p, size_t n) {
    // Image data is rarely zero at its first bytes, so this usually ends at the first word.
    uint64_t w;
    for (size_t i = 0; i + 8 <= n; i += 8) {
      std::memcpy(&w, p + i, 8);
      if (w != 0) return false;
    }
    for (size_t i = n & ~size_t{7}; i < n; ++i) {
      if (p[i] != 0) return false;
    }
    return true;
  }

  Status PWriteAll(std::span<const uint8_t> data, uint64_t offset) {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0 && errno == EINVAL && buffer_ && !direct_refused_) {
        // A file system that opened with O_DIRECT but refuses the write: the page cache instead.
        direct_refused_ = true;
        int flags = ::fcntl(fd_.get(), F_GETFL);
        if (flags >= 0 && ::fcntl(fd_.get(), F_SETFL, flags & ~O_DIRECT) == 0) continue;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        return FromErrno(errno, "write " + tmp_path_);
      }
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return Status::Ok();
  }

  io::UniqueFd fd_;
  std::string tmp_path_;
  std::string final_path_;
  uint64_t writeback_chunk_;
  std::unique_ptr<uint8_t, FreeDeleter> buffer_;  // O_DIRECT only
  size_t fill_ = 0;                               // bytes in buffer_
  bool direct_refused_ = false;
  uint64_t written_ = 0;
  uint64_t flushed_ = 0;
  bool committed_ = false;
};

}  // namespace

Result<std::unique_ptr<FileStore>> FileStore::Open(FileStoreOptions options) {
  if (options.root.empty()) return InvalidArgument("file store needs a root directory");
  INGOT_RETURN_IF_ERROR(io::MakeDirs(options.root));
  INGOT_ASSIGN_OR_RETURN(std::string canonical, RealPath(options.root));
  return std::unique_ptr<FileStore>(new FileStore(std::move(options), std::move(canonical)));
}

std::string FileStore::UrlOf(const std::string& key) const {
  return "file://" + canonical_root_ + "/" + key;
}

Result<std::optional<std::string>> FileStore::KeyOfUrl(std::string_view url) {
  const std::optional<std::string> not_mine;
  constexpr std::string_view kScheme = "file://";
  if (url.size() < kScheme.size() || !EqualsIgnoringCase(url.substr(0, kScheme.size()), kScheme)) {
    return not_mine;
  }
  std::string_view path = url.substr(kScheme.size());
  if (path.starts_with("localhost/")) path.remove_prefix(std::string_view("localhost").size());
  if (!path.starts_with('/')) {
    return InvalidArgument("A file location must be an absolute path on this host (file:///...).");
  }
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ||
        c == 0x7f) {
      return InvalidArgument(
          "A file location must be a plain path: no percent-escapes, '?', '#', '\\' or control "
          "characters.");
    }
  }
  // Every segment after the leading '/' must be a name: no '.', '..' or empty ones.
  for (size_t pos = 1; pos <= path.size();) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(pos, end - pos);
    if (seg.empty() || seg == "." || seg == "..") {
      return InvalidArgument(
          "A file location must not contain '.', '..' or empty path segments.");
    }
    pos = end + 1;
  }
  const size_t slash = path.rfind('/');
  std::string dir(path.substr(0, slash == 0 ? 1 : slash));
  std::string name(path.substr(slash + 1));
  auto real_dir = RealPath(dir);
  if (!real_dir.ok() || *real_dir != canonical_root_) return not_mine;
  if (!ValidKey(name)) {
    return InvalidArgument("'" + name +
                           "' is not an object this store holds (letters, digits, '-', '_' and "
                           "'.', not starting with '.').");
  }
  struct stat st;
  if (::lstat((canonical_root_ + "/" + name).c_str(), &st) != 0) {
    if (errno == ENOENT) return NotFound("There is no object '" + name + "' in store " + id() + ".");
    return FromErrno(errno, "lstat " + canonical_root_ + "/" + name);
  }
  if (S_ISLNK(st.st_mode)) {
    return InvalidArgument("The object '" + name + "' in store " + id() +
                           " is a symbolic link; only regular files are adopted.");
  }
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument("The object '" + name + "' in store " + id() +
                           " is not a regular file.");
  }
  return std::optional<std::string>(std::move(name));
}

Result<std::string> FileStore::PathOf(const std::string& key) const {
  if (!ValidKey(key)) return InvalidArgument("invalid object key '" + key + "'");
  return options_.root + "/" + key;
}

Result<std::unique_ptr<PendingObject>> FileStore::Create(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(std::string path, PathOf(key));
  if (::access(path.c_str(), F_OK) == 0) return AlreadyExists("object " + key + " exists");
  std::string tmp = options_.root + "/" + std::string(kTmpPrefix) + key + "-" + NewUuid().substr(0, 8);
  const int flags = O_WRONLY | O_CREAT | O_EXCL;
  auto fd = io::OpenFile(tmp, flags | (options_.direct_io ? O_DIRECT : 0), 0640);
  const bool direct = options_.direct_io && fd.ok();
  if (!fd.ok() && options_.direct_io) {
    // No O_DIRECT on this file system (tmpfs refuses it after creating the file): the page cache.
    ::unlink(tmp.c_str());
    fd = io::OpenFile(tmp, flags, 0640);
  }
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<PendingObject>(new FilePendingObject(
      std::move(*fd), std::move(tmp), std::move(path), options_.writeback_chunk, direct));
}

Result<std::unique_ptr<io::ByteSource>> FileStore::Open(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, OpenFd(key));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return FromErrno(errno, "stat " + key);
  return std::unique_ptr<io::ByteSource>(std::make_unique<io::FileSource>(
      std::move(fd), static_cast<uint64_t>(st.st_size), *PathOf(key)));
}

Result<io::UniqueFd> FileStore::OpenFd(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(std::string path, PathOf(key));
  return io::OpenFile(path, O_RDONLY | O_NOFOLLOW);  // a key is never a symlink
}

Result<uint64_t> FileStore::SizeOf(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(std::string path, PathOf(key));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FromErrno(errno, "stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

Status FileStore::Delete(const std::string& key) {
  INGOT_ASSIGN_OR_RETURN(std::string path, PathOf(key));
  if (::unlink(path.c_str()) != 0) {
    return errno == ENOENT ? Status::Ok() : FromErrno(errno, "unlink " + path);
  }
  return io::SyncParentDir(path);
}

Result<int> FileStore::RemoveIncomplete() {
  DIR* dir = ::opendir(options_.root.c_str());
  if (dir == nullptr) return FromErrno(errno, "opendir " + options_.root);
  int removed = 0;
  Status status;
  while (struct dirent* e = ::readdir(dir)) {
    std::string_view name(e->d_name);
    if (name.substr(0, kTmpPrefix.size()) != kTmpPrefix) continue;
    std::string path = options_.root + "/" + std::string(name);
    if (::unlink(path.c_str()) == 0) {
      ++removed;
      log::Warn("store.incomplete_removed", {{"store", options_.id}, {"path", path}});
    } else if (errno != ENOENT) {
      status = FromErrno(errno, "unlink " + path);
    }
  }
  ::closedir(dir);
  if (!status.ok()) return status;
  return removed;
}

Result<std::vector<std::string>> FileStore::ListKeys() {
  DIR* dir = ::opendir(options_.root.c_str());
  if (dir == nullptr) return FromErrno(errno, "opendir " + options_.root);
  std::vector<std::string> keys;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name(e->d_name);
    if (ValidKey(name)) keys.push_back(std::move(name));
  }
  ::closedir(dir);
  return keys;
}

Result<std::vector<StoredObject>> FileStore::Enumerate() {
  DIR* dir = ::opendir(options_.root.c_str());
  if (dir == nullptr) return FromErrno(errno, "opendir " + options_.root);
  std::vector<StoredObject> out;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name(e->d_name);
    StoredObject o;
    if (ValidKey(name)) {
      o.key = name;
    } else if (name.starts_with(kTmpPrefix)) {
      // ".tmp-<key>-<8 random characters>" (Create).
      const size_t dash = name.rfind('-');
      if (dash == std::string::npos || dash <= kTmpPrefix.size()) continue;
      o.key = name.substr(kTmpPrefix.size(), dash - kTmpPrefix.size());
      if (!ValidKey(o.key)) continue;
      o.incomplete = name;
    } else {
      continue;
    }
    struct stat st;
    // Gone meanwhile (committed, aborted, deleted): the next pass sees what it became.
    if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode)) continue;
    o.bytes = static_cast<uint64_t>(st.st_size);
    o.modified = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000 + st.st_mtim.tv_nsec / 1000;
    out.push_back(std::move(o));
  }
  ::closedir(dir);
  return out;
}

Status FileStore::RemoveIncompleteWrite(const StoredObject& object) {
  const std::string& name = object.incomplete;
  if (!name.starts_with(kTmpPrefix) || name.find('/') != std::string::npos ||
      name.size() <= kTmpPrefix.size() + object.key.size() ||
      name.compare(kTmpPrefix.size(), object.key.size(), object.key) != 0) {
    return InvalidArgument("not an incomplete write of '" + object.key + "': '" + name + "'");
  }
  const std::string path = options_.root + "/" + name;
  if (::unlink(path.c_str()) != 0) {
    return errno == ENOENT ? Status::Ok() : FromErrno(errno, "unlink " + path);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Store>> MakeFileStore(const StoreConfig& config) {
  INGOT_RETURN_IF_ERROR(CheckOptions(config, {"path", "writeback_chunk_mib", "direct_io"}));
  auto root = config.options.find("path");
  if (root == config.options.end() || root->second.empty()) {
    return InvalidArgument("the file driver needs option 'path' (a directory)");
  }
  INGOT_ASSIGN_OR_RETURN(uint64_t chunk_mib, UintOption(config, "writeback_chunk_mib", 64));
  bool direct_io = true;
  if (auto d = config.options.find("direct_io"); d != config.options.end()) {
    if (d->second != "true" && d->second != "false") {
      return InvalidArgument("file store option direct_io must be true or false, not '" +
                             d->second + "'");
    }
    direct_io = d->second == "true";
  }
  INGOT_ASSIGN_OR_RETURN(auto store, FileStore::Open({.id = config.id,
                                                      .root = root->second,
                                                      .writeback_chunk = chunk_mib << 20,
                                                      .direct_io = direct_io}));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ingot::store
