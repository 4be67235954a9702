// HPE Image Streamer's artifact bundle routes (/rest/artifact-bundles) over
// deploy/artifacts/bundle_service.h, in the shapes HPE's clients (python-hpOneView's
// ArtifactBundles, oneview-golang's i3s) use. Rules "streamer:read" / "streamer:write".
//
//   GET  /rest/artifact-bundles, /rest/artifact-bundles/{id}
//   POST /rest/artifact-bundles   multipart/form-data (part "file"; the bundle's name is the file's
//        name without .zip, or ?name=) or application/zip|octet-stream: upload -> 202 + task
//        (?extract=true also extracts); application/json {name, description, readOnly,
//        planScripts|buildPlans|deploymentPlans|goldenImages: [{resourceUri}]}: export -> 202 +
//        task
//   PUT  /rest/artifact-bundles/{id}   Content-Type text/plain: extract (import the artifacts) ->
//        202 + task; JSON {name, description}: update
//   DELETE /rest/artifact-bundles/{id}  the bundle (its artifacts stay)
//   GET  /rest/artifact-bundles/download/{id}   the zip
//   GET|POST /rest/artifact-bundles/backups (POST {deploymentGroupURI}: a backup of every artifact)
//   GET  /rest/artifact-bundles/backups/{id}, /rest/artifact-bundles/backups/archive/{id} (the zip)
//   POST /rest/artifact-bundles/backups/archive   upload a backup (multipart) and restore it
//   PUT  /rest/artifact-bundles/backups/archive   restore the newest backup
// Uploads are checked whole in the request (a refused bundle is a 400 naming the entry) and answer
// 202 with an ended task. Extract, export, backup and restore answer 202 with their task Running
// (Location: /rest/tasks/{id}) and run on the bundle service's worker; how they end, and why, is
// in the task (taskState Completed or Error, taskErrors).
#pragma once

#include "api/route.h"
#include "deploy/artifacts/bundle_service.h"

namespace ingot::api::streamer {

// `bundles` must outlive the router.
void RegisterBundleRoutes(ApiRouter& router, deploy::artifacts::BundleService& bundles,
                          deploy::artifacts::ArtifactService& artifacts, size_t max_json_body);

}  // namespace ingot::api::streamer
