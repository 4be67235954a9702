// ext2/3/4 file systems of an OS volume, read and written through libext2fs — no kernel mount, no
// appliance. Private to the native engine (native.h).
//
// Bytes: libext2fs reads and writes through a custom io_manager whose I/O goes to a
// VolumeBuffer: reads come from the volume (deploy::OsVolume, so from its overlay or the golden
// image), writes stay in memory until Commit(). So a run that must give up half-way (a command
// or file system the engine cannot handle) leaves the volume untouched and guestfish can redo it
// from the start; and what is committed lands in the volume's copy-on-write overlay, never in the
// golden image.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "deploy/os_volume.h"

struct struct_ext2_filsys;

namespace ingot::deploy::guestfish {

// The volume's bytes with a write-back layer of 4 KiB pages.
// Not thread-safe (one run at a time uses it).
class VolumeBuffer {
 public:
  explicit VolumeBuffer(OsVolume& volume) : volume_(volume) {}
  uint64_t Size() const { return volume_.Size(); }
  Status Read(uint64_t offset, uint8_t* buf, size_t length);
  Status Write(uint64_t offset, const uint8_t* data, size_t length);
  // Writes every buffered page into the volume and flushes it. The buffer is empty afterwards.
  Status Commit();
  bool dirty() const { return !pages_.empty(); }
  uint64_t buffered_bytes() const { return pages_.size() * kPage; }

  static constexpr uint64_t kPage = 4096;

 private:
  OsVolume& volume_;
  std::map<uint64_t, std::vector<uint8_t>> pages_;  // page index → its bytes
};

// What a stat of an inode says.
struct ExtStat {
  uint32_t ino = 0;
  uint32_t mode = 0;  // file type bits and permissions, as st_mode
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  uint32_t links = 0;
  bool is_dir() const { return (mode & 0170000) == 0040000; }
  bool is_reg() const { return (mode & 0170000) == 0100000; }
  bool is_lnk() const { return (mode & 0170000) == 0120000; }
};

struct ExtDirEntry {
  std::string name;
  uint32_t ino = 0;
};

// One ext2/3/4 file system at [offset, offset+length) of the buffer. Inode-level operations; paths
// are the caller's business (native.cc resolves them across mounts). Errors are kIoError for the
// volume, kCorruption for what libext2fs finds broken, kInvalidArgument/kNotFound/kAlreadyExists/
// kConflict for the caller's mistakes (with the errno text guestfish would print, see Errno()).
class ExtFs {
 public:
  static constexpr uint32_t kRootIno = 2;

  // kUnsupported when the file system needs a journal replay or has features libext2fs lacks
  // (the caller then falls back to guestfish).
  static Result<std::unique_ptr<ExtFs>> Open(VolumeBuffer& buffer, uint64_t offset, uint64_t length,
                                             bool writable);
  ~ExtFs();  // closes without writing; call Close() to write the metadata

  // Writes the superblock, group descriptors and bitmaps into the buffer and closes.
  Status Close();
  bool writable() const { return writable_; }

  Result<ExtStat> Stat(uint32_t ino);
  // nullopt when `dir` has no entry `name`.
  Result<std::optional<uint32_t>> Lookup(uint32_t dir, const std::string& name);
  Result<std::vector<ExtDirEntry>> List(uint32_t dir);  // without "." and ".."
  Result<std::string> ReadLink(uint32_t ino);
  Result<std::string> ReadAll(uint32_t ino, uint64_t max_bytes);

  // New objects: owner 0:0, times now, modes as guestfish's appliance makes them (umask 022).
  Result<uint32_t> CreateFile(uint32_t dir, const std::string& name, uint32_t perm);
  Result<uint32_t> Mkdir(uint32_t dir, const std::string& name);
  Status Symlink(uint32_t dir, const std::string& name, const std::string& target);
  // Replaces (truncate = true) or appends to a regular file's contents.
  Status WriteContents(uint32_t ino, std::string_view data, bool truncate);
  Status SetMode(uint32_t ino, uint32_t perm);              // keeps the type bits
  Status SetOwner(uint32_t ino, int64_t uid, int64_t gid);  // -1 keeps that one
  Status Touch(uint32_t ino);                               // atime/mtime/ctime = now
  // Removes the entry; frees the inode when its last link goes. Directories must be empty.
  Status Unlink(uint32_t dir, const std::string& name, uint32_t ino);
  // Adds an entry for an existing inode (rename's second half); fixes ".." of a moved directory.
  Status Link(uint32_t dir, const std::string& name, uint32_t ino, uint32_t old_parent);
  Status UnlinkEntryOnly(uint32_t dir, const std::string& name, uint32_t ino);

 private:
  ExtFs() = default;
  Status AddEntry(uint32_t dir, const std::string& name, uint32_t ino, int file_type);
  Status Release(uint32_t ino);  // drops one link; frees on zero
  struct_ext2_filsys* fs_ = nullptr;
  int channel_id_ = 0;
  bool writable_ = false;
};

// The errno-like text of an ext2fs error code ("No such file or directory", …).
std::string ExtErrorText(long code);

}  // namespace ingot::deploy::guestfish
