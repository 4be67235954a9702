// The ISO 9660 tree reader against ISOs made by xorriso and genisoimage (every file's bytes, read
// through its extents, must equal the source file's), and against hostile hand-made volumes.
#include "formats/iso9660.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>

#include "formats/image_test_support.h"
#include "formats/mapped_image.h"
#include "io/file.h"
#include "io/memory.h"

namespace ingot::formats::iso9660 {
namespace {

namespace fs = std::filesystem;
using testing::MustRun;
using testing::TempDir;

std::string Q(const std::string& s) { return "'" + s + "'"; }

std::unique_ptr<io::FileSource> OpenSource(const std::string& path) {
  auto f = io::FileSource::Open(path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? std::move(*f) : nullptr;
}

// Compares a file's content read through its extents with the file on disk, 1 MiB at a time.
void ExpectSameContent(io::ByteSource& iso, const Entry& e, const std::string& disk_path) {
  auto disk = OpenSource(disk_path);
  ASSERT_TRUE(disk);
  ASSERT_EQ(e.size, disk->Size()) << disk_path;
  uint64_t sum = 0;
  for (const Extent& x : e.extents) {
    EXPECT_GT(x.length, 0u);
    EXPECT_TRUE(mapped::Within(x.offset, x.length, iso.Size()));
    sum += x.length;
  }
  EXPECT_EQ(sum, e.size);
  std::vector<uint8_t> a(1 << 20), b(1 << 20);
  // Files over 64 MiB (the sparse multi-extent one) are compared in 1 MiB windows: at the start, at
  // the end, at every 4 GiB - 2 KiB step (where xorriso cuts sections) and at 1 GiB strides.
  std::vector<uint64_t> windows;
  if (e.size <= (64u << 20)) {
    for (uint64_t off = 0; off < e.size; off += a.size()) windows.push_back(off);
  } else {
    for (uint64_t off = 0; off < e.size; off += 1ull << 30) windows.push_back(off);
    for (uint64_t cut = 0xfffff800; cut < e.size; cut += 0xfffff800) windows.push_back(cut - 4096);
    windows.push_back(e.size - std::min<uint64_t>(e.size, a.size()));
  }
  for (uint64_t off : windows) {
    const size_t n = std::min<uint64_t>(a.size(), e.size - off);
    auto got = ReadFile(iso, e, off, std::span(a).first(n));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(*got, n);
    ASSERT_TRUE(io::ReadExact(*disk, off, std::span(b).first(n)).ok());
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), n)) << disk_path << " differs near " << off;
  }
}

// Every entry of the tree matches `root` on disk (type, content, target, and mode/mtime when Rock
// Ridge carries them), and every file, directory and symlink under `root` is in the tree.
void ExpectSameTree(io::ByteSource& iso, const Tree& tree, const std::string& root) {
  std::set<std::string> seen;
  Status s = tree.Walk([&](const std::string& path, const Entry& e) -> Status {
    seen.insert(path);
    const std::string disk = root + "/" + path;
    struct stat st;
    EXPECT_EQ(lstat(disk.c_str(), &st), 0) << "not on disk: " << path;
    auto looked = tree.Lookup("/" + path);
    EXPECT_TRUE(looked.ok() && *looked == &e) << path;
    switch (e.type) {
      case EntryType::kDirectory: {
        EXPECT_TRUE(S_ISDIR(st.st_mode)) << path;
        auto kids = tree.ListDir(path);
        EXPECT_TRUE(kids.ok());
        for (size_t i = 1; kids.ok() && i < kids->size(); ++i) {
          EXPECT_LT((*kids)[i - 1]->name, (*kids)[i]->name);
        }
        break;
      }
      case EntryType::kSymlink: {
        EXPECT_TRUE(S_ISLNK(st.st_mode)) << path;
        EXPECT_EQ(e.symlink_target, fs::read_symlink(disk).string()) << path;
        EXPECT_EQ(e.size, e.symlink_target.size());
        EXPECT_TRUE(e.extents.empty());
        break;
      }
      case EntryType::kFile:
        EXPECT_TRUE(S_ISREG(st.st_mode)) << path;
        ExpectSameContent(iso, e, disk);
        break;
    }
    if (tree.names() == NameSource::kRockRidge) {
      EXPECT_EQ(e.mode, st.st_mode & 07777) << path;
      if (e.type != EntryType::kSymlink) {
        EXPECT_EQ(e.mtime, st.st_mtime) << path;
      }
    }
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  size_t on_disk = 0;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    ++on_disk;
    const std::string rel = it->path().lexically_relative(root).string();
    EXPECT_TRUE(seen.count(rel)) << "missing from the ISO: " << rel;
  }
  EXPECT_EQ(seen.size(), on_disk);
  EXPECT_GE(tree.entry_count(), on_disk + 1);  // + the root, + hidden relocation directories
}

class Iso9660Test : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) { return dir_.File(name); }

  // Files of awkward sizes, a long name, modes and times, nested directories, symlinks (in-tree,
  // pointing out, absolute, and one long enough to need continued SL entries: genisoimage 1.1.11
  // records that one with a wrapped-around SL length, which this reader refuses as corrupt).
  std::string MakeRichTree(bool symlinks = true, bool long_symlink = true) {
    const std::string t = Path("rich");
    std::string long_name(200, 'n');
    long_name += ".txt";
    std::string deep_target;
    for (int i = 0; i < 40; ++i) deep_target += "component" + std::to_string(i) + "/";
    deep_target += "end";
    std::string cmd = "set -e; mkdir -p " + Q(t) + "/boot/grub " + Q(t) + "/empty " + Q(t) +
                      "/Mixed\\ Case; cd " + Q(t) +
                      "; : > zero; printf x > one; head -c 2048 /dev/urandom > block;"
                      " head -c 300001 /dev/urandom > boot/kernel; echo menu > boot/grub/grub.cfg;"
                      " echo long > " +
                      long_name +
                      "; echo hi > 'Mixed Case/Hello World.TXT';"
                      " chmod 0750 boot/kernel; chmod 0600 one";
    if (symlinks) {
      cmd +=
          "; ln -s ../block boot/up; ln -s ../../../outside out; ln -s /etc/passwd abs;"
          " ln -s grub/grub.cfg boot/cfg";
      if (long_symlink) cmd += "; ln -s " + Q(deep_target) + " longlink";
    } else {
      cmd += "; rm " + long_name;  // over Joliet's 103 characters
    }
    cmd += "; touch -d @1600000000 block; touch -d @1234567890 boot";
    EXPECT_TRUE(MustRun(cmd));
    return t;
  }

  std::string MakeDeepTree() {
    const std::string t = Path("deep");
    std::string d = t;
    for (int i = 0; i < 12; ++i) d += "/level" + std::to_string(i);
    EXPECT_TRUE(MustRun("set -e; mkdir -p " + Q(d) + "; echo bottom > " + Q(d) +
                        "/file; echo mid > " + Q(t) +
                        "/level0/level1/level2/level3/level4/level5/level6/level7/mid;" +
                        " ln -s ../level9 " + Q(t) +
                        "/level0/level1/level2/level3/level4/level5/"
                        "level6/level7/level8/back"));
    return t;
  }

  std::unique_ptr<iso9660::Tree> OpenIso(const std::string& iso, io::ByteSource** src) {
    source_ = OpenSource(iso);
    if (!source_) return nullptr;
    *src = source_.get();
    auto t = Tree::Open(*source_);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(*t) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<io::FileSource> source_;
};

