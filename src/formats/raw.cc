// Raw images: the virtual disk is the file. Inspection reports a GPT or MBR partition table when
// one is present (partition_table.h); the "raw hiding another format" rule lives in Detect
// (registry.cc).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "formats/driver.h"
#include "formats/host_map.h"
#include "formats/partition_table.h"
#include "io/file.h"

namespace ingot::formats {

namespace {

class RawImage final : public DiskImage, public HostMapped {
 public:
  explicit RawImage(io::ByteSource& file) : file_(file) {
    auto* f = dynamic_cast<io::FileSource*>(&file);
    fd_ = f ? f->fd() : -1;
  }
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    return file_.ReadAt(offset, buf);
  }
  uint64_t Size() const override { return file_.Size(); }

  Result<Extent> BlockStatus(uint64_t offset, uint64_t max_length) override {
    const uint64_t size = file_.Size();
    if (offset >= size || max_length == 0) {
      return OutOfRange("block status at " + std::to_string(offset) + " outside virtual size " +
                        std::to_string(size));
    }
    const uint64_t want = std::min<uint64_t>(max_length, size - offset);
    if (fd_ < 0) return Extent{offset, want, false};
    // Holes of a sparse file read as zeros: SEEK_DATA/SEEK_HOLE tell where they are. A file system
    // without support reports everything as data, which is still correct.
    off_t data = ::lseek(fd_, off_t(offset), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) return Extent{offset, want, true};  // only a hole up to the end
      return Extent{offset, want, false};
    }
    if (uint64_t(data) > offset) {
      return Extent{offset, std::min<uint64_t>(want, uint64_t(data) - offset), true};
    }
    off_t hole = ::lseek(fd_, off_t(offset), SEEK_HOLE);
    if (hole < 0 || uint64_t(hole) <= offset) return Extent{offset, want, false};
    return Extent{offset, std::min<uint64_t>(want, uint64_t(hole) - offset), false};
  }

  Result<HostRun> MapToHost(uint64_t offset, uint64_t max_length) override {
    INGOT_ASSIGN_OR_RETURN(Extent e, BlockStatus(offset, max_length));
    return HostRun{e.zero ? HostRun::Kind::kZero : HostRun::Kind::kFile, e.length, offset};
  }
  io::ByteSource& host_file() override { return file_; }

 private:
  io::ByteSource& file_;
  int fd_;
};

Result<ImageInfo> InspectRaw(io::ByteSource& file) {
  ImageInfo info;
  info.format = Format::kRaw;
  info.virtual_size = file.Size();
  info.actual_size = file.Size();
  Result<PartitionTable> table = ReadPartitionTable(file);
  if (table.ok() && !table->kind.empty()) info.partition_table = table->kind;
  return info;
}

}  // namespace

const Driver& RawDriver() {
  static const Driver d{Format::kRaw, [](io::ByteSource&) { return true; }, InspectRaw,
                        [](io::ByteSource& file) -> Result<std::unique_ptr<DiskImage>> {
                          return std::unique_ptr<DiskImage>(std::make_unique<RawImage>(file));
                        }};
  return d;
}

}  // namespace ingot::formats
