#include "build/kiwi.h"

#include <expat.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "build/recipe.h"
#include "build/recipe_yaml.h"

namespace ingot::build {

const char* const kKiwiPrepareScript = R"sh(set -eu
desc=$1 target=$2 cache=$3 keyring=$4
# gpg (kiwi imports the archive keyring with it) needs a private home, on a short path: its agent's
# socket lives there and a unix socket path has at most 107 bytes.
HOME=$(mktemp -d /tmp/ingot-kiwi-gpg.XXXXXX)
export HOME
trap 'rm -rf "$HOME"' EXIT
mkdir -p "$HOME/.gnupg" "$cache" /var/cache/kiwi
chmod 700 "$HOME/.gnupg"
# kiwi binds its shared cache into the root at the same path; a path of ours (under the data
# directory) would be created inside the root, /tmp's mode with it. So the builder's cache is
# bound at kiwi's default path, in this stage's own mount namespace only.
mount --bind "$cache" /var/cache/kiwi
kiwi-ng --type tbz system prepare --description "$desc" --root "$target/root" \
    --signing-key "$keyring"
# kiwi's own files, which its `system create` leaves out of every image (its cache bind mount is
# gone by now; never remove through one).
if mountpoint -q "$target/root/var/cache/kiwi"; then umount -l "$target/root/var/cache/kiwi"; fi
rm -rf "$target/root/image" "$target/root/.kconfig" "$target/root/.profile" \
    "$target/root/.buildenv" "$target/root/var/cache/kiwi"
find "$target/root/run" "$target/root/tmp" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true
find "$target/root" -xdev -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
)sh";

