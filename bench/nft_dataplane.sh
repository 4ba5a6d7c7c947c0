#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data plane cost of the nftables backend: TCP connect rate and iperf3 throughput between two
# network namespaces, with the full real policy loaded (2021-10, every feature on, the real
# public service-tags file, inbound enforced) against no filter, in the same run. Rounds
# alternate no filter / amlfw so that drift of a busy machine hits both alike.
#
#   sudo bash bench/nft_dataplane.sh BUILD_DIR [SECONDS] [ROUNDS]
set -u
BUILD=${1:?usage: bench/nft_dataplane.sh BUILD_DIR [SECONDS] [ROUNDS]}
SECS=${2:-3}
ROUNDS=${3:-5}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
TAGS=$(cd "$HERE/../../shared/data/servicetags" 2>/dev/null && ls "$PWD"/ServiceTags_Public_*.json | head -n 1)
BENCH="$BUILD/bench/ebpf_connect_bench"
AMLFW="$BUILD/amlfw"
for f in "$BENCH" "$AMLFW"; do [ -x "$f" ] || { echo "missing $f (build it)" >&2; exit 1; }; done
command -v iperf3 >/dev/null || { echo "iperf3 missing (make deps)" >&2; exit 1; }
[ -f "$TAGS" ] || { echo "no service-tags file under ../shared/data/servicetags" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }

H=amlfw-dp-h-$$
I=amlfw-dp-i-$$
TMP=$(mktemp -d /tmp/amlfw-dp.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  ip netns del "$H" 2>/dev/null
  ip netns del "$I" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

ip netns add "$H" && ip netns add "$I" || exit 1
ip -n "$H" link set lo up
ip -n "$I" link set lo up
ip -n "$H" link add veth0 type veth peer name veth0 netns "$I"
ip -n "$H" addr add 192.0.2.1/28 dev veth0
ip -n "$I" addr add 192.0.2.2/28 dev veth0
ip -n "$H" link set veth0 up
ip -n "$I" link set veth0 up
ip -n "$H" route add default via 192.0.2.2
ip -n "$I" route add local 203.0.113.0/24 dev lo
ip netns exec "$H" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
ip netns exec "$I" sysctl -qw net.ipv4.tcp_max_syn_backlog=8192 net.core.somaxconn=8192

ip netns exec "$I" "$BENCH" serve 443 1 >"$TMP/server.log" 2>&1 &
PIDS+=($!)
ip netns exec "$I" iperf3 -s -B 203.0.113.10 -p 8443 >"$TMP/iperf.log" 2>&1 &
PIDS+=($!)
sleep 0.5

cat >"$TMP/amlfw.toml" <<EOT
catalog = "2021-10"
region = "westeurope"
storage_accounts = ["mystore"]
container_registries = ["myregistry1"]
[features]
custom_images = true
user_managed_dependencies = true
hbi_workspace = true
r = true
vscode = true
support_diagnostics = true
aks = true
arc_extension = true
arc_training = true
arc_inference = true
[inbound]
enforce = true
[service_tags]
source = "$TAGS"
[dns]
upstreams = ["127.0.0.1"]
[paths]
state_dir = "$TMP/state"
runtime_dir = "$TMP/run"
[[allow]]
cidr = "203.0.113.0/24"
ports = ["443", "8443"]
proto = "tcp"
why = "benchmark endpoint"
EOT

connect_rate() { ip netns exec "$H" "$BENCH" connect 203.0.113.10 443 "$SECS" | sed -nE 's/.* rate=([0-9]+).*/\1/p'; }
throughput() {
  ip netns exec "$H" iperf3 -c 203.0.113.10 -p 8443 -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'
}
on() { ip netns exec "$H" "$AMLFW" apply --config "$TMP/amlfw.toml" >/dev/null 2>&1 || { echo "apply failed" >&2; exit 1; }; }
off() { ip netns exec "$H" "$AMLFW" flush >/dev/null 2>&1; }

c_off=(); c_on=(); t_off=(); t_on=()
for ((r = 0; r < ROUNDS; r++)); do
  off; c_off+=("$(connect_rate)"); t_off+=("$(throughput)")
  on;  c_on+=("$(connect_rate)");  t_on+=("$(throughput)")
done
off
med() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
mc0=$(med "${c_off[@]}"); mc1=$(med "${c_on[@]}"); mt0=$(med "${t_off[@]}"); mt1=$(med "${t_on[@]}")
echo "# nftables data plane, $ROUNDS alternating rounds of ${SECS}s (medians); kernel $(uname -r), $(nproc) CPUs"
printf '%-30s %12s %12s %8s\n' "" "no filter" "amlfw nft" "ratio"
printf '%-30s %10s/s %10s/s %7s%%\n' "TCP connect rate" "$mc0" "$mc1" "$((100 * mc1 / mc0))"
printf '%-30s %7s Mbit/s %5s Mbit/s %7s%%\n' "iperf3 throughput" "$mt0" "$mt1" "$((100 * mt1 / mt0))"
echo "# connect rates: ${c_off[*]} | ${c_on[*]}; throughput: ${t_off[*]} | ${t_on[*]}"
