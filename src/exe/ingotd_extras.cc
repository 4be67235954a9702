#include "exe/ingotd_extras.h"

#include "common/log.h"
#include "common/time.h"
#include "metadefs/loader.h"

namespace ingot::exe {

Result<std::unique_ptr<MetadefsWiring>> MetadefsWiring::Start(const config::Config& config) {
  auto w = std::make_unique<MetadefsWiring>();
  INGOT_ASSIGN_OR_RETURN(auto db, catalog::sqlite::Database::Open(config.data_dir + "/catalog.db"));
  INGOT_ASSIGN_OR_RETURN(w->repo, metadefs::SqliteRepository::Open(std::move(db)));
  w->service = std::make_unique<metadefs::MetadefService>(*w->repo);
  const config::MetadefsSection& section = config.image_extras.metadefs;
  if (section.load) {
    std::vector<metadefs::DefinitionFile> files;
    if (section.definitions_dir.empty()) {
      files = metadefs::ShippedDefinitions();
    } else {
      INGOT_ASSIGN_OR_RETURN(files, metadefs::ReadDefinitionsDir(section.definitions_dir));
    }
    INGOT_ASSIGN_OR_RETURN(auto report, metadefs::LoadDefinitions(*w->repo, files, NowMicros()));
    log::Info("metadefs.loaded", {{"namespaces", report.loaded},
                                  {"skipped", report.skipped},
                                  {"source", section.definitions_dir.empty()
                                                 ? std::string("shipped")
                                                 : section.definitions_dir}});
  }
  return w;
}

Result<std::unique_ptr<service::PropertyProtections>> LoadPropertyProtections(
    const config::Config& config, const auth::Policy& policy) {
  const config::ProtectionSection& section = config.image_extras.protections;
  if (section.property_protection_file.empty()) {
    return std::unique_ptr<service::PropertyProtections>();
  }
  auto format = section.property_protection_rule_format == "policies"
                    ? service::PropertyProtections::Format::kPolicies
                    : service::PropertyProtections::Format::kRoles;
  INGOT_ASSIGN_OR_RETURN(auto loaded, service::PropertyProtections::Load(
                                          section.property_protection_file, format, &policy));
  log::Info("property_protections.loaded", {{"file", section.property_protection_file},
                                            {"format", section.property_protection_rule_format}});
  return loaded;
}

std::function<void(api::ApiRouter&)> MetadefsWiring::ApiRoutes(const api::ApiOptions& options) {
  resource = std::make_unique<api::MetadefsResource>(*service, options);
  return [r = resource.get()](api::ApiRouter& router) { r->Register(router); };
}

}  // namespace ingot::exe
