// The ISO 9660 tree reader; the contract and the specs it follows are in iso9660.h.
//
// Open() walks the directory graph breadth-first with an explicit queue (no recursion, so no depth
// can overflow the stack). Every directory extent is registered before it is queued and must not
// overlap any registered one: a cycle, a second path to one directory or a Rock Ridge CL pointing
// back into the tree is refused the moment it is seen, and no directory is ever read twice. The
// work is linear in the directory bytes (which, not overlapping, add up to at most the source size)
// plus the CE budget.
#include "formats/iso9660.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <optional>

#include "formats/mapped_image.h"

namespace ingot::formats::iso9660 {

std::string_view NameSourceName(NameSource s) {
  switch (s) {
    case NameSource::kRockRidge:
      return "rock-ridge";
    case NameSource::kJoliet:
      return "joliet";
    case NameSource::kPlain:
      return "iso9660";
    case NameSource::kUdf:
      return "udf";
  }
  return "?";
}

namespace {

using mapped::Be16;
using mapped::Be32;
using mapped::Le16;
using mapped::Le32;
using mapped::Le64;
using mapped::Within;

constexpr uint64_t kSector = 2048;  // ECMA-119 logical sector (volume descriptors)
constexpr uint64_t kDescriptorsAt = 16 * kSector;
constexpr int kMaxDescriptors = 64;    // sectors of the volume recognition sequence looked at
constexpr int kMaxContinuations = 32;  // CE areas one record may chain through
constexpr uint64_t kMaxContinuationArea = 64 * 1024;
constexpr size_t kRecordHeader = 33;  // directory record bytes before the file identifier

constexpr uint8_t kFlagDirectory = 0x02;
constexpr uint8_t kFlagAssociated = 0x04;
constexpr uint8_t kFlagMultiExtent = 0x80;

constexpr uint32_t kIfmt = 0170000, kIfdir = 0040000, kIfreg = 0100000, kIflnk = 0120000;

Status Bad(const std::string& m) { return Refused("iso9660: " + m); }

// A name from the image, printable for a message: at most 80 bytes, anything odd as \xNN.
std::string Printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += char(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > 80) out += "...";
  return "'" + out + "'";
}

// Days since 1970-01-01 of a proleptic Gregorian date (the usual era-based civil-date conversion).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// 0 when the fields are unset or out of range: a time is informational, never a reason to refuse.
int64_t UnixTime(int64_t year, int month, int day, int hour, int minute, int second,
                 int8_t quarter_hours_east) {
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 ||
      quarter_hours_east < -48 || quarter_hours_east > 52) {
    return 0;
  }
  return DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
         int64_t(quarter_hours_east) * 15 * 60;
}

// ECMA-119 9.1.5: years since 1900, month, day, hour, minute, second, offset from GMT.
int64_t ShortTime(const uint8_t* p) {
  return UnixTime(1900 + p[0], p[1], p[2], p[3], p[4], p[5], int8_t(p[6]));
}

// ECMA-119 8.4.26.1: "YYYYMMDDHHMMSScc" in digits, then the offset from GMT.
int64_t LongTime(const uint8_t* p) {
  int v[7];
  const int widths[7] = {4, 2, 2, 2, 2, 2, 2};
  for (int f = 0, at = 0; f < 7; at += widths[f], ++f) {
    v[f] = 0;
    for (int i = 0; i < widths[f]; ++i) {
      if (p[at + i] < '0' || p[at + i] > '9') return 0;
      v[f] = v[f] * 10 + (p[at + i] - '0');
    }
  }
  if (v[0] == 0) return 0;
  return UnixTime(v[0], v[1], v[2], v[3], v[4], v[5], int8_t(p[16]));
}

// The 34-byte directory record of a volume's root, and the block size its extents count in.
struct VolumeRoot {
  uint8_t record[34];
  uint32_t block_size = 0;
};

struct Volume {
  bool have_primary = false;  // false: a UDF-only image
  VolumeRoot primary;
  std::optional<VolumeRoot> joliet;
  std::string volume_id;
  bool has_udf = false;
};

Result<VolumeRoot> ParseRootOf(const uint8_t* d, const char* what) {
  VolumeRoot v;
  const uint16_t bs = Le16(d + 128);
  if (bs != Be16(d + 130)) {
    return Bad(std::string(what) + ": little- and big-endian logical block sizes disagree");
  }
  if (bs != 512 && bs != 1024 && bs != 2048) {
    return Bad(std::string(what) + ": logical block size " + std::to_string(bs));
  }
  v.block_size = bs;
  std::memcpy(v.record, d + 156, 34);
  if (v.record[0] < 34) return Bad(std::string(what) + ": root directory record too short");
  return v;
}

bool IsJolietEscape(const uint8_t* esc) {
  // Escape sequences field (bytes 88-119): %/@, %/C or %/E name UCS-2 levels 1-3.
  for (int i = 0; i + 2 < 32; ++i) {
    if (esc[i] == '%' && esc[i + 1] == '/' &&
        (esc[i + 2] == '@' || esc[i + 2] == 'C' || esc[i + 2] == 'E')) {
      return true;
    }
  }
  return false;
}

// The volume descriptor set (ECMA-119 8) and what follows it of ECMA-167's recognition sequence.
Result<Volume> ReadVolume(io::ByteSource& src) {
  Volume vol;
  bool have_primary = false;
  uint8_t d[kSector];
  for (int i = 0; i < kMaxDescriptors; ++i) {
    const uint64_t at = kDescriptorsAt + uint64_t(i) * kSector;
    if (!Within(at, kSector, src.Size())) break;
    INGOT_RETURN_IF_ERROR(io::ReadExact(src, at, d));
    const std::string_view id(reinterpret_cast<const char*>(d + 1), 5);
    if (id == "CD001") {
      if (d[0] == 1 && !have_primary) {
        if (d[6] != 1) return Bad("primary volume descriptor version " + std::to_string(d[6]));
        INGOT_ASSIGN_OR_RETURN(vol.primary, ParseRootOf(d, "primary volume descriptor"));
        std::string vid(reinterpret_cast<const char*>(d + 40), 32);
        while (!vid.empty() && (vid.back() == ' ' || vid.back() == '\0')) vid.pop_back();
        for (char& c : vid) {
          if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
        }
        vol.volume_id = vid;
        have_primary = true;
      } else if (d[0] == 2 && d[6] == 1 && !vol.joliet && IsJolietEscape(d + 88)) {
        auto j = ParseRootOf(d, "Joliet volume descriptor");
        if (j.ok()) vol.joliet = *j;  // a broken Joliet SVD only costs us Joliet names
      }
      continue;  // boot record, partition descriptors, the terminator (255): the sequence goes on
    }
    if (id == "BEA01" || id == "TEA01" || id == "BOOT2" || id == "CDW02") continue;
    if (id == "NSR02" || id == "NSR03") {
      vol.has_udf = true;
      continue;
    }
    break;  // the end of the recognition sequence
  }
  vol.have_primary = have_primary;
  if (!have_primary && !vol.has_udf) {
    return InvalidArgument("iso9660: no primary volume descriptor (type 1, 'CD001') at 32 KiB");
  }
  return vol;
}

// One directory record (ECMA-119 9.1), viewed in place.
struct Record {
  uint32_t location = 0;
  uint8_t xar_blocks = 0;
  uint32_t length = 0;
  uint8_t flags = 0;
  bool interleaved = false;
  int64_t mtime = 0;
  std::span<const uint8_t> id;
  std::span<const uint8_t> system_use;

  bool IsDot() const { return id.size() == 1 && (id[0] == 0 || id[0] == 1); }
};

