#!/usr/bin/env bash
# Installs every Debian package amlfw needs to build, test, benchmark and demo.
# Used by the README's commands, the Makefile and .ci/run. Idempotent.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  # libraries
  libnftnl-dev libmnl-dev libbpf-dev libc-ares-dev libcurl4-openssl-dev
  libtomlplusplus-dev libsimdjson-dev nlohmann-json3-dev libsystemd-dev libcap-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # BPF tooling (build time only: skeleton generation)
  bpftool linux-libc-dev
  # tests, demo and benchmarks (never used by amlfw at run time)
  nftables dnsmasq iproute2 iperf3 dnsperf socat hyperfine procps python3 systemd
  ca-certificates
)

# tests/e2e/test_kubernetes_manifests.sh validates deploy/kubernetes with npm packages (installed
# into the build tree by the test): Debian's nodejs and npm, unless a node with npm is there.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (sudo make deps)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
