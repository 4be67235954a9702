// The boot content's use cases: the only writer of ISO, OS tree, boot file and publication records
// and of the content directory's files. The API edges (api/boot/content_api.h: /boot/v1 and the
// RackHD image-service routes) parse, call one method here and render.
//
// The content directory (ContentOptions::dir) holds iso/NAME, common/NAME (microkernels) and
// files/PATH. Bytes arrive in a hidden ".partial-*" file beside their final name, are fsync'd, then
// renamed into place; the record says `ready` only after that. The southbound listener maps request
// paths onto this directory through Map(), which answers from an in-memory view of what is served
// (ready ISOs, OK trees, publications), replaced whole on every change: a request never waits on
// the database, and a deletion or an unpublish takes effect before the call returns.
//
// Thread-safe. URL downloads run on threads of their own, joined by the destructor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "boot/content.h"
#include "fetch/fetch.h"
#include "formats/iso9660.h"
#include "io/byte_source.h"

namespace ingot::boot {

struct ContentOptions {
  std::string dir;  // created if missing
  // Directories of the server ISOs may be added from by path (`isolocal`); empty: none may.
  std::vector<std::string> local_dirs;
  fetch::FetchOptions fetch;          // URL downloads: the import's SSRF rules
  uint64_t max_file_size = 1ull << 40;  // each ISO or file
  formats::iso9660::Options iso;      // the ISO reader's bounds when a tree is prepared
  // Whether a catalog image may be published (exists, active): kNotFound/kConflict otherwise.
  // Unset: publishing is refused.
  std::function<Status(const std::string& image_id)> check_image;
};

struct ContentRepairReport {
  int partial_removed = 0;  // hidden partial files of interrupted arrivals
  int isos_removed = 0;     // ISOs whose bytes never completed
  int trees_prepared = 0;   // trees left `preparing`, prepared now
  int trees_failed = 0;
  int files_removed = 0;    // files without a record, records without a file
};

class ContentService {
 public:
  static Result<std::unique_ptr<ContentService>> Open(ContentRepository& repo,
                                                      ContentOptions options);
  ~ContentService();

  // Once at start, before serving: completes or removes whatever a crash left half-added, then
  // loads the served view.
  Result<ContentRepairReport> Repair();

  // ---- ISOs. kAlreadyExists for a name in use; kInvalidArgument for a bad name.
  // The client's bytes (streamed; `length` when declared). kTooLarge over the cap.
  Result<Iso> UploadIso(const std::string& name, io::Reader& body, std::optional<uint64_t> length);
  // Starts a server-side download (status `downloading`) and returns at once; the URL is checked
  // against the SSRF rules now (kRefused) and on every redirect.
  Result<Iso> AddIsoFromUrl(const std::string& name, const std::string& url);
  // A file under one of ContentOptions::local_dirs (after resolving symlinks): hard-linked when on
  // the same file system, else copied. kPermissionDenied outside those directories.
  Result<Iso> AddIsoFromPath(const std::string& name, const std::string& path);
  // Another stored (ready) ISO under a new name.
  Result<Iso> CopyIso(const std::string& from, const std::string& name);
  Result<Iso> GetIso(const std::string& name);
  Result<std::vector<Iso>> ListIsos();
  // kConflict naming the OS trees that use it.
  Result<Iso> DeleteIso(const std::string& name);
  // Bytes received so far of an ISO still arriving.
  std::optional<uint64_t> Progress(const std::string& name) const;
  // Waits until the ISO is no longer downloading; its final record.
  Result<Iso> WaitIso(const std::string& name);

  // ---- OS trees. Prepared (indexed, layout detected) before this returns when the ISO is ready;
  // a tree on an ISO still downloading stays `preparing` until the download ends.
  Result<OsTree> AddTree(const std::string& name, const std::string& version,
                         const std::string& iso);
  Result<OsTree> GetTree(const std::string& name, const std::string& version);
  Result<std::vector<OsTree>> ListTrees();
  Result<OsTree> DeleteTree(const std::string& name, const std::string& version);

