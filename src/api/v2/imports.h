// Glance's interoperable image import and tasks: PUT /v2/images/{id}/stage, POST
// /v2/images/{id}/import, GET /v2/tasks, /v2/tasks/{id} and /v2/images/{id}/tasks. Each handler
// parses, calls one use case of service::ImportService and renders, as Glance answers.
#pragma once

#include "api/options.h"
#include "api/route.h"
#include "auth/policy.h"
#include "service/import/import_service.h"

namespace ingot::api {

class ImportsResource {
 public:
  ImportsResource(service::ImportService& imports, const auth::Policy& policy,
                  const ApiOptions& options)
      : imports_(imports), policy_(policy), options_(options) {}
  void Register(ApiRouter& router);

 private:
  Result<http::Response> Stage(Call& call);
  Result<http::Response> Import(Call& call);
  Result<http::Response> ListTasks(Call& call);
  Result<http::Response> ShowTask(Call& call);
  Result<http::Response> ImageTasks(Call& call);

  service::ImportService& imports_;
  const auth::Policy& policy_;
  const ApiOptions& options_;
};

// GET /v2/info/import's document for the methods offered.
std::string ImportInfoJson(const std::vector<std::string>& methods);

}  // namespace ingot::api
