// What the boot content adds to the southbound listener besides mapped paths
// (Southbound::SetContent): answers generated per request.
//   GET|HEAD /NAME/VERSION/boot.ipxe   the iPXE script of an OK tree with a known layout (absolute
//                                      URLs built from the request's Host)
//   GET|HEAD /NAME/VERSION             301 to /NAME/VERSION/ (never the ISO file itself)
//   GET|HEAD /images/{id or name}      a published catalog image: sendfile from a local store with
//                                      one Range, validators and Content-MD5 (the image's MD5); as
//                                      raw when published so (qcow2, vmdk, vhd(x), vdi read through
//                                      formats/ as their virtual disk, streamed, with Range)
// Anything else: nullopt (the file tree answers). Thread-safe.
#pragma once

#include <optional>

#include "api/boot/paths.h"
#include "boot/content_service.h"
#include "http/message.h"
#include "service/image_service.h"

namespace ingot::api::boot {

class ContentSouthbound {
 public:
  ContentSouthbound(ingot::boot::ContentService& content, service::ImageService& images)
      : content_(content), images_(images) {}
  std::optional<http::Response> Handle(const http::Request& req, const BootPath& path);
  // Its SouthboundRouteBlocks: true for /images/{key} (a published image is read through the
  // catalog and its store); every other answer of Handle comes from memory at once.
  static bool Blocks(const http::Request& req, const BootPath& path);

 private:
  http::Response ServeImage(const http::Request& req, const ingot::boot::Publication& p);
  ingot::boot::ContentService& content_;
  service::ImageService& images_;
};

// The base64 form of an MD5 given in hex (Content-MD5, RFC 1864); "" when `hex` is not 32 digits.
std::string Md5Base64(std::string_view hex);

}  // namespace ingot::api::boot
