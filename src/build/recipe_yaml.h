// YAML recipe documents (libyaml): an mmdebstrap `recipe.yaml`, and IMS's
// `.ims_recipe_template.yaml` of kiwi-ng recipes. The text is untrusted (recipe archives come from
// API callers): read as an event stream into a RecipeNode tree with bounds on depth and size; no
// aliases (no "billion laughs"), one document, duplicate keys refused. Scalars are text (`mode:
// 0644` is "0644", not YAML 1.1's octal 420); a plain `~`, `null` or empty value is kOther.
#pragma once

#include <string>

#include "build/recipe.h"
#include "common/result.h"

namespace ingot::build {

// One YAML document as a tree; an empty document is an empty table. Errors are kInvalidArgument
// "FILE:LINE: ...".
Result<RecipeNode> ParseYamlDocument(const std::string& text, const std::string& file);

}  // namespace ingot::build
