#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The eBPF backend's data plane against no filter and against the nftables backend, side by
# side in one run: TCP connect rate (one thread, connect + RST close) and iperf3 throughput
# (one stream), with the full real policy loaded: the 2021-10 catalog with every feature on,
# the real public service-tags file (../shared/data/servicetags), inbound enforced, plus one
# [[allow]] rule that puts the documentation range 203.0.113.0/24 on TCP 443 and 8443 so
# that the benchmark talks only to a namespace of its own. Both backends are installed by
# `amlfw apply` itself (backend = "ebpf" / "nftables").
#
#   sudo bash bench/ebpf_connect_bench.sh BUILD_DIR [SECONDS] [ROUNDS]
#
# Topology: namespace h (the client, inside cgroup amlfw-bench-PID) --veth-- namespace i
# (203.0.113.0/24 is local there: ebpf_connect_bench serve on 443, iperf3 -s on 8443). The
# eBPF programs attach to the bench cgroup (pins in /sys/fs/bpf/amlfw-bench-PID); the
# nftables table goes to namespace h. ROUNDS rounds of SECONDS per measurement, the three
# setups in a rotating order each round so that the drift of a busy machine hits all alike;
# medians, and the median of the per-round ratios to no filter (a busy machine drifts between
# rounds far more than within one). A fourth setup, "nop", attaches programs that return 1 at once to the hooks that
# fire here (connect4, cgroup_skb egress and ingress; built with clang at run time, skipped
# without it): the kernel's own cost of running any cgroup program, the floor under amlfw's.
# Then the denied path of each backend, and the BPF cost per program (kernel.bpf_stats_enabled,
# measured apart: the statistics cost time themselves). The goal (issue 5): at least 97% of
# no filter, and a cost per connection no higher than nftables'. Everything is removed at exit.
set -u
BUILD=${1:?usage: bench/ebpf_connect_bench.sh BUILD_DIR [SECONDS] [ROUNDS]}
SECS=${2:-3}
ROUNDS=${3:-5}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
TAGS=$(bench_real_tags "$HERE")
BENCH="$BUILD/bench/ebpf_connect_bench"
AMLFW="$BUILD/amlfw"
for f in "$BENCH" "$AMLFW"; do [ -x "$f" ] || { echo "missing $f (build it)" >&2; exit 1; }; done
for t in iperf3 bpftool nsenter python3; do command -v "$t" >/dev/null || { echo "$t missing (make deps)" >&2; exit 1; }; done
[ -f "$TAGS" ] || { echo "no service-tags file under ../shared/data/servicetags" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }

H=amlfw-bench-h-$$
I=amlfw-bench-i-$$
CG2=$(bench_cgroup2)
[ -n "$CG2" ] || { echo "no cgroup2 mount" >&2; exit 1; }
CG=$CG2/amlfw-bench-$$
export AMLFW_EBPF_PIN_DIR=/sys/fs/bpf/amlfw-bench-$$   # never the real /sys/fs/bpf/amlfw
TMP=$(mktemp -d /tmp/amlfw-bench.XXXXXX)
PIDS=()
BPFFS_WAS_MOUNTED=0
[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] && BPFFS_WAS_MOUNTED=1
STATS_WAS=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)