TEST_F(Iso9660Test, RockRidgeFromXorriso) {
  const std::string t = MakeRichTree();
  const std::string iso = dir_.File("rr.iso");
  ASSERT_TRUE(MustRun("xorriso -as mkisofs -quiet -R -V RRTEST -o " + Q(iso) + " " + Q(t)));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->names(), NameSource::kRockRidge);
  EXPECT_EQ(tree->volume_id(), "RRTEST");
  ExpectSameTree(*src, *tree, t);

  auto out = tree->Lookup("out");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)->type, EntryType::kSymlink);
  EXPECT_EQ((*out)->symlink_target, "../../../outside");
  EXPECT_EQ((*tree->Lookup("/abs"))->symlink_target, "/etc/passwd");
  EXPECT_EQ((*tree->Lookup("longlink"))->symlink_target.size(),
            fs::read_symlink(t + "/longlink").string().size());
  EXPECT_EQ((*tree->Lookup("boot/kernel"))->mode, 0750u);
  EXPECT_EQ((*tree->Lookup("block"))->mtime, 1600000000);
  EXPECT_TRUE((*tree->Lookup("zero"))->extents.empty());
  // Symlinks are never followed, not even in the middle of a path.
  EXPECT_EQ(tree->Lookup("boot/up").value()->type, EntryType::kSymlink);
  EXPECT_EQ(tree->Lookup("boot/cfg/x").status().code(), Code::kNotFound);
  EXPECT_EQ(tree->Lookup("boot/../one").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(tree->Lookup(std::string("one\0", 4)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(tree->Lookup("BOOT").status().code(), Code::kNotFound);  // case-sensitive
  EXPECT_EQ(tree->Lookup("//boot//grub/./grub.cfg").value()->name, "grub.cfg");
  EXPECT_EQ(tree->ListDir("one").status().code(), Code::kNotFound);
  auto root = tree->ListDir("/");
  ASSERT_TRUE(root.ok());
  std::vector<std::string> names;
  for (const Entry* e : *root) names.push_back(e->name);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.front(), "Mixed Case");
}

TEST_F(Iso9660Test, RockRidgeFromGenisoimage) {
  const std::string t = MakeRichTree(/*symlinks=*/true, /*long_symlink=*/false);
  const std::string iso = dir_.File("g.iso");
  ASSERT_TRUE(MustRun("genisoimage -quiet -R -o " + Q(iso) + " " + Q(t)));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->names(), NameSource::kRockRidge);
  ExpectSameTree(*src, *tree, t);
}

TEST_F(Iso9660Test, RockRidgeWinsOverJoliet) {
  const std::string t = MakeRichTree();
  const std::string iso = dir_.File("rj.iso");
  ASSERT_TRUE(MustRun("xorriso -as mkisofs -quiet -R -J -o " + Q(iso) + " " + Q(t)));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->names(), NameSource::kRockRidge);
  ExpectSameTree(*src, *tree, t);
}

