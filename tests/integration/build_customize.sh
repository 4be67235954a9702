#!/usr/bin/env bash
# IMS customize jobs and their SSH jail: a tiny busybox image (a SquashFS made here, uploaded as an
# image record's rootfs with `ingot build image`), a public key (`ingot build key`), a jailed
# customize job reached with the real `ssh` client: a file changed in the jail, the wrong key
# refused, escape attempts (cd /.., /proc, host paths) showing only the jail, the host key checked
# against the job record, /tmp/complete ending it; the new image has the change (unsquashfs -cat)
# and the original does not, its kernel kept from the original (a /boot symlink to a host file is
# not followed). Then a non-jailed job (image at /mnt/image) cancelled while waiting on the user,
# and a SIGKILL of ingotd with a session open. After each: no sshd or session left, nothing
# mounted, and after the restart the job is `error` with its reason. Last, when mmdebstrap and the
# Debian archive are there (a skip otherwise): a create job with enable_debug whose step fails stays
# open over SSH with the failed step's changes at /mnt/image, then ends in error with its reason.
#
# Usage: build_customize.sh [INGOTD] — needs root, openssh-server, openssh-client, squashfs-tools,
# busybox and jq. Exits 77 (skipped) when any of those is missing.
. "$(dirname "$0")/lib.sh"
it_init "$@"

[ "$(id -u)" = 0 ] || { echo "SKIP  $IT_NAME: needs root (namespaces, chroot)"; exit 77; }
for t in ssh ssh-keygen ssh-keyscan mksquashfs unsquashfs busybox jq; do
  command -v "$t" >/dev/null || { echo "SKIP  $IT_NAME: $t not installed"; exit 77; }
done
[ -x /usr/sbin/sshd ] || { echo "SKIP  $IT_NAME: openssh-server (/usr/sbin/sshd) not installed"; exit 77; }
INGOT_CLI="${INGOT_CLI:-$(dirname "$INGOTD")/ingot}"
T0=$(date +%s)

# ---- a tiny root: busybox with its libraries, a marker, a /boot link pointing at a host file
R="$IT_TMP/root"
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/proc" "$R/dev" "$R/root" "$R/boot"
chmod 1777 "$R/tmp"
cp /usr/bin/busybox "$R/bin/busybox"
for l in $(ldd /usr/bin/busybox | grep -oE '/[^ ]+'); do
  mkdir -p "$R$(dirname "$l")"
  cp -L "$l" "$R$l"
done
for a in $(busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
echo original > "$R/etc/marker"
ln -s /etc/hostname "$R/boot/vmlinuz"   # must never be followed out of the root
mksquashfs "$R" "$IT_TMP/rootfs" -noappend -no-progress -comp zstd > /dev/null
echo "ORIGINAL KERNEL" > "$IT_TMP/kernel"
echo "ORIGINAL INITRD" > "$IT_TMP/initrd"
ssh-keygen -q -t ed25519 -N '' -f "$IT_TMP/key" -C good
ssh-keygen -q -t ed25519 -N '' -f "$IT_TMP/wrong" -C wrong

ingot_start --auth noauth || exit 1
IMS="$INGOT_URL/apis/ims/v3"
export INGOT_URL

sshd_count() { pgrep -f "sshd -D -e -f $INGOT_DATA/" | wc -l; }
mounts_left() { grep -l -e " $INGOT_DATA/" -e ' /run/ingot-jail' /proc/[0-9]*/mountinfo 2>/dev/null | wc -l; }
SSH_OPTS=(-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
          -o IdentitiesOnly=yes -o ConnectTimeout=10 -o LogLevel=ERROR)
jssh() { ssh "${SSH_OPTS[@]}" -i "$IT_TMP/key" -p "$PORT" "root@$HOST" "$@"; }
wait_status() {  # wait_status JOB STATUS... -> the status reached (or the last one seen)
  local job="$1" i s; shift
  for i in $(seq 1 240); do
    s=$(curl -s "$IMS/jobs/$job" | jq -r .status)
    for w in "$@"; do [ "$s" = "$w" ] && { echo "$s"; return; }; done
    case "$s" in success|error) echo "$s"; return;; esac
    sleep 0.5
  done
  echo "$s"
}
new_job() {  # new_job JAIL -> job id in $JOB, connection in $HOST/$PORT once waiting_on_user
  req_json POST /apis/ims/v3/jobs "{\"job_type\":\"customize\",\"artifact_id\":\"$IMG\",\"public_key_id\":\"$KEY\",\"image_root_archive_name\":\"tiny-custom\",\"ssh_containers\":[{\"name\":\"customize\",\"jail\":$1}]}"
  JOB=$(jb .id)
  expect_code "create a customize job (jail=$1)" 201
  expect_eq "... waits on the user" "$(wait_status "$JOB" waiting_on_user)" waiting_on_user
  req GET "/apis/ims/v3/jobs/$JOB"
  cp "$BODY" "$IT_TMP/job.json"
  HOST=$(jb '.ssh_containers[0].connection_info.customer_access.host')
  PORT=$(jb '.ssh_containers[0].connection_info.customer_access.port')
}