  // ---- Boot files (microkernels, the files space). Replaces a file of the same name.
  Result<BootFile> PutFile(FileSpace space, const std::string& name, io::Reader& body,
                           std::optional<uint64_t> length);
  Result<std::vector<BootFile>> ListFiles(FileSpace space);
  Result<BootFile> DeleteFile(FileSpace space, const std::string& name);

  // ---- Publications of catalog images.
  Result<Publication> Publish(const std::string& name, const std::string& image_id, bool raw);
  Result<std::vector<Publication>> ListPublications();
  Result<Publication> Unpublish(const std::string& name);

  // ---- The served view (southbound; no database access).
  // The path beneath dir() a southbound request path names, or nullopt when it is none of the
  // content's (the file tree answers). "/NAME/VERSION/x" of an OK tree -> iso/ISO/x; "/iso/NAME"
  // of a ready ISO; "/common/NAME" and "/files/PATH" of recorded files (and their directories).
  // Hidden names never map.
  std::optional<std::vector<std::string>> Map(const std::vector<std::string>& components) const;
  // An OK tree (for boot.ipxe and the machines' profiles).
  std::optional<OsTree> ServedTree(const std::string& name, const std::string& version) const;
  // A publication by name or by image id.
  std::optional<Publication> FindPublication(const std::string& key) const;

  const std::string& dir() const { return options_.dir; }

 private:
  ContentService(ContentRepository& repo, ContentOptions options)
      : repo_(repo), options_(std::move(options)) {}
  struct View {
    // (name, version) ordered so that a request's components look a tree up without copies.
    struct TreeKeyLess {
      using is_transparent = void;
      template <typename A, typename B>
      bool operator()(const A& a, const B& b) const {
        const std::string_view a1(a.first), b1(b.first);
        return a1 < b1 || (a1 == b1 && std::string_view(a.second) < std::string_view(b.second));
      }
    };
    std::map<std::pair<std::string, std::string>, OsTree, TreeKeyLess> trees;  // OK only
    std::set<std::string> isos;                                   // ready only
    // The first path component of every recorded boot file, per space: a request path claims
    // the content only for names it holds, so a boot root's own iso/, common/ or files/ trees
    // keep answering for everything else.
    std::set<std::string> microkernel_top, files_top;
    std::map<std::string, Publication> by_name, by_id;
  };
  Status Reload();
  // Indexes the ISO of `tree` and detects its layout; records OK or failed.
  OsTree Prepare(OsTree tree);
  // Streams `body` into a new partial file under `subdir`, fsync'd; its path, size and md5.
  struct Written {
    std::string partial;
    uint64_t size = 0;
    std::string md5;
  };
  Result<Written> WritePartial(const std::string& subdir, io::Reader& body,
                               std::optional<uint64_t> length, const std::string& progress_key);
  Status Install(const std::string& partial, const std::string& final_path);
  Result<Iso> FinishIso(Iso iso, Result<Written> written);
  void Download(Iso iso, std::string url);
  void PrepareWaiting(const std::string& iso);
  std::string IsoPath(const std::string& name) const { return options_.dir + "/iso/" + name; }

  ContentRepository& repo_;
  const ContentOptions options_;

  // Held across a reload's reads and its swap, so a reload that read older records can never
  // replace the view of a later one (an unpublish stays unpublished).
  std::mutex reload_mu_;
  mutable std::shared_mutex view_mu_;
  std::shared_ptr<const View> view_;

  mutable std::mutex mu_;  // progress_, downloads_
  std::condition_variable download_done_;
  std::map<std::string, uint64_t> progress_;
  std::vector<std::thread> downloads_;
  std::atomic<bool> stopping_{false};
};

}  // namespace ingot::boot
