#include "build/jail.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "io/file.h"

namespace ingot::build {
namespace {

// Runs inside the sandbox (private mount and PID namespaces, the host's network): builds the jail's
// private tree on a tmpfs over /run, then becomes sshd. Paths arrive as positional parameters only.
constexpr const char* kJailScript = R"sh(set -eu
sshd=$1 config=$2 keyfile=$3 mode=$4 root=$5 lower=$6 upper=$7 work=$8
j=/run/ingot-jail
case "$root:$lower:$upper" in
  /run/*|*:/run/*) echo "ingot: the build directory must not be under /run"; exit 2 ;;
esac
mount -t tmpfs -o mode=0755,nosuid,nodev,size=16m tmpfs /run
mkdir -m 0755 /run/sshd "$j" "$j/root"
if [ -n "$lower" ]; then
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$j/root"
else
  mount --bind "$root" "$j/root"
fi
install -m 0600 "$keyfile" "$j/authorized_keys"
home=/root
[ "$mode" = jail ] || home=/mnt/image
# The host's accounts, privately: root's shell is /bin/sh (every image has one), its home the image,
# and its password field "*" (no password, not locked) so sshd accepts its key without PAM.
awk -F: -v OFS=: -v home="$home" '$1 == "root" { $6 = home; $7 = "/bin/sh" } { print }' /etc/passwd > "$j/passwd"
mount --bind "$j/passwd" /etc/passwd
if [ -f /etc/shadow ]; then
  awk -F: -v OFS=: '$1 == "root" { $2 = "*" } { print }' /etc/shadow > "$j/shadow"
  chmod 0600 "$j/shadow"
  mount --bind "$j/shadow" /etc/shadow
fi
if [ "$mode" = jail ]; then
  r=$j/root
  for d in proc dev tmp; do
    if [ -L "$r/$d" ] || [ ! -d "$r/$d" ]; then echo "ingot: the image's /$d is not a directory"; exit 3; fi
  done
  # The job's own /proc (its PID namespace: sshd and the sessions, nothing of the host's) and a
  # minimal /dev of bound host nodes and a private devpts.
  mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
  mount -t tmpfs -o mode=0755,nosuid,size=1m tmpfs "$r/dev"
  for n in null zero full random urandom tty; do
    : > "$r/dev/$n"
    mount --bind "/dev/$n" "$r/dev/$n"
  done
  mkdir "$r/dev/pts" "$r/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
  ln -s pts/ptmx "$r/dev/ptmx"
  ln -s /proc/self/fd "$r/dev/fd"
  ln -s /proc/self/fd/0 "$r/dev/stdin"
  ln -s /proc/self/fd/1 "$r/dev/stdout"
  ln -s /proc/self/fd/2 "$r/dev/stderr"
else
  mount -t tmpfs -o mode=0755,size=1m tmpfs /mnt
  mkdir /mnt/image
  mount --rbind "$j/root" /mnt/image
fi
echo "ingot: sshd starting"
exec "$sshd" -D -e -f "$config"
)sh";

// A port nobody listens on now; sshd binds it a moment later (a lost race fails the start with
// sshd's "Bind to port ... failed", and Start() tries again).
Result<int> FreePort(const std::string& address) {
  bool v6 = address.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno, "socket");
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, address.c_str(), &a->sin6_addr) != 1) {
      close(fd);
      return InvalidArgument("ssh listen address '" + address + "' is not an IP address");
    }
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    if (inet_pton(AF_INET, address.c_str(), &a->sin_addr) != 1) {
      close(fd);
      return InvalidArgument("ssh listen address '" + address + "' is not an IP address");
    }
    len = sizeof(*a);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    int e = errno;
    close(fd);
    return FromErrno(e, "choosing a port for sshd");
  }
  int port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  close(fd);
  return port;
}

bool Accepts(const std::string& address, int port) {
  bool v6 = address.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, address.c_str(), &a->sin_addr);
    len = sizeof(*a);
  }
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
  close(fd);
  return ok;
}

Status WriteText(const std::string& path, const std::string& text, mode_t mode) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, mode));
  fchmod(fd.get(), mode);
  return io::WriteAll(fd.get(), std::span<const uint8_t>(
                                    reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                      "writing " + path);
}

// Runs a short host-side tool (ssh-keygen) and returns its output; an error names the tool.
Result<std::string> RunQuick(std::vector<std::string> argv) {
  process::Sandbox sandbox;
  std::string out;
  process::Spec spec{.argv = argv,
                     .env = process::CleanEnv(),
                     .new_mount_ns = false,
                     .new_pid_ns = false,
                     .new_net_ns = true,
                     .limits = {.wall = std::chrono::seconds(60)},
                     .on_line = [&](std::string_view l) {
                       if (out.size() < 4096) out.append(l).append("\n");
                     }};
  INGOT_ASSIGN_OR_RETURN(auto outcome, sandbox.Run(spec));
  if (!outcome.ok()) {
    return Internal(argv[0] + " failed (" + outcome.Describe() + "): " + out);
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<SshJail>> SshJail::Start(const SshOptions& options, const JailSpec& spec,
                                                std::function<void(std::string_view)> on_line) {
  if (access(options.sshd.c_str(), X_OK) != 0) {
    return Unavailable("the SSH server " + options.sshd +
                       " is not installed (Debian package openssh-server)");
  }
  std::string line = spec.public_key;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.empty() || line.find_first_of("\r\n") != std::string::npos) {
    return InvalidArgument("the job's public key must be one OpenSSH public key line");
  }
  const std::string key = spec.dir + "/ssh_host_ed25519_key";
  unlink(key.c_str());
  unlink((key + ".pub").c_str());
  INGOT_RETURN_IF_ERROR(
      RunQuick({options.ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", "ingot-job", "-f", key})
          .status());
  INGOT_ASSIGN_OR_RETURN(std::string fp, RunQuick({options.ssh_keygen, "-l", "-f", key + ".pub"}));
  // "256 SHA256:abc... ingot-job (ED25519)"
  std::istringstream words(fp);
  std::string bits, fingerprint;
  words >> bits >> fingerprint;

  // `restrict` turns off every forwarding; `pty` gives interactive sessions their terminal back.
  INGOT_RETURN_IF_ERROR(WriteText(spec.dir + "/authorized_keys", "restrict,pty " + line + "\n", 0600));

  std::unique_ptr<SshJail> jail(new SshJail());
  jail->on_line_ = std::move(on_line);
  jail->jail_ = spec.jail;
  jail->watch_dir_ = spec.overlay_upper.empty() ? spec.root : spec.overlay_upper;
  jail->host_ = options.advertised_host.empty() ? options.listen : options.advertised_host;
  jail->fingerprint_ = fingerprint;
  jail->CompletionFileExists(true);  // a stale one (from the image itself) must not end the session

  Status last = Internal("sshd did not start");
  for (int attempt = 0; attempt < 3; ++attempt) {
    INGOT_ASSIGN_OR_RETURN(int port, FreePort(options.listen));
    std::string listen = options.listen.find(':') != std::string::npos
                             ? "[" + options.listen + "]:" + std::to_string(port)
                             : options.listen + ":" + std::to_string(port);
    std::string config =
        "ListenAddress " + listen + "\n" +
        "HostKey " + key + "\n"
        "PidFile none\n"
        "AuthorizedKeysFile /run/ingot-jail/authorized_keys\n"
        "AuthorizedPrincipalsFile none\n"
        "AuthenticationMethods publickey\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "HostbasedAuthentication no\n"
        "PermitEmptyPasswords no\n"
        "PermitRootLogin prohibit-password\n"
        "AllowUsers root\n"
        "UsePAM no\n"
        "UseDNS no\n"
        "StrictModes yes\n"
        "PermitUserEnvironment no\n"
        "PermitTunnel no\n"
        "AllowTcpForwarding no\n"
        "AllowStreamLocalForwarding no\n"
        "AllowAgentForwarding no\n"
        "X11Forwarding no\n"
        "PrintMotd no\n"
        "PrintLastLog no\n"
        "MaxAuthTries 3\n"
        "LoginGraceTime 30\n"
        "ClientAliveInterval 60\n"
        // INFO: logins and refusals; VERBOSE would also reach the user's terminal from the
        // session's chroot ("Changed root directory ...").
        "LogLevel INFO\n"
        "Subsystem sftp internal-sftp\n" +
        (spec.jail ? "ChrootDirectory /run/ingot-jail/root\n" : "");
    INGOT_RETURN_IF_ERROR(WriteText(spec.dir + "/sshd_config", config, 0600));

    process::Spec run{.argv = {"sh", "-c", kJailScript, "sh", options.sshd,
                               spec.dir + "/sshd_config", spec.dir + "/authorized_keys",
                               spec.jail ? "jail" : "shell", spec.root, spec.overlay_lower,
                               spec.overlay_upper, spec.overlay_work},
                      .env = process::CleanEnv(),
                      .new_mount_ns = true,
                      .new_pid_ns = true,
                      .new_net_ns = false};
    SshJail* self = jail.get();
    run.on_line = [self](std::string_view l) {
      {
        std::lock_guard<std::mutex> lock(self->out_mu_);
        self->tail_.append(l).append("\n");
        if (self->tail_.size() > 4096) self->tail_.erase(0, self->tail_.size() - 4096);
      }
      if (self->on_line_) self->on_line_(l);
    };
    jail->exited_ = false;
    jail->thread_ = std::thread([self, run = std::move(run)] {
      auto outcome = self->sandbox_.Run(run);
      if (!outcome.ok() && self->on_line_) {
        self->on_line_("ingot: cannot start sshd: " + outcome.status().message());
      }
      self->exited_ = true;
    });
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!jail->exited_ && std::chrono::steady_clock::now() < until &&
           !Accepts(options.listen, port)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!jail->exited_ && Accepts(options.listen, port)) {
      jail->port_ = port;
      return jail;
    }
    std::string out = jail->last_output();
    if (!jail->exited_) {
      jail->Stop();
      return Internal("sshd did not accept connections within 30 s: " + out);
    }
    jail->thread_.join();
    last = Internal("sshd ended at start: " + out);
    if (out.find("Bind to port") == std::string::npos &&
        out.find("Address already in use") == std::string::npos) {
      break;  // not the port race: trying again would fail the same way
    }
  }
  return last;
}

SshJail::~SshJail() { Stop(); }

void SshJail::Stop() {
  sandbox_.Kill();
  if (thread_.joinable()) thread_.join();
}

std::string SshJail::last_output() {
  std::lock_guard<std::mutex> lock(out_mu_);
  return tail_;
}

bool SshJail::CompletionFileExists(bool remove) const {
  // Opened component by component without following links: the root is the user's, and a /tmp
  // that became a link must never make us look (or delete) outside it.
  int root = open(watch_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) return false;
  int dir = root;
  if (jail_) {
    dir = openat(root, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(root);
    if (dir < 0) return false;
  }
  struct stat st;
  bool found = fstatat(dir, "complete", &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (found && remove) {
    if (unlinkat(dir, "complete", 0) != 0) unlinkat(dir, "complete", AT_REMOVEDIR);
  }
  close(dir);
  return found;
}

SshJail::End SshJail::Wait(const std::atomic<bool>& cancelled,
                           std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    if (cancelled.load()) return End::kCancelled;
    if (CompletionFileExists(true)) return End::kCompleted;
    if (exited_.load()) return End::kServerDied;
    if (std::chrono::steady_clock::now() >= deadline) return End::kTimedOut;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace ingot::build
