#include "api/v2/imports.h"

#include <boost/json.hpp>

#include "api/errors.h"
#include "api/v2/documents.h"
#include "common/log.h"
#include "common/time.h"

namespace ingot::api {

namespace json = boost::json;
using catalog::Task;
using http::Response;

namespace {

json::value Nullable(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

// A stored JSON text as a value (the task's input and result are JSON objects on the wire).
json::value Embedded(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  return ec ? json::value(*text) : v;
}

// Glance's task views: the stub in lists, the whole task otherwise.
json::object TaskJson(const Task& t, bool full) {
  json::object o{{"id", t.id},
                 {"type", t.type},
                 {"status", std::string(catalog::TaskStatusName(t.status))},
                 {"owner", Nullable(t.owner)},
                 {"created_at", FormatIso8601(t.created_at)},
                 {"updated_at", FormatIso8601(t.updated_at)},
                 {"self", "/v2/tasks/" + t.id},
                 {"schema", "/v2/schemas/task"}};
  if (t.expires_at) o["expires_at"] = FormatIso8601(*t.expires_at);
  if (full) {
    o["input"] = Embedded(t.input);
    o["result"] = Embedded(t.result);
    o["message"] = t.message;
    o["image_id"] = Nullable(t.image_id);
    o["request_id"] = Nullable(t.request_id);
    o["user_id"] = Nullable(t.user_id);
  }
  return o;
}

// The import request body, checked as Glance checks it.
Result<service::ImportRequest> ParseImportBody(const json::value& body) {
  if (!body.is_object()) return InvalidArgument("Malformed JSON in request body.");
  const json::object& o = body.as_object();
  const json::value* method = o.if_contains("method");
  if (method == nullptr || !method->is_object()) {
    return InvalidArgument("Import request requires a 'method' field.");
  }
  const json::object& m = method->as_object();
  auto str = [&](const char* k) -> Result<std::optional<std::string>> {
    const json::value* v = m.if_contains(k);
    if (v == nullptr || v->is_null()) return std::optional<std::string>();
    if (!v->is_string()) return InvalidArgument("'" + std::string(k) + "' must be a string.");
    return std::optional<std::string>(std::string(v->as_string()));
  };
  service::ImportRequest r;
  INGOT_ASSIGN_OR_RETURN(auto name, str("name"));
  if (!name) return InvalidArgument("Import request requires a 'name' field.");
  r.method = *name;
  INGOT_ASSIGN_OR_RETURN(r.uri, str("uri"));
  INGOT_ASSIGN_OR_RETURN(r.glance_region, str("glance_region"));
  INGOT_ASSIGN_OR_RETURN(r.glance_image_id, str("glance_image_id"));
  INGOT_ASSIGN_OR_RETURN(r.glance_service_interface, str("glance_service_interface"));
  if (const json::value* s = o.if_contains("stores"); s != nullptr && !s->is_null()) {
    if (!s->is_array()) return InvalidArgument("'stores' must be a list of store ids.");
    for (const auto& id : s->as_array()) {
      if (!id.is_string()) return InvalidArgument("'stores' must be a list of store ids.");
      r.stores.emplace_back(id.as_string());
    }
  }
  auto flag = [&](const char* k, bool& out) -> Status {
    const json::value* v = o.if_contains(k);
    if (v == nullptr || v->is_null()) return Status::Ok();
    if (!v->is_bool()) return InvalidArgument("'" + std::string(k) + "' must be true or false.");
    out = v->as_bool();
    return Status::Ok();
  };
  INGOT_RETURN_IF_ERROR(flag("all_stores", r.all_stores));
  INGOT_RETURN_IF_ERROR(flag("all_stores_must_succeed", r.all_stores_must_succeed));
  if (r.all_stores && !r.stores.empty()) {
    return InvalidArgument("All stores is set to true and stores are given.");
  }
  return r;
}

}  // namespace

std::string ImportInfoJson(const std::vector<std::string>& methods) {
  json::array value;
  for (const auto& m : methods) value.emplace_back(m);
  return json::serialize(json::object{
      {"import-methods", json::object{{"description", "Import methods available."},
                                      {"type", "array"},
                                      {"value", std::move(value)}}}});
}

void ImportsResource::Register(ApiRouter& r) {
  auto bind = [this](auto fn) { return [this, fn](Call& call) { return (this->*fn)(call); }; };
  r.Add("PUT", "/v2/images/{id}/stage",
        {.rule = "stage_image",
         .handler = bind(&ImportsResource::Stage),
         .body = BodyMode::kStream,
         .image_param = 0});
  r.Add("POST", "/v2/images/{id}/import",
        {.rule = "import_image",
         .handler = bind(&ImportsResource::Import),
         .body = BodyMode::kJson,
         .image_param = 0});
  r.Add("GET", "/v2/images/{id}/tasks",
        {.rule = "get_image_tasks", .handler = bind(&ImportsResource::ImageTasks), .image_param = 0});
  r.Add("GET", "/v2/tasks", {.rule = "get_tasks", .handler = bind(&ImportsResource::ListTasks)});
  r.Add("GET", "/v2/tasks/{task}", {.rule = "get_task", .handler = bind(&ImportsResource::ShowTask)});
}

Result<Response> ImportsResource::Stage(Call& call) {
  http::Request& req = call.request;
  INGOT_ASSIGN_OR_RETURN(ImageDataHead head, ReadImageDataHead(req));
  if (head.refusal) return std::move(*head.refusal);
  auto staged = imports_.Stage(*call.image, *req.body, req.content_length, head.md5);
  if (!staged.ok()) {
    log::Warn("stage.failed", {{"image", call.image->id},
                               {"request_id", call.context.request_id},
                               {"error", staged.status().ToString()}});
    return staged.status();
  }
  log::Info("stage.done", {{"image", call.image->id}, {"bytes", staged->size.value_or(0)}});
  return NoContent();
}

Result<Response> ImportsResource::Import(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, options_.max_json_body));
  INGOT_ASSIGN_OR_RETURN(service::ImportRequest r, ParseImportBody(body));
  // Copying an image to more stores is its own rule (an operator's decision), checked once the
  // body says that is what is asked.
  if (r.method == "copy-image") {
    INGOT_RETURN_IF_ERROR(policy_.Authorize("copy_image", call.context, {.image = call.image}));
  }
  // Glance's single-store header names the target when the body names none.
  if (r.stores.empty() && !r.all_stores) {
    if (auto store = call.request.headers.Get("X-Image-Meta-Store"); store && !store->empty()) {
      r.stores.emplace_back(*store);
    }
  }
  service::Requester who{.project = call.context.project,
                         .user = call.context.user,
                         .roles = call.context.roles,
                         .request_id = call.context.request_id,
                         .token = std::string(
                             call.request.headers.Get("X-Auth-Token").value_or(""))};
  INGOT_ASSIGN_OR_RETURN(auto task, imports_.Import(*call.image, r, who));
  (void)task;
  // Glance answers 202 with an empty body that is not JSON (glanceclient parses a JSON type).
  Response resp;
  resp.status = 202;
  resp.headers.Set("Content-Type", "text/html; charset=UTF-8");
  return resp;
}

