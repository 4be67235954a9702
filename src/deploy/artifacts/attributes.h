// Custom attributes: the values that personalise an OS volume (host name, addresses, passwords),
// as HPE Image Streamer defines them. A pure library: parsing plan script text, the attribute
// declarations of build plans (type and constraints), checking values and layering defaults.
//
// In a plan script's text (guestfish commands), an attribute is referenced as
//   @Name@            the value of attribute Name
//   @Name:default@    ... falling back to `default` when no layer gives a value
//   @Nic1.ipaddress@  one field of the NIC attribute Nic1 (fields: kNicFields)
// Name is [A-Za-z_][A-Za-z0-9_-]{0,63}; a default runs to the next '@' on the same line. Text that
// does not have this shape (an e-mail address, a lone '@') is literal: `user@example.com` holds no
// reference because "com" is not a NIC field and the reference would need a closing '@'.
//
// Layers, lowest first: the plan script's own default, the build plan's value, the deployment
// plan's value, then the value the deployment (POST /rest/os-volumes) gives. Every value is checked
// against the build plan's type and constraints before anything is cloned; errors are
// kInvalidArgument naming the attribute. A password value is never rendered back (see JSON below).
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::deploy::artifacts {

// The fields of a NIC attribute, as Image Streamer's plan scripts name them.
// A teamed NIC (two ports) has ipaddress1/ipaddress2 and mac1/mac2, as HPE's published bundles use.
inline constexpr const char* kNicFields[] = {"connectionid", "dhcp",  "ipv4disable", "ipaddress",
                                             "netmask",      "gateway", "dns1",      "dns2",
                                             "mac",          "vlanid",  "domain",    "networkuri",
                                             "ipaddress1",   "ipaddress2", "mac1",   "mac2"};
bool IsNicField(std::string_view field);
bool ValidAttributeName(std::string_view name);

// One @...@ in a script.
struct AttributeRef {
  std::string name;                          // "Nic1" for @Nic1.ipaddress@
  std::string field;                         // "ipaddress"; empty for a plain attribute
  std::optional<std::string> default_value;  // @Name:default@
  int line = 0;                              // 1-based
  size_t offset = 0;                         // of the opening '@'
  size_t length = 0;                         // through the closing '@'
  // "Name" or "Nic1.ipaddress": the key a value is looked up by.
  std::string Key() const { return field.empty() ? name : name + "." + field; }
};
// Every reference in order. Never fails: what is not a reference is literal text.
std::vector<AttributeRef> ParseAttributeRefs(std::string_view text);

// The attributes a script uses, first-seen order: a NIC once (nic = true), with the first default
// given for it in the script.
struct ScriptAttribute {
  std::string name;
  std::optional<std::string> default_value;
  bool nic = false;
};
std::vector<ScriptAttribute> ScriptAttributes(std::string_view text);

// The text with every reference replaced by values[ref.Key()], else its default. kInvalidArgument
// "attribute X has no value" for a reference with neither.
Result<std::string> Substitute(std::string_view text,
                               const std::map<std::string, std::string>& values);

enum class AttributeType { kString, kNumber, kOption, kPassword, kNic, kIpv4, kFqdn, kHostname };
std::string_view AttributeTypeName(AttributeType type);  // "string", "number", ... as the API
std::optional<AttributeType> ParseAttributeType(std::string_view name);

// What a build plan declares of one attribute. Constraints travel as Image Streamer's JSON text
// ("{\"options\":[\"a\",\"b\"]}"); an object is accepted too.
struct AttributeSpec {
  std::string name;
  AttributeType type = AttributeType::kString;
  std::string value;  // the build plan's default ("" = none); always "" for a password
  bool has_value = false;
  std::string description;
  bool editable = true;
  bool visible = true;
  // Constraints.
  std::vector<std::string> options;             // option
  std::optional<double> minimum, maximum, increment;  // number
  std::optional<size_t> maxlen;                 // string, password, fqdn, hostname
  std::string regex;                            // string (whole value must match)
  std::string unit;                             // number, shown only ("MiB")
  bool ipv4static = true, ipv4dhcp = true, ipv4disable = false;  // nic: the modes allowed
  std::vector<std::string> nic_parameters;      // nic: the fields a deployment may give
};

// Parses one entry of a build plan's customAttributes. kInvalidArgument naming the attribute and
// what is wrong (unknown type, constraint of the wrong shape, a regex that does not compile, a
// default that breaks its own constraints, a password with a stored value).
Result<AttributeSpec> ParseAttributeSpec(const boost::json::value& entry);
// The API's shape: constraints as JSON text; a password's value is always "".
boost::json::object AttributeSpecJson(const AttributeSpec& spec);

// Checks `value` for `key` ("Name" or "Nic1.field") against the spec. kInvalidArgument
// "attribute X: <why>".
Status CheckValue(const AttributeSpec& spec, std::string_view key, std::string_view value);

// A deployment plan's entry for one attribute.
struct AttributeOverride {
  std::string name;  // may be "Nic1.field"
  std::string value;
  bool has_value = false;
  bool editable = true;
  bool visible = true;
};
Result<AttributeOverride> ParseAttributeOverride(const boost::json::value& entry);

// One step of a build plan as the resolver needs it.
struct StepAttributes {
  std::string script_name;
  std::vector<AttributeRef> refs;                   // what its text references
  std::map<std::string, std::string> parameters;    // the step's fixed values (see ParseStepParameters)
};
// A step's `parameters`: "Name=value" items separated by ';' or newlines; values are the step's
// own, fixed for that step (a generic script used twice with different settings). Whitespace
// around names is dropped. kInvalidArgument for an item without '=' or a bad name.
Result<std::map<std::string, std::string>> ParseStepParameters(std::string_view text);

// The values every step needs, layered and checked. `specs`: the build plan's declarations (an
// attribute a script uses without a declaration is a string); `plan`: the deployment plan's
// overrides; `given`: the deployment's values. Refuses (kInvalidArgument naming the attribute) a
// value for an attribute nothing uses, a value the deployment plan made non-editable, a missing
// value, and a value its type or constraints refuse. Returns, per step, the values by key.
Result<std::vector<std::map<std::string, std::string>>> ResolveValues(
    const std::vector<StepAttributes>& steps, const std::vector<AttributeSpec>& specs,
    const std::vector<AttributeOverride>& plan, const std::map<std::string, std::string>& given);

// The password values among `values` (keyed as ResolveValues returns them), for scrubbing logs
// and error messages.
std::vector<std::string> PasswordValues(const std::vector<AttributeSpec>& specs,
                                        const std::map<std::string, std::string>& values);
// `text` with each of `secrets` (non-empty) replaced by "********".
std::string Scrub(std::string text, const std::vector<std::string>& secrets);

}  // namespace ingot::deploy::artifacts