TEST_F(Iso9660Test, JolietOnly) {
  const std::string t = MakeRichTree(/*symlinks=*/false);
  ASSERT_TRUE(
      MustRun("cd " + Q(t) + " && echo u > 'h\xc3\xa9llo w\xc3\xb6rld' && echo p > 'UPPER.lower'"));
  const std::string iso = dir_.File("j.iso");
  ASSERT_TRUE(MustRun("xorriso -as mkisofs -quiet --norock -input-charset UTF-8 -J -o " + Q(iso) +
                      " " + Q(t)));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->names(), NameSource::kJoliet);
  ExpectSameTree(*src, *tree, t);
  EXPECT_TRUE(tree->Lookup("h\xc3\xa9llo w\xc3\xb6rld").ok());
}

TEST_F(Iso9660Test, PlainIso9660Names) {
  const std::string t = Path("plain");
  ASSERT_TRUE(MustRun("set -e; mkdir -p " + Q(t) + "/BOOT/ISOLINUX; cd " + Q(t) +
                      "; echo a > README.TXT; echo b > NOEXT; head -c 5000 /dev/urandom > "
                      "BOOT/ISOLINUX/VMLINUZ; : > EMPTY.DAT"));
  const std::string iso = dir_.File("p.iso");
  ASSERT_TRUE(MustRun("xorriso -as mkisofs -quiet --norock -o " + Q(iso) + " " + Q(t)));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->names(), NameSource::kPlain);
  ExpectSameTree(*src, *tree, t);  // "README.TXT;1" is README.TXT, "NOEXT.;1" is NOEXT
  EXPECT_EQ((*tree->Lookup("README.TXT"))->mode, 0444u);
  EXPECT_EQ((*tree->Lookup("BOOT"))->mode, 0555u);
}

TEST_F(Iso9660Test, DeepTreeRelocatedByGenisoimage) {
  const std::string t = MakeDeepTree();
  const std::string iso = dir_.File("deep.iso");
  ASSERT_TRUE(MustRun("genisoimage -quiet -R -o " + Q(iso) + " " + Q(t)));
  // The image really relocates (an RR_MOVED directory in the ISO 9660 tree).
  ASSERT_TRUE(MustRun("isoinfo -l -i " + Q(iso) + " | grep -q RR_MOVED"));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  ExpectSameTree(*src, *tree, t);  // rr_moved and its RE entries are hidden
  EXPECT_EQ(tree->Lookup("rr_moved").status().code(), Code::kNotFound);
}

TEST_F(Iso9660Test, DeepTreeRelocatedByXorriso) {
  const std::string t = MakeDeepTree();
  const std::string iso = dir_.File("deepx.iso");
  // Native xorriso relocates deep directories to the root when deep paths are off.
  ASSERT_TRUE(MustRun("xorriso -report_about FAILURE -outdev " + Q(iso) +
                      " -compliance deep_paths_off -rockridge on -map " + Q(t) + " /"));
  ASSERT_TRUE(
      MustRun("isoinfo -l -i " + Q(iso) + " | grep -Eq 'Directory listing of /LEVEL[0-9]+/$'"));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  ExpectSameTree(*src, *tree, t);
  EXPECT_EQ(tree->ListDir("/").value().size(), 1u);  // level0 only: the relocated ones are hidden
}

// A file over 4 GiB is recorded as several sections (ECMA-119 6.5.1). Sparse source and sparse ISO:
// a few seconds.
TEST_F(Iso9660Test, MultiExtentFileOver4GiB) {
  const std::string t = Path("big");
  const uint64_t size = (4ull << 30) + 100 * 1024 + 7;
  ASSERT_TRUE(
      MustRun("set -e; mkdir " + Q(t) + "; cd " + Q(t) + "; truncate -s " + std::to_string(size) +
              " huge.bin; printf START | dd of=huge.bin conv=notrunc"
              " status=none; printf ACROSS | dd of=huge.bin bs=1 seek=" +
              std::to_string((4ull << 30) - 2051) +
              " conv=notrunc status=none;"
              " printf END | dd of=huge.bin bs=1 seek=" +
              std::to_string(size - 3) + " conv=notrunc status=none; echo small > small.txt"));
  const std::string iso = dir_.File("big.iso");
  ASSERT_TRUE(MustRun("xorriso -as mkisofs -quiet -R -iso-level 3 -o - " + Q(t) +
                      " | dd of=" + Q(iso) + " bs=1M iflag=fullblock conv=sparse status=none"));
  ASSERT_TRUE(MustRun("test $(isoinfo -l -i " + Q(iso) + " | grep -c HUGE.BIN) -ge 2"));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  auto huge = tree->Lookup("huge.bin");
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ((*huge)->size, size);
  ExpectSameTree(*src, *tree, t);
}

