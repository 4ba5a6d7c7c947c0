#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TCP connect rate through the eBPF backend, against no filter and against the nftables
# backend, with the full real policy: the 2021-10 catalog with every feature on, the real
# public service-tags file (../shared/data/servicetags), inbound enforced, plus one [[allow]]
# rule that puts the documentation range 203.0.113.0/24 on TCP 443 (the biggest group) so
# that the benchmark talks only to a namespace of its own.
#
#   sudo bash bench/ebpf_connect_bench.sh BUILD_DIR [SECONDS] [RUNS]
#
# Topology: namespace h (client, cgroup amlfw-bench-PID) --veth-- namespace i (203.0.113.0/24
# is local there; ebpf_connect_bench serve on 443). Each row is the median of RUNS runs of
# SECONDS of connect()+close(RST) from one thread. The eBPF rows attach to the bench cgroup;
# the nftables rows load table inet amlfw in namespace h. Everything is removed at exit.
set -u
BUILD=${1:?usage: bench/ebpf_connect_bench.sh BUILD_DIR [SECONDS] [RUNS]}
SECS=${2:-3}
RUNS=${3:-3}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
TAGS=$(cd "$HERE/../../shared/data/servicetags" 2>/dev/null && ls "$PWD"/ServiceTags_Public_*.json | head -n 1)
BENCH="$BUILD/bench/ebpf_connect_bench"
TOOL="$BUILD/tests/ebpf_tool"
AMLFW="$BUILD/amlfw"
for f in "$BENCH" "$TOOL" "$AMLFW"; do [ -x "$f" ] || { echo "missing $f (build it)" >&2; exit 1; }; done
[ -f "$TAGS" ] || { echo "no service-tags file under ../shared/data/servicetags" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }

H=amlfw-bench-h-$$
I=amlfw-bench-i-$$
CG2=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' /proc/self/mountinfo | head -n 1)
CG=$CG2/amlfw-bench-$$
PIN=/sys/fs/bpf/amlfw-bench-$$
TMP=$(mktemp -d /tmp/amlfw-bench.XXXXXX)
SERVER=""
BPFFS_WAS_MOUNTED=0
[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] && BPFFS_WAS_MOUNTED=1

cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
  [ -d "$PIN" ] && "$TOOL" flush --pin-dir "$PIN" >/dev/null 2>&1
  ip netns del "$H" 2>/dev/null
  ip netns del "$I" 2>/dev/null
  [ -d "$CG" ] && rmdir "$CG" 2>/dev/null
  if [ "$BPFFS_WAS_MOUNTED" = 0 ] && [ -z "$(ls -A /sys/fs/bpf 2>/dev/null | grep -vE '^(maps|progs)\.debug$')" ]; then
    umount /sys/fs/bpf 2>/dev/null
  fi
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
# Room for the connection churn of the client.
ip netns exec "$H" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
ip netns exec "$I" sysctl -qw net.ipv4.tcp_max_syn_backlog=8192 net.core.somaxconn=8192
mkdir "$CG"

ip netns exec "$I" "$BENCH" serve 443 1 >"$TMP/server.log" 2>&1 &
SERVER=$!
sleep 0.3

cat >"$TMP/amlfw.toml" <<EOF
catalog = "2021-10"
cloud = "public"
region = "westeurope"
storage_accounts = ["mystore"]
container_registries = ["myregistry1"]
backend = "ebpf"

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
ssh_from = ["198.51.100.0/24"]

[service_tags]
source = "$TAGS"

[dns]
upstreams = ["127.0.0.1"]

[paths]
state_dir = "$TMP/state"
runtime_dir = "$TMP/run"

[[allow]]
cidr = "203.0.113.0/24"
ports = ["443"]
proto = "tcp"
why = "benchmark endpoint"

[ebpf]
cgroup = "$CG"
EOF
sed 's/^backend = "ebpf"$/backend = "nftables"/' "$TMP/amlfw.toml" >"$TMP/amlfw-nft.toml"
mkdir -p "$TMP/state" "$TMP/run"

# client ADDR PORT: one run inside the cgroup and namespace h.
client() {
  bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' c "$CG" ip netns exec "$H" "$BENCH" connect "$1" "$2" "$SECS"
}
# row LABEL ADDR PORT: median rate of RUNS runs.
row() {
  local label=$1 out rates med line
  rates=()
  for ((r = 0; r < RUNS; r++)); do
    out=$(client "$2" "$3")
    rates+=("$(sed -nE 's/.* rate=([0-9]+).*/\1/p' <<<"$out") $out")
  done
  line=$(printf '%s\n' "${rates[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
  med=${line%% *}
  printf '%-44s %9s/s   %s\n' "$label" "$med" "${line#* }"
}

echo "# TCP connect rate, one client thread, ${RUNS}x${SECS}s each (median); kernel $(uname -r), $(nproc) CPUs"
row "no filter: allowed destination" 203.0.113.10 443

out=$(nsenter --net="/run/netns/$H" "$TOOL" apply --config "$TMP/amlfw.toml" --pin-dir "$PIN" 2>&1) || { echo "ebpf apply: $out"; exit 1; }
echo "# ebpf: $out"
# Per-invocation cost of each program (kernel.bpf_stats_enabled: run_time_ns / run_cnt).
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
sysctl -qw kernel.bpf_stats_enabled=1
prog_ids=$(bpftool cgroup show "$CG" | awk '/ amlfw_/ {print $1}')
prog_cost() {
  local id
  for id in $prog_ids; do
    bpftool -j prog show id "$id" |
      python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["name"], d.get("run_time_ns", 0), d.get("run_cnt", 0))'
  done
}
# cost_row LABEL ADDR PORT: row, then the programs' average cost during it.
cost_row() {
  local before after
  before=$(prog_cost)
  row "$@"
  after=$(prog_cost)
  join <(sort <<<"$before") <(sort <<<"$after") |
    awk '$5 > $3 {printf "#     %-15s %8d runs %5.0f ns/run\n", $1, $5 - $3, ($4 - $2) / ($5 - $3)}'
}
cost_row "ebpf: allowed (e_tcp_443, LPM + port table)" 203.0.113.10 443
cost_row "ebpf: denied at connect() (EPERM + event)" 203.0.113.10 8443
cost_row "ebpf: loopback (fast path)" 127.0.0.1 9
sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
"$TOOL" flush --pin-dir "$PIN" >/dev/null

out=$(ip netns exec "$H" "$AMLFW" apply --config "$TMP/amlfw-nft.toml" 2>&1) || { echo "nftables apply: $out"; exit 1; }
echo "# nftables: $(echo "$out" | tail -n 1)"
row "nftables: allowed" 203.0.113.10 443
row "nftables: denied (reject: RST)" 203.0.113.10 8443
ip netns exec "$H" "$AMLFW" flush --config "$TMP/amlfw-nft.toml" >/dev/null 2>&1
