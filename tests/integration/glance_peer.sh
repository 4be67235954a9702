#!/usr/bin/env bash
# glance-download against the real OpenStack Glance (Debian's glance-api, Zed 25.x): a throw-away
# glance-api on a free 127.0.0.1 port (SQLite, one file store, no keystone), an image uploaded to it with
# curl, then ingotd asked to pull it (POST /v2/images/{id}/import, method glance-download). Checks that
# Ingot's copy is active with Glance's bytes, checksum, multihash, formats and user properties, and that
# the failures (no such remote image, a remote image not active, formats that differ) are told in the
# task and leave the image queued with nothing stored.
# Usage: glance_peer.sh [PATH-TO-INGOTD]
# Exit: 0 all passed, 1 a check failed, 77 glance-api is not installed or cannot be imported.
# Env: KEEP=1 keeps the scratch dir (Glance's config, logs and state are under it).
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"

# Debian's glance-api runs under the system python (/usr/bin/python3), whatever python3 is first in PATH.
GLANCE_API="$(command -v glance-api || true)"
GLANCE_MANAGE="$(command -v glance-manage || true)"
GLANCE_PY=/usr/bin/python3
if [ -z "$GLANCE_API" ] || [ -z "$GLANCE_MANAGE" ] || [ ! -f /etc/glance/glance-api-paste.ini ]; then
  echo "SKIP  glance-api not installed (scripts/install-deps.sh installs it)"; exit 77
fi
if ! "$GLANCE_PY" -c 'import glance.cmd.api, glance_store' > /dev/null 2>&1; then
  echo "SKIP  glance-api is installed but its python modules do not import"; exit 77
fi
command -v qemu-img > /dev/null || { echo "FAIL  qemu-img not installed (qemu-utils: scripts/install-deps.sh)"; exit 1; }
it_init "$@"
is_peer && { echo "SKIP  this test starts its own Glance and ingotd"; exit 77; }
W="$IT_TMP"
G="$W/glance"   # Glance's config and state
mkdir -p "$G"/{etc,images,staging,tasks,locks,log}
GLANCE_PID=""

# Glance is started in a session of its own (setsid), so its process group is exactly the parent and
# the workers it forks; on exit that group is stopped (TERM, then KILL after 10 s), then lib.sh's cleanup.
glance_stop() {
  [ -n "$GLANCE_PID" ] || return 0
  local i
  kill -TERM -- "-$GLANCE_PID" 2>/dev/null
  for i in $(seq 1 100); do kill -0 -- "-$GLANCE_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$GLANCE_PID" 2>/dev/null
  wait "$GLANCE_PID" 2>/dev/null
  GLANCE_PID=""
}
trap 'rc=$?; glance_stop; (exit $rc); it_cleanup' EXIT