// UDF: genisoimage writes an ISO 9660 / UDF 1.02 bridge; without its ISO 9660 descriptors (sectors
// 16-17 become BEA01, NSR02, TEA01) it is a UDF-only image.
class UdfTest : public Iso9660Test {
 protected:
  std::vector<uint8_t> MakeUdfOnly(const std::string& tree) {
    const std::string iso = dir_.File("udf.iso");
    EXPECT_TRUE(
        MustRun("genisoimage -quiet -udf -input-charset utf-8 -o " + Q(iso) + " " + Q(tree)));
    std::vector<uint8_t> b = testing::ReadWholeFile(iso);
    EXPECT_EQ(std::string(b.begin() + 18 * 2048 + 1, b.begin() + 18 * 2048 + 6), "BEA01");
    std::fill(b.begin() + 16 * 2048, b.begin() + 21 * 2048, 0);
    const char* ids[] = {"BEA01", "NSR02", "TEA01"};
    for (int i = 0; i < 3; ++i) {
      std::memcpy(b.data() + (16 + i) * 2048 + 1, ids[i], 5);
      b[(16 + i) * 2048 + 6] = 1;
    }
    return b;
  }
  // The first block at or after 256 whose descriptor tag is `tag` (and, for file entries, whose
  // information length is `length`).
  static size_t FindTag(const std::vector<uint8_t>& b, uint16_t tag, uint64_t length = UINT64_MAX) {
    for (size_t at = 256 * 2048; at + 2048 <= b.size(); at += 2048) {
      if (b[at] == (tag & 0xff) && b[at + 1] == (tag >> 8) &&
          (length == UINT64_MAX || mapped::Le64(b.data() + at + 56) == length)) {
        return at;
      }
    }
    ADD_FAILURE() << "no descriptor with tag " << tag;
    return 0;
  }
  // Recomputes a descriptor's CRC (CRC-ITU-T) and tag checksum after a test changed it.
  static void FixTag(std::vector<uint8_t>& b, size_t at) {
    const size_t crc_len = mapped::Le16(b.data() + at + 10);
    uint16_t crc = 0;
    for (size_t i = 0; i < crc_len; ++i) {
      crc ^= uint16_t(b[at + 16 + i]) << 8;
      for (int k = 0; k < 8; ++k)
        crc = (crc & 0x8000) ? uint16_t((crc << 1) ^ 0x1021) : uint16_t(crc << 1);
    }
    b[at + 8] = uint8_t(crc);
    b[at + 9] = uint8_t(crc >> 8);
    uint8_t sum = 0;
    for (int i = 0; i < 16; ++i) sum = uint8_t(sum + (i == 4 ? 0 : b[at + i]));
    b[at + 4] = sum;
  }
};

TEST_F(UdfTest, UdfOnlyImage) {
  const std::string t = MakeRichTree(/*symlinks=*/false);
  ASSERT_TRUE(MustRun("cd " + Q(t) +
                      " && echo u > 'h\xc3\xa9llo' && head -c 70000 /dev/urandom > "
                      "boot/grub/two-blocks-and-more"));
  const std::string iso = dir_.File("udfonly.iso");
  testing::WriteWholeFile(iso, MakeUdfOnly(t));
  io::ByteSource* src;
  auto tree = OpenIso(iso, &src);
  ASSERT_TRUE(tree);
  EXPECT_EQ(tree->names(), NameSource::kUdf);
  EXPECT_TRUE(tree->has_udf());
  ExpectSameTree(*src, *tree, t);  // full names, case kept, UTF-8

  // The same image with its ISO 9660 side is read through ISO 9660.
  io::ByteSource* bridge_src;
  auto bridge = OpenIso(dir_.File("udf.iso"), &bridge_src);
  ASSERT_TRUE(bridge);
  EXPECT_EQ(bridge->names(), NameSource::kPlain);
  EXPECT_TRUE(bridge->has_udf());
}

