#include "deploy/guestfish/ext_fs.h"

#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace ingot::deploy::guestfish {

// ---- VolumeBuffer ----

Status VolumeBuffer::Read(uint64_t offset, uint8_t* buf, size_t length) {
  if (offset > Size() || length > Size() - offset) return OutOfRange("read past the volume's end");
  while (length > 0) {
    const uint64_t page = offset / kPage, in = offset % kPage;
    auto it = pages_.lower_bound(page);
    if (it != pages_.end() && it->first == page) {
      size_t n = std::min<uint64_t>(length, kPage - in);
      std::memcpy(buf, it->second.data() + in, n);
      buf += n, offset += n, length -= n;
      continue;
    }
    // Up to the next buffered page, straight from the volume.
    uint64_t until = offset + length;
    if (it != pages_.end()) until = std::min(until, it->first * kPage);
    size_t n = until - offset;
    INGOT_RETURN_IF_ERROR(volume_.Read(offset, {buf, n}));
    buf += n, offset += n, length -= n;
  }
  return Status::Ok();
}

Status VolumeBuffer::Write(uint64_t offset, const uint8_t* data, size_t length) {
  if (offset > Size() || length > Size() - offset) return OutOfRange("write past the volume's end");
  while (length > 0) {
    const uint64_t page = offset / kPage, in = offset % kPage;
    auto it = pages_.find(page);
    if (it == pages_.end()) {
      std::vector<uint8_t> bytes(kPage);
      uint64_t start = page * kPage;
      size_t have = std::min<uint64_t>(kPage, Size() - start);
      INGOT_RETURN_IF_ERROR(volume_.Read(start, {bytes.data(), have}));
      it = pages_.emplace(page, std::move(bytes)).first;
    }
    size_t n = std::min<uint64_t>(length, kPage - in);
    std::memcpy(it->second.data() + in, data, n);
    data += n, offset += n, length -= n;
  }
  return Status::Ok();
}

Status VolumeBuffer::Commit() {
  // Contiguous pages go in one write.
  std::vector<uint8_t> run;
  uint64_t run_start = 0;
  auto flush_run = [&]() -> Status {
    if (run.empty()) return Status::Ok();
    size_t n = std::min<uint64_t>(run.size(), Size() - run_start);
    Status s = volume_.Write(run_start, {run.data(), n});
    run.clear();
    return s;
  };
  for (auto& [page, bytes] : pages_) {
    if (!run.empty() && run_start + run.size() != page * kPage) INGOT_RETURN_IF_ERROR(flush_run());
    if (run.empty()) run_start = page * kPage;
    run.insert(run.end(), bytes.begin(), bytes.end());
  }
  INGOT_RETURN_IF_ERROR(flush_run());
  pages_.clear();
  return volume_.Flush();
}

// ---- the io_manager ----

