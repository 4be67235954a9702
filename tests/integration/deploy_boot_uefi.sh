#!/usr/bin/env bash
# A server boots its personalised OS volume over NBD under UEFI: a golden disk in the layout
# servers boot (GPT; an EFI system partition with GRUB as \EFI\BOOT\BOOTX64.EFI, made by
# grub-mkstandalone and put in with mtools; an ext4 root made by mke2fs -d) is uploaded through
# Image Streamer's API, two OS volumes are deployed from it with different host names (a plan
# script writes /etc/hostname on the root file system), and QEMU (TCG, OVMF from Debian's ovmf,
# user-mode networking off) boots each one from Ingot's NBD export. GRUB, the volume's boot loader,
# reads the root file system and prints its /etc/hostname on the serial console: each machine
# sees its own value, and the golden image is unchanged. About 30 s.
# Skips (77) without sgdisk, mkfs.vfat, mtools, mke2fs, grub-mkstandalone + grub-efi-amd64-bin,
# ovmf, qemu-system-x86 or jq.
. "$(dirname "$0")/lib.sh"
it_init "$@"

for tool in sgdisk mkfs.vfat mmd mcopy mke2fs grub-mkstandalone qemu-system-x86_64 jq; do
  command -v "$tool" >/dev/null || { echo "SKIP  $IT_NAME: $tool not installed"; exit 77; }
done
[ -d /usr/lib/grub/x86_64-efi ] || { echo "SKIP  $IT_NAME: grub-efi-amd64-bin not installed"; exit 77; }
[ -f /usr/share/OVMF/OVMF_CODE.fd ] || { echo "SKIP  $IT_NAME: ovmf not installed"; exit 77; }

# --- the golden disk: GPT, ESP (sectors 2048-34815) with GRUB, ext4 root after it ------------------
cat > "$IT_TMP/grub.cfg" <<'EOF'
search --no-floppy --file /etc/ingot-boot-marker --set=root
echo "ingot-grub: reached, root=$root"
echo -n "ingot-grub: hostname="
cat /etc/hostname
echo "ingot-grub: done"
sleep 600
EOF
grub-mkstandalone -O x86_64-efi -o "$IT_TMP/BOOTX64.EFI" \
  --modules="part_gpt ext2 search search_fs_file cat echo sleep" --locales= --fonts= --themes= \
  "boot/grub/grub.cfg=$IT_TMP/grub.cfg" || { fail "grub-mkstandalone"; it_finish; }
GOLDEN="$IT_TMP/golden.img"
truncate -s 64M "$GOLDEN"
sgdisk -n 1:2048:34815 -t 1:ef00 -n 2:34816:0 -t 2:8300 "$GOLDEN" > /dev/null
mkfs.vfat -C "$IT_TMP/esp.img" 16384 > /dev/null
mmd -i "$IT_TMP/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$IT_TMP/esp.img" "$IT_TMP/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
dd if="$IT_TMP/esp.img" of="$GOLDEN" bs=512 seek=2048 conv=notrunc status=none
mkdir -p "$IT_TMP/root/etc"
echo golden > "$IT_TMP/root/etc/hostname"
touch "$IT_TMP/root/etc/ingot-boot-marker"
mke2fs -q -t ext4 -F -E offset=$((34816 * 512)) -d "$IT_TMP/root" "$GOLDEN" \
  $(( (131072 - 34816 - 34) / 2 ))k && pass "golden disk: GPT, ESP with GRUB (mtools), ext4 root" \
  || { fail "golden disk"; it_finish; }
GOLDEN_SUM="$(sha256sum < "$GOLDEN")"

