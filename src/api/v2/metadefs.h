// Metadata definitions (Glance's /v2/metadefs/...): namespaces, their objects, properties and tags
// (tags also in bulk), resource types and their associations. Handlers parse the document
// (metadefs/definitions.h), call one use case of metadefs::MetadefService and render Glance's
// documents; visibility and protection are the service's, who may write is the policy's
// (*_metadef_* rules: admin by default).
#pragma once

#include "api/options.h"
#include "api/route.h"
#include "metadefs/metadef_service.h"

namespace ingot::api {

class MetadefsResource {
 public:
  MetadefsResource(metadefs::MetadefService& service, const ApiOptions& options)
      : service_(service), options_(options) {}
  void Register(ApiRouter& router);

 private:
  Result<http::Response> ListNamespaces(Call& call);
  Result<http::Response> CreateNamespace(Call& call);
  Result<http::Response> ShowNamespace(Call& call);
  Result<http::Response> UpdateNamespace(Call& call);
  Result<http::Response> DeleteNamespace(Call& call);
  Result<http::Response> ListResourceTypes(Call& call);
  Result<http::Response> ListAssociations(Call& call);
  Result<http::Response> AddAssociation(Call& call);
  Result<http::Response> RemoveAssociation(Call& call);
  Result<http::Response> ListObjects(Call& call);
  Result<http::Response> CreateObject(Call& call);
  Result<http::Response> ShowObject(Call& call);
  Result<http::Response> UpdateObject(Call& call);
  Result<http::Response> ListProperties(Call& call);
  Result<http::Response> CreateProperty(Call& call);
  Result<http::Response> ShowProperty(Call& call);
  Result<http::Response> UpdateProperty(Call& call);
  Result<http::Response> ListTags(Call& call);
  Result<http::Response> CreateTags(Call& call);
  Result<http::Response> CreateTag(Call& call);
  Result<http::Response> ShowTag(Call& call);
  Result<http::Response> UpdateTag(Call& call);

  metadefs::MetadefService& service_;
  ApiOptions options_;
};

}  // namespace ingot::api
