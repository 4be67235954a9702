#!/usr/bin/env bash
# Installs every Debian package Ingot needs to build, test, fuzz and benchmark. Idempotent.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev         # HTTP (Beast/Asio) and JSON
  libsqlite3-dev                                 # embedded catalog
  libpq-dev postgresql-15                        # PostgreSQL catalog (libpq) and its tests (tests/lib/postgres.sh)
  e2fsprogs util-linux                           # catalog_faults.sh: loop-mounted ext4, chattr, e2fsck
  libssl-dev                                     # MD5 / SHA-2 (EVP)
  zlib1g-dev libzstd-dev libdeflate-dev          # qcow2 compressed clusters (libdeflate: fast inflate)
  liblzma-dev libbz2-dev                         # xz and bzip2 images decompressed on import
  gzip zstd xz-utils bzip2                       # compressed test images
  libtomlplusplus-dev                            # --config file
  libcurl4-openssl-dev                           # src/fetch: web-download / glance-download imports
  libgtest-dev libgmock-dev libbenchmark-dev     # tests and micro-benchmarks
  clang libclang-rt-14-dev                       # libFuzzer targets
  qemu-utils                                     # reference for disk formats in tests
  genisoimage xorriso                            # ISO 9660 images in the formats tests (iso9660_test: xorriso)
  python3-glanceclient python3-openstackclient   # the real glance/openstack CLIs in integration tests
  curl wrk nginx-light procps jq                 # integration tests and bench/
  tftp-hpa                                       # a real TFTP client for src/tftp's interoperability test
  libnbd-bin                                     # nbdinfo/nbdcopy: real NBD clients for src/nbd (tests/integration/nbd.sh, bench/nbd.sh)
  libiscsi-bin qemu-block-extra                  # iscsi-ls and qemu's iSCSI driver: real initiators for src/iscsi (iscsi_server_test, tests/integration/iscsi.sh)
  qemu-system-x86 ipxe-qemu ipxe                 # tests/integration/boot_qemu.sh: a VM network-boots from Ingot
  debian-installer-12-netboot-amd64              # ... the Debian installer's netboot kernel and initrd
  mmdebstrap squashfs-tools                      # src/build: Debian roots from recipes, IMS's SquashFS rootfs
  gdisk dosfstools mtools e2fsprogs              # ... bootable GPT disks without loop mounts (ESP via mtools)
  systemd-boot-efi ovmf                          # ... their UEFI boot loader; OVMF boots them in build_image.sh
  grub-efi-amd64-bin                             # GRUB EFI for the golden disk deploy_boot_uefi.sh boots
  openssh-server openssh-client busybox          # ... IMS customize/enable_debug jobs: a per-job sshd (src/build/jail.cc); build_customize.sh's ssh client and tiny busybox image
  libext2fs-dev                                  # ... src/build/disk.cc: every ext4 inode's times set to SOURCE_DATE_EPOCH (bit-identical disks)
  kiwi debootstrap debian-archive-keyring        # ... kiwi-ng recipes (kiwi-ng system prepare; build_kiwi.sh)
  libexpat1-dev                                  # ... src/build/kiwi.cc: kiwi descriptions (config.kiwi) checked with expat
  glance-api                                     # the real OpenStack Glance: glance-download peer (tests/integration/glance_peer.sh)
  libguestfs-tools                               # src/deploy/guestfish: the real guestfish engine for plan scripts (libext2fs-dev: its native engine); tests/integration/guestfish_engines.sh, bench/deploy.sh
  linux-image-amd64                              # ... libguestfs's appliance boots the host's kernel (supermin: "failed to find a suitable kernel" without one)
  libzip-dev zip unzip                           # src/deploy/artifacts: Image Streamer artifact bundles (zips); tests/integration/streamer_bundles.sh
  libyaml-dev                                    # src/auth: the operator's policy.yaml; src/build: recipe.yaml (libyaml)
  keystone python3-keystonemiddleware python3-psycopg2   # a real Keystone for keystone.sh, policy.sh, tests/tempest, bench/keystone.sh (PostgreSQL database)
  tempest                                        # tests/tempest/run.sh: tempest's Image API v2 tests
  swift swift-proxy swift-object swift-container swift-account python3-swift   # scripts/testbed.sh: Swift (+ s3api, SLO) for the swift/s3 stores' tests and bench/swift.sh
  python3-swiftclient memcached haproxy          # ... the swift CLI that checks what is stored, tempauth's token cache, the test bed's load balancer
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
