// The image builder's recipe text: templating ({{ name }}) and recipe.toml's parsing and checks
// (toml++ plus Ingot's key, name and path rules). Recipe archives come from API callers.
#include <cstddef>
#include <cstdint>
#include <string>

#include "build/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  const std::map<std::string, std::string> dict = {{"suite", "bookworm"}, {"x", "{{ x }}"}};
  (void)ingot::build::RenderTemplate(text, "fuzz.sh", dict);
  // No files exist under this directory: every file a recipe names is missing, never read.
  (void)ingot::build::ParseMmdebstrapRecipe(text, "/nonexistent-ingot-fuzz", dict);
  (void)ingot::build::IsSafeRelativePath(text);
  return 0;
}
