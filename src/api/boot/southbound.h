// The southbound listener of the boot service: the file tree booting machines read, over plain
// HTTP, without tokens (RackHD's "southbound" static listener; iPXE, UEFI HTTP boot, installers).
//
// What it serves, beneath one root directory, read-only:
//   - regular files, as they are: GET and HEAD only (405 with Allow otherwise), a single Range
//   (206,
//     or 416 with Content-Range: bytes */size), ETag and Last-Modified with If-None-Match,
//     If-Modified-Since (304), If-Match, If-Unmodified-Since (412) and If-Range; the Content-Type
//     by extension (validators.h); the bytes go out with sendfile(2).
//   - directories, as an HTML listing (names escaped, sizes); a directory asked for without its
//     trailing '/' is redirected there (301).
//   - files inside ISOs, with no mount: "/a/debian.iso/" lists the root of the ISO a/debian.iso and
//     "/a/debian.iso/install.amd/vmlinuz" serves that file straight from the ISO's extents, also
//     with sendfile (several extents: one body of several file ranges, http::FileRange::more).
//     Symlinks inside an ISO are followed only when their target stays inside the ISO's tree.
//
// Paths (paths.h) never leave the root: refused components answer 400, and the file system walk
// is confined beneath the root (openat2 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: a symlink may
// point elsewhere inside the tree but never out of it; where openat2 is missing, no symlink is
// followed at all). Anything but a directory or a regular file (devices, FIFOs, sockets) answers
// 404 and is never read: the path is opened once, O_RDONLY | O_NONBLOCK | O_NOCTTY (a FIFO's open
// does not wait, a tty does not become ours), and the type checked on that descriptor. Opening a
// device node can have effects of its own: a tree that could hold one belongs on a nodev mount
// (README). Nothing of the northbound API answers here.
//
// Cost: a file of the tree (or inside an already indexed ISO) is answered on the I/O thread
// (HandleInline: no hand-off to a worker), from a descriptor kept open between requests
// (open_files.h: one statx, shared by the requests of one millisecond, instead of openat2 + fstat +
// close); what may take long (directory listings, indexing an ISO, routes that reach a database)
// goes to a worker (Handle). The request path is parsed once for the routes and the tree. The
// access log is written in batches (access_log.h).
//
// Thread-safe: Handle and HandleInline may run on every thread at once.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/boot/access_log.h"
#include "api/boot/iso_index.h"
#include "api/boot/open_files.h"
#include "api/boot/paths.h"
#include "common/result.h"
#include "http/message.h"
#include "io/file.h"
#include "tftp/file_source.h"

namespace ingot::api::boot {

struct SouthboundOptions {
  std::string root;  // the directory served as '/'; must exist
  // Where iPXE's first stages are (Debian's `ipxe` package: /usr/lib/ipxe). A request for one of
  // them by name at '/' (undionly.kpxe, undionly.kkpxe, ipxe.pxe, ipxe.efi, snponly.efi,
  // ipxe.lkrn) that the root does not hold itself is answered from there,
  // over HTTP and TFTP alike. "" (or a directory that does not exist): none.
  std::string firmware_dir;
  IsoIndexOptions isos;
  OpenFilesOptions open_files;
  size_t max_listing_entries = 100'000;  // a larger directory lists its first names (in name order)
};

// The bytes [first, first + length) of a file stored as `extents` (in file order) as ranges of the
// file holding those extents, in order; empty ranges are left out. For Range reads of files inside
// an ISO, whose extents need not follow each other.
std::vector<http::FileSegment> SegmentsOf(const std::vector<formats::iso9660::Extent>& extents,
                                          uint64_t first, uint64_t length);

// A route of the southbound listener consulted before the file tree (per-machine scripts,
// cloud-init seeds, the boot content's OS trees): the answer to a request it owns, or nullopt to
// let the next route, and finally the file tree, answer. Called on any worker at once; it sees
// every method (it answers 405 itself for the ones it does not take), and only requests whose path
// passed the path rule (paths.h), parsed once for every route and the tree: `path`.
using SouthboundRoute =
    std::function<std::optional<http::Response>(const http::Request&, const BootPath& path)>;
// Whether a route may block (a database, a store, rendering) on this request: true sends the
// request to a worker. For the requests it answers false, the route must answer at once or not at
// all, without blocking: it then runs on the I/O thread (Southbound::HandleInline). Called on the
// I/O thread; must itself be cheap and never block.
using SouthboundRouteBlocks = std::function<bool(const http::Request&, const BootPath& path)>;

class Southbound {
 public:
  // Opens the root. kNotFound / kIoError when it is not a directory that can be opened.
  static Result<std::unique_ptr<Southbound>> Open(SouthboundOptions options);

  // Adds a route consulted before the file tree, after those added before it. Call before the
  // listener starts (not synchronised with Handle). Without `blocks`, the route may block on any
  // request: every request goes to a worker (no inline answers at all).
  void AddRoute(SouthboundRoute route, SouthboundRouteBlocks blocks = {}) {
    routes_.push_back({std::move(route), std::move(blocks)});
  }

