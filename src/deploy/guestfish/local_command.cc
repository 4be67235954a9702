#include "deploy/guestfish/local_command.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace ingot::deploy::guestfish {

namespace {

// Run by `unshare` as PID 1 of the jail's namespaces, as root: $1 the root mount point, $2 the
// working directory, $3 the command. Everything it mounts vanishes with the namespace.
constexpr std::string_view kJailScript = R"jail(set -eu
root=$1 work=$2
fail() { echo "ingot-jail: $*" >&2; exit 126; }
ro_bind() { mount --rbind "$1" "$2" && mount -o remount,bind,ro,nosuid,nodev "$2"; }
mount -t tmpfs -o mode=0755,nosuid,nodev,size=16m ingot-jail "$root" || fail "cannot mount the jail's root"
mkdir "$root/usr" "$root/work" "$root/tmp" "$root/dev" "$root/proc" "$root/etc"
ro_bind /usr "$root/usr" || fail "cannot bind /usr"
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then mkdir "$root/$d"; ro_bind "/$d" "$root/$d" || fail "cannot bind /$d"; fi
done
mount --bind "$work" "$root/work" && mount -o remount,bind,nosuid,nodev "$root/work" || fail "cannot bind the working directory"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=256m ingot-tmp "$root/tmp"
for n in null zero full random urandom; do : > "$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"; done
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/work:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
chown -R 65534:65534 "$work"
mount -o remount,ro,nosuid,nodev "$root"
set +e
chroot "$root" /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
  --bounding-set=-all --no-new-privs /usr/bin/env -i -C /work PATH=/usr/local/bin:/usr/bin:/bin \
  HOME=/work TMPDIR=/tmp LANG=C.UTF-8 /bin/sh -c "$3"
rc=$?
left=$(find "$work" -mindepth 1 ! -type f ! -type d -print -delete | sed "s|^$work/||" | head -n 5 | paste -sd ' ' -)
[ -z "$left" ] || fail "the command left what is not a regular file or directory (removed): $left"
[ "$rc" = 0 ] || echo "ingot-jail: the command ended with exit code $rc" >&2
exit $rc
)jail";

}  // namespace

std::string ShellQuote(std::string_view word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

Result<LocalJail> LocalJail::Make(const std::string& workdir, std::chrono::seconds wall) {
  if (::geteuid() != 0) {
    return Unsupported("local commands (!) run in a jail of their own, which needs ingotd to run "
                       "as root");
  }
  std::string dir = workdir + ".jail";
  if (::mkdir(dir.c_str(), 0700) != 0) return FromErrno(errno, "mkdir " + dir);
  LocalJail jail(dir, workdir, wall);
  if (::mkdir((dir + "/root").c_str(), 0700) != 0) return FromErrno(errno, "mkdir " + dir + "/root");
  const std::string script = dir + "/jail.sh";
  int fd = ::open(script.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return FromErrno(errno, "create " + script);
  ssize_t n = ::write(fd, kJailScript.data(), kJailScript.size());
  ::close(fd);
  if (n != ssize_t(kJailScript.size())) return IoError("cannot write " + script);
  return jail;
}

LocalJail::LocalJail(LocalJail&& o) noexcept
    : dir_(std::move(o.dir_)), workdir_(std::move(o.workdir_)), wall_(o.wall_) {
  o.dir_.clear();
}

LocalJail::~LocalJail() {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::vector<std::string> LocalJail::Argv(std::string_view command) const {
  return {"timeout",  "--kill-after=5",   std::to_string(wall_.count()),
          "unshare",  "--mount",          "--pid",
          "--net",    "--fork",           "--kill-child",
          "/bin/sh",  dir_ + "/jail.sh",  dir_ + "/root",
          workdir_,   std::string(command)};
}

std::string LocalJail::CommandLine(std::string_view command) const {
  std::string line;
  for (const std::string& word : Argv(command)) line += (line.empty() ? "" : " ") + ShellQuote(word);
  return line;
}

Result<process::Outcome> LocalJail::Run(std::string_view command, std::string input,
                                        std::string* output) const {
  process::Spec spec;
  spec.argv = Argv(command);
  spec.env = process::CleanEnv();
  spec.cwd = workdir_;
  // The namespaces are unshare's: the same command line runs under guestfish's `!`.
  spec.new_mount_ns = false;
  spec.new_pid_ns = false;
  spec.new_net_ns = false;
  spec.limits.wall = wall_ + std::chrono::seconds(10);
  spec.stdin_data = std::move(input);
  spec.on_line = [output](std::string_view line) {
    output->append(line);
    output->push_back('\n');
  };
  process::Sandbox sandbox;
  return sandbox.Run(spec);
}

}  // namespace ingot::deploy::guestfish
