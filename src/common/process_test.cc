#include "common/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

namespace ingot::process {
namespace {

Spec Sh(const std::string& script, std::vector<std::string>* lines) {
  Spec spec{.argv = {"sh", "-c", script}, .env = CleanEnv()};
  spec.new_mount_ns = geteuid() == 0;
  spec.new_pid_ns = geteuid() == 0;
  spec.on_line = [lines](std::string_view l) { lines->emplace_back(l); };
  return spec;
}

TEST(ProcessTest, CapturesLinesAndExitCode) {
  std::vector<std::string> lines;
  Sandbox s;
  auto o = s.Run(Sh("echo one; echo two >&2; printf three; exit 3", &lines));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->exit_code, 3);
  EXPECT_FALSE(o->ok());
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(o->Describe(), "exit code 3");
}

TEST(ProcessTest, EnvironmentIsOnlyWhatIsGiven) {
  setenv("INGOT_SECRET_FOR_TEST", "leak", 1);
  std::vector<std::string> lines;
  Sandbox s;
  Spec spec = Sh("echo \"[$INGOT_SECRET_FOR_TEST] $FOO $LC_ALL\"", &lines);
  spec.env["FOO"] = "bar";
  auto o = s.Run(spec);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->ok());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "[] bar C.UTF-8");
}

TEST(ProcessTest, ToolNotFoundIs127) {
  std::vector<std::string> lines;
  Sandbox s;
  Spec spec = Sh("", &lines);
  spec.argv = {"no-such-tool-ingot"};
  auto o = s.Run(spec);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->exit_code, 127);
}

TEST(ProcessTest, KillEndsTheWholeTreeIncludingDetachedChildren) {
  if (geteuid() != 0) GTEST_SKIP() << "namespaces need root";
  std::vector<std::string> lines;
  Sandbox s;
  // A grandchild that escapes its process group (setsid) and would outlive a plain kill(-pgid).
  std::string marker = "/tmp/ingot-process-test-" + std::to_string(getpid());
  // A duration no other process on the host uses (the count below is of the whole host's processes:
  // other tests, or other users of the machine, may be sleeping 300 s too).
  const std::string sleep = "sleep 300." + std::to_string(getpid());
  Spec spec = Sh("setsid sh -c '" + sleep + "' & echo $! > " + marker + "; echo started; " + sleep,
                 &lines);
  std::thread killer([&] {
    for (int i = 0; i < 100 && lines.empty(); ++i) usleep(20000);
    s.Kill();
  });
  auto o = s.Run(spec);
  killer.join();
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->killed);
  EXPECT_FALSE(o->ok());
  EXPECT_EQ(o->Describe(), "cancelled");
  // The PID namespace died with its init: no `sleep 300` of ours remains anywhere.
  usleep(100000);
  FILE* ps = popen(("pgrep -f '^" + sleep + "$' | wc -l").c_str(), "r");
  char buf[32] = {0};
  fgets(buf, sizeof(buf), ps);
  pclose(ps);
  unlink(marker.c_str());
  EXPECT_EQ(std::string(buf), "0\n");
  // A killed sandbox refuses further runs.
  auto again = s.Run(Sh("echo no", &lines));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->killed);
}

TEST(ProcessTest, MountsVanishWithTheNamespace) {
  if (geteuid() != 0) GTEST_SKIP() << "namespaces need root";
  std::string dir = "/tmp/ingot-process-mnt-" + std::to_string(getpid());
  mkdir(dir.c_str(), 0755);
  std::vector<std::string> lines;
  Sandbox s;
  auto o = s.Run(Sh("mount -t tmpfs none " + dir + " && grep -c " + dir + " /proc/mounts", &lines));
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->ok());
  EXPECT_EQ(lines, (std::vector<std::string>{"1"}));
  std::ifstream mounts("/proc/mounts");
  std::string all((std::istreambuf_iterator<char>(mounts)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find(dir), std::string::npos);
  rmdir(dir.c_str());
}

TEST(ProcessTest, NetworkNamespaceHasNoRoute) {
  if (geteuid() != 0) GTEST_SKIP() << "namespaces need root";
  std::vector<std::string> lines;
  Sandbox s;
  Spec spec = Sh("cat /proc/net/dev | wc -l; echo $$", &lines);
  spec.new_net_ns = true;
  auto o = s.Run(spec);
  ASSERT_TRUE(o.ok());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "3");  // two header lines and `lo`: no other interface
  EXPECT_EQ(lines[1], "2");  // PID 2: the tool, under the namespace's init
}

TEST(ProcessTest, WallLimit) {
  std::vector<std::string> lines;
  Sandbox s;
  Spec spec = Sh("sleep 30", &lines);
  spec.limits.wall = std::chrono::seconds(1);
  auto o = s.Run(spec);
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->timed_out);
  EXPECT_EQ(o->Describe(), "timed out");
}

}  // namespace
}  // namespace ingot::process