free_port() {
  "$GLANCE_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ------------------------------------------------------------------------------------------- Glance
GPORT="$(free_port)"
GURL="http://127.0.0.1:$GPORT"
# The packaged paste pipeline plus one of our own: Glance's ContextMiddleware fed by a stand-in for
# keystonemiddleware that sets the identity headers (the stock noauth pipeline gives a context with no
# project, and then Glance's own tasks and owners are empty). Same recipe as shared/peers/glance/setup.sh.
cp /etc/glance/glance-api-paste.ini "$G/etc/glance-api-paste.ini"
cat >> "$G/etc/glance-api-paste.ini" <<'PASTE'

[pipeline:glance-api-ingotpeer]
pipeline = healthcheck versionnegotiation peeridentity context rootapp

[filter:peeridentity]
paste.filter_factory = ingot_peer_identity:filter_factory
PASTE
sed -i "s#^disable_by_file_path = .*#disable_by_file_path = $G/healthcheck_disable#" "$G/etc/glance-api-paste.ini"
cat > "$G/etc/ingot_peer_identity.py" <<'PY'
"""Stand-in for keystonemiddleware.auth_token: every request is the same admin user of one project."""


def filter_factory(global_conf, **local_conf):
    def _filter(app):
        def middleware(environ, start_response):
            environ['HTTP_X_IDENTITY_STATUS'] = 'Confirmed'
            environ['HTTP_X_PROJECT_ID'] = 'f3c0a2d9e1b84c6a9d5e7f1a2b3c4d5e'
            environ['HTTP_X_USER_ID'] = '0aeb489c3e44496d0ff11ed97fe7c91a'
            environ['HTTP_X_ROLES'] = 'admin,member,reader'
            return app(environ, start_response)
        return middleware
    return _filter
PY
cat > "$G/etc/glance-api.conf" <<CONF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $GPORT
workers = 1
debug = false
log_file = $G/log/glance-api.log
enabled_backends = fs:file
enforce_secure_rbac = false
[database]
connection = sqlite:///$G/glance.sqlite
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $G/images/
[os_glance_staging_store]
filesystem_store_datadir = $G/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $G/tasks/
[oslo_concurrency]
lock_path = $G/locks
[oslo_policy]
enforce_new_defaults = false
enforce_scope = false
policy_file = $G/etc/policy.yaml
policy_dirs = $G/etc/policy.d
[paste_deploy]
flavor = ingotpeer
config_file = $G/etc/glance-api-paste.ini
CONF
mkdir -p "$G/etc/policy.d"
echo '{}' > "$G/etc/policy.yaml"

echo "### the real Glance ($(dpkg-query -W -f='${Version}' glance-api 2>/dev/null)) on $GURL"
if ! "$GLANCE_MANAGE" --config-file "$G/etc/glance-api.conf" db_sync > "$G/log/db_sync.log" 2>&1; then
  fail "glance-manage db_sync" "$(tail -3 "$G/log/db_sync.log" | tr '\n' ' ')"
  it_finish
fi
PYTHONPATH="$G/etc" setsid "$GLANCE_API" --config-file "$G/etc/glance-api.conf" \
  > "$G/log/glance-api.stdout" 2>&1 < /dev/null &
GLANCE_PID=$!
started=0
for _ in $(seq 1 120); do   # 60 s at most
  if [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$GURL/v2/images")" = 200 ]; then started=1; break; fi
  kill -0 "$GLANCE_PID" 2>/dev/null || break
  sleep 0.5
done
if [ "$started" != 1 ]; then
  fail "glance-api answered GET /v2/images within 60 s" \
    "$(tail -5 "$G/log/glance-api.stdout" "$G/log/glance-api.log" 2>/dev/null | tr '\n' ' ')"
  it_finish
fi
pass "glance-api up (pid $GLANCE_PID)"

# gq METHOD PATH [curl args]: one request to Glance; the body in $W/g.json, the status in GCODE.
gq() {
  local m="$1" p="$2"; shift 2
  GCODE="$(curl -s -m 120 -X "$m" -o "$W/g.json" -w '%{http_code}' "$@" "$GURL$p")"
}
g_create() {  # g_create JSON: sets GID
  gq POST /v2/images -H 'Content-Type: application/json' --data-binary "$1"
  GID="$(jf "$W/g.json" .id)"
  [ "$GCODE" = 201 ]
}

# A real qcow2 holding random data.
random_file "$W/disk.raw" $((8 * 1048576 + 4096))
qemu-img convert -q -f raw -O qcow2 "$W/disk.raw" "$W/disk.qcow2"
MD5=$(md5sum < "$W/disk.qcow2" | cut -d' ' -f1)
SHA512=$(sha512sum < "$W/disk.qcow2" | cut -d' ' -f1)
SIZE=$(stat -c %s "$W/disk.qcow2")
PROPS='"os_distro": "debian", "hw_disk_bus": "scsi", "ingot_test_note": "pulled from a real Glance: ✓"'

g_create '{"name": "glance-src", "disk_format": "qcow2", "container_format": "bare", '"$PROPS"'}'
expect_eq "Glance: image created" "$GCODE" 201
GID_OK="$GID"
gq PUT "/v2/images/$GID_OK/file" -H 'Content-Type: application/octet-stream' -T "$W/disk.qcow2"
expect_eq "Glance: upload answered 204" "$GCODE" 204
gq GET "/v2/images/$GID_OK"
cp "$W/g.json" "$W/glance-src.json"
expect_eq "Glance: the source is active with md5sum's checksum" \
  "$(jf "$W/glance-src.json" '[.status,.checksum]|join(",")')" "active,$MD5"
# a remote image with no data (queued) and a raw one (pulled into a record that says qcow2/ovf)
g_create '{"name": "glance-queued", "disk_format": "qcow2", "container_format": "bare"}'
GID_QUEUED="$GID"
g_create '{"name": "glance-raw", "disk_format": "raw", "container_format": "bare"}'
GID_RAW="$GID"
gq PUT "/v2/images/$GID_RAW/file" -H 'Content-Type: application/octet-stream' -T "$W/disk.raw"

# ------------------------------------------------------------------------------------------- ingotd
cat > "$W/ingotd.toml" <<EOF
[import]
task_lease_ms = 5000
[import.glance_regions]
RegionGlance = "$GURL"
[import_filtering_opts]
allowed_hosts = ["127.0.0.1"]
allowed_ports = [80, 443, $GPORT]
EOF
INGOT_DATA="$W/data"
ingot_start --auth noauth --config "$W/ingotd.toml" || exit 1
STORE_DIR="$W/data/images"   # the default file store under the data dir

# gdl ID REMOTE-ID: asks ingotd for a glance-download of REMOTE-ID from RegionGlance.
gdl() {
  req_json POST "/v2/images/$1/import" '{"method": {"name": "glance-download", "glance_region": "RegionGlance",
    "glance_image_id": "'"$2"'", "glance_service_interface": "public"}}'
}
task_of() { curl -s -m 30 "$INGOT_URL/v2/images/$1/tasks" | jq -r ".tasks[0]$2"; }
stored() { find "$STORE_DIR" -name "*$1*" 2>/dev/null | wc -l; }