Result<Record> ParseRecord(std::span<const uint8_t> r) {
  if (r.size() < kRecordHeader + 1) {
    return Bad("directory record of " + std::to_string(r.size()) + " bytes (at least 34)");
  }
  Record rec;
  rec.xar_blocks = r[1];
  rec.location = Le32(r.data() + 2);
  rec.length = Le32(r.data() + 10);
  rec.mtime = ShortTime(r.data() + 18);
  rec.flags = r[25];
  rec.interleaved = r[26] != 0 || r[27] != 0;
  const size_t id_len = r[32];
  if (id_len == 0 || kRecordHeader + id_len > r.size()) {
    return Bad("directory record identifier of " + std::to_string(id_len) +
               " bytes does not fit its record of " + std::to_string(r.size()));
  }
  rec.id = r.subspan(kRecordHeader, id_len);
  size_t su = kRecordHeader + id_len + (id_len % 2 == 0 ? 1 : 0);  // pad byte after an even id
  if (su < r.size()) rec.system_use = r.subspan(su);
  return rec;
}

// Calls fn(record bytes) for each record of a directory extent. A zero length byte pads the rest of
// a block (records never start in one block and end in the next, ECMA-119 6.8.1.1).
template <typename Fn>
Status ForEachRecord(std::span<const uint8_t> dir, uint64_t block_size, Fn&& fn) {
  size_t pos = 0;
  while (pos < dir.size()) {
    const size_t len = dir[pos];
    if (len == 0) {
      pos = (pos / block_size + 1) * block_size;
      continue;
    }
    if (len > dir.size() - pos) {
      return Bad("directory record at +" + std::to_string(pos) + " runs past its directory");
    }
    INGOT_RETURN_IF_ERROR(fn(dir.subspan(pos, len)));
    pos += len;
  }
  return Status::Ok();
}

Status CheckName(std::string_view name, const std::string& where) {
  if (name.empty()) return Bad(where + ": an entry has an empty name");
  if (name.size() > kMaxNameBytes) {
    return Bad(where + ": name of " + std::to_string(name.size()) + " bytes (at most " +
               std::to_string(kMaxNameBytes) + ")");
  }
  if (name == "." || name == "..") return Bad(where + ": an entry is named " + Printable(name));
  if (name.find('/') != std::string_view::npos) {
    return Bad(where + ": name " + Printable(name) + " holds '/'");
  }
  if (name.find('\0') != std::string_view::npos) {
    return Bad(where + ": name " + Printable(name) + " holds NUL");
  }
  return Status::Ok();
}