TEST_F(UdfTest, SymlinkAndRefusals) {
  const std::string t = Path("u");
  ASSERT_TRUE(MustRun("mkdir -p " + Q(t) + "/sub && printf hello > " + Q(t) + "/five && echo x > " +
                      Q(t) + "/sub/f"));
  const std::vector<uint8_t> good = MakeUdfOnly(t);
  {
    // Turn the 5-byte file into a symlink to /etc/x: file type 12, path components as its data.
    std::vector<uint8_t> b = good;
    const size_t fe = FindTag(b, 261, 5);
    ASSERT_NE(fe, 0u);
    const uint64_t l_ea = mapped::Le32(b.data() + fe + 168);
    ASSERT_EQ(b[fe + 34] & 7, 0);  // short allocation descriptors
    const size_t ad = fe + 176 + l_ea;
    const std::vector<uint8_t> comps = {2,   0,   0,   0, 5, 4, 0, 0, 8,
                                        'e', 't', 'c', 5, 2, 0, 0, 8, 'x'};
    b[fe + 27] = 12;
    testing::PutLe64(b, fe + 56, comps.size());
    testing::PutLe32(b, ad, comps.size());
    FixTag(b, fe);
    // Find the data through the reader itself, then write the components there.
    io::MemorySource before(b);
    auto t0 = Tree::Open(before);
    ASSERT_FALSE(t0.ok());  // "hello" is not a path component list
    std::vector<uint8_t> probe = good;
    io::MemorySource good_src(probe);
    auto tg = Tree::Open(good_src);
    ASSERT_TRUE(tg.ok()) << tg.status().ToString();
    const Extent x = (*tg)->Lookup("five").value()->extents.at(0);
    std::copy(comps.begin(), comps.end(), b.begin() + x.offset);
    io::MemorySource src(b);
    auto tree = Tree::Open(src);
    ASSERT_TRUE(tree.ok()) << tree.status().ToString();
    const Entry* link = (*tree)->Lookup("five").value();
    EXPECT_EQ(link->type, EntryType::kSymlink);
    EXPECT_EQ(link->symlink_target, "/etc/x");
  }
  {
    std::vector<uint8_t> b = good;  // a partition map of type 2 (e.g. a metadata partition)
    const size_t lvd = [&] {
      for (size_t at = 16 * 2048; at + 2048 <= b.size(); at += 2048) {
        if (b[at] == 6 && b[at + 1] == 0 && b[at + 440] == 1) return at;
      }
      return size_t(0);
    }();
    ASSERT_NE(lvd, 0u);
    b[lvd + 440] = 2;
    b[lvd + 441] = 64;
    FixTag(b, lvd);
    io::MemorySource src(b);
    auto r = Tree::Open(src);
    EXPECT_EQ(r.status().code(), Code::kUnsupported) << r.status().ToString();
  }
  {
    std::vector<uint8_t> b = good;  // a damaged file set descriptor
    b[FindTag(b, 256) + 200] ^= 1;
    io::MemorySource src(b);
    const Status st = Tree::Open(src).status();
    EXPECT_EQ(st.code(), Code::kRefused);
    EXPECT_NE(st.message().find("CRC mismatch"), std::string::npos) << st.ToString();
  }
  // Any byte of any block after the anchor changed: a Status or a valid tree, never a crash.
  for (size_t at = 256 * 2048; at < good.size(); at += 2048) {
    for (size_t off : {0, 4, 20, 27, 34, 56, 60, 172, 176, 180, 184, 188}) {
      std::vector<uint8_t> b = good;
      b[at + off] ^= 0x5a;
      FixTag(b, at);
      io::MemorySource src(b);
      auto r = Tree::Open(src);
      if (r.ok()) {
        (void)(*r)->Walk([&](const std::string&, const Entry& e) {
          for (const Extent& x : e.extents)
            EXPECT_TRUE(mapped::Within(x.offset, x.length, b.size()));
          return Status::Ok();
        });
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-made volumes: 2048-byte blocks, PVD at 16, terminator at 17, root directory at block 20.

struct Rec {
  uint32_t block = 0;
  uint32_t length = 0;
  uint8_t flags = 0;
  std::string id;
  std::vector<uint8_t> su;
};

std::vector<uint8_t> RecordBytes(const Rec& r) {
  size_t len = 33 + r.id.size() + (r.id.size() % 2 == 0 ? 1 : 0) + r.su.size();
  std::vector<uint8_t> b(len, 0);
  b[0] = uint8_t(len);
  testing::PutLe32(b, 2, r.block);
  testing::PutBe32(b, 6, r.block);
  testing::PutLe32(b, 10, r.length);
  testing::PutBe32(b, 14, r.length);
  b[18] = 120;  // 2020
  b[19] = 1;
  b[20] = 2;
  b[25] = r.flags;
  b[28] = 1;
  b[31] = 1;
  b[32] = uint8_t(r.id.size());
  std::memcpy(b.data() + 33, r.id.data(), r.id.size());
  std::copy(r.su.begin(), r.su.end(), b.begin() + (len - r.su.size()));
  return b;
}

// SUSP/RRIP entries.
std::vector<uint8_t> Su(const char* sig, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> e(4 + data.size());
  e[0] = uint8_t(sig[0]);
  e[1] = uint8_t(sig[1]);
  e[2] = uint8_t(e.size());
  e[3] = 1;
  std::copy(data.begin(), data.end(), e.begin() + 4);
  return e;
}
std::vector<uint8_t> Both32(uint32_t v) {
  std::vector<uint8_t> b(8);
  testing::PutLe32(b, 0, v);
  testing::PutBe32(b, 4, v);
  return b;
}
std::vector<uint8_t> Cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
std::vector<uint8_t> SP() { return Su("SP", {0xbe, 0xef, 0}); }
std::vector<uint8_t> ER() {
  std::vector<uint8_t> d = {10, 0, 0, 1};
  for (char c : std::string("RRIP_1991A")) d.push_back(uint8_t(c));
  return Su("ER", d);
}
std::vector<uint8_t> NM(const std::string& name, uint8_t flags = 0) {
  std::vector<uint8_t> d = {flags};
  d.insert(d.end(), name.begin(), name.end());
  return Su("NM", d);
}
std::vector<uint8_t> PX(uint32_t mode) {
  return Su("PX", Cat({Both32(mode), Both32(1), Both32(0), Both32(0)}));
}
std::vector<uint8_t> CE(uint32_t block, uint32_t offset, uint32_t length) {
  return Su("CE", Cat({Both32(block), Both32(offset), Both32(length)}));
}
std::vector<uint8_t> SL(std::vector<std::pair<uint8_t, std::string>> comps, uint8_t flags = 0) {
  std::vector<uint8_t> d = {flags};
  for (auto& [f, text] : comps) {
    d.push_back(f);
    d.push_back(uint8_t(text.size()));
    d.insert(d.end(), text.begin(), text.end());
  }
  return Su("SL", d);
}

class HandIso {
 public:
  explicit HandIso(bool rock_ridge = false, uint32_t blocks = 64) : b_(blocks * 2048, 0) {
    uint8_t* d = b_.data() + 16 * 2048;
    d[0] = 1;
    std::memcpy(d + 1, "CD001", 5);
    d[6] = 1;
    testing::PutLe32(b_, 16 * 2048 + 80, blocks);
    testing::PutBe32(b_, 16 * 2048 + 84, blocks);
    b_[16 * 2048 + 128] = 0x00;  // 2048, both byte orders
    b_[16 * 2048 + 129] = 0x08;
    b_[16 * 2048 + 130] = 0x08;
    b_[16 * 2048 + 131] = 0x00;
    auto root = RecordBytes({20, 2048, 2, std::string(1, '\0'), {}});
    std::copy(root.begin(), root.end(), b_.begin() + 16 * 2048 + 156);
    uint8_t* t = b_.data() + 17 * 2048;
    t[0] = 255;
    std::memcpy(t + 1, "CD001", 5);
    t[6] = 1;
    rock_ridge_ = rock_ridge;
    Dir(20, 20, {});
  }
  // Writes the directory at `block` ("." and ".." first).
  void Dir(uint32_t block, uint32_t parent, std::vector<Rec> recs, uint32_t length = 2048) {
    std::vector<uint8_t> dot_su =
        (rock_ridge_ && block == 20) ? Cat({SP(), ER()}) : std::vector<uint8_t>{};
    size_t at = size_t(block) * 2048;
    std::fill(b_.begin() + at, b_.begin() + at + 2048, 0);
    for (const Rec& r : std::vector<Rec>{{block, length, 2, std::string(1, '\0'), dot_su},
                                         {parent, 2048, 2, std::string(1, '\1'), {}}}) {
      Put(at, RecordBytes(r));
    }
    for (const Rec& r : recs) Put(at, RecordBytes(r));
  }
  void Raw(size_t at, const std::vector<uint8_t>& bytes) {
    std::copy(bytes.begin(), bytes.end(), b_.begin() + at);
  }
  std::vector<uint8_t>& bytes() { return b_; }
  // A Joliet SVD at sector 17 (the terminator moves to 18) whose root directory is at `block`.
  void AddJoliet(uint32_t block) {
    std::copy(b_.begin() + 16 * 2048, b_.begin() + 17 * 2048, b_.begin() + 17 * 2048);
    b_[17 * 2048] = 2;
    std::memcpy(b_.data() + 17 * 2048 + 88, "%/E", 3);
    auto root = RecordBytes({block, 2048, 2, std::string(1, '\0'), {}});
    std::copy(root.begin(), root.end(), b_.begin() + 17 * 2048 + 156);
    uint8_t* t = b_.data() + 18 * 2048;
    t[0] = 255;
    std::memcpy(t + 1, "CD001", 5);
    t[6] = 1;
  }

  Result<std::unique_ptr<Tree>> Open(const Options& o = {}) {
    src_ = std::make_unique<io::MemorySource>(b_);
    return Tree::Open(*src_, o);
  }

 private:
  void Put(size_t& at, const std::vector<uint8_t>& r) {
    std::copy(r.begin(), r.end(), b_.begin() + at);
    at += r.size();
  }
  std::vector<uint8_t> b_;
  bool rock_ridge_ = false;
  std::unique_ptr<io::MemorySource> src_;
};

void ExpectRefused(Result<std::unique_ptr<Tree>> r, Code code, const std::string& needle) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
  EXPECT_EQ(r.status().message().rfind("iso9660: ", 0), 0u) << r.status().ToString();
}

TEST(Iso9660Hand, MinimalTreeOpens) {
  HandIso iso;
  iso.Dir(20, 20, {{30, 5, 0, "A.TXT;1", {}}, {21, 2048, 2, "SUB", {}}});
  iso.Dir(21, 20, {{31, 3, 0, "B;1", {}}});
  iso.Raw(30 * 2048, {'h', 'e', 'l', 'l', 'o'});
  auto t = iso.Open();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->entry_count(), 4u);
  auto a = (*t)->Lookup("A.TXT");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->extents, (std::vector<Extent>{{30 * 2048, 5}}));
  EXPECT_EQ((*a)->mtime, 1577923200);  // 2020-01-02 00:00 UTC
  EXPECT_TRUE((*t)->Lookup("SUB/B").ok());
}

TEST(Iso9660Hand, NotIsoAndUdfOnly) {
  io::MemorySource junk(std::vector<uint8_t>(100000, 7));
  auto r = Tree::Open(junk);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);

  std::vector<uint8_t> udf(64 * 2048, 0);
  const char* ids[] = {"BEA01", "NSR03", "TEA01"};
  for (int i = 0; i < 3; ++i) std::memcpy(udf.data() + (16 + i) * 2048 + 1, ids[i], 5);
  io::MemorySource u(udf);
  auto ur = Tree::Open(u);  // a recognition sequence and nothing else: read as UDF, refused
  EXPECT_EQ(ur.status().code(), Code::kRefused);
  EXPECT_EQ(ur.status().message(), "iso9660: UDF image too short for its anchor at sector 256");
}

