// Boot templates: the text of an iPXE or GRUB script, a kernel command line or a cloud-init
// document with `{{.name}}` holes filled from a machine's variables (matchbox's Go-template holes,
// without Go's control flow: a boot script should be readable as it will run).
//
// Syntax: `{{.name}}` or `{{ .name | filter | filter }}`; names are [A-Za-z_][A-Za-z0-9_.-]*
// (dots are part of the name: `{{.label.rack}}`). Filters: `urlquery` (percent-encodes for a URL
// query or path segment), `json` (a quoted JSON string, also a valid YAML scalar), `shquote` (a
// single-quoted POSIX shell word). Everything else is literal text; `{{` that does not open a
// well-formed hole is a syntax error, found when the template is saved (Parse), not at boot.
//
// Where the result goes decides what a value may hold (Context): a value put into an iPXE or
// GRUB script can never start a new command — a line break (or any control character) in it is
// refused, and so is iPXE's `${` (iPXE would expand it); in GRUB, characters its parser gives a
// meaning (space, quotes, $, ;, |, &, <, >, {, }, \, #) are backslash-escaped. A hole whose name
// has no value is an error naming the variable and the line, never an empty string.
//
// Thread-safe: a Template is immutable after Parse.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::boot {

enum class TemplateContext {
  kText,  // cloud-init documents, plain text: values go in as they are (filters still apply)
  kIpxe,  // an iPXE script or a kernel command line inside one
  kGrub,  // a GRUB script
};

using Variables = std::map<std::string, std::string, std::less<>>;

class Template {
 public:
  // Parses `text`; `what` names it in errors ("the ipxe template of profile 'x'").
  static Result<Template> Parse(std::string_view text, std::string what);

  // Fills the holes. kInvalidArgument naming the variable and line when a name has no value or a
  // value is refused in `context`.
  Result<std::string> Render(const Variables& vars, TemplateContext context) const;

  // The variable names used, in order of first use.
  std::vector<std::string> Names() const;

 private:
  struct Piece {
    bool hole = false;
    std::string text;  // literal text, or the variable's name
    std::vector<std::string> filters;
    int line = 1;
  };
  std::string what_;
  std::vector<Piece> pieces_;
};

// Parses and renders at once (templates that are not stored).
Result<std::string> RenderTemplate(std::string_view text, std::string what, const Variables& vars,
                                   TemplateContext context);

}  // namespace ingot::boot