NOP=/sys/fs/bpf/amlfw-bench-nop-$$
# amlfw in namespace h, in the host's mount namespace (bpffs and the cgroup2 mount visible).
amlfw_h() { nsenter --net="/run/netns/$H" "$AMLFW" "$@"; }
nop_hooks="connect4:nop_connect4 egress:nop_egress ingress:nop_ingress"
nop_off() {
  local h
  [ -d "$NOP" ] || return 0
  for h in $nop_hooks; do bpftool cgroup detach "$CG" "${h%%:*}" pinned "$NOP/${h#*:}" 2>/dev/null; done
  rm -rf "$NOP"
}
cleanup() {
  local p
  sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  nop_off
  [ -e "/run/netns/$H" ] && amlfw_h flush >/dev/null 2>&1
  ip netns del "$H" 2>/dev/null
  ip netns del "$I" 2>/dev/null
  [ -d "$CG" ] && rmdir "$CG" 2>/dev/null
  if [ "$BPFFS_WAS_MOUNTED" = 0 ] && [ -z "$(ls -A /sys/fs/bpf 2>/dev/null | grep -vE '^(maps|progs)\.debug$')" ]; then
    umount /sys/fs/bpf 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

bench_topology "$H" "$I" || exit 1
mkdir "$CG" || exit 1
bench_servers "$I" "$BENCH" "$TMP"

config() {  # BACKEND
  bench_config "$1" "$TAGS" "$TMP"
  printf '\n[ebpf]\ncgroup = "%s"\n' "$CG"
}
config ebpf >"$TMP/ebpf.toml"
config nftables >"$TMP/nftables.toml"
mkdir -p "$TMP/state" "$TMP/run"

# The nop programs (see the header), when clang can build them.
MODES=(none ebpf nftables)
cat >"$TMP/nop.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "Dual MIT/GPL";
SEC("cgroup/connect4") int nop_connect4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup_skb/egress") int nop_egress(struct __sk_buff *skb) { return 1; }
SEC("cgroup_skb/ingress") int nop_ingress(struct __sk_buff *skb) { return 1; }
EOF
if command -v clang >/dev/null && clang -O2 -target bpf -I"/usr/include/$(gcc -print-multiarch 2>/dev/null)" \
  -c "$TMP/nop.bpf.c" -o "$TMP/nop.bpf.o" 2>"$TMP/nop.err"; then
  MODES=(none nop ebpf nftables)
else
  echo "# (no nop column: clang could not build the nop programs: $(head -n 1 "$TMP/nop.err"))"
fi
nop_on() {
  local h
  bpftool prog loadall "$TMP/nop.bpf.o" "$NOP" || { echo "nop programs: load failed" >&2; exit 1; }
  for h in $nop_hooks; do
    bpftool cgroup attach "$CG" "${h%%:*}" pinned "$NOP/${h#*:}" multi || { echo "nop programs: attach failed" >&2; exit 1; }
  done
}

# setup none|nop|ebpf|nftables: exactly that filter in force for the client.
setup() {
  nop_off
  amlfw_h flush >/dev/null 2>&1 || { echo "flush failed" >&2; exit 1; }
  [ "$1" = none ] && return 0
  [ "$1" = nop ] && { nop_on; return 0; }
  local out
  out=$(amlfw_h apply --config "$TMP/$1.toml" 2>&1) || { echo "$1 apply: $out" >&2; exit 1; }
  echo "$out" >"$TMP/apply.$1"
}
# in_cg CMD...: in namespace h, inside the bench cgroup.
in_cg() { bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' c "$CG" ip netns exec "$H" "$@"; }
connect_run() { in_cg "$BENCH" connect 203.0.113.10 "$1" "$SECS"; }   # PORT -> the bench's line
rate_of() { sed -nE 's/.* rate=([0-9]+).*/\1/p' <<<"$1"; }
p50_of() { sed -nE 's/.* p50_us=([0-9.]+).*/\1/p' <<<"$1"; }
throughput() {
  in_cg iperf3 -c 203.0.113.10 -p 8443 -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'
}

declare -A C T P
NM=${#MODES[@]}
for ((r = 0; r < ROUNDS; r++)); do
  for ((k = 0; k < NM; k++)); do
    m=${MODES[$(((r + k) % NM))]}
    setup "$m"
    line=$(connect_run 443)
    C[$m]+="$(rate_of "$line") "
    P[$m]+="$(p50_of "$line") "
    T[$m]+="$(throughput) "
  done
done
# shellcheck disable=SC2086
{
  c0=$(med ${C[none]}); c1=$(med ${C[ebpf]}); c2=$(med ${C[nftables]})
  t0=$(med ${T[none]}); t1=$(med ${T[ebpf]}); t2=$(med ${T[nftables]})
  p0=$(med ${P[none]}); p1=$(med ${P[ebpf]}); p2=$(med ${P[nftables]})
  cn=""; tn=""; pn=""
  if [ -n "${C[nop]:-}" ]; then cn=$(med ${C[nop]}); tn=$(med ${T[nop]}); pn=$(med ${P[nop]}); fi
}

# The denied path: connect() to a port the policy does not allow.
setup ebpf
deny_ebpf=$(connect_run 8080)
setup nftables
deny_nft=$(connect_run 8080)

# BPF time per program and per allowed connection (statistics on only here); the nop
# programs give the floor (an empty program's run time with the statistics on).
prog_cost() {
  local id
  for id in $prog_ids; do
    bpftool -j prog show id "$id" |
      python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["name"], d.get("run_time_ns", 0), d.get("run_cnt", 0))'
  done
}
stats_of() {  # MODE PROGRAM_NAME_PREFIX -> "name runs ns/run runs/conn ns/conn" lines
  local before after line n
  setup "$1"
  sysctl -qw kernel.bpf_stats_enabled=1
  prog_ids=$(bpftool cgroup show "$CG" | awk -v p="$2" '$NF ~ "^" p {print $1}')
  before=$(prog_cost)
  line=$(connect_run 443)
  after=$(prog_cost)
  sysctl -qw kernel.bpf_stats_enabled="$STATS_WAS"
  n=$(sed -nE 's/.*connect ok=([0-9]+).*/\1/p' <<<"$line")
  join <(sort <<<"$before") <(sort <<<"$after") |
    awk -v n="$n" '$5 > $3 {printf "%s %d %.0f %.2f %.0f\n", $1, $5 - $3, ($4 - $2) / ($5 - $3), ($5 - $3) / n, ($4 - $2) / n}'
}
costs=$(stats_of ebpf amlfw_)
conns=$(awk 'NR == 1 {printf "%d", $2 / $4}' <<<"$costs")
nop_costs=""
[ -n "$cn" ] && nop_costs=$(stats_of nop nop_)
setup none

rules=$(sed -nE 's/.*: ([0-9]+) rules.*/\1/p' "$TMP/apply.nftables")
echo "# eBPF vs nftables data plane, full real policy ($rules rules), $ROUNDS rotating rounds of ${SECS}s (medians); kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-32s %12s %12s %12s %12s %7s %7s %7s\n' "" "no filter" "nop progs" "ebpf" "nftables" "nop" "ebpf" "nft"
printf '%-32s %10s/s %10s/s %10s/s %10s/s %6s%% %6s%% %6s%%\n' "TCP connect rate (allowed)" "$c0" "${cn:--}" "$c1" "$c2" \
  "$([ -n "$cn" ] && pct "$c0" "$cn" || echo -)" "$(pct "$c0" "$c1")" "$(pct "$c0" "$c2")"
printf '%-32s %5s Mbit/s %5s Mbit/s %5s Mbit/s %5s Mbit/s %6s%% %6s%% %6s%%\n' "iperf3 throughput (one stream)" "$t0" "${tn:--}" "$t1" "$t2" \
  "$([ -n "$tn" ] && pct "$t0" "$tn" || echo -)" "$(pct "$t0" "$t1")" "$(pct "$t0" "$t2")"
printf '%-32s %9s us %9s us %9s us %9s us\n' "median connect() (allowed)" "$p0" "${pn:--}" "$p1" "$p2"
added() { python3 -c "print(f'{1e6 / $1 - 1e6 / $c0:+.2f}')"; }
printf '%-32s %12s %9s us %9s us %9s us\n' "added time per connection" "" "$([ -n "$cn" ] && added "$cn" || echo -)" \
  "$(added "$c1")" "$(added "$c2")"
rc1=$(rmed "${C[none]}" "${C[ebpf]}"); rc2=$(rmed "${C[none]}" "${C[nftables]}")
rt1=$(rmed "${T[none]}" "${T[ebpf]}"); rt2=$(rmed "${T[none]}" "${T[nftables]}")
rcn=-; rtn=-
if [ -n "$cn" ]; then rcn=$(rmed "${C[none]}" "${C[nop]}"); rtn=$(rmed "${T[none]}" "${T[nop]}"); fi
printf '%-32s %12s %12s %12s %12s %6s%% %6s%% %6s%%\n' "connect rate, per-round ratio" "" "" "" "" "$rcn" "$rc1" "$rc2"
printf '%-32s %12s %12s %12s %12s %6s%% %6s%% %6s%%\n' "throughput, per-round ratio" "" "" "" "" "$rtn" "$rt1" "$rt2"
printf '%-32s %12s %12s %10s/s %10s/s   (ebpf: EPERM at connect(); nftables: RST)\n' "TCP connect rate (denied port)" "" "" \
  "$(rate_of "$deny_ebpf")" "$(rate_of "$deny_nft")"
echo "# BPF per allowed connection ($conns connections, kernel.bpf_stats_enabled):"
awk '{printf "#   %-15s %8d runs %5d ns/run %5.2f runs/connection %6d ns/connection\n", $1, $2, $3, $4, $5; t += $5}
     END {printf "#   total %d ns of BPF per connection\n", t}' <<<"$costs"
if [ -n "$nop_costs" ]; then
  echo "# the floor: programs that return 1 at once, same statistics:"
  awk '{printf "#   %-15s %8d runs %5d ns/run %5.2f runs/connection %6d ns/connection\n", $1, $2, $3, $4, $5; t += $5}
       END {printf "#   total %d ns per connection\n", t}' <<<"$nop_costs"
fi
echo "# rounds (none | nop | ebpf | nftables): connect ${C[none]}| ${C[nop]:-}| ${C[ebpf]}| ${C[nftables]}; iperf3 ${T[none]}| ${T[nop]:-}| ${T[ebpf]}| ${T[nftables]}"
echo "# ebpf apply: $(tail -n 1 "$TMP/apply.ebpf")"
goal() { python3 -c "print('met' if $1 else 'NOT met')"; }
echo "# goals (per-round ratios): ebpf >= 97% of no filter: connect rate $(goal "$rc1 >= 97"), throughput $(goal "$rt1 >= 97");" \
  "cost per connection <= nftables: $(goal "$rc1 >= $rc2")"