namespace {

// libext2fs opens a channel by name; the name carries the id of one of these.
struct Region {
  VolumeBuffer* buffer = nullptr;
  uint64_t offset = 0, length = 0;
};
std::mutex g_regions_mu;
std::map<int, Region> g_regions;
int g_next_region = 1;

struct ChannelData {
  Region region;
};

extern struct struct_io_manager g_volume_io_manager;

errcode_t VolOpen(const char* name, int flags, io_channel* channel) {
  int id = 0;
  if (!name || std::sscanf(name, "ingot-volume:%d", &id) != 1) return EXT2_ET_BAD_DEVICE_NAME;
  Region region;
  {
    std::lock_guard lock(g_regions_mu);
    auto it = g_regions.find(id);
    if (it == g_regions.end()) return EXT2_ET_BAD_DEVICE_NAME;
    region = it->second;
  }
  auto* ch = static_cast<io_channel>(std::calloc(1, sizeof(struct struct_io_channel)));
  auto* data = new ChannelData{region};
  if (!ch) return EXT2_ET_NO_MEMORY;
  ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  ch->manager = &g_volume_io_manager;
  ch->name = strdup(name);
  ch->block_size = 1024;
  ch->refcount = 1;
  ch->flags = flags & IO_FLAG_RW ? CHANNEL_FLAGS_BLOCK_DEVICE : 0;
  ch->private_data = data;
  *channel = ch;
  return 0;
}

errcode_t VolClose(io_channel ch) {
  if (--ch->refcount > 0) return 0;
  delete static_cast<ChannelData*>(ch->private_data);
  std::free(ch->name);
  std::free(ch);
  return 0;
}

errcode_t VolSetBlksize(io_channel ch, int blksize) {
  ch->block_size = blksize;
  return 0;
}

errcode_t RangeOf(io_channel ch, unsigned long long block, int count, uint64_t* off, size_t* len) {
  auto* d = static_cast<ChannelData*>(ch->private_data);
  uint64_t bytes = count < 0 ? uint64_t(-int64_t(count)) : uint64_t(count) * ch->block_size;
  uint64_t start = uint64_t(block) * ch->block_size;
  if (ch->block_size <= 0 || block > (UINT64_MAX / uint64_t(ch->block_size)) ||
      start > d->region.length || bytes > d->region.length - start) {
    return EXT2_ET_LLSEEK_FAILED;
  }
  *off = d->region.offset + start;
  *len = bytes;
  return 0;
}

errcode_t VolRead64(io_channel ch, unsigned long long block, int count, void* buf) {
  uint64_t off;
  size_t len;
  if (errcode_t e = RangeOf(ch, block, count, &off, &len)) return e;
  auto* d = static_cast<ChannelData*>(ch->private_data);
  return d->region.buffer->Read(off, static_cast<uint8_t*>(buf), len).ok() ? 0 : EXT2_ET_SHORT_READ;
}
errcode_t VolRead(io_channel ch, unsigned long block, int count, void* buf) {
  return VolRead64(ch, block, count, buf);
}

errcode_t VolWrite64(io_channel ch, unsigned long long block, int count, const void* buf) {
  uint64_t off;
  size_t len;
  if (errcode_t e = RangeOf(ch, block, count, &off, &len)) return e;
  auto* d = static_cast<ChannelData*>(ch->private_data);
  return d->region.buffer->Write(off, static_cast<const uint8_t*>(buf), len).ok()
             ? 0
             : EXT2_ET_SHORT_WRITE;
}
errcode_t VolWrite(io_channel ch, unsigned long block, int count, const void* buf) {
  return VolWrite64(ch, block, count, buf);
}

errcode_t VolWriteByte(io_channel ch, unsigned long offset, int count, const void* buf) {
  auto* d = static_cast<ChannelData*>(ch->private_data);
  if (count < 0 || offset > d->region.length || uint64_t(count) > d->region.length - offset) {
    return EXT2_ET_LLSEEK_FAILED;
  }
  return d->region.buffer->Write(d->region.offset + offset, static_cast<const uint8_t*>(buf), count)
                 .ok()
             ? 0
             : EXT2_ET_SHORT_WRITE;
}

errcode_t VolFlush(io_channel) { return 0; }  // the buffer is committed by the engine

errcode_t VolSetOption(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }

struct struct_io_manager g_volume_io_manager = [] {
  struct struct_io_manager m;
  std::memset(&m, 0, sizeof m);
  m.magic = EXT2_ET_MAGIC_IO_MANAGER;
  m.name = "Ingot OS volume I/O manager";
  m.open = VolOpen;
  m.close = VolClose;
  m.set_blksize = VolSetBlksize;
  m.read_blk = VolRead;
  m.write_blk = VolWrite;
  m.flush = VolFlush;
  m.write_byte = VolWriteByte;
  m.set_option = VolSetOption;
  m.read_blk64 = VolRead64;
  m.write_blk64 = VolWrite64;
  return m;
}();

uint32_t Now() { return uint32_t(::time(nullptr)); }

Status FromExt(errcode_t e, const std::string& what) {
  std::string text = what + ": " + ExtErrorText(e);
  switch (e) {
    case EXT2_ET_FILE_NOT_FOUND:
      return NotFound(text);
    case EXT2_ET_DIR_EXISTS:
    case EXT2_ET_FILE_EXISTS:
      return AlreadyExists(text);
    case EXT2_ET_DIR_NO_SPACE:
    case EXT2_ET_BLOCK_ALLOC_FAIL:
    case EXT2_ET_INODE_ALLOC_FAIL:
    case EXT2_ET_TOOSMALL:
      return StorageFull(text);
    case EXT2_ET_SHORT_READ:
    case EXT2_ET_SHORT_WRITE:
    case EXT2_ET_LLSEEK_FAILED:
      return IoError(text);
    case EXT2_ET_RO_FILSYS:
      return Conflict(text);
    default:
      if (e > 0 && e < 256) return InvalidArgument(what + ": " + strerror(int(e)));
      return Corruption(text);
  }
}

int FileType(uint32_t mode) {
  switch (mode & LINUX_S_IFMT) {
    case LINUX_S_IFREG:
      return EXT2_FT_REG_FILE;
    case LINUX_S_IFDIR:
      return EXT2_FT_DIR;
    case LINUX_S_IFLNK:
      return EXT2_FT_SYMLINK;
    case LINUX_S_IFCHR:
      return EXT2_FT_CHRDEV;
    case LINUX_S_IFBLK:
      return EXT2_FT_BLKDEV;
    case LINUX_S_IFIFO:
      return EXT2_FT_FIFO;
    case LINUX_S_IFSOCK:
      return EXT2_FT_SOCK;
  }
  return EXT2_FT_UNKNOWN;
}

}  // namespace