  // The http::Handler: answers every request at once (no request body is ever read).
  http::HeadResult Handle(http::Request& req);
  // The http::InlineHandler: the same answer as Handle for a GET or HEAD that can be answered
  // without blocking (a file of the tree, a file inside an ISO already indexed, a redirect, an
  // error), routes allowing; nullopt for the rest (listings, ISOs not indexed yet, routes that may
  // block, other methods), which then go to Handle on a worker.
  std::optional<http::Response> HandleInline(http::Request& req);
  // The http::ExchangeObserver: one access-log line per request (written in batches).
  void Observe(const http::Exchange& exchange);
  // Writes the access-log lines held now (tests, shutdown).
  void FlushAccessLog() { access_log_.Flush(); }

  // The regular file at `components` beneath the root — a file of the tree, or a file inside one of
  // its ISOs, found by the same rules as a GET — as a ByteSource: TFTP serves the same tree this
  // way. kNotFound for anything else (a directory, a device, a path that leaves an ISO).
  Result<std::unique_ptr<io::ByteSource>> OpenFile(const std::vector<std::string>& components);

  const IsoIndexCache& isos() const { return isos_; }
  const OpenFiles& open_files() const { return open_files_; }

  // The boot content (boot/content_service.h): request paths `map` claims are looked up beneath
  // `content_root` instead of the root, by the same rules (ISOs' insides, ranges, listings,
  // confinement), for HTTP and TFTP alike. Call before the listener starts.
  using ContentMap =
      std::function<std::optional<std::vector<std::string>>(const std::vector<std::string>&)>;
  Status SetContent(const std::string& content_root, ContentMap map);

  // A regular file open as `fd` answered as the file tree's are (GET/HEAD, one Range, validators
  // and conditionals, sendfile), for routes that serve files of their own (published images).
  static http::Response SendFile(const http::Request& req, io::UniqueFd fd, uint64_t size,
                                 std::string etag, int64_t mtime, std::string_view content_type);

 private:
  Southbound(SouthboundOptions options, io::UniqueFd root)
      : options_(std::move(options)),
        root_(std::move(root)),
        isos_(options_.isos),
        open_files_(options_.open_files) {}
  struct Route {
    SouthboundRoute answer;
    SouthboundRouteBlocks blocks;  // empty: may block on anything
  };
  // The file tree's answer; nullopt when it would have to block and `may_block` is false.
  std::optional<http::Response> Serve(const http::Request& req, const BootPath& path,
                                      bool may_block);
  // A path through an ISO: the first component named *.iso that is a regular file with more after
  // it (or a trailing '/'), its index, and what the rest names inside it.
  struct InIso {
    std::shared_ptr<const io::UniqueFd> fd;  // the ISO, open for reading
    struct stat st;
    std::shared_ptr<const formats::iso9660::Tree> tree;
    const formats::iso9660::Entry* entry;  // inside `tree`
    std::vector<std::string> resolved;     // the entry's path inside the ISO, symlinks followed
  };
  // nullopt when no component is such an ISO; kNotFound when the ISO cannot be read or holds no
  // such entry; the file system's error otherwise. Unless `may_block`, an ISO not indexed yet is
  // not read: nullopt with `*blocked` set (the request then goes to a worker).
  Result<std::optional<InIso>> FindInIso(int root, const std::vector<std::string>& c,
                                         bool trailing_slash, bool may_block, bool* blocked);
  Result<std::unique_ptr<io::ByteSource>> OpenFileBeneath(int root,
                                                          const std::vector<std::string>& c);
  // What `rel` names beneath `root`, open for reading, and its fstat: a regular file's descriptor
  // from open_files_ while it still names the same file, else opened again (and kept).
  struct Opened {
    std::shared_ptr<const io::UniqueFd> fd;
    struct stat st;
  };
  Result<Opened> OpenKept(int root, const std::string& rel);
  // OpenKept beneath `root`, and when that finds nothing, one of iPXE's first stages by name at '/'
  // from firmware_dir.
  Result<Opened> OpenInTree(int root, const std::vector<std::string>& c, const std::string& rel);

  const SouthboundOptions options_;
  io::UniqueFd root_;  // O_PATH | O_DIRECTORY
  IsoIndexCache isos_;
  OpenFiles open_files_;
  std::vector<Route> routes_;
  io::UniqueFd content_root_;  // O_PATH | O_DIRECTORY; see SetContent
  io::UniqueFd firmware_;      // O_PATH | O_DIRECTORY of options_.firmware_dir, if it exists
  ContentMap content_map_;
  AccessLog access_log_;
};

// The boot tree for the TFTP listener: a TFTP path (already normalised by tftp/path.h) opened
// through Southbound::OpenFile, so TFTP and HTTP serve the same files, ISOs' insides included.
class TftpFiles final : public tftp::FileSource {
 public:
  explicit TftpFiles(Southbound& southbound) : southbound_(southbound) {}
  Result<std::unique_ptr<io::ByteSource>> Open(std::string_view path) override;

 private:
  Southbound& southbound_;
};

}  // namespace ingot::api::boot