Result<Response> ImportsResource::ListTasks(Call& call) {
  int limit = 25;
  if (auto l = call.request.QueryValue("limit")) {
    limit = std::atoi(std::string(*l).c_str());
    if (limit <= 0 || limit > 1000) return InvalidArgument("limit param must be between 1 and 1000");
  }
  INGOT_ASSIGN_OR_RETURN(auto tasks, imports_.ListTasks(ViewerOf(call.context), limit));
  json::array out;
  for (const Task& t : tasks) out.emplace_back(TaskJson(t, false));
  return JsonResponse(200, json::object{{"tasks", std::move(out)},
                                        {"first", "/v2/tasks"},
                                        {"schema", "/v2/schemas/tasks"}});
}

Result<Response> ImportsResource::ShowTask(Call& call) {
  INGOT_ASSIGN_OR_RETURN(Task t, imports_.GetTask(call.params[0], ViewerOf(call.context)));
  return JsonResponse(200, TaskJson(t, true));
}

Result<Response> ImportsResource::ImageTasks(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto tasks, imports_.ListImageTasks(*call.image));
  json::array out;
  for (const Task& t : tasks) out.emplace_back(TaskJson(t, true));
  return JsonResponse(200, json::object{{"tasks", std::move(out)}});
}

}  // namespace ingot::api
