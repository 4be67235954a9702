// RackHD's image-service northbound API (github.com/RackHD/image-service, lib/api/northbound-api.js),
// on a listener of its own ([boot] rackhd_listen; RackHD uses port 7070), so a RackHD user changes
// only the address. Same requests, fields and statuses, over the same ContentService as /boot/v1:
//
//   GET    /images[?id&name&version&iso&status]  200 [{"id","iso","name","status","version"}]
//   PUT    /images?name&version& one of isostore | isolocal | isoweb | isoclient (that order wins)
//          200 {"id","iso","name","version","status":"OK"}; 400 {"message":"Image already exists"}
//          isoclient: the ISO is the request body; isoweb: downloaded before the answer (as
//          RackHD does); isolocal: a path under [boot] local_dirs
//   DELETE /images?name&version (or any of the GET filters)  200 [deleted images];
//          404 {"message":"No image matching query"}
//   GET    /iso          200 [{"name","size":"4.15 GB","uploaded":"2016-10-18T18:02:50.769Z"}]
//   PUT    /iso?name     the body is the ISO; 204 (RackHD's empty answer)
//   DELETE /iso?name     200 {"name","size","uploaded"}; 404 {"message":"No file match query"};
//                        409 naming the OS trees that use it (RackHD would unmount them silently)
//   GET|PUT|DELETE /microkernel[?name]   as /iso, for the microkernel store (served at /common/)
// Parameters come from the query or, as in RackHD, a JSON body (Content-Type: application/json).
// Errors are {"message": "..."}. Where RackHD answers a missing parameter with a 500 (an assert),
// this answers 400 with the same kind of message. No authentication, as RackHD's: bind it to the
// management network only.
#pragma once

#include "boot/content_service.h"
#include "http/message.h"

namespace ingot::api::boot {

class RackHdApi {
 public:
  struct Options {
    uint64_t max_upload = 1ull << 40;
  };
  RackHdApi(ingot::boot::ContentService& content, Options options)
      : content_(content), options_(options) {}
  // The http::Handler.
  http::HeadResult Handle(http::Request& req);
  void Observe(const http::Exchange& exchange);

 private:
  http::Response Dispatch(http::Request& req, const std::map<std::string, std::string>& params);
  ingot::boot::ContentService& content_;
  const Options options_;
};

// RackHD's size text: "4.15 GB", "61.11 MB", "1.00 KB", "512 Byte".
std::string PrettySize(uint64_t size);

}  // namespace ingot::api::boot
