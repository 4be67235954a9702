// Image sharing (Glance's members API): the owner shares a `shared` image with other projects; each
// member project accepts or rejects it, which decides whether it appears in that project's list.
#pragma once

#include "api/options.h"
#include "api/route.h"
#include "auth/policy.h"
#include "service/image_service.h"

namespace ingot::api {

class MembersResource {
 public:
  MembersResource(service::ImageService& images, const auth::Policy& policy,
                  const ApiOptions& options)
      : images_(images), policy_(policy), options_(options) {}
  void Register(ApiRouter& router);

 private:
  Result<http::Response> List(Call& call);
  Result<http::Response> Add(Call& call);
  Result<http::Response> Show(Call& call);
  Result<http::Response> Update(Call& call);
  Result<http::Response> Remove(Call& call);

  service::ImageService& images_;
  const auth::Policy& policy_;
  const ApiOptions& options_;
};

}  // namespace ingot::api