std::string ExtErrorText(long code) {
  switch (code) {
    case EXT2_ET_FILE_NOT_FOUND:
      return "No such file or directory";
    case EXT2_ET_DIR_EXISTS:
    case EXT2_ET_FILE_EXISTS:
      return "File exists";
    case EXT2_ET_NO_DIRECTORY:
      return "Not a directory";
    case EXT2_ET_RO_FILSYS:
      return "Read-only file system";
    case EXT2_ET_BLOCK_ALLOC_FAIL:
    case EXT2_ET_INODE_ALLOC_FAIL:
    case EXT2_ET_DIR_NO_SPACE:
      return "No space left on device";
  }
  if (code > 0 && code < 256) return strerror(int(code));
  return error_message(code);
}

// ---- ExtFs ----

Result<std::unique_ptr<ExtFs>> ExtFs::Open(VolumeBuffer& buffer, uint64_t offset, uint64_t length,
                                           bool writable) {
  std::unique_ptr<ExtFs> fs(new ExtFs());
  {
    std::lock_guard lock(g_regions_mu);
    fs->channel_id_ = g_next_region++;
    g_regions[fs->channel_id_] = Region{&buffer, offset, length};
  }
  std::string name = "ingot-volume:" + std::to_string(fs->channel_id_);
  int flags = EXT2_FLAG_64BITS | (writable ? EXT2_FLAG_RW : 0);
  ext2_filsys raw = nullptr;
  errcode_t e = ext2fs_open2(name.c_str(), nullptr, flags, 0, 0, &g_volume_io_manager, &raw);
  if (e) {
    if (e == EXT2_ET_UNSUPP_FEATURE || e == EXT2_ET_RO_UNSUPP_FEATURE) {
      return Unsupported(std::string("the file system has features libext2fs cannot handle (") +
                         error_message(e) + ")");
    }
    return Corruption(std::string("cannot open the ext file system: ") + error_message(e));
  }
  fs->fs_ = raw;
  fs->writable_ = writable;
  if (ext2fs_has_feature_journal_needs_recovery(raw->super)) {
    return Unsupported("the file system's journal needs recovery (it was not cleanly unmounted)");
  }
  if (ext2fs_has_feature_journal_dev(raw->super)) {
    return Unsupported("the file system is an external journal device");
  }
  if (writable) {
    e = ext2fs_read_bitmaps(raw);
    if (e) return Corruption(std::string("cannot read the bitmaps: ") + error_message(e));
  }
  // The appliance creates files with umask 022; ext2fs_mkdir and ext2fs_symlink apply fs->umask.
  raw->umask = 022;
  return fs;
}

ExtFs::~ExtFs() {
  if (fs_) {
    // Dropping without writing: ext2fs_free discards what the handle holds.
    ext2fs_free(fs_);
  }
  std::lock_guard lock(g_regions_mu);
  g_regions.erase(channel_id_);
}

Status ExtFs::Close() {
  if (!fs_) return Status::Ok();
  errcode_t e = ext2fs_close2(fs_, 0);
  if (e) {
    ext2fs_free(fs_);
    fs_ = nullptr;
    return FromExt(e, "closing the file system");
  }
  fs_ = nullptr;
  return Status::Ok();
}

Result<ExtStat> ExtFs::Stat(uint32_t ino) {
  struct ext2_inode inode;
  if (errcode_t e = ext2fs_read_inode(fs_, ino, &inode)) return FromExt(e, "read inode");
  ExtStat st;
  st.ino = ino;
  st.mode = inode.i_mode;
  st.uid = inode_uid(inode);
  st.gid = inode_gid(inode);
  st.size = EXT2_I_SIZE(&inode);
  st.links = inode.i_links_count;
  return st;
}

