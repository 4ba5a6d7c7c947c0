#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# DNS proxy benchmark (docs/dns.md): dnsperf on loopback, in a throwaway network namespace.
#
#   sudo bench/dns_bench.sh /path/to/amlfw [SECONDS]
#   sudo bench/dns_bench.sh BUILD_DIR [SECONDS]        (as bench/run.sh calls it)
#
# Three servers answer the same data (dnsmasq, authoritative for *.anaconda.org from a
# hosts file: every name its own IPv6 address, so each new name is new work for the kernel):
#   direct   dnsmasq on 127.0.0.1:5301                      (the upstream itself)
#   amlfw    amlfw run, proxy on 127.0.0.1:5300 -> 5301      (nftables backend, learns every answer)
#   ebpf     amlfw run, proxy on 127.0.0.1:5303 -> 5301      (eBPF backend: programs on an empty
#            cgroup of the bench, pins in /sys/fs/bpf/amlfw-dnsbench-PID; learns into BPF maps)
#   sudo bench/dns_bench.sh /path/to/amlfw [SECONDS]   (dns_latency_bench is looked for next to amlfw's
#                                                       build: <build>/bench/dns_latency_bench)
#   nftset   dnsmasq on 127.0.0.1:5302 -> 5301, --cache-size=0, nftset= for anaconda.org
#            (dnsmasq adds each answer to an nftables set before answering)
# Two workloads: "new" (a name never asked before per query: AAAA n<i>.anaconda.org) and
# "repeat" (100 names over and over). For each server and workload:
#   latency     dns_latency_bench (one query at a time, each timed): median and p99
#   throughput  dnsperf -q 200 (200 outstanding):   queries per second
# Prints one table; exit 77 (skip) without root, dnsperf, dnsmasq or nft.
set -uo pipefail
AMLFW=${1:-}
SECS=${2:-5}
[ -d "$AMLFW" ] && AMLFW="$AMLFW/amlfw"
[ -x "$AMLFW" ] || { echo "usage: sudo $0 /path/to/amlfw [SECONDS]" >&2; exit 2; }
case "$AMLFW" in /*) ;; *) AMLFW="$PWD/$AMLFW" ;; esac
[ "$(id -u)" -eq 0 ] || { echo "dns_bench: SKIP: needs root" >&2; exit 77; }
for t in dnsperf dnsmasq nft ip python3; do
  command -v "$t" >/dev/null || { echo "dns_bench: SKIP: $t missing" >&2; exit 77; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
NS="amlfw-bench-$$"
TMP=$(mktemp -d /tmp/amlfw-dnsbench.XXXXXX)
PIDS=()
CG2=$(bench_cgroup2)
CG=${CG2:+$CG2/amlfw-dnsbench-$$}
PIN=/sys/fs/bpf/amlfw-dnsbench-$$   # never the real /sys/fs/bpf/amlfw
BPFFS_WAS_MOUNTED=0
[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] && BPFFS_WAS_MOUNTED=1
cleanup() {
  local p _
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for _ in $(seq 30); do  # up to 3 s for the daemons to stop on SIGTERM
    kill -0 "${PIDS[@]}" 2>/dev/null || break   # true while any of them is alive
    sleep 0.1
  done
  for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ -d "$PIN" ]; then
    AMLFW_EBPF_PIN_DIR=$PIN nsenter --net="/run/netns/$NS" "$AMLFW" flush --config "$TMP/ebpf.toml" >/dev/null 2>&1
    rm -rf "$PIN"
  fi
  [ -n "$CG" ] && [ -d "$CG" ] && rmdir "$CG" 2>/dev/null
  if [ "$BPFFS_WAS_MOUNTED" = 0 ] && [ -z "$(ls -A /sys/fs/bpf 2>/dev/null | grep -vE '^(maps|progs)\.debug$')" ]; then
    umount /sys/fs/bpf 2>/dev/null
  fi
  ip netns del "$NS" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
nx() { ip netns exec "$NS" "$@"; }

ip netns add "$NS"
nx ip link set lo up

# Data: n<i>.anaconda.org -> 2001:db8:<hi>:<lo>::1 (AAAA) and the 100 repeated names.
# Disjoint name ranges per (server, phase), each long enough for SECS seconds at the fastest
# rate seen here, so that "new" names are really new (a run that gets through its whole list
# says so: its last queries were repeats).
python3 - "$TMP" "$SECS" <<'EOF'
import sys
tmp, secs = sys.argv[1], int(sys.argv[2])
lat, fast, slow = 15000 * secs, 60000 * secs, 10000 * secs
parts = {"amlfw_lat": lat, "ebpf_lat": lat, "nftset_lat": lat, "direct_lat": lat,
         "amlfw_thr": fast, "ebpf_thr": fast, "nftset_thr": slow, "direct_thr": lat}
n = sum(parts.values())
with open(f"{tmp}/hosts", "w") as f:
    for i in range(n):
        f.write(f"2001:db8:{i >> 16:x}:{i & 0xffff:x}::1 n{i}.anaconda.org\n")
    for i in range(100):
        f.write(f"2001:db8:ffff:{i:x}::1 r{i}.anaconda.org\n")
k = 0
for part, size in parts.items():
    with open(f"{tmp}/new_{part}.txt", "w") as f:
        for i in range(k, k + size):
            f.write(f"n{i}.anaconda.org AAAA\n")
    k += size
with open(f"{tmp}/repeat.txt", "w") as f:
    for rep in range(2000):
        for i in range(100):
            f.write(f"r{i}.anaconda.org AAAA\n")
EOF

ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --port=5301 --addn-hosts="$TMP/hosts" --local-ttl=300 --cache-size=10000 \
  --dns-forward-max=1000 --user=root --group=root --pid-file="$TMP/up.pid" >"$TMP/up.log" 2>&1 &
PIDS+=($!)

# dnsmasq + nftset, forwarding without a cache so that every answer goes through nftset.
nx nft -f - <<'EOF'
table inet bench {
  set learned6 { type ipv6_addr; flags timeout; timeout 1h; }
}
EOF
ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll --bind-interfaces \
  --listen-address=127.0.0.1 --port=5302 --server=127.0.0.1#5301 --cache-size=0 --dns-forward-max=1000 \
  --nftset=/anaconda.org/6#inet#bench#learned6 --user=root --group=root --pid-file="$TMP/nftset.pid" \
  >"$TMP/nftset.log" 2>&1 &
PIDS+=($!)

# amlfw with the default catalog (*.anaconda.org is allowed) and generated service tags.
python3 "$HERE/../tests/e2e/gen_service_tags.py" --out "$TMP/tags.json"
amlfw_config() {  # BACKEND PORT NAME [EBPF_CGROUP]
  mkdir -p "$TMP/state-$3" "$TMP/run-$3"
  cat <<EOF
backend = "$1"
region = "westeurope"
[service_tags]
source = "$TMP/tags.json"
[dns]
listen = "127.0.0.1:$2"
upstreams = ["127.0.0.1:5301"]
max_learned = 16777216
[paths]
state_dir = "$TMP/state-$3"
runtime_dir = "$TMP/run-$3"
EOF
  [ -n "${4:-}" ] && printf '[ebpf]\ncgroup = "%s"\n' "$4"
  return 0
}
amlfw_config nftables 5300 nft >"$TMP/amlfw.toml"
ip netns exec "$NS" "$AMLFW" run --config "$TMP/amlfw.toml" >"$TMP/amlfw.log" 2>&1 &
APID=$!
PIDS+=($APID)
# The same with the eBPF backend (nsenter: `ip netns exec` would hide bpffs and the cgroup2 mount).
SERVERS="direct amlfw nftset"
PORTS="5300 5301 5302"
if [ -n "$CG" ] && mkdir "$CG" 2>/dev/null; then
  amlfw_config ebpf 5303 ebpf "$CG" >"$TMP/ebpf.toml"
  AMLFW_EBPF_PIN_DIR=$PIN nsenter --net="/run/netns/$NS" "$AMLFW" run --config "$TMP/ebpf.toml" >"$TMP/ebpf.log" 2>&1 &
  PIDS+=($!)
  SERVERS="direct amlfw ebpf nftset"
  PORTS="$PORTS 5303"
else
  echo "# (no ebpf row: no cgroup2 mount to attach to)"
fi
printf 'n0.anaconda.org AAAA\n' >"$TMP/one.txt"
for port in $PORTS; do
  ok=0
  for _ in $(seq 50); do
    if nx dnsperf -s 127.0.0.1 -p $port -d "$TMP/one.txt" -n 1 -t 1 2>/dev/null | grep -q 'NOERROR 1'; then ok=1; break; fi
    sleep 0.2
  done
  [ $ok = 1 ] || { echo "dns_bench: server on $port does not answer" >&2; tail -5 "$TMP"/*.log >&2; exit 1; }
done

# latency PORT FILE -> "p50_us p99_us count lost" (one query at a time)
LATBIN=${DNS_LATENCY_BENCH:-$(dirname "$AMLFW")/bench/dns_latency_bench}
[ -x "$LATBIN" ] || { echo "dns_bench: $LATBIN not found (build the dns_latency_bench target or set DNS_LATENCY_BENCH)" >&2; exit 2; }
latency() { nx "$LATBIN" 127.0.0.1 "$1" "$2" "$SECS"; }
# throughput PORT FILE -> "qps lost completed"
throughput() {
  nx dnsperf -s 127.0.0.1 -p "$1" -d "$2" -n 1 -l "$SECS" -q 200 -c 4 -t 2 2>/dev/null |
    awk '/Queries per second/ {q = $4} /Queries lost/ {l = $3} /Queries completed/ {c = $3}
         END {printf "%d %s %d\n", q, l, c}'
}

echo "dnsperf on loopback, ${SECS}s per run, $(nproc) CPUs; latency: one query at a time; throughput: 200 outstanding"
printf '%-8s %-7s %10s %10s %8s %12s %8s\n' server names p50_us p99_us n qps lost
declare -A P50 P99 QPS
for wl in repeat new; do
  for srv in $SERVERS; do
    case $srv in direct) port=5301 ;; amlfw) port=5300 ;; nftset) port=5302 ;; ebpf) port=5303 ;; esac
    if [ $wl = new ]; then lf="$TMP/new_${srv}_lat.txt"; tf="$TMP/new_${srv}_thr.txt"; else lf="$TMP/repeat.txt"; tf=$lf; fi
    read -r p50 p99 n _ < <(latency $port "$lf")
    if [ -n "${DNS_BENCH_PERF:-}" ] && [ $srv = amlfw ]; then
      perf record -g -p "$APID" -o "$DNS_BENCH_PERF.$wl" -- sleep 2 >/dev/null 2>&1 &
    fi
    read -r qps lost done < <(throughput $port "$tf")
    P50[$srv$wl]=$p50; P99[$srv$wl]=$p99; QPS[$srv$wl]=$qps
    note=""
    if [ $wl = new ] && [ $srv != direct ]; then
      [ "$n" -ge "$(wc -l <"$lf")" ] && note+=" (latency: list used up, some repeats)"
      [ "${done:-0}" -ge "$(wc -l <"$tf")" ] && note+=" (throughput: list used up, some repeats)"
    fi
    printf '%-8s %-7s %10s %10s %8s %12s %8s%s\n' $srv $wl "$p50" "$p99" "$n" "$qps" "$lost" "$note"
  done
done
echo
for wl in repeat new; do
  echo "$wl names: amlfw adds $(( ${P50[amlfw$wl]} - ${P50[direct$wl]} )) us median, $(( ${P99[amlfw$wl]} - ${P99[direct$wl]} )) us p99 over direct;" \
    "dnsmasq+nftset adds $(( ${P50[nftset$wl]} - ${P50[direct$wl]} )) us median;" \
    "throughput amlfw/nftset = $(awk -v a="${QPS[amlfw$wl]}" -v b="${QPS[nftset$wl]}" 'BEGIN {printf "%.2f", b ? a / b : 0}')x"
  if [ -n "${QPS[ebpf$wl]:-}" ]; then
    echo "$wl names, eBPF backend: adds $(( ${P50[ebpf$wl]} - ${P50[direct$wl]} )) us median, $(( ${P99[ebpf$wl]} - ${P99[direct$wl]} )) us p99 over direct;" \
      "throughput ebpf/nftset = $(awk -v a="${QPS[ebpf$wl]}" -v b="${QPS[nftset$wl]}" 'BEGIN {printf "%.2f", b ? a / b : 0}')x"
  fi
done
learned=$(nx nft list table inet amlfw 2>/dev/null | grep -o '2001:db8:[0-9a-f:]*::1' | wc -l)
echo "addresses amlfw learned into the kernel: $learned; dnsmasq nftset: $(nx nft list set inet bench learned6 | grep -o '2001:db8:[0-9a-f:]*::1' | wc -l)"
if [ -f "$TMP/ebpf.toml" ]; then
  echo "addresses the eBPF backend learned (amlfw status): $("$AMLFW" status --config "$TMP/ebpf.toml" --json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["learned_addresses"])' 2>/dev/null)"
fi
grep -E '<[0-3]>' "$TMP/amlfw.log" | head -5
