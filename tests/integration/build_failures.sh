#!/usr/bin/env bash
# The image builder when things go wrong: bad recipes refused with their file and line; a failing
# step fails its job with the step's name and exit code while another build runs on undisturbed;
# the fixed recipe resumes after the cached stages; a cancelled job; SIGKILL of ingotd in the middle
# of a step. After each: no build process left, nothing mounted in any namespace, and after the
# restart the interrupted job is `error` with its reason.
#
# Usage: build_failures.sh [INGOTD] — needs root, mmdebstrap, squashfs-tools and the Debian archive.
# Exits 77 (skipped) when any of those is missing.
. "$(dirname "$0")/lib.sh"
it_init "$@"

[ "$(id -u)" = 0 ] || { echo "SKIP  $IT_NAME: needs root"; exit 77; }
for t in mmdebstrap mksquashfs jq; do
  command -v "$t" >/dev/null || { echo "SKIP  $IT_NAME: $t not installed"; exit 77; }
done
curl -fsS -m 20 -o /dev/null http://deb.debian.org/debian/dists/bookworm/InRelease || {
  echo "SKIP  $IT_NAME: the Debian archive is not reachable"; exit 77; }
T0=$(date +%s)
ingot_start --auth noauth || exit 1
IMS="$INGOT_URL/apis/ims/v3"

# Is anything of the builder's still mounted, in any mount namespace of any process?
mounts_left() { grep -l " $INGOT_DATA/" /proc/[0-9]*/mountinfo 2>/dev/null | wc -l; }
sleepers() { pgrep -f '^sleep 600$' | wc -l; }

new_recipe() {  # new_recipe NAME DIR -> recipe id in $RID (the HTTP status of the archive in $CODE)
  req_json POST /apis/ims/v3/recipes "{\"name\":\"$1\",\"recipe_type\":\"mmdebstrap\",\"linux_distribution\":\"debian\",\"template_dictionary\":[{\"key\":\"suite\",\"value\":\"bookworm\"}]}"
  RID=$(jb .id)
  tar -C "$2" -czf "$IT_TMP/$1.tgz" .
  CODE=$(curl -s -o "$BODY" -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$IT_TMP/$1.tgz" "$IMS/recipes/$RID/archive")
}
recipe_dir() {  # recipe_dir NAME STEP_COMMAND
  mkdir -p "$IT_TMP/$1"
  cat > "$IT_TMP/$1/recipe.toml" <<EOF
suite = "{{ suite }}"
variant = "essential"

[[steps]]
name = "work"
run = "$2"
EOF
}
start_job() {
  req_json POST /apis/ims/v3/jobs "{\"job_type\":\"create\",\"artifact_id\":\"$1\",\"outputs\":[\"ims\"]}"
  jb .id
}
wait_job() {
  local i s
  for i in $(seq 1 900); do
    s=$(curl -s "$IMS/jobs/$1" | jq -r .status)
    case "$s" in success|error) echo "$s"; return;; esac
    sleep 1
  done
  echo timeout
}
wait_log() {  # wait_log JOB TEXT
  local i
  for i in $(seq 1 600); do
    curl -s "$IMS/jobs/$1/log" | grep -q "$2" && return 0
    sleep 1
  done
  return 1
}

# ---- bad recipes: refused at upload, with file and line
req_json POST /apis/ims/v3/recipes '{"name":"x","recipe_type":"debootstrap","linux_distribution":"debian"}'
expect_code "unknown recipe_type" 400
mkdir -p "$IT_TMP/bad1"
printf 'suite = "bookworm"\nvariant = "minbase"\npackages = ["ok", "Not A Package"]\n' > "$IT_TMP/bad1/recipe.toml"
new_recipe bad1 "$IT_TMP/bad1"
expect_eq "bad package name refused" "$CODE" 400
expect_true "... naming recipe.toml:3" grep -q "recipe.toml:3: 'Not A Package' is not a Debian package name" "$BODY"
BAD_RID=$RID
mkdir -p "$IT_TMP/bad2/steps"
printf 'suite = "bookworm"\n[[steps]]\nname = "s"\nscript = "steps/s.sh"\n' > "$IT_TMP/bad2/recipe.toml"
printf '#!/bin/sh\n\necho {{ undefined_key }}\n' > "$IT_TMP/bad2/steps/s.sh"
new_recipe bad2 "$IT_TMP/bad2"
expect_eq "undefined template variable refused" "$CODE" 400
expect_true "... naming steps/s.sh:3" grep -q "steps/s.sh:3: template variable 'undefined_key' is not in the template_dictionary" "$BODY"
printf 'not a tarball' > "$IT_TMP/junk.tgz"
CODE=$(curl -s -o "$BODY" -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
  --data-binary @"$IT_TMP/junk.tgz" "$IMS/recipes/$BAD_RID/archive")
