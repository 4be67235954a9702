#include "deploy/guestfish/script.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "deploy/guestfish/disk.h"

namespace ingot::deploy::guestfish {
namespace {

ParsedScript MustParse(std::string_view text) {
  auto r = ParseScript(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : ParsedScript{};
}

TEST(GuestfishScriptTest, CommentsBlankLinesAndLineNumbers) {
  auto s = MustParse(
      "# a comment\n\n   \t\nmount /dev/sda2 /\n  # indented comment\n  mkdir-p /etc/x\n");
  ASSERT_EQ(s.commands.size(), 2u);
  EXPECT_EQ(s.commands[0].line, 4);
  EXPECT_EQ(s.commands[0].name, "mount");
  EXPECT_EQ(s.commands[0].args, (std::vector<std::string>{"/dev/sda2", "/"}));
  EXPECT_EQ(s.commands[1].line, 6);
}

TEST(GuestfishScriptTest, QuotingRules) {
  auto s = MustParse(
      "write /etc/a \"x y\\n\\t\\\"q\\\" \\\\ \\x41\\101\"\n"
      "write /etc/b 'no \\n escapes'\n"
      "echo a\"b c\"\n");
  ASSERT_EQ(s.commands.size(), 3u);
  EXPECT_EQ(s.commands[0].args[1], "x y\n\t\"q\" \\ AA");
  EXPECT_EQ(s.commands[1].args[1], "no \\n escapes");
  // A quote inside an unquoted word is just a character.
  EXPECT_EQ(s.commands[2].args, (std::vector<std::string>{"a\"b", "c\""}));
}

TEST(GuestfishScriptTest, QuotingErrorsNameTheLine) {
  for (const char* bad : {"echo ok\nwrite /a \"open\n", "echo ok\nwrite /a 'open\n",
                          "echo ok\nwrite /a \"x\"y\n", "echo ok\nwrite /a \"\\q\"\n",
                          "echo ok\nwrite /a \"\\x4\"\n", "echo ok\nwrite /a \"\\12\"\n"}) {
    auto r = ParseScript(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind("line 2: ", 0), 0u) << r.status().message();
  }
}

TEST(GuestfishScriptTest, HeredocKeepsEachLineAndCountsLines) {
  auto s = MustParse(
      "upload -<<END /etc/sysconfig/network\n"
      "HOSTNAME=@HostName@\n"
      "  END not the end\n"
      "\n"
      "END\n"
      "chmod 0644 /etc/sysconfig/network\n");
  ASSERT_EQ(s.commands.size(), 2u);
  const Command& up = s.commands[0];
  EXPECT_EQ(up.args, (std::vector<std::string>{"-", "/etc/sysconfig/network"}));
  ASSERT_TRUE(up.heredoc.has_value());
  EXPECT_EQ(*up.heredoc, "HOSTNAME=@HostName@\n  END not the end\n\n");
  EXPECT_EQ(up.heredoc_arg, 0u);
  EXPECT_EQ(s.commands[1].line, 6);
}

TEST(GuestfishScriptTest, UnterminatedHeredocIsRefused) {
  auto r = ParseScript("echo x\nupload -<<EOF /a\nline\nEO\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos) << r.status().message();
  EXPECT_FALSE(ParseScript("upload -<< /a\n").ok());
  EXPECT_FALSE(ParseScript("upload -<<A -<<B\nA\nB\n").ok());
}

TEST(GuestfishScriptTest, PrefixesAliasesAndUnderscores) {
  auto s = MustParse("-rm-f /x\nunmount /\nlist_filesystems\nquit\n");
  ASSERT_EQ(s.commands.size(), 4u);
  EXPECT_TRUE(s.commands[0].ignore_errors);
  EXPECT_EQ(s.commands[0].name, "rm-f");
  EXPECT_EQ(s.commands[1].name, "umount");
  EXPECT_EQ(s.commands[2].name, "list-filesystems");
  EXPECT_EQ(s.commands[3].name, "exit");
}

TEST(GuestfishScriptTest, LocalCommandsAndPipesAreParsedAndOnlyLocalInputIsRefused) {
  auto s = MustParse("!source ./esxi_unpack\n<!cat cmds\ncat /etc/passwd | grep root\n");
  ASSERT_EQ(s.commands.size(), 3u);
  EXPECT_EQ(s.commands[0].kind, Command::Kind::kLocal);
  EXPECT_EQ(s.commands[0].local, "source ./esxi_unpack");
  EXPECT_EQ(s.commands[1].kind, Command::Kind::kLocalInput);
  ASSERT_TRUE(s.commands[2].pipe.has_value());
  EXPECT_EQ(*s.commands[2].pipe, " grep root");
  for (const char* text : {"echo a\n<!cat x\n", "echo a\n-<!cat x\n"}) {
    Status v = Validate(MustParse(text));
    EXPECT_EQ(v.code(), Code::kRefused) << text;
    EXPECT_EQ(v.message().rfind("line 2: ", 0), 0u) << v.message();
  }
  // `!` and `|` run in the local jail (local_command.h).
  EXPECT_TRUE(Validate(MustParse("echo a\n!id\n-!false\ncat /x | sh\n")).ok());
  EXPECT_EQ(Unparse(MustParse("-!false\n").commands[0]), "-!false\n");
  EXPECT_EQ(Describe(MustParse("cat /x | wc -l\n").commands[0]), "cat /x | wc -l");
}

TEST(GuestfishScriptTest, HostAndHandleCommandsAndLocalPathsAreRefused) {
  for (const char* text :
       {"set-qemu /bin/sh\n", "add-drive /etc/shadow\n", "upload /etc/shadow /x\n",
        "download /etc/x ../x\n", "download /etc/x sub/../../x\n", "copy-out /etc /tmp\n",
        "glob upload /etc/passwd /x\n", "lcd /\n", "mount-local /mnt\n", "debug-upload a b 0\n"}) {
    Status v = Validate(MustParse(text));
    EXPECT_EQ(v.code(), Code::kRefused) << text << " " << v.ToString();
  }
  EXPECT_TRUE(Validate(MustParse("upload ./a /x\ndownload /x b\ndownload /x -\n"
                                 "upload -<<E /y\nE\ncopy-in a b /dir\n"))
                  .ok());
  EXPECT_EQ(Validate(MustParse("-x;id\n")).code(), Code::kInvalidArgument);
}

TEST(GuestfishScriptTest, UnparseReadsBackTheSameCommands) {
  const char* text =
      "-write /etc/a \"x y\\n\\\"z\\\" \\\\ 'q'\"\n"
      "upload -<<END /etc/b\nEND_INGOT\nplain\nEND\n"
      "echo '' \"|not a pipe\" -<<not\n"
      "mkdir-p /a/b\n";
  ParsedScript first;
  auto p = ParseScript(text);
  // The last echo has a heredoc marker that never ends: make it a plain argument instead.
  ASSERT_FALSE(p.ok());
  first = MustParse(
      "-write /etc/a \"x y\\n\\\"z\\\" \\\\ 'q'\"\n"
      "upload -<<END /etc/b\nEND_INGOT\nplain\nEND\n"
      "echo '' \"|not a pipe\" \"-<<not\" \"\\x01\"\n"
      "mkdir-p /a/b\n");
  std::string again;
  for (const Command& c : first.commands) again += Unparse(c);
  ParsedScript second = MustParse(again);
  ASSERT_EQ(first.commands.size(), second.commands.size()) << again;
  for (size_t i = 0; i < first.commands.size(); ++i) {
    EXPECT_EQ(first.commands[i].name, second.commands[i].name);
    EXPECT_EQ(first.commands[i].args, second.commands[i].args) << again;
    EXPECT_EQ(first.commands[i].heredoc, second.commands[i].heredoc) << again;
    EXPECT_EQ(first.commands[i].ignore_errors, second.commands[i].ignore_errors);
    EXPECT_FALSE(second.commands[i].pipe.has_value());
  }
}

TEST(GuestfishScriptTest, DescribeHidesContents) {
  auto s = MustParse("write /etc/shadow \"root:secret\"\nupload -<<E /x\npassword=hunter2\nE\n");
  std::string d0 = Describe(s.commands[0]), d1 = Describe(s.commands[1]);
  EXPECT_EQ(d0.find("secret"), std::string::npos) << d0;
  EXPECT_NE(d0.find("/etc/shadow"), std::string::npos);
  EXPECT_EQ(d1.find("hunter2"), std::string::npos) << d1;
  EXPECT_NE(d1.find("17 bytes"), std::string::npos) << d1;
}

TEST(GuestfishScriptTest, LimitsAreEnforced) {
  std::string many = "echo";
  for (size_t i = 0; i <= kMaxArgs; ++i) many += " a";
  EXPECT_EQ(ParseScript(many).status().code(), Code::kTooLarge);
  EXPECT_EQ(ParseScript(std::string(kMaxScriptBytes + 1, '#')).status().code(), Code::kTooLarge);
}

// ---- disk layout and file-system signatures ----

void Put32(std::vector<uint8_t>& d, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) d[at + i] = uint8_t(v >> (8 * i));
}
void Put64(std::vector<uint8_t>& d, size_t at, uint64_t v) {
  Put32(d, at, uint32_t(v));
  Put32(d, at + 4, uint32_t(v >> 32));
}

DiskReader ReaderOf(const std::vector<uint8_t>& d) {
  return [&d](uint64_t off, uint8_t* buf, size_t len) -> Status {
    if (off > d.size() || len > d.size() - off) return OutOfRange("past the end");
    std::memcpy(buf, d.data() + off, len);
    return Status::Ok();
  };
}

TEST(GuestfishDiskTest, GptKeepsEntryNumbersWithGaps) {
  std::vector<uint8_t> d(1 << 20);
  d[446 + 4] = 0xEE;
  Put32(d, 446 + 8, 1);
  Put32(d, 446 + 12, 2047);
  d[510] = 0x55, d[511] = 0xAA;
  std::memcpy(&d[512], "EFI PART", 8);
  Put64(d, 512 + 72, 2);    // entries at LBA 2
  Put32(d, 512 + 80, 128);  // 128 entries
  Put32(d, 512 + 84, 128);
  auto entry = [&](int index, uint64_t first, uint64_t last) {
    size_t at = 1024 + size_t(index) * 128;
    d[at] = 0x11;  // any non-zero type GUID
    Put64(d, at + 32, first);
    Put64(d, at + 40, last);
  };
  entry(0, 40, 99);
  entry(4, 100, 199);     // /dev/sda5
  entry(5, 300, 100000);  // past the disk's end: skipped
  auto layout = ReadDiskLayout(ReaderOf(d), d.size());
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->table, "gpt");
  ASSERT_EQ(layout->partitions.size(), 2u);
  EXPECT_EQ(layout->partitions[0].number, 1);
  EXPECT_EQ(layout->partitions[0].offset, 40u * 512);
  EXPECT_EQ(layout->partitions[1].number, 5);
  EXPECT_EQ(layout->partitions[1].length, 100u * 512);
}

TEST(GuestfishDiskTest, MbrWithALoopingExtendedChain) {
  std::vector<uint8_t> d(1 << 20);
  auto slot = [&](size_t sector, int i, uint8_t type, uint32_t start, uint32_t count) {
    size_t at = sector * 512 + 446 + 16 * size_t(i);
    d[at + 4] = type;
    Put32(d, at + 8, start);
    Put32(d, at + 12, count);
    d[sector * 512 + 510] = 0x55, d[sector * 512 + 511] = 0xAA;
  };
  slot(0, 0, 0x83, 64, 100);
  slot(0, 2, 0x05, 200, 1000);
  slot(200, 0, 0x83, 10, 50);  // /dev/sda5 at 210
  slot(200, 1, 0x05, 0, 0);
  Put32(d, 200 * 512 + 446 + 16 + 8, 0);  // next EBR offset 0 = end
  auto layout = ReadDiskLayout(ReaderOf(d), d.size());
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->table, "mbr");
  ASSERT_EQ(layout->partitions.size(), 2u);
  EXPECT_EQ(layout->partitions[0].number, 1);
  EXPECT_EQ(layout->partitions[1].number, 5);
  EXPECT_EQ(layout->partitions[1].offset, 210u * 512);
  // An EBR that points at itself ends the chain instead of looping.
  slot(200, 1, 0x05, 0, 10);
  auto again = ReadDiskLayout(ReaderOf(d), d.size());
  ASSERT_TRUE(again.ok());
}

TEST(GuestfishDiskTest, Signatures) {
  std::vector<uint8_t> d(128 * 1024);
  EXPECT_EQ(*ProbeFilesystem(ReaderOf(d), 0, d.size()), "unknown");
  d[1024 + 56] = 0x53, d[1024 + 57] = 0xEF;
  EXPECT_EQ(*ProbeFilesystem(ReaderOf(d), 0, d.size()), "ext2");
  d[1024 + 92] = 0x04;  // has_journal
  EXPECT_EQ(*ProbeFilesystem(ReaderOf(d), 0, d.size()), "ext3");
  d[1024 + 96] = 0x40;  // extents
  EXPECT_EQ(*ProbeFilesystem(ReaderOf(d), 0, d.size()), "ext4");
  std::vector<uint8_t> fat(4096);
  std::memcpy(&fat[82], "FAT32   ", 8);
  fat[510] = 0x55, fat[511] = 0xAA;
  EXPECT_EQ(*ProbeFilesystem(ReaderOf(fat), 0, fat.size()), "vfat");
  // A partition shorter than the superblock's place is "unknown", not a read past it.
  EXPECT_EQ(*ProbeFilesystem(ReaderOf(d), 0, 600), "unknown");
}

TEST(GuestfishDiskTest, DeviceNames) {
  EXPECT_EQ(ParseDeviceName("/dev/sda"), 0);
  EXPECT_EQ(ParseDeviceName("/dev/sda2"), 2);
  EXPECT_EQ(ParseDeviceName("/dev/vda12"), 12);
  EXPECT_EQ(ParseDeviceName("/dev/sda02"), -1);
  EXPECT_EQ(ParseDeviceName("/dev/sdb1"), -1);
  EXPECT_EQ(ParseDeviceName("/dev/sda1x"), -1);
  EXPECT_EQ(DeviceName(3), "/dev/sda3");
}

}  // namespace
}  // namespace ingot::deploy::guestfish
