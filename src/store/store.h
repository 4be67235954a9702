// Where image bytes live. A store driver declares what it can do; the service checks capabilities
// rather than the driver's type. The embedded driver is file/; object stores slot in beside it.
//
// Durability contract: bytes written through a PendingObject are invisible until Commit() returns
// OK, and durable from then on (fsync'd, or acknowledged by the object store). A PendingObject
// destroyed without Commit leaves nothing behind. Thread safety: a Store may be used from many
// threads at once; a PendingObject by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "io/byte_source.h"
#include "io/file.h"

namespace ingot::store {

struct Capabilities {
  bool local_file = false;  // objects are local files: OpenFd works, downloads can use sendfile
  bool random_read = true;  // Open() supports ReadAt at any offset
  // The objects are not this service's: the store only reads what others serve (the http store),
  // so it is never written, listed, repaired or deleted from (Delete succeeds doing nothing), and
  // an image's bytes there may vanish or change without the catalog knowing.
  bool external = false;
};

// One thing a store holds, as Enumerate() reports it (the scrubber compares it with the catalog).
struct StoredObject {
  std::string key;  // the object key (an image id) it is, or is being written as
  // "" for the committed object `key` (its segments or parts included). Otherwise an incomplete
  // write of `key` — an upload in progress, or one a crash abandoned — named by the driver's handle
  // for it: file: the temporary file's name; Swift: the upload id of a group of segments that no
  // committed manifest uses; S3: the multipart upload id.
  std::string incomplete;
  uint64_t bytes = 0;    // bytes it occupies (segments or parts summed); 0 when unknown
  int64_t modified = 0;  // microseconds since the epoch of its newest write; 0 when unknown
};

class PendingObject : public io::Writer {
 public:
  // Aborts (removes what was written) unless Commit succeeded.
  ~PendingObject() override = default;
  // Makes the object durable and visible under the key it was created with.
  virtual Status Commit() = 0;
  virtual uint64_t bytes_written() const = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual const std::string& id() const = 0;
  virtual Capabilities capabilities() const = 0;

  // Starts writing the object `key` (an image id). kAlreadyExists if a committed object has that
  // key.
  virtual Result<std::unique_ptr<PendingObject>> Create(const std::string& key) = 0;
  // kNotFound when the object is missing.
  virtual Result<std::unique_ptr<io::ByteSource>> Open(const std::string& key) = 0;
  // The object as an open file descriptor, for sendfile; kUnsupported unless
  // capabilities().local_file.
  virtual Result<io::UniqueFd> OpenFd(const std::string& key) = 0;
  // Size of a committed object; kNotFound when missing.
  virtual Result<uint64_t> SizeOf(const std::string& key) = 0;
  // Removes the object; OK if it was already gone.
  virtual Status Delete(const std::string& key) = 0;
  // Start-up repair: removes what crashed writers left (temporary files). Returns how many.
  virtual Result<int> RemoveIncomplete() = 0;
  // Keys of every committed object; start-up repair compares them with the catalog.
  virtual Result<std::vector<std::string>> ListKeys() = 0;

  // ---- Enumeration (the scrubber, service/scrubber.h) ----
  // Everything the store holds: each committed object once (its segments or parts are part of it)
  // and each incomplete write once, with its age. Objects that are not the store's own (names no
  // key could have) are left out. Concurrent writes may or may not be seen. kUnsupported when the
  // driver cannot enumerate; the scrubber then leaves the store alone.
  virtual Result<std::vector<StoredObject>> Enumerate() {
    return Unsupported("store " + id() + " cannot enumerate its objects");
  }
  // Removes an incomplete write Enumerate() reported (`object.incomplete` set), never the committed
  // object of the same key. OK if it is already gone. The caller decides it is abandoned (old
  // enough); a writer still using it fails at its commit and its upload is refused, nothing else.
  virtual Status RemoveIncompleteWrite(const StoredObject& object) {
    (void)object;
    return Unsupported("store " + id() + " cannot remove incomplete writes");
  }

  // ---- Location URLs (Glance's locations API) ----
  // The URL that names the object `key`, as GET /v2/images/{id}/locations shows it. Drivers with a
  // native URL form override this (file: "file:///<store directory>/<key>").
  virtual std::string UrlOf(const std::string& key) const { return id() + "://" + key; }
  // The key of the committed object `url` names in this store, so that an image can adopt bytes an
  // operator placed there (POST /v2/images/{id}/locations). nullopt when the URL does not point
  // into this store (another scheme, another directory); kInvalidArgument when it does but names
  // nothing this store could hold (a path with '.' or '..' segments, a symbolic link, a temporary
  // object, not a regular file); kNotFound when the object is missing. The default adopts nothing.
  virtual Result<std::optional<std::string>> KeyOfUrl(std::string_view url) {
    (void)url;
    return std::optional<std::string>();
  }
};

}  // namespace ingot::store
