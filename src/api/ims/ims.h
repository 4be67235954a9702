// Cray IMS's API on Ingot's northbound listener, over the image builder (build/builder.h):
//   /apis/ims/v3/{recipes,images,jobs,public-keys}[/{id}]    GET, POST, PATCH, DELETE, DELETE-all
//   /apis/ims/v3/deleted/{recipes,images,public-keys}[/{id}] soft-deleted records: GET, PATCH
//                                                             {"operation": "undelete"}, DELETE (purge)
//   /apis/ims/{recipes,images,jobs,public-keys}[/{id}]       IMS's v2 paths (DELETE is for good)
//   /apis/ims/healthz/ready, /apis/ims/healthz/live, /apis/ims/version
// and Ingot's own: PUT/GET /apis/ims/v3/recipes/{id}/archive (the recipe tgz),
// GET /apis/ims/v3/images/{id}/artifacts/{name}, PUT of rootfs|kernel|initrd|kernel-parameters there
// for an image record made through the API (what a customize job starts from), GET /apis/ims/v3/jobs/{id}/log[?follow=true]
// (the live build log, streamed until the job ends), POST /apis/ims/v3/jobs/{id}/cancel.
// Every route names a policy rule: ims_read, ims_write (admin by default, as IMS is an admin API)
// and ims_health (anyone).
#pragma once

#include "api/route.h"
#include "build/builder.h"

namespace ingot::api {

void RegisterImsRoutes(ApiRouter& router, build::BuildService& builder, size_t max_json_body);

}  // namespace ingot::api
