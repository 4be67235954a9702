// The Image API v2 resources: /v2/images, /v2/images/{id}, its file, tags and actions, and the
// schemas the glance client reads. Wire behaviour follows Glance (status codes, error texts, JSON
// shapes); see /work/shared/peers/glance/samples for recorded answers.
#pragma once

#include "api/router.h"
#include "catalog/repository.h"
#include "service/config.h"
#include "service/image_service.h"

namespace ingot::api {

class ImagesApi {
 public:
  ImagesApi(catalog::ImageRepository& repo, service::ImageService& images,
            const service::Config& config);
  void Register(Router& router);

 private:
  using Ctx = auth::RequestContext;
  http::Response Create(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response List(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response Show(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response Update(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response Delete(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response Upload(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response Download(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response AddTag(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response DeleteTag(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response Deactivate(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response Reactivate(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response ListMembers(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response AddMember(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response ShowMember(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response UpdateMember(http::Request& req, const Ctx& ctx, const Params& p);
  http::Response DeleteMember(http::Request& req, const Ctx& ctx, const Params& p);

  // The image if it exists and `ctx` may see it; kNotFound ("No image found with ID x") otherwise.
  Result<catalog::Image> Load(const std::string& id, const Ctx& ctx);
  // Re-reads, applies `change`, saves; retries when a concurrent writer saved first.
  Result<catalog::Image> Mutate(const std::string& id, const Ctx& ctx,
                                const std::function<Status(catalog::Image&)>& change);

  catalog::ImageRepository& repo_;
  service::ImageService& images_;
  const service::Config& config_;
};

// The JSON documents that do not depend on state.
std::string ImageSchemaJson(const service::Config& config);
std::string ImagesSchemaJson(const service::Config& config);
std::string VersionsJson(const std::string& base_url);

}  // namespace ingot::api
