#include "deploy/guestfish/script.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <set>

namespace ingot::deploy::guestfish {

namespace {

Status LineError(int line, const std::string& what) {
  return InvalidArgument("line " + std::to_string(line) + ": " + what);
}

bool Blank(char c) { return c == ' ' || c == '\t'; }

// guestfish's own aliases of the commands plan scripts use.
std::string Canonical(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  if (name == "unmount") return "umount";
  if (name == "unmount-all") return "umount-all";
  if (name == "quit" || name == "q") return "exit";
  if (name == "launch") return "run";
  return name;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses one double-quoted argument starting after the opening quote; `*pos` ends after the
// closing quote.
Result<std::string> DoubleQuoted(std::string_view line, size_t* pos, int lineno) {
  std::string out;
  size_t i = *pos;
  while (true) {
    if (i >= line.size()) return LineError(lineno, "unterminated double quote");
    char c = line[i];
    if (c == '"') break;
    if (c != '\\') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= line.size()) return LineError(lineno, "unterminated double quote");
    char e = line[i + 1];
    i += 2;
    switch (e) {
      case '\\':
        out.push_back('\\');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case 'x': {
        int h = i < line.size() ? HexValue(line[i]) : -1;
        int l = i + 1 < line.size() ? HexValue(line[i + 1]) : -1;
        if (h < 0 || l < 0) return LineError(lineno, "\\x must be followed by two hex digits");
        out.push_back(char(h * 16 + l));
        i += 2;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          // \NNN: exactly three octal digits, as guestfish reads them.
          if (i + 1 >= line.size() || line[i] < '0' || line[i] > '7' || line[i + 1] < '0' ||
              line[i + 1] > '7') {
            return LineError(lineno, "an octal escape needs three digits");
          }
          int v = (e - '0') * 64 + (line[i] - '0') * 8 + (line[i + 1] - '0');
          if (v > 255) return LineError(lineno, "octal escape out of range");
          out.push_back(char(v));
          i += 2;
          break;
        }
        return LineError(lineno, std::string("invalid escape sequence \\") + e);
    }
  }
  *pos = i + 1;
  return out;
}

const std::set<std::string_view>& RefusedCommands() {
  // What acts on the deploy host or reconfigures the handle rather than the guest's disk.
  static const std::set<std::string_view> kRefused = {"add",
                                                      "add-cdrom",
                                                      "add-domain",
                                                      "add-drive",
                                                      "add-drive-opts",
                                                      "add-drive-ro",
                                                      "add-drive-ro-with-if",
                                                      "add-drive-scratch",
                                                      "add-drive-with-if",
                                                      "add-libvirt-dom",
                                                      "add-ro",
                                                      "alloc",
                                                      "allocate",
                                                      "sparse",
                                                      "config",
                                                      "debug-upload",
                                                      "edit",
                                                      "vi",
                                                      "emacs",
                                                      "display",
                                                      "more",
                                                      "less",
                                                      "hexedit",
                                                      "lcd",
                                                      "reopen",
                                                      "setenv",
                                                      "unsetenv",
                                                      "event",
                                                      "delete-event",
                                                      "list-events",
                                                      "mount-local",
                                                      "mount-local-run",
                                                      "umount-local",
                                                      "set-append",
                                                      "set-attach-method",
                                                      "set-autosync",
                                                      "set-backend",
                                                      "set-backend-setting",
                                                      "set-backend-settings",
                                                      "clear-backend-setting",
                                                      "set-cachedir",
                                                      "set-direct",
                                                      "set-hv",
                                                      "set-identifier",
                                                      "set-memsize",
                                                      "set-network",
                                                      "set-path",
                                                      "set-pgroup",
                                                      "set-program",
                                                      "set-qemu",
                                                      "set-recovery-proc",
                                                      "set-selinux",
                                                      "set-smp",
                                                      "set-tmpdir",
                                                      "set-trace",
                                                      "set-verbose",
                                                      "set-libvirt-requested-credential",
                                                      "set-libvirt-supported-credentials",
                                                      "shutdown",
                                                      "close",
                                                      "kill-subprocess"};
  return kRefused;
}

Status ValidateOne(const Command& c, int depth) {
  const std::string where = "line " + std::to_string(c.line) + ": ";
  // `!cmd` and `cmd | shell` run in the local jail (local_command.h). `<!cmd` would run commands
  // its output makes up, which cannot be checked before the script starts.
  if (c.kind == Command::Kind::kLocalInput) {
    return Refused(where + "<! (commands read from a local command's output) is not allowed");
  }
  if (c.kind == Command::Kind::kLocal) return Status::Ok();
  for (char ch : c.name) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') || c.name[0] == '-') {
      return InvalidArgument(where + "\"" + c.name + "\" is not a guestfish command");
    }
  }
  if (RefusedCommands().count(c.name) || c.name.rfind("internal-", 0) == 0) {
    return Refused(where + c.name +
                   " acts on the deploy host or the guestfish handle and is not allowed");
  }
  // `glob CMD ARGS…` and `time CMD ARGS…` run another command: check that one.
  if ((c.name == "glob" || c.name == "time") && !c.args.empty()) {
    if (depth > 4) return Refused(where + "too many nested glob/time commands");
    Command inner = c;
    inner.name = Canonical(c.args[0]);
    inner.args.erase(inner.args.begin());
    return ValidateOne(inner, depth + 1);
  }
  for (size_t i : LocalFileArgs(c)) {
    if (i >= c.args.size()) continue;
    const std::string& p = c.args[i];
    if (p == "-") continue;  // standard input/output (heredoc, or output into the log)
    bool climbs = p == ".." || p.rfind("../", 0) == 0 || p.find("/../") != std::string::npos ||
                  (p.size() >= 3 && p.compare(p.size() - 3, 3, "/..") == 0);
    if (p.empty() || p[0] == '/' || p[0] == '~' || climbs) {
      return Refused(where + c.name + ": local file \"" + p +
                     "\" must be a relative path inside the run's working directory");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<ParsedScript> ParseScript(std::string_view text) {
  if (text.size() > kMaxScriptBytes) {
    return TooLarge("the script is over " + std::to_string(kMaxScriptBytes) + " bytes");
  }
  ParsedScript script;
  size_t pos = 0;
  int lineno = 0;
  auto next_line = [&](std::string_view* line) {
    if (pos >= text.size()) return false;
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    *line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    return true;
  };
  std::string_view line;
  while (next_line(&line)) {
    size_t i = 0;
    while (i < line.size() && Blank(line[i])) ++i;
    if (i == line.size() || line[i] == '#') continue;
    Command cmd;
    cmd.line = lineno;
    if (line[i] == '!') {
      cmd.kind = Command::Kind::kLocal;
      cmd.local = std::string(line.substr(i + 1));
      script.commands.push_back(std::move(cmd));
      continue;
    }
    if (line.substr(i, 2) == "<!") {
      cmd.kind = Command::Kind::kLocalInput;
      cmd.local = std::string(line.substr(i + 2));
      script.commands.push_back(std::move(cmd));
      continue;
    }
    if (line[i] == '-') {
      cmd.ignore_errors = true;
      ++i;
      if (i < line.size() && (line[i] == '!' || line.substr(i, 2) == "<!")) {
        // Still a local command, whatever guestfish would make of it: refused by Validate().
        cmd.kind = line[i] == '!' ? Command::Kind::kLocal : Command::Kind::kLocalInput;
        cmd.local = std::string(line.substr(i + (line[i] == '!' ? 1 : 2)));
        script.commands.push_back(std::move(cmd));
        continue;
      }
    }
    size_t start = i;
    while (i < line.size() && !Blank(line[i])) ++i;
    cmd.name = Canonical(std::string(line.substr(start, i - start)));
    if (cmd.name.empty()) return LineError(lineno, "a command name is missing after '-'");
    std::optional<std::string> heredoc_end;
    while (true) {
      while (i < line.size() && Blank(line[i])) ++i;
      if (i >= line.size()) break;
      if (cmd.args.size() >= kMaxArgs) {
        return TooLarge("line " + std::to_string(lineno) + ": more than " +
                        std::to_string(kMaxArgs) + " arguments");
      }
      char c = line[i];
      std::string arg;
      if (c == '|') {
        cmd.pipe = std::string(line.substr(i + 1));
        break;
      }
      if (c == '"') {
        ++i;
        INGOT_ASSIGN_OR_RETURN(arg, DoubleQuoted(line, &i, lineno));
      } else if (c == '\'') {
        size_t close = line.find('\'', i + 1);
        if (close == std::string_view::npos) return LineError(lineno, "unterminated single quote");
        arg = std::string(line.substr(i + 1, close - i - 1));
        i = close + 1;
      } else {
        size_t s = i;
        while (i < line.size() && !Blank(line[i])) ++i;
        arg = std::string(line.substr(s, i - s));
        if (arg.rfind("-<<", 0) == 0) {
          if (heredoc_end) return LineError(lineno, "only one -<< argument is allowed per command");
          heredoc_end = arg.substr(3);
          if (heredoc_end->empty()) return LineError(lineno, "-<< needs an end marker (-<<END)");
          arg = "-";
          cmd.heredoc_arg = cmd.args.size();
        }
        cmd.args.push_back(std::move(arg));
        continue;
      }
      if (i < line.size() && !Blank(line[i])) {
        return LineError(lineno, "command arguments are not separated by white space");
      }
      cmd.args.push_back(std::move(arg));
    }
    if (heredoc_end) {
      const int opened = lineno;
      std::string body;
      bool closed = false;
      std::string_view h;
      while (next_line(&h)) {
        if (h == *heredoc_end) {
          closed = true;
          break;
        }
        body.append(h);
        body.push_back('\n');
      }
      if (!closed) {
        return LineError(
            opened, "the -<<" + *heredoc_end + " input has no line " + *heredoc_end + " to end it");
      }
      cmd.heredoc = std::move(body);
    }
    script.commands.push_back(std::move(cmd));
  }
  return script;
}

std::vector<size_t> LocalFileArgs(const Command& c) {
  const std::string& n = c.name;
  if (n == "upload" || n == "upload-offset" || n == "tar-in" || n == "tgz-in" || n == "txz-in" ||
      n == "base64-in") {
    return {0};
  }
  if (n == "download" || n == "download-offset" || n == "tar-out" || n == "tgz-out" ||
      n == "txz-out" || n == "base64-out" || n == "ls0" || n == "find0" || n == "cpio-out" ||
      n == "journal-export") {
    return {1};
  }
  if (n == "compress-out" || n == "compress-device-out" || n == "checksums-out" ||
      n == "download-inode") {
    return {2};
  }
  if (n == "download-blocks") return {3};
  if (n == "copy-in") {
    std::vector<size_t> v;
    for (size_t i = 0; i + 1 < c.args.size(); ++i) v.push_back(i);
    return v;
  }
  if (n == "copy-out" && !c.args.empty()) return {c.args.size() - 1};
  return {};
}

Status Validate(const ParsedScript& script) {
  for (const Command& c : script.commands) INGOT_RETURN_IF_ERROR(ValidateOne(c, 0));
  return Status::Ok();
}

namespace {

std::string Quote(const std::string& a) {
  bool plain = !a.empty() && a.rfind("-<<", 0) != 0 && a[0] != '"' && a[0] != '\'' && a[0] != '|';
  for (unsigned char ch : a) {
    if (ch <= ' ' || ch == 0x7f) plain = false;
  }
  if (plain) return a;
  std::string out = "\"";
  for (unsigned char ch : a) {
    if (ch == '"' || ch == '\\') {
      out.push_back('\\');
      out.push_back(char(ch));
    } else if (ch < ' ' || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    } else {
      out.push_back(char(ch));
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string Unparse(const Command& c) {
  std::string out = c.ignore_errors ? "-" : "";
  if (c.kind == Command::Kind::kLocal) return out + "!" + c.local + "\n";
  if (c.kind == Command::Kind::kLocalInput) return out + "<!" + c.local + "\n";
  out += c.name;
  std::string marker;
  bool heredoc_done = false;
  for (size_t i = 0; i < c.args.size(); ++i) {
    const std::string& a = c.args[i];
    out.push_back(' ');
    if (c.heredoc && i == c.heredoc_arg) {
      // An end marker no line of the contents equals.
      marker = "END_INGOT";
      for (int n = 0;; ++n) {
        std::string m = marker + (n ? std::to_string(n) : "");
        std::string needle = "\n" + m + "\n";
        if (("\n" + *c.heredoc).find(needle) == std::string::npos) {
          marker = m;
          break;
        }
      }
      out += "-<<" + marker;
      heredoc_done = true;
      continue;
    }
    out += Quote(a);
  }
  if (c.pipe) out += " |" + *c.pipe;
  out.push_back('\n');
  if (heredoc_done) {
    out += *c.heredoc;
    // guestfish ends the contents at the marker line; contents not ending in a newline cannot be
    // written as a heredoc, so the parser never makes them (each line keeps its newline).
    out += marker + "\n";
  }
  return out;
}

std::string Describe(const Command& c) {
  std::string out = c.ignore_errors ? "-" : "";
  if (c.kind == Command::Kind::kLocal) return out + "!" + c.local;
  if (c.kind == Command::Kind::kLocalInput) return out + "<!" + c.local;
  out += c.name;
  const bool secret_contents = c.name == "write" || c.name == "write-append";
  for (size_t i = 0; i < c.args.size(); ++i) {
    out.push_back(' ');
    if (secret_contents && i == 1) {
      out += "<" + std::to_string(c.args[i].size()) + " bytes>";
    } else if (c.heredoc && i == c.heredoc_arg) {
      out += "-<<<" + std::to_string(c.heredoc->size()) + " bytes>";
    } else {
      out += Quote(c.args[i]);
    }
  }
  if (c.pipe) out += " |" + *c.pipe;
  return out;
}

}  // namespace ingot::deploy::guestfish