# ---- the image record from an uploaded SquashFS, the key (through the CLI)
"$INGOT_CLI" build image tiny --rootfs "$IT_TMP/rootfs" --kernel "$IT_TMP/kernel" \
  --initrd "$IT_TMP/initrd" --json > "$IT_TMP/image.json" 2> "$IT_TMP/image.err"
IMG=$(jq -r .id "$IT_TMP/image.json")
expect_true "ingot build image uploads the rootfs, kernel and initrd" \
  test "$(jq -r '.checksums.rootfs.md5' "$IT_TMP/image.json")" = "$(md5sum < "$IT_TMP/rootfs" | cut -d' ' -f1)"
curl -s -o "$IT_TMP/manifest0.json" "$IMS/images/$IMG/artifacts/manifest.json"
expect_eq "its link etag is the manifest's md5" "$(jq -r .link.etag "$IT_TMP/image.json")" \
  "$(md5sum < "$IT_TMP/manifest0.json" | cut -d' ' -f1)"
expect_eq "the manifest lists rootfs, kernel and initrd" "$(jq -c '[.artifacts[].type]' "$IT_TMP/manifest0.json")" \
  '["application/vnd.cray.image.rootfs.squashfs","application/vnd.cray.image.kernel","application/vnd.cray.image.initrd"]'
printf 'not a squashfs' > "$IT_TMP/junk"
CODE=$(curl -s -o "$BODY" -w '%{http_code}' -X PUT --data-binary @"$IT_TMP/junk" "$IMS/images/$IMG/artifacts/rootfs")
expect_eq "a rootfs that is not a SquashFS is refused" "$CODE" 400
CODE=$(curl -s -o "$BODY" -w '%{http_code}' -X PUT --data-binary @"$IT_TMP/junk" "$IMS/images/$IMG/artifacts/other")
expect_eq "an unknown artifact name is refused" "$CODE" 400
"$INGOT_CLI" build key tester --public-key "$IT_TMP/key.pub" --json > "$IT_TMP/key.json" 2>&1
KEY=$(jq -r .id "$IT_TMP/key.json")
expect_true "ingot build key stores the public key" test -n "$KEY" -a "$KEY" != null

req_json POST /apis/ims/v3/jobs "{\"job_type\":\"customize\",\"artifact_id\":\"$IMG\"}"
expect_code "a customize job without a public key is refused" 400
req_json POST /apis/ims/v3/jobs "{\"job_type\":\"customize\",\"artifact_id\":\"$KEY\",\"public_key_id\":\"$KEY\"}"
expect_code "a customize job of something that is not an image is refused" 400

# ---- a jailed customize job
new_job true
expect_eq "ssh container status" "$(jf "$IT_TMP/job.json" '.ssh_containers[0].status')" active
expect_eq "connection_info host" "$HOST" 127.0.0.1
expect_true "one sshd runs for the job" test "$(sshd_count)" -ge 1
"$INGOT_CLI" build ssh "$JOB" > "$IT_TMP/ssh.txt" 2>&1
expect_true "ingot build ssh prints the ssh command" grep -qx "ssh -p $PORT root@127.0.0.1" "$IT_TMP/ssh.txt"
SCAN=$(ssh-keyscan -t ed25519 -p "$PORT" 127.0.0.1 2>/dev/null | ssh-keygen -lf - | awk '{print $2}')
expect_eq "the server's host key is the one in the job record" "$SCAN" \
  "$(jf "$IT_TMP/job.json" '.ssh_containers[0].host_key_fingerprint')"