Result<std::optional<uint32_t>> ExtFs::Lookup(uint32_t dir, const std::string& name) {
  ext2_ino_t ino = 0;
  errcode_t e = ext2fs_lookup(fs_, dir, name.c_str(), int(name.size()), nullptr, &ino);
  if (e == EXT2_ET_FILE_NOT_FOUND) return std::optional<uint32_t>();
  if (e) return FromExt(e, name);
  return std::optional<uint32_t>(ino);
}

Result<std::vector<ExtDirEntry>> ExtFs::List(uint32_t dir) {
  std::vector<ExtDirEntry> out;
  auto cb = [](ext2_ino_t, int, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
    auto* v = static_cast<std::vector<ExtDirEntry>*>(priv);
    int len = ext2fs_dirent_name_len(d);
    std::string name(d->name, len);
    if (name != "." && name != "..") v->push_back({std::move(name), d->inode});
    return 0;
  };
  errcode_t e = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, cb, &out);
  if (e) return FromExt(e, "list directory");
  return out;
}

Result<std::string> ExtFs::ReadAll(uint32_t ino, uint64_t max_bytes) {
  ext2_file_t file;
  if (errcode_t e = ext2fs_file_open(fs_, ino, 0, &file)) return FromExt(e, "open");
  __u64 size = ext2fs_file_get_size(file);
  if (size > max_bytes) {
    ext2fs_file_close(file);
    return TooLarge("the file is over " + std::to_string(max_bytes) + " bytes");
  }
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    unsigned int got = 0;
    unsigned int want = unsigned(std::min<uint64_t>(size - done, 1u << 20));
    errcode_t e = ext2fs_file_read(file, out.data() + done, want, &got);
    if (e) {
      ext2fs_file_close(file);
      return FromExt(e, "read");
    }
    if (got == 0) break;
    done += got;
  }
  out.resize(done);
  ext2fs_file_close(file);
  return out;
}

Result<std::string> ExtFs::ReadLink(uint32_t ino) {
  struct ext2_inode inode;
  if (errcode_t e = ext2fs_read_inode(fs_, ino, &inode)) return FromExt(e, "read inode");
  if (!LINUX_S_ISLNK(inode.i_mode)) return InvalidArgument("Invalid argument");
  if (ext2fs_is_fast_symlink(&inode)) {
    const char* p = reinterpret_cast<const char*>(inode.i_block);
    return std::string(p, strnlen(p, std::min<size_t>(sizeof inode.i_block, EXT2_I_SIZE(&inode))));
  }
  return ReadAll(ino, 4096);
}

Status ExtFs::AddEntry(uint32_t dir, const std::string& name, uint32_t ino, int file_type) {
  errcode_t e = ext2fs_link(fs_, dir, name.c_str(), ino, file_type);
  if (e == EXT2_ET_DIR_NO_SPACE) {
    if ((e = ext2fs_expand_dir(fs_, dir))) return FromExt(e, name);
    e = ext2fs_link(fs_, dir, name.c_str(), ino, file_type);
  }
  return e ? FromExt(e, name) : Status::Ok();
}

Result<uint32_t> ExtFs::CreateFile(uint32_t dir, const std::string& name, uint32_t perm) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, name);
  ext2_ino_t ino;
  const uint32_t mode = LINUX_S_IFREG | (perm & 07777);
  if (errcode_t e = ext2fs_new_inode(fs_, dir, mode, nullptr, &ino)) return FromExt(e, name);
  INGOT_RETURN_IF_ERROR(AddEntry(dir, name, ino, EXT2_FT_REG_FILE));
  ext2fs_inode_alloc_stats2(fs_, ino, +1, 0);
  struct ext2_inode_large inode;
  std::memset(&inode, 0, sizeof inode);
  inode.i_mode = mode;
  inode.i_atime = inode.i_ctime = inode.i_mtime = Now();
  inode.i_links_count = 1;
  if (EXT2_INODE_SIZE(fs_->super) > EXT2_GOOD_OLD_INODE_SIZE) {
    inode.i_extra_isize = sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE;
  }
  auto* small = reinterpret_cast<struct ext2_inode*>(&inode);
  if (ext2fs_has_feature_extents(fs_->super)) {
    ext2_extent_handle_t handle;
    if (errcode_t e = ext2fs_extent_open2(fs_, ino, small, &handle)) return FromExt(e, name);
    ext2fs_extent_free(handle);
  }
  if (errcode_t e = ext2fs_write_new_inode(fs_, ino, small)) return FromExt(e, name);
  return uint32_t(ino);
}

