#include "boot/content.h"

#include <cctype>

namespace ingot::boot {

std::string_view IsoStatusName(IsoStatus s) {
  switch (s) {
    case IsoStatus::kSaving:
      return "saving";
    case IsoStatus::kDownloading:
      return "downloading";
    case IsoStatus::kReady:
      return "ready";
    case IsoStatus::kFailed:
      return "failed";
  }
  return "failed";
}

std::optional<IsoStatus> ParseIsoStatus(std::string_view s) {
  for (IsoStatus v : {IsoStatus::kSaving, IsoStatus::kDownloading, IsoStatus::kReady,
                      IsoStatus::kFailed}) {
    if (IsoStatusName(v) == s) return v;
  }
  return std::nullopt;
}

std::string_view TreeStatusName(TreeStatus s) {
  switch (s) {
    case TreeStatus::kPreparing:
      return "preparing";
    case TreeStatus::kOk:
      return "OK";
    case TreeStatus::kFailed:
      return "failed";
  }
  return "failed";
}

std::optional<TreeStatus> ParseTreeStatus(std::string_view s) {
  for (TreeStatus v : {TreeStatus::kPreparing, TreeStatus::kOk, TreeStatus::kFailed}) {
    if (TreeStatusName(v) == s) return v;
  }
  return std::nullopt;
}

std::string_view FileSpaceName(FileSpace s) {
  return s == FileSpace::kMicrokernel ? "microkernel" : "files";
}
std::string_view FileSpaceDir(FileSpace s) {
  return s == FileSpace::kMicrokernel ? "common" : "files";
}

Status CheckName(std::string_view what, std::string_view name) {
  const std::string w(what);
  if (name.empty()) return InvalidArgument("The " + w + " name is empty.");
  if (name.size() > 255) return InvalidArgument("The " + w + " name is longer than 255 bytes.");
  if (name.front() == '.') {
    return InvalidArgument("The " + w + " name may not start with '.'.");
  }
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '/' || c == '\\') {
      return InvalidArgument("The " + w +
                             " name may hold printable ASCII only, without '/' or '\\'.");
    }
  }
  return Status::Ok();
}

Status CheckIsoName(std::string_view name) {
  INGOT_RETURN_IF_ERROR(CheckName("ISO", name));
  if (name.size() <= 4) return InvalidArgument("An ISO name must end in \".iso\".");
  std::string ext(name.substr(name.size() - 4));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext != ".iso") return InvalidArgument("An ISO name must end in \".iso\".");
  return Status::Ok();
}

bool IsReservedPrefix(std::string_view first) {
  return first == "iso" || first == "common" || first == "files" || first == "images";
}

Status CheckTreeName(std::string_view name) {
  INGOT_RETURN_IF_ERROR(CheckName("OS", name));
  if (IsReservedPrefix(name)) {
    return InvalidArgument("The OS name '" + std::string(name) +
                           "' is reserved on the southbound listener (iso, common, files, images).");
  }
  return Status::Ok();
}

Status CheckFilePath(FileSpace space, std::string_view name) {
  if (space == FileSpace::kMicrokernel) return CheckName("microkernel", name);
  if (name.empty()) return InvalidArgument("The file name is empty.");
  if (name.size() > 1024) return InvalidArgument("The file path is longer than 1024 bytes.");
  size_t depth = 0;
  for (size_t pos = 0; pos <= name.size();) {
    size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) slash = name.size();
    INGOT_RETURN_IF_ERROR(CheckName("file path component", name.substr(pos, slash - pos)));
    if (++depth > 16) return InvalidArgument("The file path is deeper than 16 directories.");
    pos = slash + 1;
  }
  return Status::Ok();
}

namespace {
bool LooksLikeUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}
}  // namespace

Status CheckPublicationName(std::string_view name) {
  INGOT_RETURN_IF_ERROR(CheckName("publication", name));
  if (LooksLikeUuid(name)) {
    return InvalidArgument("A publication name may not look like an image id (a UUID).");
  }
  return Status::Ok();
}

}  // namespace ingot::boot
