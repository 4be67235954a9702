#include "api/v2/image_attributes.h"

#include "common/uuid.h"

namespace ingot::api {

namespace json = boost::json;
using catalog::Image;
using catalog::ImageStatus;
using catalog::Visibility;

namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxPropertyKey = 255;
constexpr size_t kMaxPropertyValue = 65535;

// Attributes the API computes; a client may never set them.
constexpr std::string_view kReadOnly[] = {"status", "checksum",     "os_hash_algo", "os_hash_value",
                                          "size",   "virtual_size", "created_at",   "updated_at",
                                          "self",   "file",         "schema",       "direct_url",
                                          "stores", "locations"};

bool IsReadOnly(std::string_view key) {
  for (auto k : kReadOnly) {
    if (k == key) return true;
  }
  return false;
}

bool IsReserved(std::string_view key) { return key.substr(0, 10) == "os_glance_"; }

std::string Describe(const json::value& v) {
  if (v.is_string()) return "'" + std::string(v.as_string()) + "'";
  if (v.is_bool()) return v.as_bool() ? "True" : "False";
  if (v.is_null()) return "None";
  return json::serialize(v);
}

Status SchemaError(std::string detail) {
  return InvalidArgument("Provided object does not match schema 'image': " + std::move(detail));
}

bool Allowed(const std::vector<std::string>& list, const std::string& v) {
  for (const auto& x : list) {
    if (x == v) return true;
  }
  return false;
}

std::string JoinList(const std::vector<std::string>& list) {
  std::string s = "[None";
  for (const auto& x : list) s += ", '" + x + "'";
  return s + "]";
}

std::optional<uint64_t> NonNegativeInt(const json::value& v) {
  if (v.is_int64() && v.as_int64() >= 0) return static_cast<uint64_t>(v.as_int64());
  if (v.is_uint64()) return v.as_uint64();
  return std::nullopt;
}

}  // namespace

Status SetAttribute(Image& im, const std::string& key, const json::value& v,
                    const FormatSets& config, bool creating) {
  if (IsReadOnly(key)) return PermissionDenied("Attribute '" + key + "' is read-only.");
  if (IsReserved(key)) {
    return PermissionDenied("Access was denied to this resource.<br /><br />\nAttribute '" + key +
                            "' is reserved.");
  }
  if (key == "id") {
    if (!creating) return PermissionDenied("Attribute 'id' is read-only.");
    if (!v.is_string() || !IsUuid(v.as_string())) {
      return SchemaError(Describe(v) + " does not match the UUID pattern for 'id'");
    }
    im.id = CanonicalUuid(v.as_string());
  } else if (key == "name") {
    if (v.is_null()) {
      im.name.reset();
    } else if (!v.is_string()) {
      return SchemaError(Describe(v) + " is not of type 'null', 'string' for 'name'");
    } else if (v.as_string().size() > kMaxNameLength) {
      return SchemaError("'name' is too long (" + std::to_string(v.as_string().size()) +
                         " characters; at most 255)");
    } else {
      im.name = std::string(v.as_string());
    }
  } else if (key == "visibility") {
    auto vis = v.is_string() ? catalog::ParseVisibility(v.as_string()) : std::nullopt;
    if (!vis) {
      return SchemaError(Describe(v) +
                         " is not one of ['community', 'public', 'private', 'shared']\n\nFailed "
                         "validating 'enum' in schema['properties']['visibility']");
    }
    im.visibility = *vis;
  } else if (key == "protected" || key == "os_hidden") {
    if (!v.is_bool())
      return SchemaError(Describe(v) + " is not of type 'boolean' for '" + key + "'");
    (key == "protected" ? im.is_protected : im.os_hidden) = v.as_bool();
  } else if (key == "min_disk" || key == "min_ram") {
    auto n = NonNegativeInt(v);
    if (!n) return SchemaError(Describe(v) + " is not a non-negative integer for '" + key + "'");
    (key == "min_disk" ? im.min_disk : im.min_ram) = *n;
  } else if (key == "disk_format" || key == "container_format") {
    const auto& allowed = key == "disk_format" ? config.disk_formats : config.container_formats;
    std::optional<std::string> value;
    if (!v.is_null()) {
      if (!v.is_string() || !Allowed(allowed, std::string(v.as_string()))) {
        return SchemaError(Describe(v) + " is not one of " + JoinList(allowed) +
                           "\n\nFailed validating 'enum' in schema['properties']['" + key + "']");
      }
      value = std::string(v.as_string());
    }
    if (!creating && im.status() != ImageStatus::kQueued &&
        value != (key == "disk_format" ? im.disk_format : im.container_format)) {
      return PermissionDenied("Attribute " + key + " can be only replaced for a queued image.");
    }
    (key == "disk_format" ? im.disk_format : im.container_format) = std::move(value);
  } else if (key == "owner") {
    std::optional<std::string> owner;
    if (!v.is_null()) {
      if (!v.is_string() || v.as_string().size() > 255) {
        return SchemaError(Describe(v) + " is not a valid 'owner'");
      }
      owner = std::string(v.as_string());
    }
    im.owner = std::move(owner);
  } else if (key == "tags") {
    if (!v.is_array()) return SchemaError(Describe(v) + " is not of type 'array' for 'tags'");
    std::set<std::string> tags;
    for (const auto& t : v.as_array()) {
      if (!t.is_string() || t.as_string().empty() || t.as_string().size() > 255) {
        return SchemaError(Describe(t) + " is not a valid tag (a string of 1-255 characters)");
      }
      tags.emplace(t.as_string());
    }
    im.tags = std::move(tags);
  } else {
    if (key.empty() || key.size() > kMaxPropertyKey) {
      return SchemaError("property names must be 1-255 characters");
    }
    if (!v.is_string()) {
      return SchemaError(Describe(v) + " is not of type 'string' for property '" + key + "'");
    }
    if (v.as_string().size() > kMaxPropertyValue) {
      return SchemaError("the value of property '" + key + "' is longer than 65535 characters");
    }
    im.properties[key] = std::string(v.as_string());
  }
  return Status::Ok();
}

