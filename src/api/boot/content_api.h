// The boot content's northbound API, /boot/v1, on the API listener: behind its authentication and
// policy (rules "boot_content:read" and "boot_content:write", admin by default). Each handler
// parses, calls one ContentService use case and renders.
//
//   GET    /boot/v1/isos                      {"isos": [ISO...]}
//   PUT    /boot/v1/isos/{name}               the client's upload (streamed) -> 201 ISO
//   POST   /boot/v1/isos                      {"name", one of "url" | "path" | "copy_from"}
//                                             -> 202 (url: downloading) or 201
//   GET    /boot/v1/isos/{name}               ISO (with "progress" bytes while it arrives)
//   DELETE /boot/v1/isos/{name}               204; 409 naming the OS trees that use it
//   GET    /boot/v1/os                        {"os": [tree...]}
//   POST   /boot/v1/os                        {"name", "version", "iso"} -> 201 tree
//   GET    /boot/v1/os/{name}/{version}       tree (status, error, layout, kernel, initrds, args)
//   DELETE /boot/v1/os/{name}/{version}       204
//   GET    /boot/v1/{files|microkernels}      {"files": [file...]}
//   PUT    /boot/v1/{files|microkernels}/{name}   upload (streamed) -> 201 file
//   DELETE /boot/v1/{files|microkernels}/{name}   204
//   GET    /boot/v1/published                 {"published": [publication...]}
//   PUT    /boot/v1/published/{name}          {"image_id", "raw"} -> 201
//   DELETE /boot/v1/published/{name}          204 (the URL answers 404 from then on)
// A nested path of the files space ("a/b/c"): PUT or DELETE /boot/v1/files?path=a/b/c.
#pragma once

#include "api/route.h"
#include "boot/content_service.h"

namespace ingot::api::boot {

// Adds the routes to `router`; `content` must outlive it.
void RegisterContentRoutes(ApiRouter& router, ingot::boot::ContentService& content);

// The JSON of each record (shared with the CLI's expectations and the RackHD edge).
std::string IsoJson(const ingot::boot::Iso& iso, std::optional<uint64_t> progress);

}  // namespace ingot::api::boot
