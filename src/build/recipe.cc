#include "build/recipe.h"

#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace ingot::build {
namespace {

constexpr size_t kMaxRecipeFile = 1 << 20;  // a recipe file or step script; more is a mistake

Status At(const std::string& file, int64_t line, const std::string& message) {
  return InvalidArgument(file + ":" + std::to_string(line) + ": " + message);
}

int64_t LineOf(const toml::node& n) { return static_cast<int64_t>(n.source().begin.line); }

bool Matches(const std::string& s, const char* pattern) {
  return std::regex_match(s, std::regex(pattern));
}

// The string list at `key`, each element checked by `pattern` (nullptr: any string).
Status StringArray(const RecipeNode& t, const char* key, const std::string& file,
                   const char* pattern, const char* what, std::vector<std::string>& out) {
  const RecipeNode* n = t.Get(key);
  if (n == nullptr) return Status::Ok();
  if (n->kind != RecipeNode::Kind::kList) {
    return At(file, n->line, std::string(key) + " must be a list of strings");
  }
  out.clear();
  for (const RecipeNode& e : n->items) {
    if (e.kind != RecipeNode::Kind::kString) {
      return At(file, e.line, std::string(key) + " must hold strings only");
    }
    if (pattern != nullptr && !Matches(e.text, pattern)) {
      return At(file, e.line, "'" + e.text + "' is not " + what);
    }
    out.push_back(e.text);
  }
  return Status::Ok();
}

Status String(const RecipeNode& t, const char* key, const std::string& file, std::string& out,
              bool required = false) {
  const RecipeNode* n = t.Get(key);
  if (n == nullptr) {
    if (required) return At(file, 1, std::string("'") + key + "' is required");
    return Status::Ok();
  }
  if (n->kind != RecipeNode::Kind::kString) {
    return At(file, n->line, std::string(key) + " must be a string");
  }
  out = n->text;
  return Status::Ok();
}

Status OnlyKeys(const RecipeNode& t, const std::set<std::string>& known, const std::string& file,
                const std::string& where) {
  for (const auto& [k, v] : t.fields) {
    if (known.count(k) == 0) {
      return At(file, v.line, "unknown key '" + k + "'" + (where.empty() ? "" : " in " + where));
    }
  }
  return Status::Ok();
}

// toml++'s document as a RecipeNode tree (tables come out in key order).
RecipeNode FromToml(const toml::node& n) {
  RecipeNode out;
  out.line = LineOf(n);
  if (const auto* s = n.as_string()) {
    out.kind = RecipeNode::Kind::kString;
    out.text = s->get();
  } else if (const auto* a = n.as_array()) {
    out.kind = RecipeNode::Kind::kList;
    for (const toml::node& e : *a) out.items.push_back(FromToml(e));
  } else if (const auto* t = n.as_table()) {
    out.kind = RecipeNode::Kind::kTable;
    for (const auto& [k, v] : *t) {
      out.fields.push_back(RecipeField{std::string(k.str()), FromToml(v)});
    }
  }
  return out;
}

}  // namespace

// Never through a symlink: a recipe cannot read the host.
Result<std::string> ReadArchiveFile(const std::string& dir, const std::string& rel) {
  std::string path = dir + "/" + rel;
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return NotFound(rel + ": no such file in the recipe archive");
  if (!S_ISREG(st.st_mode)) return InvalidArgument(rel + ": not a regular file");
  if (static_cast<size_t>(st.st_size) > kMaxRecipeFile) {
    return InvalidArgument(rel + ": larger than 1 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.size() > 1024) return false;
  std::stringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '/')) {
    if (part == ".." || part.empty() || part == ".") return false;
  }
  return path.back() != '/';
}

const RecipeNode* RecipeNode::Get(std::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return &v;
  }
  return nullptr;
}

Result<std::string> RenderTemplate(const std::string& text, const std::string& file,
                                   const std::map<std::string, std::string>& dictionary) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  int64_t line = 1;
  for (;;) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      out.append(text, pos, std::string::npos);
      return out;
    }
    for (size_t i = pos; i < open; ++i) line += text[i] == '\n';
    out.append(text, pos, open - pos);
    size_t close = text.find("}}", open + 2);
    size_t newline = text.find('\n', open);
    if (close == std::string::npos || (newline != std::string::npos && newline < close)) {
      return At(file, line, "'{{' without a closing '}}' on the same line");
    }
    std::string name = text.substr(open + 2, close - open - 2);
    size_t b = name.find_first_not_of(" \t");
    size_t e = name.find_last_not_of(" \t");
    name = b == std::string::npos ? "" : name.substr(b, e - b + 1);
    if (!Matches(name, "[A-Za-z_][A-Za-z0-9_]*")) {
      return At(file, line, "'{{ " + name + " }}': only plain variable names are templated");
    }
    auto it = dictionary.find(name);
    if (it == dictionary.end()) {
      return At(file, line, "template variable '" + name + "' is not in the template_dictionary");
    }
    out += it->second;
    pos = close + 2;
  }
}