Result<uint32_t> ExtFs::Mkdir(uint32_t dir, const std::string& name) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, name);
  errcode_t e = ext2fs_mkdir(fs_, dir, 0, name.c_str());
  if (e == EXT2_ET_DIR_NO_SPACE) {
    if ((e = ext2fs_expand_dir(fs_, dir))) return FromExt(e, name);
    e = ext2fs_mkdir(fs_, dir, 0, name.c_str());
  }
  if (e) return FromExt(e, name);
  INGOT_ASSIGN_OR_RETURN(auto ino, Lookup(dir, name));
  if (!ino) return Corruption(name + ": the new directory is not in its parent");
  return *ino;
}

Status ExtFs::Symlink(uint32_t dir, const std::string& name, const std::string& target) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, name);
  errcode_t e = ext2fs_symlink(fs_, dir, 0, name.c_str(), target.c_str());
  if (e == EXT2_ET_DIR_NO_SPACE) {
    if ((e = ext2fs_expand_dir(fs_, dir))) return FromExt(e, name);
    e = ext2fs_symlink(fs_, dir, 0, name.c_str(), target.c_str());
  }
  return e ? FromExt(e, name) : Status::Ok();
}

Status ExtFs::WriteContents(uint32_t ino, std::string_view data, bool truncate) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, "write");
  ext2_file_t file;
  if (errcode_t e = ext2fs_file_open(fs_, ino, EXT2_FILE_WRITE, &file)) return FromExt(e, "open");
  errcode_t e = 0;
  if (truncate) {
    e = ext2fs_file_set_size2(file, 0);
  } else {
    e = ext2fs_file_llseek(file, 0, EXT2_SEEK_END, nullptr);
  }
  size_t done = 0;
  while (!e && done < data.size()) {
    unsigned int wrote = 0;
    unsigned int want = unsigned(std::min<size_t>(data.size() - done, 1u << 20));
    e = ext2fs_file_write(file, data.data() + done, want, &wrote);
    if (!e && wrote == 0) e = EXT2_ET_SHORT_WRITE;
    done += wrote;
  }
  errcode_t ce = ext2fs_file_close(file);
  if (e || ce) return FromExt(e ? e : ce, "write");
  return Touch(ino);
}

Status ExtFs::SetMode(uint32_t ino, uint32_t perm) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, "chmod");
  struct ext2_inode inode;
  if (errcode_t e = ext2fs_read_inode(fs_, ino, &inode)) return FromExt(e, "chmod");
  inode.i_mode = (inode.i_mode & LINUX_S_IFMT) | (perm & 07777);
  inode.i_ctime = Now();
  if (errcode_t e = ext2fs_write_inode(fs_, ino, &inode)) return FromExt(e, "chmod");
  return Status::Ok();
}

Status ExtFs::SetOwner(uint32_t ino, int64_t uid, int64_t gid) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, "chown");
  struct ext2_inode inode;
  if (errcode_t e = ext2fs_read_inode(fs_, ino, &inode)) return FromExt(e, "chown");
  if (uid >= 0) {
    inode.i_uid = uint16_t(uid);
    ext2fs_set_i_uid_high(inode, uint16_t(uint64_t(uid) >> 16));
  }
  if (gid >= 0) {
    inode.i_gid = uint16_t(gid);
    ext2fs_set_i_gid_high(inode, uint16_t(uint64_t(gid) >> 16));
  }
  // chown(2) by root clears set-user-ID and set-group-ID (on non-directories, as Linux does).
  if (!LINUX_S_ISDIR(inode.i_mode) && (uid >= 0 || gid >= 0)) {
    if (inode.i_mode & 0010)
      inode.i_mode &= ~06000;
    else
      inode.i_mode &= ~04000;
  }
  inode.i_ctime = Now();
  if (errcode_t e = ext2fs_write_inode(fs_, ino, &inode)) return FromExt(e, "chown");
  return Status::Ok();
}

Status ExtFs::Touch(uint32_t ino) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, "touch");
  struct ext2_inode inode;
  if (errcode_t e = ext2fs_read_inode(fs_, ino, &inode)) return FromExt(e, "touch");
  inode.i_atime = inode.i_mtime = inode.i_ctime = Now();
  if (errcode_t e = ext2fs_write_inode(fs_, ino, &inode)) return FromExt(e, "touch");
  return Status::Ok();
}