# --- the daemon and the artifacts -----------------------------------------------------------------
admin_member_tokens "$IT_TMP/tokens.toml"
printf '[deploy]\nnbd_listen = "127.0.0.1:0"\n' > "$IT_TMP/ingot.toml"
ingot_start --config "$IT_TMP/ingot.toml" --auth tokens --tokens-file "$IT_TMP/tokens.toml" || it_finish
NBD_PORT="$(grep -m1 'nbd.serving' "$INGOT_LOG" | grep -oE '127\.0\.0\.1:[0-9]+' | cut -d: -f2)"
rest() {  # METHOD PATH [JSON]
  local args=(-H "Auth: t-admin" -H "X-API-Version: 2000")
  [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  req "$1" "$2" "${args[@]}"
}
req POST "/rest/golden-images?name=uefi-golden" -H "Auth: t-admin" -H "X-API-Version: 2000" \
  -F "file=@$GOLDEN;type=application/octet-stream"
expect_code "upload the golden image" 201
GI_URI="$(jb .uri)"
rest POST /rest/plan-scripts "$(jq -n '{name:"hostname", planType:"deploy",
  content:"mount /dev/sda2 /\nwrite /etc/hostname \"@HostName@\\n\"\numount /\n"}')"
expect_code "the plan script" 201
PS_URI="$(jb .uri)"
rest POST /rest/build-plans "$(jq -n --arg ps "$PS_URI" '{name:"uefi", oeBuildPlanType:"deploy",
  buildStep:[{serialNumber:"1", planScriptUri:$ps}],
  customAttributes:[{name:"HostName", type:"hostname", value:"unset"}]}')"
expect_code "the build plan" 201
BP_URI="$(jb .uri)"
rest POST /rest/deployment-plans "$(jq -n --arg bp "$BP_URI" --arg gi "$GI_URI" \
  '{name:"uefi", oeBuildPlanURI:$bp, goldenImageURI:$gi}')"
expect_code "the deployment plan" 201
DP_URI="$(jb .uri)"
for pair in uefi-a:web-a uefi-b:web-b; do
  rest POST /rest/os-volumes "$(jq -n --arg n "${pair%%:*}" --arg h "${pair#*:}" --arg dp "$DP_URI" \
    '{name:$n, deploymentPlanUri:$dp, allow:["127.0.0.1"], customAttributes:[{name:"HostName", value:$h}]}')"
  expect_code "deploy ${pair%%:*}" 202
  TASK="$(header Location)"
  for _ in $(seq 1 300); do
    rest GET "$TASK"
    case "$(jb .taskState)" in Running|New) sleep 0.1 ;; *) break ;; esac
  done
  expect_eq "${pair%%:*}: deployed and attached" "$(jb .taskState)" Completed
done

# --- boot each volume from the NBD export: OVMF -> GRUB on the ESP -> the root's /etc/hostname -----
boot() {  # VOLUME -> the host name GRUB printed, in BOOTED
  local log="$IT_TMP/serial-$1.log" qpid i
  cp /usr/share/OVMF/OVMF_VARS.fd "$IT_TMP/vars-$1.fd"
  qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nodefaults -nographic -no-reboot \
    -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd \
    -drive if=pflash,format=raw,file="$IT_TMP/vars-$1.fd" \
    -drive if=virtio,format=raw,file="nbd://127.0.0.1:$NBD_PORT/$1" \
    -nic none -serial file:"$log" -monitor none > "$IT_TMP/qemu-$1.out" 2>&1 &
  qpid=$!
  IT_PIDS+=("$qpid")
  for i in $(seq 1 240); do
    grep -aq "ingot-grub: done" "$log" 2>/dev/null && break
    kill -0 "$qpid" 2>/dev/null || break
    sleep 0.5
  done
  kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null
  it_log "# $1: GRUB's output after $((i / 2)) s"
  BOOTED="$(sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$log" | tr -d '\r' | sed -n 's/^.*ingot-grub: hostname=//p' | head -1)"
  [ -n "$BOOTED" ] || { tail -c 2000 "$log" | sed 's/^/   serial: /' >&2; cat "$IT_TMP/qemu-$1.out" >&2; }
}
boot uefi-a
expect_eq "uefi-a boots under OVMF over NBD; its GRUB reads the personalised root" "$BOOTED" web-a
grep -aq "ingot-grub: reached, root=hd0,gpt2" "$IT_TMP/serial-uefi-a.log" \
  && pass "... GRUB found the root on the GPT's second partition" || fail "GRUB's root"
boot uefi-b
expect_eq "uefi-b, deployed from the same golden image, boots with its own host name" "$BOOTED" web-b
expect_eq "the golden image is unchanged" "$(sha256sum < "$GOLDEN")" "$GOLDEN_SUM"
it_finish