Result<MmdebstrapRecipe> LoadMmdebstrapRecipe(
    const std::string& dir, const std::map<std::string, std::string>& dictionary) {
  struct stat st;
  bool toml = lstat((dir + "/recipe.toml").c_str(), &st) == 0;
  std::string yaml_name;
  for (const char* name : {"recipe.yaml", "recipe.yml"}) {
    if (lstat((dir + "/" + name).c_str(), &st) == 0) {
      if (!yaml_name.empty()) return InvalidArgument("recipe.yaml and recipe.yml: keep one");
      yaml_name = name;
    }
  }
  if (toml && !yaml_name.empty()) {
    return InvalidArgument("recipe.toml and " + yaml_name + ": keep one of them");
  }
  if (!yaml_name.empty()) {
    INGOT_ASSIGN_OR_RETURN(std::string raw, ReadArchiveFile(dir, yaml_name));
    return ParseMmdebstrapRecipeYaml(raw, dir, dictionary, yaml_name);
  }
  if (!toml) {
    return InvalidArgument(
        "an mmdebstrap recipe needs recipe.toml (or recipe.yaml) at the top of its archive");
  }
  INGOT_ASSIGN_OR_RETURN(std::string raw, ReadArchiveFile(dir, "recipe.toml"));
  return ParseMmdebstrapRecipe(raw, dir, dictionary);
}

Result<MmdebstrapRecipe> ParseMmdebstrapRecipe(
    const std::string& raw, const std::string& dir,
    const std::map<std::string, std::string>& dictionary) {
  const std::string file = "recipe.toml";
  INGOT_ASSIGN_OR_RETURN(std::string text, RenderTemplate(raw, file, dictionary));
  toml::table doc;
  try {
    doc = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return At(file, static_cast<int64_t>(e.source().begin.line), std::string(e.description()));
  }
  return CheckMmdebstrapRecipe(FromToml(doc), file, dir, dictionary);
}

