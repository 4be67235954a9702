#!/usr/bin/env bash
# Installs every Debian package Ingot needs to build, test, fuzz and benchmark. Idempotent.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev         # HTTP (Beast/Asio) and JSON
  libsqlite3-dev                                 # embedded catalog
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
  qemu-system-x86 ipxe-qemu ipxe                 # tests/integration/boot_qemu.sh: a VM network-boots from Ingot
  debian-installer-12-netboot-amd64              # ... the Debian installer's netboot kernel and initrd
  glance-api                                     # the real OpenStack Glance: glance-download peer (tests/integration/glance_peer.sh)
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
