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
// is confined beneath the root (openat2 RESOLVE_BENEATH: a symlink may point elsewhere inside the
// tree but never out of it; where openat2 is missing, no symlink is followed at all). Anything
// but a directory or a regular file (devices, FIFOs, sockets) answers 404 and is never opened for
// reading. Nothing of the northbound API answers here.
//
// Thread-safe: Handle may run on every worker at once.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/boot/iso_index.h"
#include "common/result.h"
#include "http/message.h"
#include "io/file.h"
#include "tftp/file_source.h"

namespace ingot::api::boot {

struct SouthboundOptions {
  std::string root;  // the directory served as '/'; must exist
  IsoIndexOptions isos;
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
// every method (it answers 405 itself for the ones it does not take).
using SouthboundRoute = std::function<std::optional<http::Response>(const http::Request&)>;

class Southbound {
 public:
  // Opens the root. kNotFound / kIoError when it is not a directory that can be opened.
  static Result<std::unique_ptr<Southbound>> Open(SouthboundOptions options);

  // Adds a route consulted before the file tree, after those added before it. Call before the
  // listener starts (not synchronised with Handle).
  void AddRoute(SouthboundRoute route) { routes_.push_back(std::move(route)); }

  // The http::Handler: answers every request at once (no request body is ever read).
  http::HeadResult Handle(http::Request& req);
  // The http::ExchangeObserver: one access-log line per request.
  void Observe(const http::Exchange& exchange);

  // The regular file at `components` beneath the root — a file of the tree, or a file inside one of
  // its ISOs, found by the same rules as a GET — as a ByteSource: TFTP serves the same tree this
  // way. kNotFound for anything else (a directory, a device, a path that leaves an ISO).
  Result<std::unique_ptr<io::ByteSource>> OpenFile(const std::vector<std::string>& components);

  const IsoIndexCache& isos() const { return isos_; }

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
      : options_(std::move(options)), root_(std::move(root)), isos_(options_.isos) {}
  http::Response Serve(const http::Request& req);
  // A path through an ISO: the first component named *.iso that is a regular file with more after
  // it (or a trailing '/'), its index, and what the rest names inside it.
  struct InIso {
    io::UniqueFd fd;  // the ISO, open for reading
    struct stat st;
    std::shared_ptr<const formats::iso9660::Tree> tree;
    const formats::iso9660::Entry* entry;  // inside `tree`
    std::vector<std::string> resolved;     // the entry's path inside the ISO, symlinks followed
  };
  // nullopt when no component is such an ISO; kNotFound when the ISO cannot be read or holds no
  // such entry; the file system's error otherwise.
  Result<std::optional<InIso>> FindInIso(int root, const std::vector<std::string>& c,
                                         bool trailing_slash);
  Result<std::unique_ptr<io::ByteSource>> OpenFileBeneath(int root,
                                                          const std::vector<std::string>& c);

  const SouthboundOptions options_;
  io::UniqueFd root_;  // O_PATH | O_DIRECTORY
  IsoIndexCache isos_;
  std::vector<SouthboundRoute> routes_;
  io::UniqueFd content_root_;  // O_PATH | O_DIRECTORY; see SetContent
  ContentMap content_map_;
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