echo "### glance-download of an active Glance image"
create_image '{"name": "from-glance", "disk_format": "qcow2", "container_format": "bare"}'
ID="$ID"
gdl "$ID" "$GID_OK"
expect_code "glance-download accepted" 202
if wait_for "$ID" '.status=="active"' 60; then pass "the pulled image became active"; else
  fail "the pulled image became active" "$(api "$ID" .status); task: $(task_of "$ID" '|[.status,.message]|join(": ")')"
fi
curl -s "$INGOT_URL/v2/images/$ID" > "$W/ingot.json"
for f in size virtual_size checksum os_hash_algo os_hash_value disk_format container_format os_distro hw_disk_bus; do
  v="$(jf "$W/glance-src.json" ".$f")"; [ "${#v}" -gt 24 ] && v="${v:0:24}…"
  expect_eq "Ingot's $f == Glance's ($v)" \
    "$(jf "$W/ingot.json" ".$f")" "$(jf "$W/glance-src.json" ".$f")"
done
# Only the remote's own properties come along: nothing of Glance's bookkeeping (stores, owner, …).
CORE='["id","name","status","visibility","protected","os_hidden","owner","disk_format","container_format",
  "size","virtual_size","min_disk","min_ram","checksum","os_hash_algo","os_hash_value","created_at",
  "updated_at","tags","self","file","schema","locations","stores","direct_url"]'
# Glance's [glance_download_properties] prefixes (hw_, trait:, os_distro, os_secure_boot, os_type).
expect_eq "the properties copied are the remote's hw_*/os_distro ones" \
  "$(jq -r --argjson core "$CORE" '[keys[]|select(startswith("os_glance_")|not)|select(. as $k|$core|index($k)|not)]|join(",")' "$W/ingot.json")" \
  "hw_disk_bus,os_distro"
expect_eq "checksums are md5sum's and sha512sum's of the file" \
  "$(jf "$W/ingot.json" '[.checksum,.os_hash_value]|join(",")')" "$MD5,$SHA512"
