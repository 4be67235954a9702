// Metadata-definition documents (POST/PUT bodies under /v2/metadefs, definition files): JSON parsed,
// then every document parser. None may crash; what a parser accepts must keep its invariants.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "metadefs/definitions.h"
#include "service/property_protections.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The same bytes as a property protection file (an operator's, but parsed all the same).
  (void)ingot::service::PropertyProtections::Parse(
      text, ingot::service::PropertyProtections::Format::kRoles, nullptr);
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(text, ec);
  if (ec) return 0;
  using namespace ingot::metadefs;
  if (auto tree = ParseNamespaceDocument(doc, 1); tree.ok()) {
    if (tree->ns.name.empty() || tree->ns.name.size() > 4 * 80) __builtin_trap();
    for (const Item& i : tree->properties) {
      if (!boost::json::parse(i.body).is_object()) __builtin_trap();
    }
  }
  (void)ParseNamespaceUpdate(doc);
  (void)ParseObject(doc, 1);
  (void)ParseProperty(doc, std::nullopt, 1);
  (void)ParseProperty(doc, std::string_view("p"), 1);
  (void)ParseTag(doc, 1);
  (void)ParseAssociation(doc, 1);
  return 0;
}
