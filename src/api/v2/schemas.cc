// JSON schemas of the image resources (GET /v2/schemas/image[s]) and the version documents.
// The glance client builds its command-line options and validates requests from these, so the
// attribute names, types and read-only flags must be what Glance publishes.
#include "api/v2/schemas.h"

#include <boost/json.hpp>
#include <span>

namespace ingot::api {

namespace json = boost::json;

namespace {

constexpr std::string_view kUuidPattern =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

json::array NullableString() { return json::array{"null", "string"}; }

json::object Attr(json::value type, std::string_view description, bool read_only = false) {
  json::object o;
  o["type"] = std::move(type);
  o["description"] = description;
  if (read_only) o["readOnly"] = true;
  return o;
}

json::array EnumWithNull(const std::vector<std::string>& values) {
  json::array a{nullptr};
  for (const auto& v : values) a.emplace_back(v);
  return a;
}

json::object ImageSchema(const FormatSets& config) {
  json::object p;
  {
    auto o = Attr("string", "An identifier for the image");
    o["pattern"] = kUuidPattern;
    p["id"] = std::move(o);
  }
  {
    auto o = Attr(NullableString(), "Descriptive name for the image");
    o["maxLength"] = 255;
    p["name"] = std::move(o);
  }
  {
    auto o = Attr("string", "Status of the image", true);
    o["enum"] = json::array{"queued",    "saving",    "active",         "killed",     "deleted",
                            "uploading", "importing", "pending_delete", "deactivated"};
    p["status"] = std::move(o);
  }
  {
    auto o = Attr("string", "Scope of image accessibility");
    o["enum"] = json::array{"community", "public", "private", "shared"};
    p["visibility"] = std::move(o);
  }
  p["protected"] = Attr("boolean", "If true, image will not be deletable.");
  p["os_hidden"] =
      Attr("boolean", "If true, image will not appear in default image list response.");
  {
    auto o = Attr(NullableString(), "md5 hash of image contents.", true);
    o["maxLength"] = 32;
    p["checksum"] = std::move(o);
  }
  {
    auto o = Attr(NullableString(), "Algorithm to calculate the os_hash_value", true);
    o["maxLength"] = 64;
    p["os_hash_algo"] = std::move(o);
  }
  {
    auto o = Attr(NullableString(),
                  "Hexdigest of the image contents using the algorithm specified by the "
                  "os_hash_algo",
                  true);
    o["maxLength"] = 128;
    p["os_hash_value"] = std::move(o);
  }
  {
    auto o = Attr(NullableString(), "Owner of the image");
    o["maxLength"] = 255;
    p["owner"] = std::move(o);
  }
  p["size"] = Attr(json::array{"null", "integer"}, "Size of image file in bytes", true);
  p["virtual_size"] = Attr(json::array{"null", "integer"}, "Virtual size of image in bytes", true);
  {
    auto o = Attr(NullableString(), "Format of the container");
    o["enum"] = EnumWithNull(config.container_formats);
    p["container_format"] = std::move(o);
  }
  {
    auto o = Attr(NullableString(), "Format of the disk");
    o["enum"] = EnumWithNull(config.disk_formats);
    p["disk_format"] = std::move(o);
  }
  p["created_at"] = Attr("string", "Date and time of image registration", true);
  p["updated_at"] = Attr("string", "Date and time of the last image modification", true);
  {
    auto o = Attr("array", "List of strings related to the image");
    o["items"] = json::object{{"type", "string"}, {"maxLength", 255}};
    p["tags"] = std::move(o);
  }
  p["direct_url"] = Attr("string", "URL to access the image file kept in external store", true);
  p["min_ram"] = Attr("integer", "Amount of ram (in MB) required to boot image.");
  p["min_disk"] = Attr("integer", "Amount of disk space (in GB) required to boot image.");
  p["self"] = Attr("string", "An image self url", true);
  p["file"] = Attr("string", "An image file url", true);
  // `stores` is never published, though multi-store images carry it: glanceclient turns every
  // schema property into a command-line option and caches the schema, and its own --stores option
  // then collides with it (real Glance publishes it with several stores and breaks the client).
  // The documents' `stores` is an extra string property, which additionalProperties allows.
  p["schema"] = Attr("string", "An image schema url", true);
  {
    json::object loc_item{
        {"type", "object"},
        {"properties", json::object{{"url", json::object{{"type", "string"}, {"maxLength", 255}}},
                                    {"metadata", json::object{{"type", "object"}}}}},
        {"required", json::array{"url", "metadata"}}};
    json::object o{
        {"type", "array"},
        {"items", std::move(loc_item)},
        {"description", "A set of URLs to access the image file kept in external store"}};
    p["locations"] = std::move(o);
  }
  // Well-known optional properties Glance advertises (is_base=false: not core attributes).
  auto extra = [&](std::string_view name, std::string_view description) {
    json::object o{{"type", "string"}, {"description", description}, {"is_base", false}};
    p[name] = std::move(o);
  };
  {
    json::object o{{"type", NullableString()},
                   {"pattern", kUuidPattern},
                   {"description",
                    "ID of image stored in Glance that should be used as the kernel "
                    "when booting an AMI-style image."},
                   {"is_base", false}};
    p["kernel_id"] = o;
    o["description"] =
        "ID of image stored in Glance that should be used as the ramdisk when "
        "booting an AMI-style image.";
    p["ramdisk_id"] = std::move(o);
  }
  extra("instance_uuid",
        "Metadata which can be used to record which instance this image is "
        "associated with. (Informational only, does not create an instance "
        "snapshot.)");
  extra("architecture", "Operating system architecture");
  extra("os_distro", "Common name of operating system distribution");
  extra("os_version", "Operating system version as specified by the distributor.");
  extra("description", "A human-readable string describing this image.");

  json::object schema;
  schema["name"] = "image";
  schema["properties"] = std::move(p);
  schema["additionalProperties"] = json::object{{"type", "string"}};
  schema["links"] = json::array{json::object{{"rel", "self"}, {"href", "{self}"}},
                                json::object{{"rel", "enclosure"}, {"href", "{file}"}},
                                json::object{{"rel", "describedby"}, {"href", "{schema}"}}};
  return schema;
}

}  // namespace

std::string ImageSchemaJson(const FormatSets& config) {
  return json::serialize(ImageSchema(config));
}

std::string ImagesSchemaJson(const FormatSets& config) {
  json::object images{{"type", "array"}, {"items", ImageSchema(config)}};
  json::object props{{"images", std::move(images)},
                     {"first", json::object{{"type", "string"}}},
                     {"next", json::object{{"type", "string"}}},
                     {"schema", json::object{{"type", "string"}}}};
  json::object schema{
      {"name", "images"},
      {"properties", std::move(props)},
      {"links", json::array{json::object{{"rel", "first"}, {"href", "{first}"}},
                            json::object{{"rel", "next"}, {"href", "{next}"}},
                            json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}};
  return json::serialize(schema);
}

namespace {

json::object TaskSchema() {
  auto str = [](std::string_view d) { return Attr("string", d); };
  json::object props{
      {"id", Attr("string", "An identifier for the task")},
      {"type", Attr("string", "The type of task represented by this content")},
      {"status",
       json::object{{"type", "string"},
                    {"description", "The current status of this task"},
                    {"enum", json::array{"pending", "processing", "success", "failure"}}}},
      {"input", json::object{{"type", json::array{"null", "object"}},
                             {"description", "The parameters required by task, JSON blob"}}},
      {"result", json::object{{"type", json::array{"null", "object"}},
                              {"description", "The result of current task, JSON blob"}}},
      {"owner", Attr(NullableString(), "An identifier for the owner of this task")},
      {"message", str("Human-readable informative message only included when appropriate")},
      {"image_id", Attr(NullableString(), "Image associated with the task")},
      {"request_id", Attr(NullableString(), "Human-readable informative request-id")},
      {"user_id", Attr(NullableString(), "User associated with the task")},
      {"expires_at", Attr(NullableString(), "Datetime when this resource would be subject to removal")},
      {"created_at", str("Datetime when this resource was created")},
      {"updated_at", str("Datetime when this resource was updated")},
      {"self", str("")},
      {"schema", str("")}};
  return json::object{{"name", "task"}, {"properties", std::move(props)}};
}

}  // namespace

std::string TaskSchemaJson() { return json::serialize(TaskSchema()); }

std::string TasksSchemaJson() {
  return json::serialize(json::object{
      {"name", "tasks"},
      {"properties",
       json::object{{"schema", json::object{{"type", "string"}}},
                    {"tasks", json::object{{"type", "array"}, {"items", TaskSchema()}}},
                    {"first", json::object{{"type", "string"}}},
                    {"next", json::object{{"type", "string"}}}}},
      {"links", json::array{json::object{{"rel", "first"}, {"href", "{first}"}},
                            json::object{{"rel", "next"}, {"href", "{next}"}},
                            json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}});
}

namespace {

// An image membership (GET /v2/images/{id}/members/{member}), as Glance publishes it.
json::object MemberSchema() {
  json::object props{
      {"member_id", Attr("string", "An identifier for the image member (tenantId)")},
      {"image_id", Attr("string", "An identifier for the image")},
      {"created_at", Attr("string", "Date and time of image member creation")},
      {"updated_at", Attr("string", "Date and time of last modification of image member")},
      {"status", Attr("string", "The status of this image member")},
      {"schema", json::object{{"readOnly", true}, {"type", "string"}}}};
  props["image_id"].as_object()["pattern"] = kUuidPattern;
  props["status"].as_object()["enum"] = json::array{"pending", "accepted", "rejected"};
  return json::object{{"name", "member"}, {"properties", std::move(props)}};
}

}  // namespace

std::string MemberSchemaJson() { return json::serialize(MemberSchema()); }

std::string MembersSchemaJson() {
  return json::serialize(json::object{
      {"name", "members"},
      {"properties",
       json::object{{"members", json::object{{"type", "array"}, {"items", MemberSchema()}}},
                    {"schema", json::object{{"type", "string"}}}}},
      {"links", json::array{json::object{{"rel", "describedby"}, {"href", "{schema}"}}}}});
}

std::string VersionsJson(const std::string& base_url, bool image_cache) {
  // The Image API versions this server speaks; the newest is CURRENT, as Glance reports them.
  static constexpr std::string_view kVersions[] = {"v2.15", "v2.13", "v2.12", "v2.11", "v2.10",
                                                   "v2.9",  "v2.8",  "v2.7",  "v2.6",  "v2.5",
                                                   "v2.4",  "v2.3",  "v2.2",  "v2.1",  "v2.0"};
  static constexpr std::string_view kCacheVersions[] = {
      "v2.16", "v2.15", "v2.14", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8",
      "v2.7",  "v2.6",  "v2.5",  "v2.4",  "v2.3",  "v2.2",  "v2.1",  "v2.0"};
  json::array versions;
  bool first = true;
  std::span<const std::string_view> list =
      image_cache ? std::span<const std::string_view>(kCacheVersions)
                  : std::span<const std::string_view>(kVersions);
  for (auto v : list) {
    json::object o{
        {"id", v},
        {"status", first ? "CURRENT" : "SUPPORTED"},
        {"links", json::array{json::object{{"rel", "self"}, {"href", base_url + "/v2/"}}}}};
    versions.emplace_back(std::move(o));
    first = false;
  }
  return json::serialize(json::object{{"versions", std::move(versions)}});
}

}  // namespace ingot::api
