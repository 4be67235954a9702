// The image builder's YAML recipes (build/recipe_yaml.h): recipe.yaml of an mmdebstrap recipe and
// IMS's .ims_recipe_template.yaml, read with libyaml into Ingot's recipe tree, then the recipe
// checks. Recipe archives come from API callers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "build/recipe_yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  const std::map<std::string, std::string> dict = {{"suite", "bookworm"}, {"x", "{{ x }}"}};
  (void)ingot::build::ParseYamlDocument(text, "fuzz.yaml");
  // No files exist under this directory: every file a recipe names is missing, never read.
  (void)ingot::build::ParseMmdebstrapRecipeYaml(text, "/nonexistent-ingot-fuzz", dict);
  return 0;
}