static bool IsCoreAttribute(std::string_view key) {
  static constexpr std::string_view kCore[] = {
      "id",      "name",        "visibility",       "protected", "os_hidden", "min_disk",
      "min_ram", "disk_format", "container_format", "owner",     "tags"};
  for (auto k : kCore) {
    if (k == key) return true;
  }
  return false;
}

Status ApplyPatch(Image& im, const std::vector<PatchOp>& ops, const FormatSets& formats) {
  for (const PatchOp& op : ops) {
    const std::string& key = op.key;
    if (op.kind == PatchOp::Kind::kRemove) {
      if (IsReadOnly(key)) return PermissionDenied("Attribute '" + key + "' is read-only.");
      if (IsReserved(key)) return PermissionDenied("Attribute '" + key + "' is reserved.");
      if (IsCoreAttribute(key))
        return PermissionDenied("Properties " + key + " cannot be removed.");
      if (im.properties.erase(key) == 0) return Conflict("Property " + key + " does not exist.");
      continue;
    }
    if (op.kind == PatchOp::Kind::kReplace && !IsCoreAttribute(key) && !IsReadOnly(key) &&
        !IsReserved(key) && !im.properties.count(key)) {
      return Conflict("Property " + key + " does not exist.");
    }
    INGOT_RETURN_IF_ERROR(SetAttribute(im, key, op.value, formats, false));
  }
  return Status::Ok();
}

std::vector<std::string> ExtraRules(const std::vector<std::pair<std::string, json::value>>& values,
                                    const std::optional<std::string>& project) {
  std::vector<std::string> rules;
  for (const auto& [key, v] : values) {
    if (key == "visibility" && v.is_string() && v.as_string() == "public") {
      rules.push_back("publicize_image");
    }
    if (key == "owner") {
      std::optional<std::string> owner;
      if (v.is_string()) owner = std::string(v.as_string());
      if (owner != project) rules.push_back("set_image_owner");
    }
  }
  return rules;
}

}  // namespace ingot::api