ssh "${SSH_OPTS[@]}" -i "$IT_TMP/wrong" -p "$PORT" "root@$HOST" true > "$IT_TMP/wrong.out" 2>&1
expect_eq "the wrong key is refused" "$?" 255
expect_true "... with Permission denied" grep -q "Permission denied" "$IT_TMP/wrong.out"
expect_eq "a command runs in the jail" "$(jssh 'cat /etc/marker')" original
jssh 'echo customized > /etc/marker && mkdir -p /opt/added && echo yes > /opt/added/file'
expect_eq "a file changed in the jail" "$(jssh 'cat /etc/marker')" customized
expect_eq "cd /.. stays at the jail's root" "$(jssh 'cd /.. && cd .. && pwd && cat etc/marker' | tr '\n' ' ')" "/ customized "
expect_eq "the host's data directory is not in the jail" "$(jssh "test -e '$INGOT_DATA' && echo host || echo jail")" jail
expect_eq "/ is the image root" "$(jssh 'ls /' | tr '\n' ' ')" "bin boot dev etc lib lib64 opt proc root tmp "
jssh 'cat /proc/[0-9]*/comm' > "$IT_TMP/comms" 2>/dev/null
# The jail's processes: its namespace's init (a fork of ingotd), sshd, the session. Not this test's bash.
expect_eq "/proc shows no host process (this test's bash)" "$(grep -c '^bash$' "$IT_TMP/comms")" 0
expect_true "... but the job's own (sshd)" grep -q '^sshd$' "$IT_TMP/comms"
expect_true "/proc shows only the job's processes" test "$(jssh 'ls -d /proc/[0-9]* | wc -l')" -lt 20
expect_eq "/dev is minimal" "$(jssh 'ls /dev' | tr '\n' ' ')" "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero "
expect_eq "the jail's mounts are not the host's" "$(grep -c ' /run/ingot-jail' /proc/self/mountinfo)" 0
expect_eq "still waiting on the user" "$(curl -s "$IMS/jobs/$JOB" | jq -r .status)" waiting_on_user
jssh 'touch /tmp/complete'
expect_eq "touching /tmp/complete finishes the job" "$(wait_status "$JOB" success)" success
req GET "/apis/ims/v3/jobs/$JOB"
NEW=$(jb .resultant_image_id)
expect_eq "ssh container status after" "$(jb '.ssh_containers[0].status')" complete
sleep 1
expect_eq "no sshd left after the job" "$(sshd_count)" 0
expect_eq "nothing mounted after the job" "$(mounts_left)" 0

# ---- the new image and the original
fetch() { curl -sf -o "$2" "$IMS/images/$1/artifacts/$3"; }
fetch "$NEW" "$IT_TMP/new-rootfs" rootfs
fetch "$NEW" "$IT_TMP/new-manifest.json" manifest.json
fetch "$NEW" "$IT_TMP/new-kernel" kernel
fetch "$IMG" "$IT_TMP/orig-rootfs" rootfs
expect_eq "the new image has the change" "$(unsquashfs -cat "$IT_TMP/new-rootfs" etc/marker 2>/dev/null)" customized
expect_eq "... and the new file" "$(unsquashfs -cat "$IT_TMP/new-rootfs" opt/added/file 2>/dev/null)" yes
expect_eq "... but not the completion file" "$(unsquashfs -l "$IT_TMP/new-rootfs" 2>/dev/null | grep -c 'tmp/complete')" 0
expect_eq "the original image is unchanged" "$(unsquashfs -cat "$IT_TMP/orig-rootfs" etc/marker 2>/dev/null)" original
expect_true "... byte for byte" cmp -s "$IT_TMP/rootfs" "$IT_TMP/orig-rootfs"
expect_true "the kernel is the original's (the /boot link to a host file not followed)" cmp -s "$IT_TMP/kernel" "$IT_TMP/new-kernel"
md5_ok=1
for row in $(jq -r '.artifacts[] | "\(.link.path)|\(.md5)"' "$IT_TMP/new-manifest.json"); do
  got=$(curl -sf "$INGOT_URL${row%|*}" | md5sum | cut -d' ' -f1)
  [ "$got" = "${row#*|}" ] || md5_ok=0
done
expect_eq "every manifest artifact's md5 matches its bytes" "$md5_ok" 1
req GET "/apis/ims/v3/images/$NEW"
expect_eq "the new image names its origin" "$(jb .provenance.customized_from)" "$IMG"
expect_eq "... and its name" "$(jb .name)" tiny-custom

# ---- a non-jailed job: the image at /mnt/image; cancelled while waiting on the user
new_job false
expect_eq "not jailed: the image is at /mnt/image" "$(jssh 'cat /mnt/image/etc/marker')" original
expect_eq "... in the build environment" "$(jssh 'test -x /usr/sbin/sshd && echo host')" host
req POST "/apis/ims/v3/jobs/$JOB/cancel"
expect_eq "cancel during waiting_on_user" "$(jb .status)" error
expect_true "... reason" sh -c "jq -r .error '$BODY' | grep -q '^cancelled while waiting_on_user'"
sleep 1
expect_eq "cancel: no sshd left" "$(sshd_count)" 0
expect_eq "cancel: nothing mounted" "$(mounts_left)" 0
ssh "${SSH_OPTS[@]}" -i "$IT_TMP/key" -p "$PORT" "root@$HOST" true > /dev/null 2>&1
expect_eq "cancel: the port no longer answers" "$?" 255

