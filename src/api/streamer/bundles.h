// HPE Image Streamer's artifact bundle routes (/rest/artifact-bundles) over
// deploy/artifacts/bundle_service.h, in the shapes HPE's clients (python-hpOneView's
// ArtifactBundles, oneview-golang's i3s) use. Rules "streamer:read" / "streamer:write".
//
//   GET  /rest/artifact-bundles, /rest/artifact-bundles/{id}
//   POST /rest/artifact-bundles   multipart/form-data (part "file"; the bundle's name is the file's
//        name without .zip, or ?name=) or application/zip|octet-stream: upload -> 202 + task
//        (?extract=true also extracts); application/json {name, description, readOnly,
//        planScripts|buildPlans|deploymentPlans|goldenImages: [{resourceUri}]}: export -> 202 + task
//   PUT  /rest/artifact-bundles/{id}   Content-Type text/plain: extract (import the artifacts) ->
//        202 + task; JSON {name, description}: update
//   DELETE /rest/artifact-bundles/{id}  the bundle (its artifacts stay)
//   GET  /rest/artifact-bundles/download/{id}   the zip
//   GET|POST /rest/artifact-bundles/backups (POST {deploymentGroupURI}: a backup of every artifact)
//   GET  /rest/artifact-bundles/backups/{id}, /rest/artifact-bundles/backups/archive/{id} (the zip)
//   POST /rest/artifact-bundles/backups/archive   upload a backup (multipart) and restore it
//   PUT  /rest/artifact-bundles/backups/archive   restore the newest backup
// Long operations run in the request and answer 202 with their task (Location: /rest/tasks/{id})
// already ended; a refused bundle answers its 400/409 error directly (the task records it too).
#pragma once

#include "api/route.h"
#include "deploy/artifacts/bundle_service.h"

namespace ingot::api::streamer {

// `bundles` must outlive the router.
void RegisterBundleRoutes(ApiRouter& router, deploy::artifacts::BundleService& bundles,
                          deploy::artifacts::ArtifactService& artifacts, size_t max_json_body);

}  // namespace ingot::api::streamer
