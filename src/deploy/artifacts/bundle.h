// HPE Image Streamer's artifact bundle format: the pure part (no zip, no I/O), fuzzed
// (fuzz/fuzz_deploy_bundle.cc). The zip reading and writing, import and export are in
// bundle_service.h.
//
// A bundle as Image Streamer publishes it (e.g. HewlettPackard/image-streamer-tools'
// HPE-Support-Artifacts-*.zip) is a flat zip:
//   MANIFEST.MF                  "Key:value" lines: Artifact Name, Description, Read Only,
//                                Time Stamp, Artifact Type
//   SHA256SUM.sha256sum          "<entry name>\t<sha256 hex>\n" for every other entry
//                                (MANIFEST.MF included, itself excluded)
//   <id>_planscript.json         one plan script document each
//   <id>_buildplan.json          steps name scripts by "/rest/plan-scripts/<id>" + planScriptName
//   <id>_deploymentplan.json     oeBuildPlanURI and goldenImageURI hold *names*
//   <id>_goldenimage.json        the golden image's document (size 0, no checksum)
//   <golden image name>          its payload: a zip holding the image file as its one entry
//                                (a bare image is taken too)
// Everything a bundle holds is hostile: entry names are single path components (no '/', '\\',
// '..', control characters), every entry is listed in SHA256SUM and nothing else is, documents are
// bounded and must be JSON objects, references must resolve.
#pragma once

#include <boost/json.hpp>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace ingot::deploy::artifacts {

inline constexpr std::string_view kManifestEntry = "MANIFEST.MF";
inline constexpr std::string_view kSumsEntry = "SHA256SUM.sha256sum";
inline constexpr size_t kMaxManifestBytes = 64 << 10;
inline constexpr size_t kMaxSumsBytes = 4 << 20;
inline constexpr size_t kMaxDocumentBytes = 8 << 20;  // a plan script holds up to 4 MiB of text
inline constexpr size_t kMaxBundleEntries = 10000;

struct BundleManifest {
  std::string name;  // "Artifact Name"
  std::string description;
  bool read_only = false;     // "Read Only: true"
  std::string timestamp;      // "Time Stamp"
  std::string type = "USER";  // "Artifact Type"
};
// kInvalidArgument when there is no Artifact Name or a line is not "Key:value". Unknown keys are
// ignored (later Image Streamer versions add some).
Result<BundleManifest> ParseManifest(std::string_view text);
std::string WriteManifest(const BundleManifest& m);

// Entry name -> lowercase hex SHA-256, in the file's order. kInvalidArgument naming the line when a
// line is malformed, a name is not a valid entry name or is listed twice.
struct BundleSums {
  std::vector<std::pair<std::string, std::string>> entries;
  const std::string* Find(std::string_view name) const;
};
Result<BundleSums> ParseSums(std::string_view text);
std::string WriteSums(const BundleSums& sums);

// An entry name is one path component: 1-255 bytes, no '/', '\\', control characters, not "." or
// "..", no leading or trailing space. kInvalidArgument naming it otherwise.
Status CheckEntryName(std::string_view name);

enum class EntryKind {
  kManifest,
  kSums,
  kPlanScript,
  kBuildPlan,
  kDeploymentPlan,
  kGoldenImage,
  kPayload
};
EntryKind ClassifyEntry(std::string_view name);
// "_planscript.json", ...
std::string_view EntrySuffix(EntryKind kind);

// A document entry: a JSON object of at most kMaxDocumentBytes with a non-empty string "name".
Result<boost::json::object> ParseDocument(std::string_view entry, std::string_view text);

// What a bundle holds, parsed and cross-checked, before anything is imported.
struct BundleContents {
  BundleManifest manifest;
  // Documents by kind, in entry order; the key is the entry name.
  std::vector<std::pair<std::string, boost::json::object>> plan_scripts, build_plans,
      deployment_plans, golden_images;
  // Golden image name -> its payload entry (the name itself).
  std::map<std::string, std::string> payloads;
};

// The whole index of a bundle: every entry name with its declared size, the manifest's and sums'
// texts, the documents' texts. Checks that the entries and SHA256SUM list the same names, that
// every payload belongs to a golden image and every golden image has one, and that names are
// unique per kind. References to artifacts outside the bundle are resolved by the importer; the
// checksums themselves are verified by the reader as it streams each entry (bundle_service.cc).
struct BundleIndex {
  std::vector<std::string> names;            // every entry
  std::map<std::string, std::string> texts;  // MANIFEST.MF, SHA256SUM, the documents
};
Result<BundleContents> ParseBundle(const BundleIndex& index);

// The id in "/rest/plan-scripts/<id>" or "<id>".
std::string LastSegment(std::string_view uri);

}  // namespace ingot::deploy::artifacts
