// What a build is made from: the recipe archive's contents, templated with the recipe record's
// template_dictionary (IMS renders recipes with Jinja2's `{{ name }}`), then checked — every error
// names the file and the line, so a person can fix the recipe without reading Ingot's code.
//
// The `mmdebstrap` recipe type is a `recipe.toml` at the root of the archive:
//
//   suite = "bookworm"                 # required
//   variant = "minbase"                # mmdebstrap --variant (default minbase)
//   mirror = "http://deb.debian.org/debian"   # default: the builder's [build] mirror
//   components = ["main"]
//   packages = ["linux-image-amd64", "systemd-sysv"]
//   kernel_parameters = "console=ttyS0"
//   [hooks]                            # mmdebstrap hooks: commands run with the root as "$1"
//   customize = ["echo hi > \"$1\"/etc/hi"]
//   [[files]]                          # files of the archive put into the root
//   source = "files/motd"  path = "/etc/motd"  mode = "0644"
//   [[steps]]                          # scripts run chrooted in the root, in order
//   name = "marker"  stage = "post"  script = "steps/marker.sh"  args = ["x"]   # or run = "..."
//
// Pure: no I/O beyond reading the extracted archive directory it is given.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace ingot::build {

// `{{ name }}` replaced by dictionary[name] (whitespace inside the braces ignored). An unknown name
// is an error naming `file` and the line; `{{` without a closing `}}` too.
Result<std::string> RenderTemplate(const std::string& text, const std::string& file,
                                   const std::map<std::string, std::string>& dictionary);

struct RecipeFile {
  std::string source;  // path inside the archive
  std::string path;    // absolute path in the root
  uint32_t mode = 0644;
};

struct RecipeStep {
  std::string name;
  std::string stage;   // "pre" (before files) or "post" (after them)
  std::string script;  // the script's text (templated), from `script = FILE` or `run = "..."`
  std::string origin;  // "recipe.toml:12" or "steps/x.sh", for messages
  std::vector<std::string> args;
};

struct MmdebstrapRecipe {
  std::string suite;
  std::string variant = "minbase";
  std::string mirror;  // empty: the builder's default
  std::vector<std::string> components = {"main"};
  std::vector<std::string> packages;
  std::string kernel_parameters;
  std::map<std::string, std::vector<std::string>> hooks;  // setup, extract, essential, customize
  std::vector<RecipeFile> files;
  std::vector<RecipeStep> steps;
};

// Reads and checks `dir`/recipe.toml (the extracted archive), templating it and every step script
// with `dictionary`. Errors are kInvalidArgument "recipe.toml:7: ...".
Result<MmdebstrapRecipe> LoadMmdebstrapRecipe(const std::string& dir,
                                              const std::map<std::string, std::string>& dictionary);
// The same over recipe.toml's text (`dir` still holds the files it names). Fuzzed.
Result<MmdebstrapRecipe> ParseMmdebstrapRecipe(const std::string& text, const std::string& dir,
                                               const std::map<std::string, std::string>& dictionary);

// Checks a kiwi-ng description in `dir` (config.kiwi or config.xml): present, well-formed enough to
// name an <image> with a <type>, templated. Errors name the file and line.
Status CheckKiwiRecipe(const std::string& dir, const std::map<std::string, std::string>& dictionary);

// A path inside an archive that cannot escape it ("a/b", not "/a", "../a", "a/../../b").
bool IsSafeRelativePath(const std::string& path);

}  // namespace ingot::build