namespace {

namespace fs = std::filesystem;

Status At(const std::string& file, int64_t line, const std::string& message) {
  return InvalidArgument(file + ":" + std::to_string(line) + ": " + message);
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The description, read by expat's callbacks. The first problem found stops the parser.
struct Reader {
  XML_Parser parser = nullptr;
  std::string file;
  KiwiDescription d;
  Status error = Status::Ok();
  std::vector<std::string> path;  // element names from the root
  std::string text;               // character data of the current element
  std::string packages_type;      // the enclosing <packages type>
  std::string package_manager;
  int64_t package_manager_line = 0;
  int64_t preferences_line = 0;
  bool in_repository = false;
  int64_t tbz_line = 0;

  int64_t Line() const { return static_cast<int64_t>(XML_GetCurrentLineNumber(parser)); }
  void Fail(const std::string& message) {
    if (error.ok()) error = At(file, Line(), message);
    XML_StopParser(parser, XML_FALSE);
  }
};

std::map<std::string, std::string> Attributes(const XML_Char** attrs) {
  std::map<std::string, std::string> out;
  for (int i = 0; attrs[i] != nullptr && attrs[i + 1] != nullptr; i += 2)
    out[attrs[i]] = attrs[i + 1];
  return out;
}

void XMLCALL OnStart(void* data, const XML_Char* name_c, const XML_Char** attrs_c) {
  auto& r = *static_cast<Reader*>(data);
  if (!r.error.ok()) return;
  const std::string name = name_c;
  const auto attrs = Attributes(attrs_c);
  auto attr = [&](const char* key) {
    auto it = attrs.find(key);
    return it == attrs.end() ? std::string() : it->second;
  };
  if (r.path.size() > 64) return r.Fail("the description is nested too deeply");
  r.text.clear();
  const std::string parent = r.path.empty() ? "" : r.path.back();
  r.path.push_back(name);
  if (r.path.size() == 1) {
    if (name != "image") return r.Fail("the root element is <" + name + ">, kiwi needs <image>");
    r.d.name = attr("name");
    if (r.d.name.empty()) return r.Fail("<image> needs a name attribute");
    if (attr("schemaversion").empty()) return r.Fail("<image> needs a schemaversion attribute");
    return;
  }
  if (name == "preferences" && parent == "image") {
    if (r.preferences_line == 0) r.preferences_line = r.Line();
  } else if (name == "type" && parent == "preferences") {
    std::string image = attr("image");
    if (image.empty()) return r.Fail("<type> needs an image attribute");
    r.d.types.push_back(image);
    std::string cmdline = attr("kernelcmdline");
    if (image == "tbz") {
      if (r.tbz_line == 0) r.tbz_line = r.Line();
      // kiwi's own schematron rule, found here rather than minutes into the job.
      if (!cmdline.empty()) {
        return r.Fail(
            "kernelcmdline is not allowed on the tbz type (kiwi: only oem, iso, pxe, "
            "kis); put it on another <type>");
      }
    }
    if (cmdline.find('\n') != std::string::npos) return r.Fail("kernelcmdline is one line");
    if (r.d.kernel_parameters.empty()) r.d.kernel_parameters = cmdline;
  } else if (name == "repository" && parent == "image") {
    std::string type = attr("type");
    if (type.empty()) type = "rpm-md";  // kiwi's default
    if (type != "apt-deb") {
      return r.Fail("repository type '" + type +
                    "': this builder makes Debian roots; use type=\"apt-deb\"");
    }
    KiwiRepository repo;
    repo.distribution = attr("distribution");
    repo.line = r.Line();
    if (!std::regex_match(repo.distribution, std::regex("[a-z][a-z0-9.-]{0,63}"))) {
      return r.Fail("an apt-deb repository needs distribution=\"SUITE\" (bookworm)");
    }
    std::istringstream comps(attr("components").empty() ? "main" : attr("components"));
    for (std::string c; comps >> c;) {
      if (!std::regex_match(c, std::regex("[a-z][a-z0-9/-]{0,63}"))) {
        return r.Fail("'" + c + "' is not a component name");
      }
      repo.components.push_back(c);
    }
    r.d.repositories.push_back(std::move(repo));
    r.in_repository = true;
  } else if (name == "source" && parent == "repository" && r.in_repository) {
    std::string path = attr("path");
    if (!std::regex_match(path, std::regex("https?://[^\\s\"'\\\\]+"))) {
      return r.Fail("source path '" + path + "' must be an http(s):// URL of a Debian archive");
    }
    while (!path.empty() && path.back() == '/') path.pop_back();
    r.d.repositories.back().url = path;
  } else if (name == "packages" && parent == "image") {
    r.packages_type = attr("type");
    if (r.packages_type.empty()) return r.Fail("<packages> needs a type attribute");
  } else if (name == "package" && parent == "packages") {
    std::string pkg = attr("name");
    if (!std::regex_match(pkg, std::regex("[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?"))) {
      return r.Fail("'" + pkg + "' is not a Debian package name");
    }
    if (r.packages_type == "image" || r.packages_type == "bootstrap") r.d.packages.push_back(pkg);
  }
}

void XMLCALL OnEnd(void* data, const XML_Char* name_c) {
  auto& r = *static_cast<Reader*>(data);
  if (!r.error.ok()) return;
  const std::string name = name_c;
  if (name == "packagemanager" && r.path.size() >= 2 &&
      r.path[r.path.size() - 2] == "preferences") {
    r.package_manager = Trim(r.text);
    r.package_manager_line = r.Line();
  } else if (name == "repository") {
    r.in_repository = false;
    if (r.d.repositories.back().url.empty())
      return r.Fail("<repository> needs a <source path=...>");
  }
  r.text.clear();
  if (!r.path.empty()) r.path.pop_back();
}

void XMLCALL OnText(void* data, const XML_Char* s, int len) {
  auto& r = *static_cast<Reader*>(data);
  if (r.text.size() < 4096) r.text.append(s, static_cast<size_t>(len));
}

// Kiwi descriptions never need a DOCTYPE; one could declare entities (a "billion laughs").
void XMLCALL OnDoctype(void* data, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  static_cast<Reader*>(data)->Fail("a DOCTYPE is not accepted in a kiwi description");
}

void XMLCALL OnEntity(void* data, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                      const XML_Char*, const XML_Char*, const XML_Char*) {
  static_cast<Reader*>(data)->Fail("entity declarations are not accepted");
}

// Jinja2 statements and comments: IMS would run them; rendering them as text would be wrong.
Status NoJinjaStatements(const std::string& text, const std::string& file) {
  for (const char* open : {"{%", "{#"}) {
    size_t pos = text.find(open);
    if (pos != std::string::npos) {
      int64_t line = 1 + std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(pos), '\n');
      return At(file, line,
                std::string("Jinja2 ") +
                    (open[1] == '%' ? "statements ({% ... %})" : "comments ({# ... #})") +
                    " are not supported; only {{ name }} is templated");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<KiwiDescription> ParseKiwiDescription(const std::string& text, const std::string& file) {
  if (text.size() > (1 << 20)) return At(file, 1, "a description is at most 1 MiB");
  Reader r;
  r.file = file;
  r.d.file = file;
  r.parser = XML_ParserCreate("UTF-8");
  if (r.parser == nullptr) return Internal("cannot create an XML parser");
  XML_SetUserData(r.parser, &r);
  XML_SetElementHandler(r.parser, OnStart, OnEnd);
  XML_SetCharacterDataHandler(r.parser, OnText);
  XML_SetStartDoctypeDeclHandler(r.parser, OnDoctype);
  XML_SetEntityDeclHandler(r.parser, OnEntity);
  XML_Status st = XML_Parse(r.parser, text.data(), static_cast<int>(text.size()), XML_TRUE);
  if (st == XML_STATUS_ERROR && r.error.ok()) {
    r.error =
        At(file, static_cast<int64_t>(XML_GetCurrentLineNumber(r.parser)),
           std::string("not well-formed XML: ") + XML_ErrorString(XML_GetErrorCode(r.parser)));
  }
  XML_ParserFree(r.parser);
  r.parser = nullptr;
  if (!r.error.ok()) return r.error;
  if (r.d.name.empty()) return At(file, 1, "no <image> element");
  if (r.preferences_line == 0) return At(file, 1, "no <preferences> element");
  if (r.package_manager != "apt") {
    if (r.package_manager.empty()) {
      return At(file, r.preferences_line,
                "<preferences> needs <packagemanager>apt</packagemanager>: this builder makes "
                "Debian roots");
    }
    return At(
        file, r.package_manager_line,
        "packagemanager '" + r.package_manager + "': this builder makes Debian roots with apt");
  }
  if (r.tbz_line == 0) {
    std::string types;
    for (const auto& t : r.d.types) types += (types.empty() ? "" : ", ") + t;
    return At(
        file, r.preferences_line,
        "no <type image=\"tbz\"/>: IMS builds kiwi-ng recipes with --type tbz, and Ingot makes "
        "the SquashFS and the bootable disk from that root" +
            (types.empty() ? std::string() : " (found: " + types + ")"));
  }
  if (r.d.repositories.empty()) {
    return At(file, 1, "no <repository type=\"apt-deb\">: kiwi needs a Debian archive");
  }
  return r.d;
}

Result<KiwiRecipe> LoadKiwiRecipe(const std::string& dir,
                                  const std::map<std::string, std::string>& dictionary) {
  KiwiRecipe recipe;
  std::string desc_file;
  for (const char* name : {"config.kiwi", "config.xml"}) {
    struct stat st;
    if (lstat((dir + "/" + name).c_str(), &st) == 0) {
      if (!desc_file.empty())
        return InvalidArgument("config.kiwi and config.xml: keep one of them");
      desc_file = name;
    }
  }
  if (desc_file.empty()) {
    return InvalidArgument("a kiwi-ng recipe needs config.kiwi or config.xml at its top level");
  }
  const std::string list_file = ".ims_recipe_template.yaml";
  struct stat st;
  if (lstat((dir + "/" + list_file).c_str(), &st) == 0) {
    INGOT_ASSIGN_OR_RETURN(std::string list_text, ReadArchiveFile(dir, list_file));
    INGOT_ASSIGN_OR_RETURN(RecipeNode list, ParseYamlDocument(list_text, list_file));
    for (const auto& [k, v] : list.fields) {
      if (k != "template_files") return At(list_file, v.line, "unknown key '" + k + "'");
    }
    const RecipeNode* files = list.Get("template_files");
    if (files == nullptr || files->kind != RecipeNode::Kind::kList) {
      return At(list_file, files ? files->line : 1, "template_files must be a list of paths");
    }
    if (dictionary.empty()) {
      return At(list_file, files->line,
                "the recipe expects to be templated, but the recipe record's "
                "template_dictionary is empty");
    }
    for (const RecipeNode& f : files->items) {
      if (f.kind != RecipeNode::Kind::kString || !IsSafeRelativePath(f.text)) {
        return At(list_file, f.line, "'" + f.text + "' is not a path inside the recipe");
      }
      auto raw = ReadArchiveFile(dir, f.text);
      if (!raw.ok()) return At(list_file, f.line, raw.status().message());
      INGOT_RETURN_IF_ERROR(NoJinjaStatements(*raw, f.text));
      INGOT_ASSIGN_OR_RETURN(std::string text, RenderTemplate(*raw, f.text, dictionary));
      recipe.rendered[f.text] = std::move(text);
    }
  }
  std::string text;
  if (auto it = recipe.rendered.find(desc_file); it != recipe.rendered.end()) {
    text = it->second;
  } else {
    INGOT_ASSIGN_OR_RETURN(text, ReadArchiveFile(dir, desc_file));
  }
  INGOT_ASSIGN_OR_RETURN(recipe.description, ParseKiwiDescription(text, desc_file));
  return recipe;
}

Status WriteKiwiTemplates(const std::string& dir, const KiwiRecipe& recipe) {
  for (const auto& [rel, text] : recipe.rendered) {
    std::string path = dir + "/" + rel;
    std::string tmp = path + ".rendered";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out.good()) return IoError("cannot write the rendered " + rel);
    }
    std::error_code ec;
    fs::permissions(tmp, fs::status(path, ec).permissions(), ec);
    if (rename(tmp.c_str(), path.c_str()) != 0) return FromErrno(errno, "rendering " + rel);
  }
  return Status::Ok();
}

Result<MmdebstrapRecipe> PrepareKiwiRecipe(const std::string& dir,
                                           const std::map<std::string, std::string>& dictionary) {
  INGOT_ASSIGN_OR_RETURN(KiwiRecipe recipe, LoadKiwiRecipe(dir, dictionary));
  INGOT_RETURN_IF_ERROR(WriteKiwiTemplates(dir, recipe));
  const KiwiRepository& repo = recipe.description.repositories.front();
  MmdebstrapRecipe plan;
  plan.suite = repo.distribution;
  plan.mirror = repo.url;
  plan.components = repo.components;
  plan.variant = "kiwi";
  plan.packages = recipe.description.packages;
  plan.kernel_parameters = recipe.description.kernel_parameters;
  return plan;
}

}  // namespace ingot::build
