// The Image API v2 image resources: /v2/images, /v2/images/{id}, its file, tags and actions. Each
// handler parses, calls one use case of service::ImageService and renders; wire behaviour follows
// Glance (status codes, error texts, JSON shapes; recorded answers in
// ../shared/peers/glance/samples).
#pragma once

#include "api/options.h"
#include "api/route.h"
#include "auth/policy.h"
#include "api/v2/documents.h"
#include "service/image_service.h"
#include "service/locations.h"

namespace ingot::api {

class ImagesResource {
 public:
  // `locations`, when the daemon offers the locations API, serves Glance's multiple-locations
  // PATCH operations and the documents' `locations` / `direct_url`; without it /locations is
  // read-only, as before.
  ImagesResource(service::ImageService& images, const auth::Policy& policy,
                 const ApiOptions& options, service::LocationService* locations = nullptr)
      : images_(images),
        policy_(policy),
        options_(options),
        locations_(locations),
        multiple_stores_(images.stores().size() > 1) {}
  void Register(ApiRouter& router);

 private:
  Result<http::Response> Create(Call& call);
  Result<std::string> DeclaredHash(const boost::json::object& body,
                                   const boost::json::value& value) const;
  Result<http::Response> List(Call& call);
  Result<http::Response> Show(Call& call);
  Result<http::Response> Update(Call& call);
  Result<http::Response> Delete(Call& call);
  Result<http::Response> Upload(Call& call);
  Result<http::Response> Download(Call& call);
  Result<http::Response> AddTag(Call& call);
  Result<http::Response> DeleteTag(Call& call);
  Result<http::Response> Deactivate(Call& call);
  Result<http::Response> Reactivate(Call& call);
  Result<http::Response> RemoveFromStore(Call& call);

  // The image as the caller may see it (property protections' read rule).
  catalog::Image Readable(catalog::Image image, const Call& call) const;
  // What the document of `image` shows of its locations for this caller (get_image_location).
  LocationsShown Shown(const catalog::Image& image, const Call& call) const;
  http::Response Document(int status, const catalog::Image& image, const Call& call) const;
  // A PATCH with operations on /locations: one LocationService::Patch of every step.
  Result<http::Response> UpdateWithLocations(Call& call, const std::vector<PatchOp>& ops);
  // The rules a set of attribute values needs beyond the route's (publicize, give away).
  Status AuthorizeValues(const std::vector<std::pair<std::string, boost::json::value>>& values,
                         const Call& call) const;

  service::ImageService& images_;
  const auth::Policy& policy_;
  const ApiOptions& options_;
  service::LocationService* const locations_;
  // A multi-store deployment shows each image's `stores` (Glance does so only when multi-store).
  const bool multiple_stores_;
};

}  // namespace ingot::api