Result<MmdebstrapRecipe> CheckMmdebstrapRecipe(
    const RecipeNode& doc, const std::string& file, const std::string& dir,
    const std::map<std::string, std::string>& dictionary) {
  if (doc.kind != RecipeNode::Kind::kTable) {
    return At(file, doc.line, "a recipe is a table of keys (suite, packages, ...)");
  }
  INGOT_RETURN_IF_ERROR(OnlyKeys(doc,
                                 {"suite", "variant", "mirror", "components", "packages",
                                  "kernel_parameters", "hooks", "files", "steps"},
                                 file, ""));
  MmdebstrapRecipe r;
  INGOT_RETURN_IF_ERROR(String(doc, "suite", file, r.suite, true));
  if (!Matches(r.suite, "[a-z][a-z0-9.-]{0,63}")) {
    return At(file, doc.Get("suite")->line, "suite '" + r.suite + "' is not a suite name");
  }
  INGOT_RETURN_IF_ERROR(String(doc, "variant", file, r.variant));
  static const std::set<std::string> kVariants = {
      "extract", "custom", "essential", "apt", "required", "minbase",
      "buildd", "important", "debootstrap", "-", "standard"};
  if (kVariants.count(r.variant) == 0) {
    return At(file, doc.Get("variant")->line,
              "variant '" + r.variant + "' is not one of mmdebstrap's (minbase, essential, apt, "
              "required, important, standard, buildd, custom, extract)");
  }
  INGOT_RETURN_IF_ERROR(String(doc, "mirror", file, r.mirror));
  if (!r.mirror.empty() && !Matches(r.mirror, "(https?|file)://[^\\s\"'\\\\]+")) {
    return At(file, doc.Get("mirror")->line, "mirror must be an http(s):// or file:// URL");
  }
  INGOT_RETURN_IF_ERROR(StringArray(doc, "components", file, "[a-z][a-z0-9/-]{0,63}",
                                    "a component name", r.components));
  // Debian package names (Policy 5.6.1), optionally with =version, /release or :arch.
  INGOT_RETURN_IF_ERROR(StringArray(doc, "packages", file,
                                    "[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?([=/][A-Za-z0-9.+~:-]+)?",
                                    "a Debian package name", r.packages));
  INGOT_RETURN_IF_ERROR(String(doc, "kernel_parameters", file, r.kernel_parameters));
  if (r.kernel_parameters.find('\n') != std::string::npos) {
    return At(file, doc.Get("kernel_parameters")->line, "kernel_parameters is one line");
  }
  if (const RecipeNode* t = doc.Get("hooks")) {
    if (t->kind != RecipeNode::Kind::kTable) return At(file, t->line, "hooks must be a table");
    INGOT_RETURN_IF_ERROR(OnlyKeys(*t, {"setup", "extract", "essential", "customize"}, file,
                                   "[hooks] (setup, extract, essential, customize)"));
    for (const char* kind : {"setup", "extract", "essential", "customize"}) {
      std::vector<std::string> cmds;
      INGOT_RETURN_IF_ERROR(StringArray(*t, kind, file, nullptr, "", cmds));
      if (!cmds.empty()) r.hooks[kind] = std::move(cmds);
    }
  }
  if (const RecipeNode* a = doc.Get("files")) {
    if (a->kind != RecipeNode::Kind::kList) {
      return At(file, a->line, "files must be a list of tables ([[files]])");
    }
    for (const RecipeNode& e : a->items) {
      const RecipeNode* t = &e;
      if (t->kind != RecipeNode::Kind::kTable) {
        return At(file, e.line, "each files entry is a table");
      }
      INGOT_RETURN_IF_ERROR(OnlyKeys(*t, {"source", "path", "mode"}, file, "[[files]]"));
      RecipeFile rf;
      INGOT_RETURN_IF_ERROR(String(*t, "source", file, rf.source));
      INGOT_RETURN_IF_ERROR(String(*t, "path", file, rf.path));
      int64_t line = e.line;
      if (!IsSafeRelativePath(rf.source)) {
        return At(file, line, "files.source '" + rf.source + "' must be a path inside the archive");
      }
      if (rf.path.size() < 2 || rf.path.front() != '/' ||
          !IsSafeRelativePath(rf.path.substr(1))) {
        return At(file, line, "files.path '" + rf.path + "' must be an absolute path in the root");
      }
      auto content = ReadArchiveFile(dir, rf.source);
      if (!content.ok()) return At(file, line, content.status().message());
      std::string mode = "0644";
      INGOT_RETURN_IF_ERROR(String(*t, "mode", file, mode));
      if (!Matches(mode, "0?[0-7]{3,4}")) return At(file, line, "mode must be octal, as \"0644\"");
      rf.mode = static_cast<uint32_t>(std::stoul(mode, nullptr, 8));
      r.files.push_back(std::move(rf));
    }
  }
  if (const RecipeNode* a = doc.Get("steps")) {
    if (a->kind != RecipeNode::Kind::kList) {
      return At(file, a->line, "steps must be a list of tables ([[steps]])");
    }
    std::set<std::string> names;
    for (const RecipeNode& e : a->items) {
      const RecipeNode* t = &e;
      int64_t line = e.line;
      if (t->kind != RecipeNode::Kind::kTable) return At(file, line, "each steps entry is a table");
      INGOT_RETURN_IF_ERROR(
          OnlyKeys(*t, {"name", "stage", "script", "run", "args"}, file, "[[steps]]"));
      RecipeStep step;
      step.stage = "post";
      INGOT_RETURN_IF_ERROR(String(*t, "name", file, step.name));
      INGOT_RETURN_IF_ERROR(String(*t, "stage", file, step.stage));
      if (!Matches(step.name, "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")) {
        return At(file, line, "each step needs a name (letters, digits, '_', '.', '-')");
      }
      if (!names.insert(step.name).second) {
        return At(file, line, "step name '" + step.name + "' is used twice");
      }
      if (step.stage != "pre" && step.stage != "post") {
        return At(file, line, "step '" + step.name + "': stage must be \"pre\" or \"post\"");
      }
      std::string script_file, run;
      INGOT_RETURN_IF_ERROR(String(*t, "script", file, script_file));
      INGOT_RETURN_IF_ERROR(String(*t, "run", file, run));
      if (script_file.empty() == run.empty()) {
        return At(file, line, "step '" + step.name + "' needs exactly one of script or run");
      }
      if (!script_file.empty()) {
        if (!IsSafeRelativePath(script_file)) {
          return At(file, line, "step '" + step.name + "': script must be a path in the archive");
        }
        auto body = ReadArchiveFile(dir, script_file);
        if (!body.ok()) return At(file, line, body.status().message());
        INGOT_ASSIGN_OR_RETURN(step.script, RenderTemplate(*body, script_file, dictionary));
        step.origin = script_file;
      } else {
        step.script = "#!/bin/sh\nset -e\n" + run + "\n";
        step.origin = file + ":" + std::to_string(line);
      }
      INGOT_RETURN_IF_ERROR(StringArray(*t, "args", file, nullptr, "", step.args));
      r.steps.push_back(std::move(step));
    }
  }
  return r;
}

}  // namespace ingot::build