expect_eq "Ingot's own attributes are its own (name, id)" \
  "$(jf "$W/ingot.json" '[.name,(.id!="'"$GID_OK"'")|tostring]|join(",")')" "from-glance,true"
OUT="$W/pulled.bin" req GET "/v2/images/$ID/file"
expect_true "the bytes Ingot serves are the uploaded file's" cmp "$W/pulled.bin" "$W/disk.qcow2"
expect_eq "the task ended in success" "$(task_of "$ID" .status)" success
expect_eq "one stored object, no temporary file" \
  "$(stored "$ID"),$(find "$STORE_DIR" -name '.tmp-*' | wc -l)" "1,0"

# fail_case NAME REMOTE-ID DISK-FORMAT MESSAGE-REGEX: the import is accepted, its task fails with a
# message matching the regex, and the image is back to queued with nothing stored.
fail_case() {
  local name="$1" remote="$2" fmt="$3" want="$4" id msg
  create_image '{"name": "gdl-fail", "disk_format": "'"$fmt"'", "container_format": "bare"}'
  id="$ID"
  gdl "$id" "$remote"
  expect_code "$name: import accepted" 202
  if wait_for "$id" '.status=="queued"' 60; then pass "$name: the image is back to queued"; else
    fail "$name: the image is back to queued" "$(api "$id" .status)"; fi
  expect_eq "$name: the task failed" "$(task_of "$id" .status)" failure
  msg="$(task_of "$id" .message)"
  if grep -qiE "$want" <<< "$msg"; then pass "$name: the task says why ($msg)"; else
    fail "$name: the task says why" "message '$msg' does not match /$want/"; fi
  expect_eq "$name: nothing stored, no size or checksum" \
    "$(stored "$id"),$(api "$id" '[.size,.checksum]|map(tostring)|join(",")')" "0,null,null"
  expect_eq "$name: os_glance_failed_import names the store" "$(api "$id" .os_glance_failed_import)" \
    "$(curl -s "$INGOT_URL/v2/info/stores" | jq -r '.stores[]|select(.default==true or .default=="true").id')"
}

echo "### glance-download of an empty Glance image (0 bytes, active)"
: > "$W/empty.raw"
g_create '{"name": "glance-empty", "disk_format": "raw", "container_format": "bare", "os_distro": "empty"}'
GID_EMPTY="$GID"
gq PUT "/v2/images/$GID_EMPTY/file" -H 'Content-Type: application/octet-stream' --data-binary @"$W/empty.raw"
gq GET "/v2/images/$GID_EMPTY"
cp "$W/g.json" "$W/glance-empty.json"
expect_eq "Glance: the empty image is active, size 0" "$(jf "$W/glance-empty.json" '[.status,.size]|map(tostring)|join(",")')" "active,0"
create_image '{"name": "empty-from-glance", "disk_format": "raw", "container_format": "bare"}'
E="$ID"
gdl "$E" "$GID_EMPTY"
expect_code "glance-download of the empty image accepted" 202
if wait_for "$E" '.status!="importing"' 60 && [ "$(api "$E" .status)" = active ]; then
  pass "the empty image pulled became active"
else
  fail "the empty image pulled became active" \
    "$(api "$E" .status); task: $(task_of "$E" '|[.status,.message]|join(": ")')"
fi
expect_eq "empty: size, checksum, os_hash_value == Glance's" \
  "$(api "$E" '[.size,.checksum,.os_hash_value]|map(tostring)|join(",")')" \
  "$(jf "$W/glance-empty.json" '[.size,.checksum,.os_hash_value]|map(tostring)|join(",")')"

echo "### glance-download failures"
MISSING="$("$GLANCE_PY" -c 'import uuid; print(uuid.uuid4())')"
gq GET "/v2/images/$MISSING"
expect_eq "Glance: the missing image answers 404" "$GCODE" 404
fail_case "no such remote image" "$MISSING" qcow2 "$MISSING|not found|404"
fail_case "remote image not active" "$GID_QUEUED" qcow2 "not active"
# The remote's formats win over the record's, as in Glance (tempest's glance_download_import_success).
create_image '{"name": "formats-from-remote", "disk_format": "qcow2", "container_format": "ovf"}'
F="$ID"
gdl "$F" "$GID_RAW"
expect_code "glance-download into a qcow2/ovf record accepted" 202
wait_for "$F" '.status!="importing"' 60 || true
expect_eq "the image takes the remote's formats and becomes active" \
  "$(api "$F" '[.status,.disk_format,.container_format]|join(",")')" \
  "active,raw,bare"