TEST(Iso9660Hand, DirectoryCyclesAndSharedDirectories) {
  HandIso self;  // a subdirectory that is the root again
  self.Dir(20, 20, {{20, 2048, 2, "LOOP", {}}});
  ExpectRefused(self.Open(), Code::kRefused, "overlaps another directory");

  HandIso up;  // a grandchild pointing back at its parent
  up.Dir(20, 20, {{21, 2048, 2, "A", {}}});
  up.Dir(21, 20, {{21, 2048, 2, "B", {}}});
  ExpectRefused(up.Open(), Code::kRefused, "overlaps another directory");

  HandIso twice;  // two names for one directory
  twice.Dir(20, 20, {{21, 2048, 2, "A", {}}, {21, 2048, 2, "B", {}}});
  twice.Dir(21, 20, {});
  ExpectRefused(twice.Open(), Code::kRefused, "overlaps another directory");

  HandIso partial;  // overlapping by one block
  partial.Dir(20, 20, {{21, 4096, 2, "A", {}}, {22, 2048, 2, "B", {}}});
  partial.Dir(21, 20, {}, 4096);
  ExpectRefused(partial.Open(), Code::kRefused, "overlaps another directory");
}

TEST(Iso9660Hand, ExtentsOutsideOrOverlapping) {
  HandIso past;
  past.Dir(20, 20, {{63, 4096, 0, "F;1", {}}});
  ExpectRefused(past.Open(), Code::kRefused, "runs past the end");

  HandIso huge;
  huge.Dir(20, 20, {{0xffffffff, 0xffffffff, 0, "F;1", {}}});
  ExpectRefused(huge.Open(), Code::kRefused, "runs past the end");

  HandIso dir_past;
  dir_past.Dir(20, 20, {{60, 0x10000, 2, "D", {}}});
  ExpectRefused(dir_past.Open(), Code::kRefused, "runs past the end");

  HandIso into_dir;  // a file whose bytes are the root directory
  into_dir.Dir(20, 20, {{19, 4096, 0, "F;1", {}}});
  ExpectRefused(into_dir.Open(), Code::kRefused, "overlaps a directory");

  HandIso sections;  // a multi-extent file whose sections overlap
  sections.Dir(20, 20, {{30, 4096, 0x80, "F;1", {}}, {31, 2048, 0, "F;1", {}}});
  ExpectRefused(sections.Open(), Code::kRefused, "overlapping sections");

  HandIso open_end;  // the last section is missing
  open_end.Dir(20, 20, {{30, 2048, 0x80, "F;1", {}}, {31, 2048, 0, "G;1", {}}});
  ExpectRefused(open_end.Open(), Code::kRefused, "not followed by its next section");

  HandIso ok;  // two sections, apart on disk, kept as two extents in order
  ok.Dir(20, 20, {{40, 2048, 0x80, "F;1", {}}, {30, 100, 0, "F;1", {}}});
  auto t = ok.Open();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->Lookup("F").value()->extents,
            (std::vector<Extent>{{40 * 2048, 2048}, {30 * 2048, 100}}));
  EXPECT_EQ((*t)->Lookup("F").value()->size, 2148u);

  HandIso shared;  // two files sharing bytes (hard links) are fine
  shared.Dir(20, 20, {{30, 10, 0, "A;1", {}}, {30, 10, 0, "B;1", {}}});
  EXPECT_TRUE(shared.Open().ok());
}

