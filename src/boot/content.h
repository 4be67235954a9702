// The boot service's content: what an operator puts on the southbound listener for machines to
// boot from. The records, their naming rules, and the repository they persist through.
//
//   ISO          an installer image kept in the store (content dir iso/NAME, NAME ends in ".iso"):
//                added from a client's upload, a URL, a path on the server or a stored ISO.
//   OS tree      NAME/VERSION bound to a stored ISO: served at /NAME/VERSION/... straight out of the
//                ISO (no mount, no extraction), with its boot layout detected (layouts.h).
//   file         a boot file in one of two spaces: "microkernel" (RackHD's microkernel store,
//                served at /common/NAME) and "files" (Digital Rebar's files/, served at /files/NAME).
//   publication  a catalog image on the southbound listener at /images/{image id} and
//                /images/{name}, optionally as raw converted on the fly.
//
// Status of an ISO: `saving` (bytes arriving: upload, path or copy), `downloading` (a URL being
// fetched by the server), `ready`, `failed` (with its reason). Status of an OS tree: `preparing`,
// `OK` (RackHD's word), `failed`. Only ready ISOs and OK trees are served; a crash never leaves
// anything half-added served (ContentService::Repair).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::boot {

enum class IsoStatus { kSaving, kDownloading, kReady, kFailed };
std::string_view IsoStatusName(IsoStatus s);
std::optional<IsoStatus> ParseIsoStatus(std::string_view s);

struct Iso {
  std::string name;  // ends in ".iso"; the file iso/NAME in the content dir
  uint64_t size = 0;
  int64_t uploaded = 0;  // micros since the epoch: when the bytes were complete (or added)
  IsoStatus status = IsoStatus::kSaving;
  std::string source;  // "upload", "url", "path", "copy"
  std::string origin;  // the URL, path or ISO it came from ("" for an upload)
  std::string error;   // kFailed: why
};

enum class TreeStatus { kPreparing, kOk, kFailed };
std::string_view TreeStatusName(TreeStatus s);  // "preparing", "OK", "failed"
std::optional<TreeStatus> ParseTreeStatus(std::string_view s);

// How a machine boots an OS tree, as detected from the ISO's layout (layouts.h). Paths are relative
// to the tree's root (/NAME/VERSION/).
struct BootSpec {
  std::string layout;  // "debian-installer", "casper", "rhel", "esxi", "photon", "windows-pe", ""
  std::string kernel;  // "install.amd/vmlinuz"; "" when the layout is unknown
  // Each "PATH" or "PATH NAME" (iPXE's initrd name, for wimboot): loaded in order.
  std::vector<std::string> initrds;
  // Kernel arguments; "{base}" stands for the tree's absolute URL with a trailing '/', "{iso}" for
  // the ISO's absolute URL (both filled in when a script is rendered).
  std::string args;
};

struct OsTree {
  std::string id;  // UUID (RackHD's image id)
  std::string name;
  std::string version;
  std::string iso;  // the stored ISO's name
  TreeStatus status = TreeStatus::kPreparing;
  std::string error;  // kFailed: why
  BootSpec boot;
  int64_t created = 0;
};

enum class FileSpace { kMicrokernel, kFiles };
std::string_view FileSpaceName(FileSpace s);  // "microkernel", "files"
// The directory of the content dir (and the southbound prefix) a space lives in: "common", "files".
std::string_view FileSpaceDir(FileSpace s);

struct BootFile {
  FileSpace space = FileSpace::kFiles;
  std::string name;  // kFiles: a relative path "a/b/c" (each component a Name); else one Name
  uint64_t size = 0;
  int64_t uploaded = 0;
  std::string md5;  // hex
};

struct Publication {
  std::string name;      // operator-chosen; /images/NAME
  std::string image_id;  // the catalog image; /images/ID
  bool raw = false;      // serve the virtual disk as raw (qcow2 and the others converted on the fly)
  int64_t created = 0;
};

// ---- Naming rules (pure). Each refusal is kInvalidArgument with a sentence a person can act on.
// A name: 1..255 bytes of printable ASCII except '/', '\\', and not "." or ".." or starting with
// '.' (hidden names are the store's own: partial files).
Status CheckName(std::string_view what, std::string_view name);
Status CheckIsoName(std::string_view name);       // a name ending in ".iso" (any case)
Status CheckTreeName(std::string_view name);      // a name, and not a reserved southbound prefix
Status CheckFilePath(FileSpace space, std::string_view name);
Status CheckPublicationName(std::string_view name);  // a name, never a UUID's shape
// The southbound prefixes the content owns: "iso", "common", "files", "images".
bool IsReservedPrefix(std::string_view first_component);

// ---- Persistence. Every method is one transaction; thread-safe.
class ContentRepository {
 public:
  virtual ~ContentRepository() = default;

  virtual Status PutIso(const Iso& iso) = 0;  // insert or replace by name
  // kAlreadyExists when an ISO of that name exists.
  virtual Status InsertIso(const Iso& iso) = 0;
  virtual Result<std::optional<Iso>> GetIso(const std::string& name) = 0;
  virtual Result<std::vector<Iso>> ListIsos() = 0;
  // kNotFound when absent; kConflict naming the OS trees ("debian/12") that use it.
  virtual Status DeleteIso(const std::string& name) = 0;

  // kAlreadyExists for a NAME/VERSION in use; kNotFound when the ISO is absent, kConflict when it
  // failed: both checked in the same transaction, so a tree never points at a deleted ISO.
  virtual Status InsertTree(const OsTree& tree) = 0;
  virtual Status UpdateTree(const OsTree& tree) = 0;  // by id; kNotFound when deleted meanwhile
  virtual Result<std::optional<OsTree>> GetTree(const std::string& name,
                                                const std::string& version) = 0;
  virtual Result<std::vector<OsTree>> ListTrees() = 0;
  virtual Status DeleteTree(const std::string& id) = 0;  // kNotFound when absent

  virtual Status PutFile(const BootFile& file) = 0;  // insert or replace
  virtual Result<std::optional<BootFile>> GetFile(FileSpace space, const std::string& name) = 0;
  virtual Result<std::vector<BootFile>> ListFiles(FileSpace space) = 0;
  virtual Status DeleteFile(FileSpace space, const std::string& name) = 0;

  virtual Status InsertPublication(const Publication& p) = 0;  // kAlreadyExists by name
  virtual Result<std::vector<Publication>> ListPublications() = 0;
  virtual Status DeletePublication(const std::string& name) = 0;  // kNotFound when absent
};

}  // namespace ingot::boot