# After the failures the image can still be pulled (a failed import leaves it importable).
create_image '{"name": "retry", "disk_format": "raw", "container_format": "bare"}'
RID="$ID"
gdl "$RID" "$MISSING"
wait_for "$RID" '.status=="queued"' 60
gdl "$RID" "$GID_RAW"
expect_code "a second glance-download after a failed one is accepted" 202
if wait_for "$RID" '.status=="active"' 60; then pass "the retried pull became active"; else
  fail "the retried pull became active" "$(api "$RID" .status)"; fi
expect_eq "the retried pull: checksum == Glance's" "$(api "$RID" .checksum)" \
  "$(curl -s "$GURL/v2/images/$GID_RAW" | jq -r .checksum)"

echo "### SIGKILL mid-pull: the node that takes the task over pulls it again from Glance"
BIG_MIB=256
random_file "$W/big.raw" $((BIG_MIB * 1048576))
g_create '{"name": "glance-big", "disk_format": "raw", "container_format": "bare", "os_distro": "big"}'
GID_BIG="$GID"
gq PUT "/v2/images/$GID_BIG/file" -H 'Content-Type: application/octet-stream' -T "$W/big.raw"
expect_eq "Glance: ${BIG_MIB} MiB uploaded" "$GCODE" 204
create_image '{"name": "big-from-glance", "disk_format": "raw", "container_format": "bare"}'
K="$ID"
gdl "$K" "$GID_BIG"
expect_code "glance-download of ${BIG_MIB} MiB accepted" 202
caught=""
for _ in $(seq 1 12000); do   # 120 s
  caught="$(find "$STORE_DIR" -maxdepth 1 -name '.tmp-*' -size +$((BIG_MIB / 4))M -printf '%s %p\n' | head -1)"
  [ -n "$caught" ] && break
  sleep 0.01
done
ingot_kill9
if [ -n "$caught" ]; then pass "ingotd killed with $((${caught%% *} / 1048576)) of $BIG_MIB MiB pulled"; else
  fail "the pull was caught mid-way" "image $(api "$K" .status)"; fi
ingot_start --auth noauth --config "$W/ingotd.toml" || exit 1
# (named: once the lease runs out the next node starts a temporary object of its own)
expect_eq "after restart: still importing, the killed pull's partial object removed" \
  "$(api "$K" .status),$([ -n "$caught" ] && [ ! -e "${caught#* }" ] && echo gone)" "importing,gone"
if wait_for "$K" '.status=="active"' 120; then pass "the pull was taken over and finished"; else
  fail "the pull was taken over and finished" \
    "$(api "$K" .status); task: $(task_of "$K" '|[.status,.message]|join(": ")')"; fi
expect_eq "taken-over pull: checksum, os_hash_value, os_distro == Glance's" \
  "$(api "$K" '[.checksum,.os_hash_value,.os_distro]|join(",")')" \
  "$(curl -s "$GURL/v2/images/$GID_BIG" | jq -r '[.checksum,.os_hash_value,.os_distro]|join(",")')"
expect_true "taken-over pull: the stored object == the uploaded file" cmp "$STORE_DIR/$K" "$W/big.raw"
expect_eq "taken-over pull: one task, success; every file in the store is an active image's" \
  "$(curl -s "$INGOT_URL/v2/images/$K/tasks" | jq -r '[.tasks[].status]|join(",")'),$(ls -A "$STORE_DIR" | sort | paste -sd' ')" \
  "success,$(curl -s "$INGOT_URL/v2/images?status=active" | jq -r '[.images[].id]|sort|join(" ")')"

it_finish