// ";1" (any ";<digits>") and then one trailing '.' go: "README.;1" is "README".
std::string StripVersion(std::string name) {
  const size_t semi = name.rfind(';');
  if (semi != std::string::npos && std::all_of(name.begin() + semi + 1, name.end(),
                                               [](char c) { return c >= '0' && c <= '9'; })) {
    name.resize(semi);
  }
  if (name.size() > 1 && name.back() == '.') name.pop_back();
  return name;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

// Joliet identifiers: UCS-2 big-endian; surrogate pairs (as Windows writes) are decoded, a lone
// surrogate becomes U+FFFD.
std::string Utf16BeToUtf8(std::span<const uint8_t> id) {
  std::string out;
  for (size_t i = 0; i < id.size(); i += 2) {
    uint32_t u = Be16(id.data() + i);
    if (u >= 0xd800 && u < 0xdc00 && i + 3 < id.size()) {
      const uint32_t lo = Be16(id.data() + i + 2);
      if (lo >= 0xdc00 && lo < 0xe000) {
        AppendUtf8(out, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
        i += 2;
        continue;
      }
    }
    if (u >= 0xd800 && u < 0xe000) u = 0xfffd;
    AppendUtf8(out, u);
  }
  return out;
}

Result<std::string> JolietName(std::span<const uint8_t> id) {
  if (id.size() % 2 != 0)
    return Bad("Joliet identifier of odd length " + std::to_string(id.size()));
  return StripVersion(Utf16BeToUtf8(id));
}

// What a record's System Use Sharing Protocol entries say (only the ones this reader uses).
struct SystemUse {
  bool sp = false;
  uint8_t sp_skip = 0;
  bool rrip_er = false;  // ER naming RRIP_1991A / IEEE_P1282 / IEEE_1282
  bool px = false;
  uint32_t mode = 0, uid = 0, gid = 0;
  bool nm = false;
  std::string name;
  bool sl = false;
  bool sl_join = false;  // the last SL component had CONTINUE set: the next one extends it
  bool sl_any = false;   // at least one component seen
  std::string target;
  bool tf = false;
  int64_t mtime = 0;
  bool re = false;
  bool cl = false;
  uint32_t cl_location = 0;
  bool sf = false, zf = false;
};

}  // namespace

// What the ISO 9660 and the UDF builders share: the index being built, and the checks behind the
// invariants of iso9660.h. One builder per Open().
class IndexBuilder {
 protected:
  IndexBuilder(io::ByteSource& src, const Options& options)
      : src_(src), opt_(options), tree_(new Tree()) {}

  Result<std::vector<uint8_t>> ReadBytes(uint64_t offset, uint64_t length) {
    std::vector<uint8_t> b(length);
    INGOT_RETURN_IF_ERROR(io::ReadExact(src_, offset, b));
    return b;
  }

  void SetVolume(NameSource names, uint32_t block_size, std::string volume_id, bool has_udf) {
    tree_->names_ = names;
    tree_->block_size_ = block_size;
    tree_->volume_id_ = std::move(volume_id);
    tree_->has_udf_ = has_udf;
  }
  NameSource names() const { return tree_->names_; }
  Entry& entry(uint32_t node) { return tree_->nodes_[node].entry; }
  std::vector<uint32_t>& children(uint32_t node) { return tree_->nodes_[node].children; }
  uint32_t last_node() const { return uint32_t(tree_->nodes_.size() - 1); }
  uint32_t parent(uint32_t node) const { return parents_[node]; }

  std::string PathOf(uint32_t node) const {
    std::string path;
    for (uint32_t n = node; n != 0 && n != UINT32_MAX; n = parents_[n]) {
      path = "/" + tree_->nodes_[n].entry.name + path;
    }
    return path.empty() ? "/" : path;
  }

  // Adds an entry under `parent` (UINT32_MAX for the root), within the entry and memory bounds.
  Status AddNode(Entry e, uint32_t parent) {
    if (tree_->nodes_.size() >= opt_.max_entries) {
      return Bad("more than " + std::to_string(opt_.max_entries) + " entries");
    }
    INGOT_RETURN_IF_ERROR(Charge(sizeof(Tree::Node) + sizeof(uint32_t) * 2 + e.name.size() +
                                 e.symlink_target.size()));
    const uint32_t id = uint32_t(tree_->nodes_.size());
    tree_->nodes_.push_back(Tree::Node{std::move(e), {}});
    parents_.push_back(parent);
    if (parent != UINT32_MAX) tree_->nodes_[parent].children.push_back(id);
    return Status::Ok();
  }

  Status Charge(uint64_t bytes) {
    index_bytes_ += bytes;
    if (index_bytes_ > opt_.max_index_bytes) {
      return Bad("the index would exceed " + std::to_string(opt_.max_index_bytes) + " bytes");
    }
    return Status::Ok();
  }

  // Appends [offset, offset + length) of the source to a file's extents.
  Status AddExtent(uint32_t node, uint64_t offset, uint64_t length) {
    if (length == 0) return Status::Ok();
    if (!Within(offset, length, src_.Size())) {
      return Bad("file " + Printable(PathOf(node)) + ": extent at " + std::to_string(offset) +
                 " of " + std::to_string(length) + " bytes runs past the end of the image (" +
                 std::to_string(src_.Size()) + ")");
    }
    INGOT_RETURN_IF_ERROR(Charge(sizeof(Extent)));
    Entry& e = entry(node);
    e.extents.push_back({offset, length});
    e.size += length;  // each < 2^32 and at most max_index_bytes / 16 of them: no overflow
    return Status::Ok();
  }

  Status CheckDepth(uint32_t node, uint32_t depth) {
    if (depth > opt_.max_depth) {
      return Bad("directory " + Printable(PathOf(node)) + " is deeper than " +
                 std::to_string(opt_.max_depth) + " levels");
    }
    return Status::Ok();
  }

  // Claims [offset, offset + length) for a directory of `node`: no two directories may share a
  // byte, which is what makes cycles and directories with two parents impossible.
  Status ClaimDirectory(uint32_t node, uint64_t offset, uint64_t length) {
    if (Overlaps(offset, length)) {
      return Bad("directory " + Printable(PathOf(node)) + " at " + std::to_string(offset) +
                 " overlaps another directory (a cycle or a shared directory)");
    }
    directories_.emplace(offset, offset + length);
    return Status::Ok();
  }

  Status ChargeContinuation(uint64_t bytes) {
    continuation_bytes_ += bytes;
    if (continuation_bytes_ > opt_.max_continuation_bytes) {
      return Bad("continuation areas exceed " + std::to_string(opt_.max_continuation_bytes) +
                 " bytes in all");
    }
    return Status::Ok();
  }

  // A directory's children in name order, each name once.
  Status SortChildren(uint32_t dir) {
    auto& nodes = tree_->nodes_;
    auto& kids = nodes[dir].children;
    std::sort(kids.begin(), kids.end(),
              [&](uint32_t a, uint32_t b) { return nodes[a].entry.name < nodes[b].entry.name; });
    for (size_t i = 1; i < kids.size(); ++i) {
      if (nodes[kids[i]].entry.name == nodes[kids[i - 1]].entry.name) {
        return Bad("two entries named " + Printable(nodes[kids[i]].entry.name) + " in " +
                   Printable(PathOf(dir)));
      }
    }
    return Status::Ok();
  }

  // No file's extents overlap each other or any directory; then neighbouring extents merge.
  Status CheckFileExtents() {
    std::vector<Extent> sorted;
    for (size_t n = 0; n < tree_->nodes_.size(); ++n) {
      std::vector<Extent>& x = tree_->nodes_[n].entry.extents;
      for (const Extent& e : x) {
        if (Overlaps(e.offset, e.length)) {
          return Bad("file " + Printable(PathOf(uint32_t(n))) + " overlaps a directory");
        }
      }
      if (x.size() < 2) continue;
      sorted = x;
      std::sort(sorted.begin(), sorted.end(),
                [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
      for (size_t i = 1; i < sorted.size(); ++i) {
        if (sorted[i - 1].offset + sorted[i - 1].length > sorted[i].offset) {
          return Bad("file " + Printable(PathOf(uint32_t(n))) + " has overlapping sections");
        }
      }
      // Sections that follow each other on disk become one extent: fewer sendfile calls.
      size_t out = 0;
      for (size_t i = 1; i < x.size(); ++i) {
        if (x[out].offset + x[out].length == x[i].offset) {
          x[out].length += x[i].length;
        } else {
          x[++out] = x[i];
        }
      }
      x.resize(out + 1);
    }
    return Status::Ok();
  }

  io::ByteSource& src_;
  const Options opt_;
  std::unique_ptr<Tree> tree_;

 private:
  // Whether [offset, offset + length) shares a byte with a claimed directory.
  bool Overlaps(uint64_t offset, uint64_t length) const {
    auto after = directories_.upper_bound(offset);
    return (after != directories_.end() && after->first < offset + length) ||
           (after != directories_.begin() && std::prev(after)->second > offset);
  }

  std::vector<uint32_t> parents_;             // per node; UINT32_MAX for the root
  std::map<uint64_t, uint64_t> directories_;  // claimed directory bytes: start -> end
  uint64_t continuation_bytes_ = 0;
  uint64_t index_bytes_ = 0;
};

// The ISO 9660 tree (with Rock Ridge or Joliet names).
class TreeBuilder : public IndexBuilder {
 public:
  TreeBuilder(io::ByteSource& src, const Options& options) : IndexBuilder(src, options) {}

  Result<std::unique_ptr<Tree>> Build(const Volume& vol) {
    // Rock Ridge is announced in the first record ("." ) of the primary root.
    block_size_ = vol.primary.block_size;
    INGOT_ASSIGN_OR_RETURN(Record proot, ParseRecord(vol.primary.record));
    INGOT_ASSIGN_OR_RETURN(auto root_dir, DirectoryExtent(proot, "the root directory"));
    INGOT_ASSIGN_OR_RETURN(SystemUse root_su, DetectRockRidge(root_dir));
    const VolumeRoot* walk = &vol.primary;
    NameSource names = NameSource::kPlain;
    if (rock_ridge_) {
      names = NameSource::kRockRidge;
    } else if (vol.joliet) {
      names = NameSource::kJoliet;
      walk = &*vol.joliet;
    }
    block_size_ = walk->block_size;
    SetVolume(names, block_size_, vol.volume_id, vol.has_udf);
    INGOT_ASSIGN_OR_RETURN(Record root, ParseRecord(walk->record));
    if (walk != &vol.primary) {
      INGOT_ASSIGN_OR_RETURN(root_dir, DirectoryExtent(root, "the Joliet root directory"));
    }

    Entry top;
    top.type = EntryType::kDirectory;
    top.mode = root_su.px ? (root_su.mode & 07777) : 0555;
    top.uid = root_su.uid;
    top.gid = root_su.gid;
    top.mtime = root_su.tf ? root_su.mtime : root.mtime;
    INGOT_RETURN_IF_ERROR(AddNode(std::move(top), UINT32_MAX));
    INGOT_RETURN_IF_ERROR(RegisterDirectory(root_dir.first, root_dir.second, 0));

    while (!queue_.empty()) {
      Pending p = queue_.front();
      queue_.pop_front();
      INGOT_RETURN_IF_ERROR(ReadDirectory(p));
    }
    HideEmptiedRelocationDirectory();
    INGOT_RETURN_IF_ERROR(CheckFileExtents());
    return std::move(tree_);
  }

 private:
  struct Pending {
    uint32_t node;
    uint64_t offset, length;
    uint32_t depth;
  };

  // Where a directory record's extent lies, checked against the source and the bound.
  Result<std::pair<uint64_t, uint64_t>> DirectoryExtent(const Record& r, const std::string& what) {
    const uint64_t offset = (uint64_t(r.location) + r.xar_blocks) * block_size_;  // < 2^44
    if (r.length == 0) return Bad(what + " has an empty extent");
    if (r.length > opt_.max_directory_bytes) {
      return Bad(what + " is " + std::to_string(r.length) + " bytes (at most " +
                 std::to_string(opt_.max_directory_bytes) + ")");
    }
    if (!Within(offset, r.length, src_.Size())) {
      return Bad(what + " at " + std::to_string(offset) + " of " + std::to_string(r.length) +
                 " bytes runs past the end of the image (" + std::to_string(src_.Size()) + ")");
    }
    return std::make_pair(offset, uint64_t(r.length));
  }

  Result<SystemUse> DetectRockRidge(std::pair<uint64_t, uint64_t> root) {
    INGOT_ASSIGN_OR_RETURN(auto first, ReadBytes(root.first, std::min<uint64_t>(root.second, 255)));
    if (first[0] < kRecordHeader + 1 || first[0] > first.size()) {
      return Bad("the root directory does not start with its '.' record");
    }
    INGOT_ASSIGN_OR_RETURN(Record dot, ParseRecord(std::span(first).first(first[0])));
    SystemUse su;
    const auto area = dot.system_use;
    // SUSP 5.3: SP, 7 bytes, check bytes BE EF, opens the root's first record when SUSP is in use.
    if (area.size() >= 7 && area[0] == 'S' && area[1] == 'P' && area[2] == 7 && area[4] == 0xbe &&
        area[5] == 0xef) {
      INGOT_RETURN_IF_ERROR(ParseSystemUse(area, su, "the root directory"));
      if (su.rrip_er || su.px) {
        rock_ridge_ = true;
        susp_skip_ = su.sp_skip;
      }
    }
    if (!rock_ridge_) su = SystemUse();
    return su;
  }

  // Parses a record's system use area and every continuation area it chains to.
  Status ParseSystemUse(std::span<const uint8_t> area, SystemUse& su, const std::string& where) {
    std::vector<uint8_t> cont;
    for (int hop = 0;; ++hop) {
      std::optional<std::pair<uint64_t, uint64_t>> next;
      INGOT_RETURN_IF_ERROR(ParseArea(area, su, next, where));
      if (!next) return Status::Ok();
      if (hop >= kMaxContinuations) {
        return Bad(where + ": more than " + std::to_string(kMaxContinuations) +
                   " Rock Ridge continuation areas (a loop?)");
      }
      const auto [offset, length] = *next;
      INGOT_RETURN_IF_ERROR(ChargeContinuation(length));
      INGOT_ASSIGN_OR_RETURN(cont, ReadBytes(offset, length));
      area = cont;
    }
  }

  // One area: SUSP entries are 2 signature bytes, a length (>= 4, the whole entry), a version.
  Status ParseArea(std::span<const uint8_t> a, SystemUse& su,
                   std::optional<std::pair<uint64_t, uint64_t>>& next, const std::string& where) {
    size_t pos = 0;
    while (a.size() - pos >= 4) {
      const uint8_t* e = a.data() + pos;
      const size_t len = e[2];
      if (len < 4) break;  // padding
      if (len > a.size() - pos) {
        return Bad(where + ": system use entry '" + std::string(1, char(e[0])) + char(e[1]) +
                   "' of " + std::to_string(len) + " bytes runs past its area");
      }
      pos += len;
      const uint16_t sig = uint16_t(e[0] << 8 | e[1]);
      auto is = [&](const char* s) { return sig == uint16_t(uint8_t(s[0]) << 8 | uint8_t(s[1])); };
      if (is("ST")) break;
      if (is("SP") && len >= 7) {
        su.sp = true;
        su.sp_skip = e[6];
      } else if (is("CE") && len >= 28) {
        const uint64_t block = Le32(e + 4), offset = Le32(e + 12), length = Le32(e + 20);
        const uint64_t at = block * block_size_ + offset;  // < 2^44 + 2^32
        if (length == 0) continue;
        if (length > kMaxContinuationArea || !Within(at, length, src_.Size())) {
          return Bad(where + ": Rock Ridge continuation area at " + std::to_string(at) + " of " +
                     std::to_string(length) + " bytes is outside the image or too long");
        }
        next = std::make_pair(at, length);
      } else if (is("ER") && len >= 8) {
        const size_t id_len = e[4];
        if (8 + id_len <= len) {
          const std::string_view id(reinterpret_cast<const char*>(e + 8), id_len);
          if (id == "RRIP_1991A" || id == "IEEE_P1282" || id == "IEEE_1282") su.rrip_er = true;
        }
      } else if (is("PX") && len >= 36) {
        su.px = true;
        su.mode = Le32(e + 4);
        su.uid = Le32(e + 20);
        su.gid = Le32(e + 28);
      } else if (is("NM") && len >= 5) {
        // CURRENT, PARENT and HOST carry no name of their own: the ISO 9660 name stands.
        if (e[4] & 0x26) continue;
        su.nm = true;  // several NM entries concatenate (CONTINUE only says that more follow)
        su.name.append(reinterpret_cast<const char*>(e + 5), len - 5);
        if (su.name.size() > kMaxNameBytes) {
          return Bad(where + ": Rock Ridge name longer than " + std::to_string(kMaxNameBytes));
        }
      } else if (is("SL") && len >= 5) {
        INGOT_RETURN_IF_ERROR(ParseSymlink(std::span(e + 5, len - 5), su, where));
      } else if (is("TF") && len >= 5) {
        const uint8_t flags = e[4];
        const size_t width = (flags & 0x80) ? 17 : 7;
        if (flags & 0x02) {  // MODIFY, after CREATION when that is present
          const size_t at = 5 + ((flags & 0x01) ? width : 0);
          if (at + width <= len) {
            su.tf = true;
            su.mtime = width == 17 ? LongTime(e + at) : ShortTime(e + at);
          }
        }
      } else if (is("RE")) {
        su.re = true;
      } else if (is("CL") && len >= 12) {
        su.cl = true;
        su.cl_location = Le32(e + 4);
      } else if (is("SF")) {
        su.sf = true;
      } else if (is("ZF")) {
        su.zf = true;
      }
      // PN, PL, RR, AL/AA (xattrs, Apple), anything else: not needed to serve files.
    }
    return Status::Ok();
  }

  // SL (RRIP 4.1.3): component records of flags, length, bytes; CONTINUE joins a component with the
  // next one (also across SL entries and continuation areas).
  Status ParseSymlink(std::span<const uint8_t> c, SystemUse& su, const std::string& where) {
    su.sl = true;
    size_t pos = 0;
    while (pos < c.size()) {
      if (c.size() - pos < 2 || c[pos + 1] > c.size() - pos - 2) {
        return Bad(where + ": Rock Ridge SL component runs past its entry");
      }
      const uint8_t flags = c[pos];
      const std::string_view text(reinterpret_cast<const char*>(c.data() + pos + 2), c[pos + 1]);
      pos += 2 + text.size();
      std::string_view part;
      if (flags & 0x02) {
        part = ".";
      } else if (flags & 0x04) {
        part = "..";
      } else if (flags & 0x38) {
        part = "";  // the root (or the volume root / host, taken as the root): a leading '/'
      } else {
        part = text;
      }
      if (part.find('\0') != std::string_view::npos || part.find('/') != std::string_view::npos) {
        return Bad(where + ": Rock Ridge symlink component " + Printable(text) +
                   " holds NUL or '/'");
      }
      if (su.sl_any && !su.sl_join) su.target += '/';
      su.target += part;
      su.sl_any = true;
      su.sl_join = flags & 0x01;
      if (su.target.size() > kMaxSymlinkBytes) {
        return Bad(where + ": Rock Ridge symlink target longer than " +
                   std::to_string(kMaxSymlinkBytes));
      }
    }
    return Status::Ok();
  }

  Status AddExtent(uint32_t node, const Record& r) {
    return IndexBuilder::AddExtent(node, (uint64_t(r.location) + r.xar_blocks) * block_size_,
                                   r.length);
  }

  Status RegisterDirectory(uint64_t offset, uint64_t length, uint32_t depth) {
    const uint32_t node = last_node();
    INGOT_RETURN_IF_ERROR(CheckDepth(node, depth));
    INGOT_RETURN_IF_ERROR(ClaimDirectory(node, offset, length));
    queue_.push_back({node, offset, length, depth});
    return Status::Ok();
  }

  Status ReadDirectory(const Pending& dir) {
    INGOT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadBytes(dir.offset, dir.length));
    // A multi-extent file in progress: its node and the raw identifier its sections repeat.
    std::optional<uint32_t> open_file;
    std::vector<uint8_t> open_id;
    bool relocated_here = false;
    const std::string dir_path = PathOf(dir.node);
    const std::string where = "in " + Printable(dir_path);

    INGOT_RETURN_IF_ERROR(
        ForEachRecord(bytes, block_size_, [&](std::span<const uint8_t> raw) -> Status {
          INGOT_ASSIGN_OR_RETURN(Record r, ParseRecord(raw));
          if (r.IsDot()) return Status::Ok();
          if (open_file) {  // the next section of a multi-extent file (ECMA-119 6.5.1)
            if (!std::equal(r.id.begin(), r.id.end(), open_id.begin(), open_id.end()) ||
                (r.flags & kFlagDirectory)) {
              return Bad("multi-extent file " + Printable(PathOf(*open_file)) +
                         " is not followed by its next section");
            }
            if (r.interleaved)
              return Unsupported("iso9660: interleaved file " + PathOf(*open_file));
            INGOT_RETURN_IF_ERROR(AddExtent(*open_file, r));
            if (!(r.flags & kFlagMultiExtent)) open_file.reset();
            return Status::Ok();
          }
          if (r.flags & kFlagAssociated) return Status::Ok();  // e.g. Apple resource forks

          SystemUse su;
          if (rock_ridge_ && r.system_use.size() > susp_skip_) {
            INGOT_RETURN_IF_ERROR(ParseSystemUse(r.system_use.subspan(susp_skip_), su, where));
          }
          if (su.re) {  // the real place of a relocated directory: reached through its CL instead
            relocated_here = true;
            return Status::Ok();
          }
          Entry e;
          if (su.nm) {
            e.name = std::move(su.name);
          } else if (names() == NameSource::kJoliet) {
            INGOT_ASSIGN_OR_RETURN(e.name, JolietName(r.id));
          } else {
            e.name =
                StripVersion(std::string(reinterpret_cast<const char*>(r.id.data()), r.id.size()));
          }
          INGOT_RETURN_IF_ERROR(CheckName(e.name, where));
          const std::string what =
              Printable(dir_path == "/" ? "/" + e.name : dir_path + "/" + e.name);
          if (su.sf || su.zf) {
            return Unsupported("iso9660: " + what + " is a " +
                               (su.sf ? "sparse (SF)" : "zisofs (ZF)") + " Rock Ridge file");
          }
          e.uid = su.uid;
          e.gid = su.gid;
          e.mtime = su.tf ? su.mtime : r.mtime;
          const uint32_t ifmt = su.mode & kIfmt;
          const bool is_dir = su.cl || (r.flags & kFlagDirectory);
          if (is_dir) {
            // (A CL placeholder's own PX may describe the placeholder; the directory is what CL
            // names.)
            if (!su.cl && su.px && ifmt != kIfdir) {
              return Bad(what + " is a directory whose PX mode says otherwise");
            }
            if (r.flags & kFlagMultiExtent) return Bad(what + " is a multi-extent directory");
            e.type = EntryType::kDirectory;
            e.mode = su.px ? su.mode & 07777 : 0555;
            std::pair<uint64_t, uint64_t> extent;
            if (su.cl) {
              INGOT_ASSIGN_OR_RETURN(extent, RelocatedDirectory(su.cl_location, what));
            } else {
              INGOT_ASSIGN_OR_RETURN(extent, DirectoryExtent(r, what));
            }
            INGOT_RETURN_IF_ERROR(AddNode(std::move(e), dir.node));
            return RegisterDirectory(extent.first, extent.second, dir.depth + 1);
          }
          if ((su.px && ifmt == kIflnk) || (!su.px && su.sl)) {
            if (!su.sl_any) return Bad(what + " is a symlink without a target");
            if (su.sl_join) return Bad(what + ": symlink target ends inside a component");
            e.type = EntryType::kSymlink;
            e.mode = su.px ? su.mode & 07777 : 0777;
            e.symlink_target = std::move(su.target);
            e.size = e.symlink_target.size();
            return AddNode(std::move(e), dir.node);
          }
          if (su.px && ifmt != kIfreg)
            return Status::Ok();  // devices, FIFOs, sockets: nothing to serve
          if (r.interleaved) return Unsupported("iso9660: interleaved file " + what);
          e.type = EntryType::kFile;
          e.mode = su.px ? su.mode & 07777 : 0444;
          INGOT_RETURN_IF_ERROR(AddNode(std::move(e), dir.node));
          const uint32_t id = last_node();
          INGOT_RETURN_IF_ERROR(AddExtent(id, r));
          if (r.flags & kFlagMultiExtent) {
            open_file = id;
            open_id.assign(r.id.begin(), r.id.end());
          }
          return Status::Ok();
        }));
    if (open_file) {
      return Bad("multi-extent file " + Printable(PathOf(*open_file)) + " has no last section");
    }
    if (relocated_here) relocation_dirs_.push_back(dir.node);

    return SortChildren(dir.node);
  }

  // RRIP CL: the directory really lives at `block`, whose first record ("." ) gives its length.
  Result<std::pair<uint64_t, uint64_t>> RelocatedDirectory(uint32_t block,
                                                           const std::string& what) {
    const uint64_t offset = uint64_t(block) * block_size_;
    if (!Within(offset, kRecordHeader + 1, src_.Size())) {
      return Bad(what + ": Rock Ridge CL points past the end of the image");
    }
    INGOT_ASSIGN_OR_RETURN(auto b,
                           ReadBytes(offset, std::min<uint64_t>(255, src_.Size() - offset)));
    if (b[0] < kRecordHeader + 1 || b[0] > b.size()) {
      return Bad(what + ": Rock Ridge CL does not point at a directory");
    }
    INGOT_ASSIGN_OR_RETURN(Record dot, ParseRecord(std::span(b).first(b[0])));
    if (!dot.IsDot() || dot.id[0] != 0 || !(dot.flags & kFlagDirectory) || dot.location != block) {
      return Bad(what + ": Rock Ridge CL does not point at a directory's '.' record");
    }
    return DirectoryExtent(dot, what);
  }

  // The directory relocated directories were moved to (rr_moved, .rr_moved) is an artefact of the
  // ISO 9660 depth limit: once its relocated children are hidden, an empty one at the root goes
  // too.
  void HideEmptiedRelocationDirectory() {
    auto& root = children(0);
    for (uint32_t d : relocation_dirs_) {
      if (parent(d) == 0 && children(d).empty()) {
        root.erase(std::remove(root.begin(), root.end(), d), root.end());
      }
    }
  }

  std::deque<Pending> queue_;
  std::vector<uint32_t> relocation_dirs_;
  uint64_t block_size_ = 2048;
  bool rock_ridge_ = false;
  uint8_t susp_skip_ = 0;
};

// ---------------------------------------------------------------------------------------------
// UDF (ECMA-167 3rd ed., OSTA UDF 2.01), read only when the image has no ISO 9660 volume. What is
// read: the Anchor Volume Descriptor Pointer at sector 256, the main Volume Descriptor Sequence
// (one Partition Descriptor, one Logical Volume Descriptor with one type 1 partition map), the File
// Set Descriptor, File Entries and Extended File Entries (strategy 4) with short, long or embedded
// allocation descriptors (and Allocation Extent Descriptors continuing them), File Identifier
// Descriptors, and symlinks' path components. Refused as unsupported: other logical block sizes
// than 2048, virtual/sparable/metadata partitions (UDF 2.50 metadata partitions included), extended
// allocation descriptors, unrecorded (sparse) extents, strategy 4096.

namespace {

constexpr uint64_t kUdfBlock = 2048;
constexpr int kMaxAllocationExtents =
    64;  // Allocation Extent Descriptors one file may chain through

// CRC-ITU-T (x^16 + x^12 + x^5 + 1, initial 0), ECMA-167 1/7.2.6.
uint16_t Crc16(std::span<const uint8_t> b) {
  uint16_t crc = 0;
  for (uint8_t byte : b) {
    crc ^= uint16_t(byte) << 8;
    for (int i = 0; i < 8; ++i)
      crc = (crc & 0x8000) ? uint16_t((crc << 1) ^ 0x1021) : uint16_t(crc << 1);
  }
  return crc;
}

// ECMA-167 3/7.2: a descriptor tag: its identifier, the checksum of its 16 bytes and the CRC of
// what follows (over the CRC length it states, which must lie inside `d`).
Status CheckTag(std::span<const uint8_t> d, uint16_t want, const std::string& what) {
  if (d.size() < 16)
    return Bad("UDF " + what + ": descriptor of " + std::to_string(d.size()) + " bytes");
  uint8_t sum = 0;
  for (int i = 0; i < 16; ++i) sum = uint8_t(sum + (i == 4 ? 0 : d[i]));
  if (sum != d[4]) return Bad("UDF " + what + ": bad descriptor tag checksum");
  if (Le16(d.data()) != want) {
    return Bad("UDF " + what + ": descriptor tag " + std::to_string(Le16(d.data())) + " where " +
               std::to_string(want) + " belongs");
  }
  const size_t crc_len = Le16(d.data() + 10);
  if (crc_len > d.size() - 16) return Bad("UDF " + what + ": descriptor CRC length past its end");
  if (Crc16(d.subspan(16, crc_len)) != Le16(d.data() + 8)) {
    return Bad("UDF " + what + ": descriptor CRC mismatch");
  }
  return Status::Ok();
}

struct LongAd {
  uint32_t length = 0;  // 30 bits
  uint8_t type = 0;     // 0 recorded, 1 allocated only, 2 neither, 3 next allocation extent
  uint32_t block = 0;
  uint16_t partition = 0;
};

LongAd ParseLongAd(const uint8_t* p) {
  return {Le32(p) & 0x3fffffff, uint8_t(Le32(p) >> 30), Le32(p + 4), Le16(p + 8)};
}

// ECMA-167 1/7.3 timestamp: type and time zone (minutes, 12-bit signed; -2047 unset), year, month,
// day, hour, minute, second, then fractions.
int64_t UdfTime(const uint8_t* p) {
  const uint16_t type_tz = Le16(p);
  int tz = type_tz & 0x0fff;
  if (tz & 0x0800) tz -= 0x1000;
  if (tz == -2047 || (type_tz >> 12) != 1) tz = 0;
  const int64_t t = UnixTime(int16_t(Le16(p + 2)), p[4], p[5], p[6], p[7], p[8], 0);
  return t == 0 ? 0 : t - int64_t(tz) * 60;
}

// OSTA CS0 (UDF 2.1.2): a compression identifier byte, then 8-bit (Latin-1) or 16-bit (UTF-16BE)
// characters.
Result<std::string> Cs0(std::span<const uint8_t> b) {
  if (b.empty()) return std::string();
  const std::span<const uint8_t> chars = b.subspan(1);
  if (b[0] == 8 || b[0] == 254) {
    std::string out;
    for (uint8_t c : chars) AppendUtf8(out, c);
    return out;
  }
  if (b[0] == 16 || b[0] == 255) {
    if (chars.size() % 2 != 0) return Bad("UDF name of odd length in 16-bit characters");
    return Utf16BeToUtf8(chars);
  }
  return Bad("UDF name with compression identifier " + std::to_string(b[0]));
}

// What a File Entry or Extended File Entry says.
struct UdfFile {
  uint8_t type = 0;  // ECMA-167 4/14.6.6: 4 directory, 5 file, 12 symlink
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t mtime = 0;
  uint64_t length = 0;  // information length
  std::vector<Extent> extents;
};

}  // namespace

class UdfBuilder : public IndexBuilder {
 public:
  UdfBuilder(io::ByteSource& src, const Options& options) : IndexBuilder(src, options) {}

  Result<std::unique_ptr<Tree>> Build() {
    // The Anchor Volume Descriptor Pointer (ECMA-167 3/10.2) at sector 256.
    if (!Within(256 * kUdfBlock, kUdfBlock, src_.Size())) {
      return Bad("UDF image too short for its anchor at sector 256");
    }
    INGOT_ASSIGN_OR_RETURN(auto avdp, ReadBytes(256 * kUdfBlock, kUdfBlock));
    INGOT_RETURN_IF_ERROR(CheckTag(avdp, 2, "anchor volume descriptor pointer"));
    const uint64_t vds_len =
        std::min<uint64_t>(Le32(avdp.data() + 16) / kUdfBlock, kMaxDescriptors);
    const uint64_t vds_at = uint64_t(Le32(avdp.data() + 20)) * kUdfBlock;
    std::optional<std::vector<uint8_t>> lvd;
    std::vector<std::vector<uint8_t>> pds;
    for (uint64_t i = 0; i < vds_len; ++i) {
      const uint64_t at = vds_at + i * kUdfBlock;
      if (!Within(at, kUdfBlock, src_.Size())) return Bad("UDF volume descriptors past the end");
      INGOT_ASSIGN_OR_RETURN(auto d, ReadBytes(at, kUdfBlock));
      const uint16_t tag = Le16(d.data());
      if (tag == 8) break;  // terminating descriptor
      if (tag == 5 && pds.size() < 8) {
        INGOT_RETURN_IF_ERROR(CheckTag(d, 5, "partition descriptor"));
        pds.push_back(std::move(d));
      } else if (tag == 6 && !lvd) {
        INGOT_RETURN_IF_ERROR(CheckTag(d, 6, "logical volume descriptor"));
        lvd = std::move(d);
      }
    }
    if (!lvd || pds.empty()) return Bad("UDF volume without a logical volume or a partition");
    const uint8_t* l = lvd->data();
    if (Le32(l + 212) != kUdfBlock) {
      return Unsupported("iso9660: UDF logical block size " + std::to_string(Le32(l + 212)) +
                         " is not supported (2048 only)");
    }
    const uint32_t map_len = Le32(l + 264), maps = Le32(l + 268);
    if (maps != 1 || map_len < 6 || 440 + uint64_t(map_len) > kUdfBlock) {
      return Unsupported("iso9660: UDF volume with " + std::to_string(maps) +
                         " partition maps is not supported (one only)");
    }
    if (l[440] != 1 || l[441] != 6) {
      return Unsupported("iso9660: UDF partition map of type " + std::to_string(l[440]) +
                         " (virtual, sparable or metadata partition) is not supported yet");
    }
    const uint16_t number = Le16(l + 444);
    bool found = false;
    for (const auto& pd : pds) {
      if (Le16(pd.data() + 22) != number) continue;
      part_start_ = Le32(pd.data() + 188);
      part_blocks_ = Le32(pd.data() + 192);
      found = true;
      break;
    }
    if (!found) return Bad("UDF partition " + std::to_string(number) + " has no descriptor");
    if (!Within(part_start_ * kUdfBlock, part_blocks_ * kUdfBlock, src_.Size())) {
      return Bad("UDF partition runs past the end of the image");
    }
    std::string volume_id;
    const uint8_t id_len = l[84 + 127];  // a dstring: its last byte is the length used
    if (id_len > 0 && id_len < 128) {
      auto v = Cs0(std::span(l + 84, id_len));
      if (v.ok()) volume_id = *v;
    }
    for (char& c : volume_id) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    SetVolume(NameSource::kUdf, kUdfBlock, volume_id, true);

    // The File Set Descriptor (4/14.1), named by the logical volume's contents use, holds the root.
    const LongAd fsd_ad = ParseLongAd(l + 248);
    INGOT_ASSIGN_OR_RETURN(uint64_t fsd_at, BlockOffset(fsd_ad, kUdfBlock, "file set descriptor"));
    INGOT_ASSIGN_OR_RETURN(auto fsd, ReadBytes(fsd_at, kUdfBlock));
    INGOT_RETURN_IF_ERROR(CheckTag(fsd, 256, "file set descriptor"));
    INGOT_ASSIGN_OR_RETURN(UdfFile root, ReadFileEntry(ParseLongAd(fsd.data() + 400), "/"));
    if (root.type != 4) return Bad("UDF root is not a directory");
    Entry top;
    top.type = EntryType::kDirectory;
    top.mode = root.mode;
    top.uid = root.uid;
    top.gid = root.gid;
    top.mtime = root.mtime;
    INGOT_RETURN_IF_ERROR(AddNode(std::move(top), UINT32_MAX));
    INGOT_RETURN_IF_ERROR(RegisterDirectory(std::move(root.extents), 0));
    while (!queue_.empty()) {
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      INGOT_RETURN_IF_ERROR(ReadDirectory(p));
    }
    INGOT_RETURN_IF_ERROR(CheckFileExtents());
    return std::move(tree_);
  }

 private:
  struct Pending {
    uint32_t node;
    std::vector<Extent> extents;
    uint32_t depth;
  };

  // Where `length` bytes at a logical block of the (only) partition are in the image.
  Result<uint64_t> BlockOffset(const LongAd& ad, uint64_t length, const std::string& what) {
    if (ad.partition != 0) {
      return Bad("UDF " + what + " refers to partition reference " + std::to_string(ad.partition));
    }
    if (!Within(uint64_t(ad.block) * kUdfBlock, length, part_blocks_ * kUdfBlock)) {
      return Bad("UDF " + what + " at block " + std::to_string(ad.block) + " of " +
                 std::to_string(length) + " bytes runs past its partition");
    }
    return (part_start_ + ad.block) * kUdfBlock;
  }

  // A File Entry (4/14.9) or Extended File Entry (4/14.17) and where its data lies.
  Result<UdfFile> ReadFileEntry(const LongAd& icb, const std::string& what) {
    INGOT_ASSIGN_OR_RETURN(uint64_t at, BlockOffset(icb, kUdfBlock, what + " file entry"));
    INGOT_ASSIGN_OR_RETURN(auto d, ReadBytes(at, kUdfBlock));
    const uint16_t tag = Le16(d.data());
    if (tag != 261 && tag != 266) {
      return Bad("UDF " + what + ": descriptor tag " + std::to_string(tag) +
                 " is not a file entry");
    }
    INGOT_RETURN_IF_ERROR(CheckTag(d, tag, what + " file entry"));
    if (Le32(d.data() + 12) != icb.block) return Bad("UDF " + what + ": file entry tag location");
    const bool extended = tag == 266;
    if (Le16(d.data() + 20) != 4) {
      return Unsupported("iso9660: UDF " + what + ": ICB strategy " +
                         std::to_string(Le16(d.data() + 20)) + " is not supported");
    }
    UdfFile f;
    f.type = d[27];
    const uint16_t flags = Le16(d.data() + 34);
    const uint32_t uid = Le32(d.data() + 36), gid = Le32(d.data() + 40), perm = Le32(d.data() + 44);
    f.uid = uid == UINT32_MAX ? 0 : uid;
    f.gid = gid == UINT32_MAX ? 0 : gid;
    // ECMA-167 4/14.9.5: other, group, owner in 5-bit groups (execute, write, read, ...).
    f.mode = (perm & 7) | ((perm >> 5) & 7) << 3 | ((perm >> 10) & 7) << 6;
    if (flags & 0x40) f.mode |= 04000;
    if (flags & 0x80) f.mode |= 02000;
    if (flags & 0x100) f.mode |= 01000;
    f.length = Le64(d.data() + 56);
    f.mtime = UdfTime(d.data() + (extended ? 92 : 84));
    const uint64_t base = extended ? 216 : 176;
    const uint64_t l_ea = Le32(d.data() + (extended ? 208 : 168));
    const uint64_t l_ad = Le32(d.data() + (extended ? 212 : 172));
    if (base + l_ea + l_ad > kUdfBlock)
      return Bad("UDF " + what + ": file entry overflows its block");
    const uint64_t ads_at = base + l_ea;
    switch (flags & 7) {
      case 3:  // the data itself, embedded in the entry
        if (f.length > l_ad) return Bad("UDF " + what + ": embedded data longer than its room");
        if (f.length > 0) f.extents.push_back({at + ads_at, f.length});
        return f;
      case 0:
      case 1:
        break;
      default:
        return Unsupported("iso9660: UDF " + what + ": extended allocation descriptors");
    }
    const bool is_long = (flags & 7) == 1;
    std::vector<uint8_t> ads(d.begin() + ads_at, d.begin() + ads_at + l_ad);
    uint64_t remaining = f.length;
    for (int hop = 0;; ++hop) {
      bool next = false;
      const size_t step = is_long ? 16 : 8;
      for (size_t i = 0; i + step <= ads.size() && remaining > 0; i += step) {
        LongAd ad =
            is_long ? ParseLongAd(ads.data() + i)
                    : LongAd{Le32(ads.data() + i) & 0x3fffffff, uint8_t(Le32(ads.data() + i) >> 30),
                             Le32(ads.data() + i + 4), icb.partition};
        if (ad.length == 0) break;
        if (ad.type == 3) {  // the descriptors go on in an Allocation Extent Descriptor (4/14.5)
          if (hop >= kMaxAllocationExtents) {
            return Bad("UDF " + what + ": more than " + std::to_string(kMaxAllocationExtents) +
                       " allocation extents (a loop?)");
          }
          INGOT_RETURN_IF_ERROR(ChargeContinuation(kUdfBlock));
          INGOT_ASSIGN_OR_RETURN(uint64_t aed_at,
                                 BlockOffset(ad, kUdfBlock, what + " allocation extent"));
          INGOT_ASSIGN_OR_RETURN(auto aed, ReadBytes(aed_at, kUdfBlock));
          INGOT_RETURN_IF_ERROR(CheckTag(aed, 258, what + " allocation extent"));
          const uint64_t n = Le32(aed.data() + 20);
          if (24 + n > kUdfBlock)
            return Bad("UDF " + what + ": allocation extent overflows its block");
          ads.assign(aed.begin() + 24, aed.begin() + 24 + n);
          next = true;
          break;
        }
        if (ad.type != 0) {
          return Unsupported("iso9660: UDF " + what + ": unrecorded (sparse) extents");
        }
        const uint64_t take = std::min<uint64_t>(ad.length, remaining);
        INGOT_ASSIGN_OR_RETURN(uint64_t x, BlockOffset(ad, take, what));
        if (f.extents.size() >= (opt_.max_index_bytes / sizeof(Extent))) {
          return Bad("UDF " + what + ": too many extents");
        }
        f.extents.push_back({x, take});
        remaining -= take;
      }
      if (!next) break;
    }
    if (remaining > 0) return Bad("UDF " + what + ": extents end before its length");
    return f;
  }

  Status RegisterDirectory(std::vector<Extent> extents, uint32_t depth) {
    const uint32_t node = last_node();
    INGOT_RETURN_IF_ERROR(CheckDepth(node, depth));
    uint64_t total = 0;
    for (const Extent& x : extents) {
      total += x.length;
      INGOT_RETURN_IF_ERROR(ClaimDirectory(node, x.offset, x.length));
    }
    if (total > opt_.max_directory_bytes) {
      return Bad("directory " + Printable(PathOf(node)) + " is " + std::to_string(total) +
                 " bytes (at most " + std::to_string(opt_.max_directory_bytes) + ")");
    }
    queue_.push_back({node, std::move(extents), depth});
    return Status::Ok();
  }

  // File Identifier Descriptors (4/14.4), one per child, 4-byte aligned.
  Status ReadDirectory(const Pending& dir) {
    std::vector<uint8_t> data;
    for (const Extent& x : dir.extents) {
      INGOT_ASSIGN_OR_RETURN(auto part, ReadBytes(x.offset, x.length));
      data.insert(data.end(), part.begin(), part.end());
    }
    const std::string dir_path = PathOf(dir.node);
    const std::string where = "in " + Printable(dir_path);
    size_t pos = 0;
    while (pos < data.size()) {
      const std::span<const uint8_t> rest = std::span<const uint8_t>(data).subspan(pos);
      if (rest.size() < 38) return Bad(where + ": truncated UDF file identifier");
      const size_t l_fi = rest[19], l_iu = Le16(rest.data() + 36);
      const size_t len = (38 + l_iu + l_fi + 3) / 4 * 4;
      if (len > rest.size() && 38 + l_iu + l_fi > rest.size()) {
        return Bad(where + ": UDF file identifier runs past its directory");
      }
      const std::span<const uint8_t> fid = rest.first(std::min(len, rest.size()));
      INGOT_RETURN_IF_ERROR(CheckTag(fid, 257, "file identifier " + where));
      pos += fid.size();
      const uint8_t chars = fid[18];
      if (chars & 0x0c) continue;  // the parent, or a deleted entry
      // Each identifier costs a file entry read, also those (devices, ...) that add no entry.
      if (++identifiers_ > opt_.max_entries) {
        return Bad("more than " + std::to_string(opt_.max_entries) + " UDF file identifiers");
      }
      INGOT_ASSIGN_OR_RETURN(std::string name, Cs0(fid.subspan(38 + l_iu, l_fi)));
      INGOT_RETURN_IF_ERROR(CheckName(name, where));
      const std::string what = dir_path == "/" ? "/" + name : dir_path + "/" + name;
      INGOT_ASSIGN_OR_RETURN(UdfFile f, ReadFileEntry(ParseLongAd(fid.data() + 20), what));
      Entry e;
      e.name = std::move(name);
      e.mode = f.mode;
      e.uid = f.uid;
      e.gid = f.gid;
      e.mtime = f.mtime;
      if ((f.type == 4) != bool(chars & 0x02)) {
        return Bad(where + ": " + Printable(what) + " is a directory in one place only");
      }
      if (f.type == 4) {
        e.type = EntryType::kDirectory;
        INGOT_RETURN_IF_ERROR(AddNode(std::move(e), dir.node));
        INGOT_RETURN_IF_ERROR(RegisterDirectory(std::move(f.extents), dir.depth + 1));
      } else if (f.type == 5) {
        e.type = EntryType::kFile;
        INGOT_RETURN_IF_ERROR(AddNode(std::move(e), dir.node));
        const uint32_t id = last_node();
        for (const Extent& x : f.extents) INGOT_RETURN_IF_ERROR(AddExtent(id, x.offset, x.length));
      } else if (f.type == 12) {
        e.type = EntryType::kSymlink;
        INGOT_ASSIGN_OR_RETURN(e.symlink_target, SymlinkTarget(f, what));
        e.size = e.symlink_target.size();
        INGOT_RETURN_IF_ERROR(AddNode(std::move(e), dir.node));
      }
      // Devices, FIFOs, sockets, stream directories: nothing to serve.
    }
    return SortChildren(dir.node);
  }

  // Path components (4/14.16.1): type, length, version, identifier.
  Result<std::string> SymlinkTarget(const UdfFile& f, const std::string& what) {
    if (f.length > 2 * kMaxSymlinkBytes) return Bad("UDF symlink " + Printable(what) + " too long");
    std::vector<uint8_t> b;
    for (const Extent& x : f.extents) {
      INGOT_ASSIGN_OR_RETURN(auto part, ReadBytes(x.offset, x.length));
      b.insert(b.end(), part.begin(), part.end());
    }
    std::string target;
    bool first = true;
    for (size_t pos = 0; pos < b.size();) {
      if (b.size() - pos < 4 || b[pos + 1] > b.size() - pos - 4) {
        return Bad("UDF symlink " + Printable(what) + ": component runs past its end");
      }
      const uint8_t type = b[pos];
      const std::span<const uint8_t> id(b.data() + pos + 4, b[pos + 1]);
      pos += 4 + id.size();
      std::string part;
      switch (type) {
        case 1:
        case 2:
          part = "";  // the root: a leading '/'
          break;
        case 3:
          part = "..";
          break;
        case 4:
          part = ".";
          break;
        case 5: {
          INGOT_ASSIGN_OR_RETURN(part, Cs0(id));
          if (part.empty() || part.find('/') != std::string::npos ||
              part.find('\0') != std::string::npos) {
            return Bad("UDF symlink " + Printable(what) + ": component " + Printable(part));
          }
          break;
        }
        default:
          return Bad("UDF symlink " + Printable(what) + ": component type " + std::to_string(type));
      }
      if (!first) target += '/';
      target += part;
      first = false;
      if (target.size() > kMaxSymlinkBytes)
        return Bad("UDF symlink " + Printable(what) + " too long");
    }
    if (first) return Bad("UDF symlink " + Printable(what) + " without a target");
    return target.empty() ? "/" : target;
  }

  std::deque<Pending> queue_;
  uint64_t part_start_ = 0, part_blocks_ = 0;
  uint64_t identifiers_ = 0;
};

Result<std::unique_ptr<Tree>> Tree::Open(io::ByteSource& source, const Options& options) {
  INGOT_ASSIGN_OR_RETURN(Volume vol, ReadVolume(source));
  if (!vol.have_primary) return UdfBuilder(source, options).Build();
  return TreeBuilder(source, options).Build(vol);
}

Result<uint32_t> Tree::Find(std::string_view path) const {
  uint32_t node = 0;
  size_t pos = 0;
  if (path.find('\0') != std::string_view::npos) return InvalidArgument("iso9660: NUL in a path");
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidArgument("iso9660: '..' in a path");
    const Node& dir = nodes_[node];
    if (dir.entry.type != EntryType::kDirectory) {
      return NotFound("iso9660: " + std::string(path) + ": a component is not a directory");
    }
    auto it =
        std::lower_bound(dir.children.begin(), dir.children.end(), part,
                         [&](uint32_t c, std::string_view n) { return nodes_[c].entry.name < n; });
    if (it == dir.children.end() || nodes_[*it].entry.name != part) {
      return NotFound("iso9660: no such entry: " + std::string(path));
    }
    node = *it;
  }
  return node;
}

Result<const Entry*> Tree::Lookup(std::string_view path) const {
  INGOT_ASSIGN_OR_RETURN(uint32_t node, Find(path));
  return &nodes_[node].entry;
}

Result<std::vector<const Entry*>> Tree::ListDir(std::string_view path) const {
  INGOT_ASSIGN_OR_RETURN(uint32_t node, Find(path));
  if (nodes_[node].entry.type != EntryType::kDirectory) {
    return NotFound("iso9660: not a directory: " + std::string(path));
  }
  std::vector<const Entry*> out;
  out.reserve(nodes_[node].children.size());
  for (uint32_t c : nodes_[node].children) out.push_back(&nodes_[c].entry);
  return out;
}

Status Tree::Walk(const Visitor& visit) const {
  std::vector<std::pair<uint32_t, std::string>> stack;  // (node, its path)
  auto push_children = [&](uint32_t n, const std::string& prefix) {
    const auto& kids = nodes_[n].children;
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) {
      stack.emplace_back(
          *it, prefix.empty() ? nodes_[*it].entry.name : prefix + "/" + nodes_[*it].entry.name);
    }
  };
  push_children(0, "");
  while (!stack.empty()) {
    auto [n, path] = std::move(stack.back());
    stack.pop_back();
    INGOT_RETURN_IF_ERROR(visit(path, nodes_[n].entry));
    push_children(n, path);
  }
  return Status::Ok();
}

Result<size_t> ReadFile(io::ByteSource& source, const Entry& file, uint64_t offset,
                        std::span<uint8_t> buf) {
  if (file.type != EntryType::kFile) return InvalidArgument("iso9660: not a file: " + file.name);
  size_t done = 0;
  uint64_t skip = offset;
  for (const Extent& x : file.extents) {
    if (done == buf.size()) break;
    if (skip >= x.length) {
      skip -= x.length;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(x.length - skip, buf.size() - done);
    INGOT_RETURN_IF_ERROR(io::ReadExact(source, x.offset + skip, buf.subspan(done, n)));
    done += n;
    skip = 0;
  }
  return done;
}

}  // namespace ingot::formats::iso9660