TEST(Iso9660Hand, HostileNames) {
  for (const std::string& bad : {std::string("A/B;1"), std::string("A\0B", 3), std::string(";1")}) {
    HandIso iso;
    iso.Dir(20, 20, {{30, 1, 0, bad, {}}});
    auto r = iso.Open();
    EXPECT_EQ(r.status().code(), Code::kRefused) << bad;
  }
  HandIso dup;
  dup.Dir(20, 20, {{30, 1, 0, "A;1", {}}, {31, 1, 0, "A;2", {}}});
  ExpectRefused(dup.Open(), Code::kRefused, "two entries named 'A'");

  for (const std::string& bad : {std::string(".."), std::string("."), std::string("x/y"),
                                 std::string("x\0", 2), std::string()}) {
    HandIso rr(true);
    rr.Dir(20, 20, {{30, 1, 0, "A;1", NM(bad)}});
    auto r = rr.Open();
    EXPECT_EQ(r.status().code(), Code::kRefused) << bad;
  }
  HandIso cur(true);  // NM with CURRENT set carries no name: the ISO name stands
  cur.Dir(20, 20, {{30, 1, 0, "A;1", NM("", 0x02)}});
  auto c = cur.Open();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->Lookup("A").ok());

  HandIso cont(true);  // NM continued over two entries
  cont.Dir(20, 20, {{30, 1, 0, "A;1", Cat({NM("long", 1), NM("name")})}});
  auto n = cont.Open();
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE((*n)->Lookup("longname").ok());
}

TEST(Iso9660Hand, JolietNames) {
  auto ucs2 = [](std::u16string s) {
    std::string out;
    for (char16_t c : s) {
      out += char(c >> 8);
      out += char(c & 0xff);
    }
    return out;
  };
  HandIso iso;
  iso.Dir(20, 20, {{30, 1, 0, "A;1", {}}});
  iso.AddJoliet(21);
  iso.Dir(21, 21, {{30, 1, 0, ucs2(u"Caf\u00e9 \U0001F600.txt;1"), {}}});
  auto t = iso.Open();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->names(), NameSource::kJoliet);
  EXPECT_TRUE((*t)->Lookup("Caf\xc3\xa9 \xf0\x9f\x98\x80.txt").ok());

  for (const std::u16string& bad :
       {std::u16string(u"a/b"), std::u16string(u"..", 2), std::u16string(u"a\0b", 3)}) {
    HandIso j;
    j.AddJoliet(21);
    j.Dir(21, 21, {{30, 1, 0, ucs2(bad), {}}});
    EXPECT_EQ(j.Open().status().code(), Code::kRefused);
  }
  HandIso odd;
  odd.AddJoliet(21);
  odd.Dir(21, 21, {{30, 1, 0, "abc", {}}});
  ExpectRefused(odd.Open(), Code::kRefused, "odd length");
}