Status ExtFs::Release(uint32_t ino) {
  struct ext2_inode inode;
  if (errcode_t e = ext2fs_read_inode(fs_, ino, &inode)) return FromExt(e, "unlink");
  const bool dir = LINUX_S_ISDIR(inode.i_mode);
  if (dir) {
    inode.i_links_count = 0;  // "." and the parent's entry both go
  } else if (inode.i_links_count > 0) {
    --inode.i_links_count;
  }
  inode.i_ctime = Now();
  if (inode.i_links_count == 0) {
    inode.i_dtime = Now();
    if (ext2fs_inode_has_valid_blocks2(fs_, &inode)) {
      if (errcode_t e = ext2fs_punch(fs_, ino, &inode, nullptr, 0, ~0ULL)) {
        return FromExt(e, "free blocks");
      }
    }
    if (errcode_t e = ext2fs_write_inode(fs_, ino, &inode)) return FromExt(e, "unlink");
    ext2fs_inode_alloc_stats2(fs_, ino, -1, dir ? 1 : 0);
    return Status::Ok();
  }
  if (errcode_t e = ext2fs_write_inode(fs_, ino, &inode)) return FromExt(e, "unlink");
  return Status::Ok();
}

Status ExtFs::UnlinkEntryOnly(uint32_t dir, const std::string& name, uint32_t ino) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, name);
  if (errcode_t e = ext2fs_unlink(fs_, dir, name.c_str(), ino, 0)) return FromExt(e, name);
  return Status::Ok();
}

Status ExtFs::Unlink(uint32_t dir, const std::string& name, uint32_t ino) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, name);
  INGOT_ASSIGN_OR_RETURN(ExtStat st, Stat(ino));
  if (st.is_dir()) {
    INGOT_ASSIGN_OR_RETURN(auto entries, List(ino));
    if (!entries.empty()) return Conflict(name + ": Directory not empty");
  }
  INGOT_RETURN_IF_ERROR(UnlinkEntryOnly(dir, name, ino));
  INGOT_RETURN_IF_ERROR(Release(ino));
  if (st.is_dir()) {
    // The removed directory's ".." was a link to the parent.
    struct ext2_inode parent;
    if (errcode_t e = ext2fs_read_inode(fs_, dir, &parent)) return FromExt(e, name);
    if (parent.i_links_count > 2) --parent.i_links_count;
    parent.i_mtime = parent.i_ctime = Now();
    if (errcode_t e = ext2fs_write_inode(fs_, dir, &parent)) return FromExt(e, name);
  }
  return Status::Ok();
}

Status ExtFs::Link(uint32_t dir, const std::string& name, uint32_t ino, uint32_t old_parent) {
  if (!writable_) return FromExt(EXT2_ET_RO_FILSYS, name);
  INGOT_ASSIGN_OR_RETURN(ExtStat st, Stat(ino));
  INGOT_RETURN_IF_ERROR(AddEntry(dir, name, ino, FileType(st.mode)));
  if (st.is_dir() && dir != old_parent) {
    struct Fix {
      uint32_t parent;
    } fix{dir};
    auto cb = [](ext2_ino_t, int, struct ext2_dir_entry* d, int, int, char*, void* priv) -> int {
      if (ext2fs_dirent_name_len(d) == 2 && d->name[0] == '.' && d->name[1] == '.') {
        d->inode = static_cast<Fix*>(priv)->parent;
        return DIRENT_CHANGED | DIRENT_ABORT;
      }
      return 0;
    };
    if (errcode_t e = ext2fs_dir_iterate2(fs_, ino, 0, nullptr, cb, &fix)) return FromExt(e, name);
    for (auto [p, delta] : {std::pair{dir, +1}, std::pair{old_parent, -1}}) {
      struct ext2_inode pi;
      if (errcode_t e = ext2fs_read_inode(fs_, p, &pi)) return FromExt(e, name);
      if (delta > 0 && pi.i_links_count < EXT2_LINK_MAX) ++pi.i_links_count;
      if (delta < 0 && pi.i_links_count > 2) --pi.i_links_count;
      if (errcode_t e = ext2fs_write_inode(fs_, p, &pi)) return FromExt(e, name);
    }
  }
  return Status::Ok();
}

}  // namespace ingot::deploy::guestfish