expect_eq "an archive that is not a tgz" "$CODE" 400
req_json POST /apis/ims/v3/jobs "{\"job_type\":\"create\",\"artifact_id\":\"$BAD_RID\"}"
expect_code "a job for a recipe without an accepted archive" 400

# ---- a failing step beside a build that goes on
recipe_dir sleeper "echo sleeping; sleep 600"
new_recipe sleeper "$IT_TMP/sleeper"
expect_eq "sleeper recipe stored" "$CODE" 200
SLEEPER=$RID
recipe_dir failing "echo about to fail; exit 7"
new_recipe failing "$IT_TMP/failing"
FAILING=$RID
JS=$(start_job "$SLEEPER")
wait_log "$JS" "sleeping" || fail "the sleeper's step started"
B=$(date +%s)
JF=$(start_job "$FAILING")
expect_eq "the failing job ends in error" "$(wait_job "$JF")" error
req GET "/apis/ims/v3/jobs/$JF"
expect_true "its reason names the step and exit code" sh -c "jq -r .error '$BODY' | grep -q \"step 'work' (recipe.toml:4) failed: exit code 7\""
expect_true "the step's output is in the log" sh -c "curl -s '$IMS/jobs/$JF/log' | grep -q 'about to fail'"
expect_true "the failed build reused the cached bootstrap" sh -c "curl -s '$IMS/jobs/$JF/log' | grep -q 'stage bootstrap .*: cached'"
expect_eq "the other build was not disturbed" "$(curl -s "$IMS/jobs/$JS" | jq -r .status)" building_image
expect_true "a running step's mounts exist (in its own namespace only)" test "$(mounts_left)" -gt 0
expect_eq "... and not in the host's" "$(grep -c " $INGOT_DATA/" /proc/self/mountinfo)" 0

# ---- the fix resumes after the cached stages
recipe_dir failing "echo fixed"
tar -C "$IT_TMP/failing" -czf "$IT_TMP/failing.tgz" .
curl -s -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$IT_TMP/failing.tgz" "$IMS/recipes/$FAILING/archive"
JF2=$(start_job "$FAILING")
expect_eq "the fixed recipe builds" "$(wait_job "$JF2")" success
expect_true "... resuming at the step (bootstrap from the cache)" sh -c "curl -s '$IMS/jobs/$JF2/log' | grep -q 'stage bootstrap .*: cached'"

# ---- cancel
req POST "/apis/ims/v3/jobs/$JS/cancel"
expect_code "cancel" 200
expect_eq "cancelled job status" "$(jb .status)" error
expect_true "its reason says cancelled" sh -c "jq -r .error '$BODY' | grep -q '^cancelled while building_image'"
sleep 1
expect_eq "no build process left after cancel" "$(sleepers)" 0
expect_eq "nothing mounted after cancel" "$(mounts_left)" 0

# ---- SIGKILL of ingotd in the middle of a step
JK=$(start_job "$SLEEPER")
wait_log "$JK" "sleeping" || fail "the step started before the kill"
expect_eq "the step is running" "$(sleepers)" 1
kill -9 "$INGOT_PID"
wait "$INGOT_PID" 2>/dev/null
sleep 2
expect_eq "SIGKILL: no build process left" "$(sleepers)" 0
expect_eq "SIGKILL: nothing mounted in any namespace" "$(mounts_left)" 0
ingot_start --auth noauth || exit 1
IMS="$INGOT_URL/apis/ims/v3"
req GET "/apis/ims/v3/jobs/$JK"
expect_eq "after restart the interrupted job is error" "$(jb .status)" error
expect_true "... with the reason" sh -c "jq -r .error '$BODY' | grep -q '^interrupted: ingotd stopped while the job was building_image'"
expect_true "... and its work directory is gone" test ! -e "$INGOT_DATA/build/jobs/$JK/work"
expect_eq "no half-written cache entries" "$(ls "$INGOT_DATA/build/cache/steps" | grep -c tmp-)" 0

# ---- IMS records: soft delete, undelete, purge
req DELETE "/apis/ims/v3/recipes/$FAILING"
expect_code "soft delete a recipe" 204
req GET "/apis/ims/v3/recipes/$FAILING"
expect_code "a deleted recipe is gone from recipes" 404
req GET "/apis/ims/v3/deleted/recipes/$FAILING"
expect_code "... and in deleted/recipes" 200
req_json PATCH "/apis/ims/v3/deleted/recipes/$FAILING" '{"operation":"undelete"}'
expect_code "undelete" 204
req GET "/apis/ims/v3/recipes/$FAILING"
expect_code "undeleted recipe is back" 200
req DELETE "/apis/ims/v3/recipes/$FAILING"
req DELETE "/apis/ims/v3/deleted/recipes/$FAILING"
expect_code "purge" 204
req GET "/apis/ims/v3/deleted/recipes/$FAILING"
expect_code "purged for good" 404
req GET /apis/ims/healthz/ready
expect_code "healthz/ready without a token" 200
it_log "# $IT_NAME took $(( $(date +%s) - T0 ))s"
it_finish
