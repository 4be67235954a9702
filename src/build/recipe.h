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
// The same recipe may be a `recipe.yaml` instead (recipe_yaml.h): the same keys, YAML's syntax
// (`files:` and `steps:` are lists of mappings). Both syntaxes become one RecipeNode tree, and one
// set of checks runs over it, so the rules and the messages are the same.
//
// Pure: no I/O beyond reading the extracted archive directory it is given.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
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

// A recipe document before its checks, whatever its syntax: strings, lists and tables, each with
// the line it starts on. Other scalars (numbers, booleans, YAML's null) are kOther: the checks
// refuse them by name and line.
struct RecipeField;
struct RecipeNode {
  enum class Kind { kString, kList, kTable, kOther };
  Kind kind = Kind::kOther;
  int64_t line = 1;
  std::string text;                                   // kString
  std::vector<RecipeNode> items;                      // kList
  std::vector<RecipeField> fields;                    // kTable
  const RecipeNode* Get(std::string_view key) const;  // nullptr when absent
};
struct RecipeField {
  std::string key;
  RecipeNode value;
};

// Reads and checks the extracted archive's `dir`/recipe.toml (or recipe.yaml / recipe.yml: one of
// them), templating it and every step script with `dictionary`. Errors are kInvalidArgument
// "recipe.toml:7: ...".
Result<MmdebstrapRecipe> LoadMmdebstrapRecipe(const std::string& dir,
                                              const std::map<std::string, std::string>& dictionary);
// The same over recipe.toml's text (`dir` still holds the files it names). Fuzzed.
Result<MmdebstrapRecipe> ParseMmdebstrapRecipe(const std::string& text, const std::string& dir,
                                               const std::map<std::string, std::string>& dictionary);

// The checks of an mmdebstrap recipe over its (already templated) document; `file` names it in
// messages, `dir` holds the files and step scripts it names (step scripts are templated here).
Result<MmdebstrapRecipe> CheckMmdebstrapRecipe(
    const RecipeNode& doc, const std::string& file, const std::string& dir,
    const std::map<std::string, std::string>& dictionary);
// recipe.yaml's text (recipe_yaml.cc). Fuzzed.
Result<MmdebstrapRecipe> ParseMmdebstrapRecipeYaml(
    const std::string& text, const std::string& dir,
    const std::map<std::string, std::string>& dictionary, const std::string& file = "recipe.yaml");

// Reads a file of an extracted archive (a regular file, never through a link, at most 1 MiB).
Result<std::string> ReadArchiveFile(const std::string& dir, const std::string& rel);

// A path inside an archive that cannot escape it ("a/b", not "/a", "../a", "a/../../b").
bool IsSafeRelativePath(const std::string& path);

}  // namespace ingot::build
