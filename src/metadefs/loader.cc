#include "metadefs/loader.h"

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "metadefs/definitions.h"

namespace ingot::metadefs {

Result<std::vector<DefinitionFile>> ReadDefinitionsDir(const std::string& dir) {
  std::vector<DefinitionFile> files;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return InvalidArgument("[metadefs] definitions_dir " + dir + ": " + ec.message());
  for (const auto& entry : it) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in.good() && !in.eof()) {
      return InvalidArgument("[metadefs] cannot read " + entry.path().string());
    }
    files.push_back({entry.path().filename().string(), text.str()});
  }
  std::sort(files.begin(), files.end(),
            [](const DefinitionFile& a, const DefinitionFile& b) { return a.name < b.name; });
  return files;
}

Result<LoadReport> LoadDefinitions(Repository& repo, const std::vector<DefinitionFile>& files,
                                   int64_t now) {
  LoadReport report;
  for (const DefinitionFile& f : files) {
    INGOT_ASSIGN_OR_RETURN(bool done, repo.WasLoaded(f.name));
    if (done) {
      ++report.skipped;
      continue;
    }
    boost::system::error_code ec;
    boost::json::value doc = boost::json::parse(f.text, ec);
    if (ec) return InvalidArgument("metadata definitions " + f.name + ": malformed JSON");
    auto tree = ParseNamespaceDocument(doc, now);
    if (!tree.ok()) {
      return InvalidArgument("metadata definitions " + f.name + ": " + tree.status().message());
    }
    // Glance's loader gives shipped namespaces the owner "admin" unless the file names one.
    if (!tree->ns.owner) tree->ns.owner = "admin";
    tree->shipped = true;
    Status added = repo.AddNamespace(*tree);
    if (added.ok()) {
      ++report.loaded;
    } else if (added.code() == Code::kAlreadyExists) {
      ++report.skipped;
    } else {
      return added;
    }
    INGOT_RETURN_IF_ERROR(repo.MarkLoaded(f.name, now));
  }
  return report;
}

}  // namespace ingot::metadefs
