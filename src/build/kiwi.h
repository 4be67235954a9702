// kiwi-ng recipes (IMS's recipe_type "kiwi-ng"): a kiwi image description — config.kiwi or
// config.xml at the top of the archive, an optional config.sh, a root/ overlay — built into a root
// file system by `kiwi-ng system prepare` (Debian's `kiwi` package), then packaged by the builder's
// own stages exactly like an mmdebstrap root (SquashFS, kernel, initrd, manifest, SBOM, DRP
// tarballs, bootable disk).
//
// Templating is IMS's: when the archive has `.ims_recipe_template.yaml`, the files its
// `template_files` list names are rendered with the recipe record's template_dictionary (IMS uses
// Jinja2; Ingot renders the `{{ name }}` subset, and refuses `{% ... %}` statements by file and
// line rather than mis-render them). Without that file nothing is templated, as in IMS.
//
// What is checked before a job starts (every error names the file and line): the XML is
// well-formed (no DOCTYPE), the root is <image name=...>, the package manager is apt, there is a
// <type image="tbz"/> (IMS runs kiwi with --type tbz; kiwi's own oem/iso disks loop-mount a FAT
// partition, which this host's kernel cannot), and the repositories are Debian ones (type apt-deb,
// an http(s) source, a distribution).
//
// Pure except LoadKiwiRecipe/WriteKiwiTemplates, which read and write the extracted archive.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "build/recipe.h"
#include "common/result.h"

namespace ingot::build {

struct KiwiRepository {
  std::string url;           // <source path="...">
  std::string distribution;  // the suite debootstrap and apt use (bookworm)
  std::vector<std::string> components;
  int64_t line = 0;
};

struct KiwiDescription {
  std::string file;                // "config.kiwi" or "config.xml"
  std::string name;                // <image name="...">
  std::vector<std::string> types;  // every <type image="...">
  std::vector<KiwiRepository> repositories;
  std::vector<std::string> packages;  // <package name> of <packages type="image"|"bootstrap">
  std::string kernel_parameters;      // the first kernelcmdline of a <type> (never tbz's: kiwi
                                      // refuses it there)
};

// Checks a description's (templated) text. `file` names it in messages.
Result<KiwiDescription> ParseKiwiDescription(const std::string& text, const std::string& file);

struct KiwiRecipe {
  KiwiDescription description;
  // IMS's template_files, rendered: archive path -> text.
  std::map<std::string, std::string> rendered;
};

// Reads the extracted archive in `dir`: the template list, the rendered files, the description.
Result<KiwiRecipe> LoadKiwiRecipe(const std::string& dir,
                                  const std::map<std::string, std::string>& dictionary);
// Writes the rendered files over their templates (keeping their modes), before kiwi reads them.
Status WriteKiwiTemplates(const std::string& dir, const KiwiRecipe& recipe);

// For the builder's job: loads the recipe in `dir`, writes the rendered templates there, and gives
// the root's coordinates in the builder's recipe struct — suite and mirror of the first apt-deb
// repository (its InRelease pins SOURCE_DATE_EPOCH), a type's kernelcmdline, the packages
// (for the record) — with no steps or files (config.sh and root/ are kiwi's to apply).
Result<MmdebstrapRecipe> PrepareKiwiRecipe(const std::string& dir,
                                           const std::map<std::string, std::string>& dictionary);

// The keyring kiwi checks the Debian archive's signatures with (Debian's debian-archive-keyring).
inline constexpr const char* kDebianArchiveKeyring =
    "/usr/share/keyrings/debian-archive-keyring.gpg";

// The kiwi stage: `sh -c kKiwiPrepareScript sh DESCRIPTION_DIR TARGET SHARED_CACHE KEYRING`.
// Runs `kiwi-ng system prepare` into TARGET/root (gpg's home for the keyring import is a private
// directory under /tmp, removed on exit), removes kiwi's own files from the root (/image,
// /.kconfig, /.profile, /run/*, /tmp/*, /var/cache/kiwi) and clamps every time to
// SOURCE_DATE_EPOCH, as the mmdebstrap bootstrap does.
extern const char* const kKiwiPrepareScript;

}  // namespace ingot::build
