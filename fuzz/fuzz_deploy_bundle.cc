// Image Streamer artifact bundles' text (deploy/artifacts/bundle.h): MANIFEST.MF,
// SHA256SUM.sha256sum, entry names, artifact documents, and the cross-checks of a whole bundle's
// index. The first byte picks the parser; for the index, the rest is "name\0text\0name\0text...".
// Round trips: a manifest or sums that parse are written and parse again to the same values.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "deploy/artifacts/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ingot::deploy::artifacts;
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto m = ParseManifest(text);
      if (m.ok()) {
        auto again = ParseManifest(WriteManifest(*m));
        // Written values are one line each; a name that survives must survive unchanged.
        if (!again.ok() || again->read_only != m->read_only) abort();
      }
      break;
    }
    case 1: {
      auto s = ParseSums(text);
      if (s.ok()) {
        auto again = ParseSums(WriteSums(*s));
        if (!again.ok() || again->entries != s->entries) abort();
      }
      break;
    }
    case 2:
      if (CheckEntryName(text).ok()) {
        if (text.find('/') != std::string_view::npos || text == "..") abort();
      }
      (void)ClassifyEntry(text);
      break;
    case 3:
      (void)ParseDocument("x_planscript.json", text);
      break;
    case 4: {
      BundleIndex index;
      size_t pos = 0;
      while (pos < text.size() && index.names.size() < 64) {
        size_t a = text.find('\0', pos);
        std::string name(
            text.substr(pos, a == std::string_view::npos ? std::string_view::npos : a - pos));
        pos = a == std::string_view::npos ? text.size() : a + 1;
        size_t b = text.find('\0', pos);
        std::string body(
            text.substr(pos, b == std::string_view::npos ? std::string_view::npos : b - pos));
        pos = b == std::string_view::npos ? text.size() : b + 1;
        index.names.push_back(name);
        if (!body.empty()) index.texts[name] = body;
      }
      auto c = ParseBundle(index);
      if (c.ok()) {
        for (const auto& [name, payload] : c->payloads) {
          if (!CheckEntryName(name).ok()) abort();
        }
      }
      break;
    }
  }
  return 0;
}
