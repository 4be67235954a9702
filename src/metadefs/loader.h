// The definitions operators expect at first start: Ingot ships the namespaces Glance ships
// (etc/metadefs/*.json: compute-*, the hw_* libvirt properties, the operating system, storage and
// software namespaces, ...), embedded in the binary at build time, in the POST body shape of
// /v2/metadefs/namespaces. An operator may point [metadefs] definitions_dir at a directory of
// such files instead.
//
// Each file is loaded once per catalog (recorded by name), so a namespace an operator deleted or
// changed is never brought back by a restart, while a file added by an upgrade is loaded on the
// next start. A file whose namespace exists already is recorded and skipped.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "metadefs/repository.h"

namespace ingot::metadefs {

struct DefinitionFile {
  std::string name;  // the file name: the key it is recorded under
  std::string text;  // a namespace document (JSON)
};

// The files embedded from etc/metadefs at build time, ordered by name.
std::vector<DefinitionFile> ShippedDefinitions();
// The *.json files of `dir`, ordered by name.
Result<std::vector<DefinitionFile>> ReadDefinitionsDir(const std::string& dir);

struct LoadReport {
  int loaded = 0;   // namespaces created
  int skipped = 0;  // loaded before, or the namespace existed
};
// Loads the files not loaded before. A file that is not a valid namespace document is refused
// (kInvalidArgument naming it): nothing after it is loaded.
Result<LoadReport> LoadDefinitions(Repository& repo, const std::vector<DefinitionFile>& files,
                                   int64_t now);

}  // namespace ingot::metadefs
