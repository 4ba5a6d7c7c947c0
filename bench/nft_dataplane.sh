#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data plane cost of the nftables backend: TCP connect rate and iperf3 throughput between two
# network namespaces, with the full real policy loaded (2021-10, every feature on, the real
# public service-tags file, inbound enforced) against no filter, in the same run; plus the
# cost of a connection's first packet alone (nft_syn_bench: the same SYN again and again,
# each one `ct state new`, to a veth peer that drops it).
#
# Variants, measured in interleaved rounds (the order rotates each round, so that the drift
# of a busy machine hits all alike; medians are reported):
#   none      no table at all (no conntrack either)
#   conntrack a table with only `ct state established,related accept` in output and input,
#             policy accept: what conntrack alone costs (every stateful filter pays it)
#   amlfw     `amlfw apply` of BUILD_DIR/amlfw
#   baseline  `amlfw apply` of AMLFW_BASELINE (an older amlfw binary), when set: before/after
#             in the same run
#
#   sudo [AMLFW_BASELINE=/path/to/old/amlfw] bash bench/nft_dataplane.sh BUILD_DIR [SECONDS] [ROUNDS]
set -u
BUILD=${1:?usage: bench/nft_dataplane.sh BUILD_DIR [SECONDS] [ROUNDS]}
SECS=${2:-3}
ROUNDS=${3:-5}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
TAGS=$(bench_real_tags "$HERE")
BENCH="$BUILD/bench/ebpf_connect_bench"
SYN="$BUILD/bench/nft_syn_bench"
AMLFW="$BUILD/amlfw"
BASELINE=${AMLFW_BASELINE:-}
for f in "$BENCH" "$SYN" "$AMLFW" ${BASELINE:+"$BASELINE"}; do
  [ -x "$f" ] || { echo "missing $f (build it)" >&2; exit 1; }
done
command -v iperf3 >/dev/null || { echo "iperf3 missing (make deps)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nft missing (the conntrack-only variant is loaded with it)" >&2; exit 1; }
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

bench_topology "$H" "$I" || exit 1
# First-packet probe: 203.0.113.200 (same allow rule as the endpoint) goes out of d0 to a
# MAC nobody has; the peer d1 drops it.
ip -n "$H" link add d0 type veth peer name d1
ip -n "$H" link set d1 up
ip -n "$H" link set d0 up
ip -n "$H" route add 203.0.113.200/32 dev d0 src 192.0.2.1
ip -n "$H" neigh add 203.0.113.200 lladdr 02:00:00:00:00:01 dev d0 nud permanent
bench_servers "$I" "$BENCH" "$TMP"

bench_config nftables "$TAGS" "$TMP" >"$TMP/amlfw.toml"
cat >"$TMP/conntrack.nft" <<'EOT'
table inet amlfw_bench_ct {
  chain output { type filter hook output priority filter; policy accept; ct state established,related accept; }
  chain input { type filter hook input priority filter; policy accept; ct state established,related accept; }
}
EOT

connect_rate() { ip netns exec "$H" "$BENCH" connect 203.0.113.10 443 "$SECS" | sed -nE 's/.* rate=([0-9]+).*/\1/p'; }
throughput() {
  ip netns exec "$H" iperf3 -c 203.0.113.10 -p 8443 -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'
}
syn_ns() { ip netns exec "$H" "$SYN" 203.0.113.200 443 1 | sed -nE 's/.*ns_per_packet=([0-9]+).*/\1/p'; }
clear_all() {
  ip netns exec "$H" "$AMLFW" flush >/dev/null 2>&1
  ip netns exec "$H" nft delete table inet amlfw_bench_ct 2>/dev/null
}
use() {  # use VARIANT: load it (from an empty ruleset)
  clear_all
  case "$1" in
    none) ;;
    conntrack) ip netns exec "$H" nft -f "$TMP/conntrack.nft" || { echo "loading the conntrack table failed" >&2; exit 1; } ;;
    amlfw) ip netns exec "$H" "$AMLFW" apply --config "$TMP/amlfw.toml" >/dev/null 2>&1 || { echo "apply failed" >&2; exit 1; } ;;
    baseline) ip netns exec "$H" "$BASELINE" apply --config "$TMP/amlfw.toml" >/dev/null 2>&1 || { echo "baseline apply failed" >&2; exit 1; } ;;
  esac
}

VARIANTS=(none conntrack amlfw)
[ -n "$BASELINE" ] && VARIANTS+=(baseline)
declare -A C T S
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < ${#VARIANTS[@]}; k++)); do
    v=${VARIANTS[$(((k + r) % ${#VARIANTS[@]}))]}
    use "$v"
    C[$v]+="$(connect_rate) "
    T[$v]+="$(throughput) "
    S[$v]+="$(syn_ns) "
  done
done
clear_all
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# nftables data plane: $ROUNDS interleaved rounds of ${SECS}s (medians); kernel $(uname -r), $(nproc) CPUs"
echo "# load average at start $load0, at end $load1"
printf '%-10s %14s %7s %16s %7s %14s %12s\n' "" "connect/s" "ratio" "iperf3 Mbit/s" "ratio" "first SYN ns" "over none"
c0=$(med ${C[none]}); t0=$(med ${T[none]}); s0=$(med ${S[none]})
for v in "${VARIANTS[@]}"; do
  c=$(med ${C[$v]}); t=$(med ${T[$v]}); s=$(med ${S[$v]})
  printf '%-10s %14s %6s%% %16s %6s%% %14s %12s\n' "$v" "$c" "$(pct "$c0" "$c")" "$t" "$(pct "$t0" "$t")" "$s" "$((s - s0))"
done
for v in "${VARIANTS[@]}"; do echo "# $v: connect ${C[$v]}| iperf3 ${T[$v]}| syn ns ${S[$v]}"; done
