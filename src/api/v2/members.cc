#include "api/v2/members.h"

#include "api/v2/documents.h"
#include "api/v2/schemas.h"

namespace ingot::api {

namespace json = boost::json;
using http::Response;

void MembersResource::Register(ApiRouter& r) {
  auto bind = [this](auto fn) { return [this, fn](Call& call) { return (this->*fn)(call); }; };
  // The member schemas are fixed documents, rendered once.
  r.Add("GET", "/v2/schemas/member",
        {.rule = "get_schemas",
         .handler = [doc = MemberSchemaJson()](Call&) -> Result<Response> {
           return JsonResponse(200, doc);
         }});
  r.Add("GET", "/v2/schemas/members",
        {.rule = "get_schemas",
         .handler = [doc = MembersSchemaJson()](Call&) -> Result<Response> {
           return JsonResponse(200, doc);
         }});
  r.Add("GET", "/v2/images/{id}/members",
        {.rule = "get_members", .handler = bind(&MembersResource::List), .image_param = 0});
  r.Add("POST", "/v2/images/{id}/members",
        {.rule = "add_member",
         .handler = bind(&MembersResource::Add),
         .body = BodyMode::kJson,
         .image_param = 0});
  r.Add("GET", "/v2/images/{id}/members/{member}",
        {.rule = "get_member",
         .handler = bind(&MembersResource::Show),
         .image_param = 0,
         .member_param = 1});
  r.Add("PUT", "/v2/images/{id}/members/{member}",
        {.rule = "modify_member",
         .handler = bind(&MembersResource::Update),
         .body = BodyMode::kJson,
         .image_param = 0,
         .member_param = 1});
  r.Add("DELETE", "/v2/images/{id}/members/{member}",
        {.rule = "delete_member",
         .handler = bind(&MembersResource::Remove),
         .image_param = 0,
         .member_param = 1});
}

Result<Response> MembersResource::List(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto members, images_.ListMembers(*call.image));
  json::array out;
  for (const auto& m : members) {
    // The owner sees every membership; a member project only its own (the get_member rule).
    if (policy_.Authorize("get_member", call.context, {.image = call.image, .member = m.member})
            .ok()) {
      out.emplace_back(MemberJson(m));
    }
  }
  return JsonResponse(200,
                      json::object{{"members", std::move(out)}, {"schema", "/v2/schemas/members"}});
}

Result<Response> MembersResource::Add(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, options_.max_json_body));
  const json::value* member = body.is_object() ? body.as_object().if_contains("member") : nullptr;
  if (member == nullptr || !member->is_string() || member->as_string().empty() ||
      member->as_string().size() > 255) {
    return InvalidArgument("Member to be added not specified");
  }
  INGOT_ASSIGN_OR_RETURN(auto m, images_.AddMember(*call.image, std::string(member->as_string())));
  return JsonResponse(200, MemberJson(m));
}

Result<Response> MembersResource::Show(Call& call) {
  INGOT_ASSIGN_OR_RETURN(auto m, images_.GetMember(*call.image, call.params[1]));
  return JsonResponse(200, MemberJson(m));
}

Result<Response> MembersResource::Update(Call& call) {
  INGOT_ASSIGN_OR_RETURN(json::value body, ReadJson(call.request, options_.max_json_body));
  const json::value* status = body.is_object() ? body.as_object().if_contains("status") : nullptr;
  auto parsed = status && status->is_string() ? catalog::ParseMemberStatus(status->as_string())
                                              : std::nullopt;
  if (!parsed) return InvalidArgument("Status must be one of pending, accepted, rejected.");
  INGOT_ASSIGN_OR_RETURN(auto m, images_.SetMemberStatus(*call.image, call.params[1], *parsed));
  return JsonResponse(200, MemberJson(m));
}

Result<Response> MembersResource::Remove(Call& call) {
  INGOT_RETURN_IF_ERROR(images_.RemoveMember(*call.image, call.params[1]));
  return NoContent();
}

}  // namespace ingot::api
