// Status: the one error model of Ingot. Every fallible call across a module boundary returns a Status
// or a Result<T>; exceptions never cross one. The set of codes is closed; each code maps to exactly one
// HTTP status, in api/errors.cc, and errno maps to a code in exactly one place, FromErrno().
//
// Messages of kCorruption, kIoError, kStorageFull, kUnavailable and kInternal are for the log only:
// they may name paths, SQL or driver text, and the API edge replaces them with a generic message and
// the request id before anything reaches a client.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace ingot {

enum class Code : int {
  kOk = 0,
  kInvalidArgument,    // the request or the bytes are malformed (400)
  kNotFound,           // no such thing, or not visible to the caller (404)
  kAlreadyExists,      // a thing with that identity exists (409)
  kConflict,           // the thing is in a state that forbids this (409)
  kPermissionDenied,   // authenticated but not allowed (403)
  kUnauthenticated,    // no or bad credentials (401)
  kOutOfRange,         // a range outside the data (416)
  kTooLarge,           // over a configured cap (413)
  kUnsupportedMedia,   // wrong Content-Type (415)
  kUnsupported,        // a valid request for something not implemented or refused by design (400)
  kRefused,            // a hostile or unsafe input refused by a safety rule (400)
  kCorruption,         // stored bytes or metadata are not what they should be (500)
  kIoError,            // the OS, a store or the database failed (500)
  kStorageFull,        // a store or the database ran out of space or quota (507)
  kUnavailable,        // temporarily unable; retry may succeed (503)
  kCancelled,          // the peer went away or the operation was cancelled (499-ish; logged)
  kTimeout,            // a deadline passed (408)
  kInternal,           // a bug (500)
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CODE: message", for logs and tests.
  std::string ToString() const;

  // Returns a copy with "context: " prepended to the message; the code stays.
  Status WithContext(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
inline Status Conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {Code::kUnauthenticated, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {Code::kOutOfRange, std::move(m)}; }
inline Status TooLarge(std::string m) { return {Code::kTooLarge, std::move(m)}; }
inline Status UnsupportedMedia(std::string m) { return {Code::kUnsupportedMedia, std::move(m)}; }
inline Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
inline Status Refused(std::string m) { return {Code::kRefused, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
inline Status StorageFull(std::string m) { return {Code::kStorageFull, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status Cancelled(std::string m) { return {Code::kCancelled, std::move(m)}; }
inline Status Timeout(std::string m) { return {Code::kTimeout, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

// The one place errno becomes a Status. `what` names the operation and object ("open /x/y").
// As in leveldb, an OS failure is an I/O error whatever its errno (EACCES on a store file is our
// fault, not the client's): only ENOENT, EEXIST, ENOSPC/EDQUOT/EFBIG, timeouts and a peer going away
// keep a code of their own.
Status FromErrno(int err, std::string_view what);

// True for the codes whose message must not reach a client (see the top of this file).
bool IsServerFault(Code code);

}  // namespace ingot
