// guestfish(1) script text, parsed: what a plan script says, as data. The text is untrusted (an
// operator's upload, after @attribute@ substitution), so every rule here is a refusal with the
// line it happened on, never a guess.
//
// The syntax, as guestfish reads a script on its standard input ("COMMANDS" and "COMMANDS ON
// STANDARD INPUT" in guestfish(1)):
//   - one command a line; leading blanks skipped; empty lines and lines starting with `#` ignored;
//   - a leading `-` makes an error of that command non-fatal (the script goes on);
//   - `!cmd` runs a local shell command and `<!cmd` parses its output as commands; `cmd … | shell`
//     pipes a command's output into a local shell command. They run on the deploy host, not in the
//     guest: Ingot runs `!` and `|` in a jail (local_command.h); `<!` is refused by Validate();
//   - arguments are separated by blanks (space, tab); "double quotes" take backslash escapes
//     (\\ \" \a \b \f \n \r \t \v \xHH \NNN octal), 'single quotes' take none; a quoted argument
//     must end at a blank or the end of the line;
//   - an argument `-<<END` takes the following lines, each with its newline, up to a line that is
//     exactly END, as the argument's contents (upload's "-" file); line numbers count them too;
//   - `_` and `-` are the same in command names (list_filesystems = list-filesystems).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::deploy::guestfish {

struct Command {
  int line = 0;  // 1-based line of the command in the script
  enum class Kind { kGuestfish, kLocal, kLocalInput } kind = Kind::kGuestfish;
  bool ignore_errors = false;  // the `-` prefix
  std::string name;            // canonical: `_` → `-`, aliases resolved (unmount → umount, …)
  std::vector<std::string> args;
  // For an argument written `-<<END`: the argument reads "-" and this holds the lines up to END.
  std::optional<std::string> heredoc;
  size_t heredoc_arg = 0;           // which argument it is
  std::optional<std::string> pipe;  // `| shell command` after the arguments
  std::string local;                // kLocal / kLocalInput: the shell command text
};

struct ParsedScript {
  std::vector<Command> commands;
};

// Limits on what one script may hold (over: kTooLarge naming the line).
inline constexpr size_t kMaxScriptBytes = 16u << 20;
inline constexpr size_t kMaxArgs = 256;

// Parses the text. kInvalidArgument "line N: …" for an unterminated quote or heredoc, a bad escape,
// arguments not separated by blanks, more than one heredoc on a line.
Result<ParsedScript> ParseScript(std::string_view text);

// Checks what the script may do on the deploy host: `<!` (commands made up by a local command),
// commands that configure or relaunch the guestfish handle (add-drive, set-hv, …), and local file names
// (upload's source, download's destination, …) that are absolute or climb out with "..": each is
// kRefused "line N: …". Local files live in the run's private working directory.
Status Validate(const ParsedScript& script);

// The argument indexes of `name`'s local file names (upload 0, download 1, …); empty for none.
std::vector<size_t> LocalFileArgs(const Command& command);

// The command as guestfish text again (quoted so guestfish reads back exactly these arguments);
// a heredoc gets an end marker that no line of its contents equals.
std::string Unparse(const Command& command);

// The text to log for a command: its name and arguments, but the contents of heredocs and of
// write/write-append (which carry passwords in plan scripts) only by their size.
std::string Describe(const Command& command);

}  // namespace ingot::deploy::guestfish