TEST(Iso9660Hand, ContinuationAreas) {
  HandIso loop(true);  // a CE pointing at itself
  loop.Dir(20, 20, {{30, 1, 0, "A;1", CE(40, 0, 28)}});
  loop.Raw(40 * 2048, CE(40, 0, 28));
  ExpectRefused(loop.Open(), Code::kRefused, "continuation areas (a loop?)");

  HandIso outside(true);
  outside.Dir(20, 20, {{30, 1, 0, "A;1", CE(1000, 0, 28)}});
  ExpectRefused(outside.Open(), Code::kRefused, "outside the image");

  HandIso name(true);  // the name in a continuation area, split across it
  name.Dir(20, 20, {{30, 1, 0, "A;1", Cat({NM("first-", 1), CE(40, 100, 12)})}});
  name.Raw(40 * 2048 + 100, NM("second"));
  auto t = name.Open();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE((*t)->Lookup("first-second").ok());

  HandIso budget(true);
  budget.Dir(20, 20, {{30, 1, 0, "A;1", CE(40, 0, 1000)}});
  Options o;
  o.max_continuation_bytes = 999;
  ExpectRefused(budget.Open(o), Code::kRefused, "continuation areas exceed");
}

TEST(Iso9660Hand, Symlinks) {
  HandIso iso(true);
  iso.Dir(20, 20,
          {{0, 0, 0, "L1;1", Cat({PX(0120777), SL({{8, ""}, {0, "etc"}, {0, "pass"}}, 1)})},
           {0, 0, 0, "L2;1",
            Cat({PX(0120777), SL({{4, ""}, {4, ""}, {1, "out"}}, 1), SL({{0, "side"}})})}});
  auto t = iso.Open();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ((*t)->Lookup("L1").value()->symlink_target, "/etc/pass");
  EXPECT_EQ((*t)->Lookup("L2").value()->symlink_target, "../../outside");
  EXPECT_EQ((*t)->Lookup("L2").value()->type, EntryType::kSymlink);

  HandIso nul(true);
  nul.Dir(20, 20, {{0, 0, 0, "L;1", Cat({PX(0120777), SL({{0, std::string("a\0b", 3)}})})}});
  ExpectRefused(nul.Open(), Code::kRefused, "holds NUL or '/'");

  HandIso none(true);
  none.Dir(20, 20, {{0, 0, 0, "L;1", PX(0120777)}});
  ExpectRefused(none.Open(), Code::kRefused, "without a target");

  HandIso zf(true);
  zf.Dir(20, 20, {{30, 10, 0, "Z;1", Su("ZF", {'p', 'z', 4, 15, 0, 0, 0, 0, 0, 0, 0, 0})}});
  ExpectRefused(zf.Open(), Code::kUnsupported, "zisofs");
}

TEST(Iso9660Hand, RelocatedDirectories) {
  // /A holds a CL placeholder "B" for the directory at block 22, whose real record (RE) is in /R.
  HandIso iso(true);
  iso.Dir(20, 20, {{21, 2048, 2, "A", {}}, {23, 2048, 2, "R", {}}});
  iso.Dir(21, 20, {{0, 0, 0, "B", Su("CL", Both32(22))}});
  iso.Dir(22, 23, {{30, 1, 0, "F;1", {}}});
  iso.Dir(23, 20, {{22, 2048, 2, "B", Su("RE", {})}});
  auto t = iso.Open();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE((*t)->Lookup("A/B/F").ok());
  EXPECT_EQ((*t)->Lookup("R").status().code(), Code::kNotFound);  // emptied relocation dir hidden
  EXPECT_EQ((*t)->entry_count(), 5u);                             // root, A, B, F and the hidden R

  HandIso back(true);  // a CL pointing at the root
  back.Dir(20, 20, {{0, 0, 0, "B", Su("CL", Both32(20))}});
  ExpectRefused(back.Open(), Code::kRefused, "overlaps another directory");

  HandIso junk(true);  // a CL pointing at file data
  junk.Dir(20, 20, {{0, 0, 0, "B", Su("CL", Both32(30))}});
  ExpectRefused(junk.Open(), Code::kRefused, "CL does not point at a directory");
}

TEST(Iso9660Hand, Bounds) {
  HandIso chain;  // 10 nested directories
  std::vector<Rec> none;
  chain.Dir(20, 20, {{21, 2048, 2, "D", {}}});
  for (uint32_t b = 21; b < 31; ++b)
    chain.Dir(b, b - 1, b < 30 ? std::vector<Rec>{{b + 1, 2048, 2, "D", {}}} : none);
  Options o;
  o.max_depth = 5;
  ExpectRefused(chain.Open(o), Code::kRefused, "deeper than 5 levels");
  EXPECT_TRUE(chain.Open().ok());
  o = Options();
  o.max_entries = 4;
  ExpectRefused(chain.Open(o), Code::kRefused, "more than 4 entries");
  o = Options();
  o.max_directory_bytes = 1024;
  ExpectRefused(chain.Open(o), Code::kRefused, "bytes (at most 1024)");

  HandIso torn;  // a record longer than what is left of its directory (of 100 bytes)
  torn.Dir(20, 20, {}, 100);
  std::vector<uint8_t>& b = torn.bytes();
  testing::PutLe32(b, 16 * 2048 + 156 + 10, 100);
  testing::PutBe32(b, 16 * 2048 + 156 + 14, 100);
  torn.Raw(20 * 2048 + 68, {40});
  ExpectRefused(torn.Open(), Code::kRefused, "runs past its directory");
}

}  // namespace
}  // namespace ingot::formats::iso9660
