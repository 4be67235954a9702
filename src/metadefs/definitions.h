// Metadata-definition documents as clients send them and as definition files hold them (the same
// shape: a shipped file is a POST /v2/metadefs/namespaces body), checked against the schemas Glance
// publishes (GET /v2/schemas/metadefs/...): required members, types, lengths, enums, no unknown
// members. A refusal is kInvalidArgument "Provided object does not match schema '<name>': <why>",
// the first line of Glance's text. Pure: no I/O.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string_view>

#include "common/result.h"
#include "metadefs/repository.h"

namespace ingot::metadefs {

// A whole namespace with its associations, objects, properties and tags, stamped `now`.
Result<NamespaceTree> ParseNamespaceDocument(const boost::json::value& doc, int64_t now);
// The body of PUT /v2/metadefs/namespaces/{ns}: the same schema; items in it are ignored, as in
// Glance. Members left out take their defaults (visibility private, not protected, no owner).
Result<Namespace> ParseNamespaceUpdate(const boost::json::value& doc);
// An object ({"name", "description", "required", "properties"}); the body keeps all but the name.
Result<Item> ParseObject(const boost::json::value& doc, int64_t now);
// A property. `name` given: the name comes from there (a key of a "properties" map) and the
// document may omit it; otherwise "name" is required in the document.
Result<Item> ParseProperty(const boost::json::value& doc, std::optional<std::string_view> name,
                           int64_t now);
// A tag ({"name"}).
Result<Item> ParseTag(const boost::json::value& doc, int64_t now);
// A resource-type association ({"name", "prefix", "properties_target"}).
Result<Association> ParseAssociation(const boost::json::value& doc, int64_t now);

}  // namespace ingot::metadefs
