#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace ingot {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Code::kNotFound: return "NOT_FOUND";
    case Code::kAlreadyExists: return "ALREADY_EXISTS";
    case Code::kConflict: return "CONFLICT";
    case Code::kPermissionDenied: return "PERMISSION_DENIED";
    case Code::kUnauthenticated: return "UNAUTHENTICATED";
    case Code::kOutOfRange: return "OUT_OF_RANGE";
    case Code::kTooLarge: return "TOO_LARGE";
    case Code::kUnsupportedMedia: return "UNSUPPORTED_MEDIA";
    case Code::kUnsupported: return "UNSUPPORTED";
    case Code::kRefused: return "REFUSED";
    case Code::kCorruption: return "CORRUPTION";
    case Code::kIoError: return "IO_ERROR";
    case Code::kStorageFull: return "STORAGE_FULL";
    case Code::kUnavailable: return "UNAVAILABLE";
    case Code::kCancelled: return "CANCELLED";
    case Code::kTimeout: return "TIMEOUT";
    case Code::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(CodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

Status FromErrno(int err, std::string_view what) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  switch (err) {
    case ENOENT: return NotFound(std::move(m));
    case EEXIST: return AlreadyExists(std::move(m));
    case EFBIG:
    case ENOSPC:
    case EDQUOT: return StorageFull(std::move(m));
    case ETIMEDOUT: return Timeout(std::move(m));
    case EPIPE:
    case ECONNRESET:
    case ECANCELED: return Cancelled(std::move(m));
    case EAGAIN: return Unavailable(std::move(m));
    default: return IoError(std::move(m));
  }
}

bool IsServerFault(Code code) {
  switch (code) {
    case Code::kCorruption:
    case Code::kIoError:
    case Code::kStorageFull:
    case Code::kUnavailable:
    case Code::kInternal:
      return true;
    default:
      return false;
  }
}

}  // namespace ingot
