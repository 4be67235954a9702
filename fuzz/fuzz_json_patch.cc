// PATCH /v2/images/{id} bodies: JSON-patch parsing, then applying the operations to an image under
// the schema's rules. Neither may crash; the status never moves.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/json/patch.h"
#include "api/v2/image_attributes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  // The deprecated v2.0 dialect ({"replace": "/name", ...}) must not crash either.
  (void)ingot::api::ParsePatch(body, ingot::api::PatchDialect::kV20);
  auto ops = ingot::api::ParsePatch(body);
  if (!ops.ok()) return 0;
  // Only add and remove on /locations take a second pointer segment (Glance's depth rule).
  for (const auto& op : *ops) {
    if (op.index.empty()) continue;
    if (op.key != "locations" || op.kind == ingot::api::PatchOp::Kind::kReplace) __builtin_trap();
  }
  ingot::catalog::Image image;
  image.id = "11111111-1111-1111-1111-111111111111";
  image.properties["existing"] = "x";
  ingot::api::FormatSets formats{{"raw", "qcow2"}, {"bare"}};
  (void)ingot::api::ApplyPatch(image, *ops, formats);
  if (image.status() != ingot::catalog::ImageStatus::kQueued) __builtin_trap();
  return 0;
}