# ---- SIGKILL of ingotd with a session open
new_job true
jssh 'exec sleep 6007' > /dev/null 2>&1 &
SSH_PID=$!
IT_PIDS+=("$SSH_PID")
for i in $(seq 1 50); do pgrep -x -f 'sleep 6007' > /dev/null && break; sleep 0.2; done
expect_true "a session runs in the jail" pgrep -x -f 'sleep 6007'
kill -9 "$INGOT_PID"
wait "$INGOT_PID" 2>/dev/null
sleep 2
expect_eq "SIGKILL: no sshd left" "$(sshd_count)" 0
expect_eq "SIGKILL: no session left" "$(pgrep -x -f 'sleep 6007' | wc -l)" 0
expect_eq "SIGKILL: nothing mounted in any namespace" "$(mounts_left)" 0
wait "$SSH_PID" 2>/dev/null
ingot_start --auth noauth || exit 1
IMS="$INGOT_URL/apis/ims/v3"
req GET "/apis/ims/v3/jobs/$JOB"
expect_eq "after restart the job is error" "$(jb .status)" error
expect_true "... with the reason" sh -c "jq -r .error '$BODY' | grep -q '^interrupted: ingotd stopped while the job was waiting_on_user'"
expect_true "... and its work directory is gone" test ! -e "$INGOT_DATA/build/jobs/$JOB/work"

# ---- enable_debug: a create job whose step fails stays open over SSH (needs mmdebstrap + archive)
if command -v mmdebstrap > /dev/null &&
   curl -fsS -m 20 -o /dev/null http://deb.debian.org/debian/dists/bookworm/InRelease; then
  mkdir -p "$IT_TMP/failing"
  printf 'suite = "bookworm"\nvariant = "essential"\n[[steps]]\nname = "work"\nrun = "echo broken > /etc/debug-marker; exit 5"\n' \
    > "$IT_TMP/failing/recipe.toml"
  tar -C "$IT_TMP/failing" -czf "$IT_TMP/failing.tgz" .
  req_json POST /apis/ims/v3/recipes '{"name":"failing","recipe_type":"mmdebstrap","linux_distribution":"debian"}'
  RID=$(jb .id)
  curl -s -o /dev/null -X PUT --data-binary @"$IT_TMP/failing.tgz" "$IMS/recipes/$RID/archive"
  req_json POST /apis/ims/v3/jobs "{\"job_type\":\"create\",\"artifact_id\":\"$RID\",\"enable_debug\":true,\"outputs\":[\"ims\"]}"
  expect_code "enable_debug without a public key is refused" 400
  req_json POST /apis/ims/v3/jobs "{\"job_type\":\"create\",\"artifact_id\":\"$RID\",\"enable_debug\":true,\"public_key_id\":\"$KEY\",\"outputs\":[\"ims\"]}"
  expect_code "a create job with enable_debug" 201
  JOB=$(jb .id)
  REQ_TIMEOUT=900
  expect_eq "the failed build waits on the user" "$(wait_status "$JOB" waiting_on_user)" waiting_on_user
  req GET "/apis/ims/v3/jobs/$JOB"
  HOST=$(jb '.ssh_containers[0].connection_info.customer_access.host')
  PORT=$(jb '.ssh_containers[0].connection_info.customer_access.port')
  expect_eq "its debug container is not jailed" "$(jb '.ssh_containers[0].name') $(jb '.ssh_containers[0].jail')" "debug false"
  expect_eq "the failed step's changes are at /mnt/image" "$(jssh 'cat /mnt/image/etc/debug-marker')" broken
  expect_true "... over the bootstrapped root" jssh 'test -x /mnt/image/usr/bin/dpkg'
  jssh 'touch /mnt/image/complete'
  expect_eq "touching the completion file ends the job in error" "$(wait_status "$JOB" error)" error
  req GET "/apis/ims/v3/jobs/$JOB"
  expect_true "... with the build's reason" sh -c "jq -r .error '$BODY' | grep -Eq \"step 'work' \\(recipe.toml:[0-9]+\\) failed: exit code 5\""
  sleep 1
  expect_eq "debug: no sshd left" "$(sshd_count)" 0
  expect_eq "debug: nothing mounted" "$(mounts_left)" 0
  expect_eq "debug: the kept root is removed" "$(ls "$INGOT_DATA/build/cache/steps" | grep -c tmp-)" 0
else
  skip "enable_debug on a failing build" "mmdebstrap or the Debian archive is not available"
fi
it_log "# $IT_NAME took $(( $(date +%s) - T0 ))s"
it_finish
