#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Boot restore (issue 6), both backends side by side in one run: from exec to enforced on the
# last good state, 100k prefixes + 1000 learned addresses. The reboot is simulated by removing
# what amlfw programmed (nftables: the table; eBPF: programs and pins) and keeping state_dir;
# then `amlfw restore` is timed, ROUNDS times per backend, interleaved, medians printed.
#   bench/restore_bench.sh BUILD_DIR [ROUNDS=5]        (root)
# Each backend runs in its own harness process (tests/e2e/lib.sh: throwaway namespaces, a test
# cgroup and pin directory for eBPF); nothing of the host is touched.
set -uo pipefail
BUILD=$(cd "${1:-build}" && pwd)
ROUNDS=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
e2e="$here/../tests/e2e"
[ "$(id -u)" = 0 ] || { echo "restore_bench: needs root (network namespaces, nftables, BPF)"; exit 0; }

# One backend: prints "backend wall_ms restore_ms kernel_ms" per round.
one_backend() {
  AMLFW_E2E_BACKEND=$1 AMLFW_EBPF_TOOL="$BUILD/tests/ebpf_tool" ROUNDS=$ROUNDS E2E_DIR="$e2e" \
    bash -c '
    source "$E2E_DIR/lib.sh"
    e2e_init "$0" >/dev/null
    topo_up >/dev/null
    "$E2E_PY" "$E2E_DIR/widen_tags.py" "$E2E_TAGS" "$E2E_TMP/big.json" 100000
    sed -e "s#$E2E_TAGS#$E2E_TMP/big.json#" "$E2E_CONFIG" >"$E2E_TMP/big.toml"
    hx "$AMLFW" apply --config "$E2E_TMP/big.toml" >/dev/null 2>&1 || { echo "apply failed" >&2; exit 1; }
    "$E2E_PY" "$E2E_DIR/write_learned.py" "$E2E_TMP/state/learned.state" 1000
    for _ in $(seq "$ROUNDS"); do
      if is_ebpf; then "$E2E_EBPF_TOOL" flush --pin-dir "$E2E_PIN" >/dev/null 2>&1
      else hx nft delete table inet amlfw; fi
      enforcement_absent || { echo "the simulated reboot left enforcement in place" >&2; exit 1; }
      t0=$(date +%s%N)
      out=$(hx "$AMLFW" restore --config "$E2E_TMP/big.toml" 2>&1) || { echo "restore failed: $out" >&2; exit 1; }
      t1=$(date +%s%N)
      enforcement_installed || { echo "restore did not enforce" >&2; exit 1; }
      ms=$(echo "$out" | sed -nE "s/.* in ([0-9.]+) ms .*/\1/p")
      kern=$(echo "$out" | sed -nE "s/.*, apply ([0-9.]+), .*/\1/p")
      echo "$E2E_BACKEND $(( (t1 - t0) / 1000000 )) ${ms:-?} ${kern:-?}"
    done
    e2e_finish >/dev/null 2>&1
  ' "$BUILD/amlfw"
}

results=$(mktemp)
trap 'rm -f "$results"' EXIT
echo "restore_bench: 100k prefixes + 1000 learned, $ROUNDS rounds per backend; load average $(cut -d' ' -f1-3 /proc/loadavg)"
one_backend nftables >>"$results" || echo "(nftables failed)"
one_backend ebpf >>"$results" || echo "(ebpf failed)"

python3 - "$results" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    b, wall, ms, kern = line.split()
    rows.setdefault(b, []).append((float(wall), float(ms) if ms != "?" else None, float(kern) if kern != "?" else None))
med = lambda v: statistics.median([x for x in v if x is not None]) if any(x is not None for x in v) else float("nan")
print("%-9s %12s %14s %14s" % ("backend", "exec->exit", "restore (own)", "kernel load"))
for b, r in rows.items():
    print("%-9s %9.0f ms %11.1f ms %11.1f ms   (%d rounds)" % (b, med([x[0] for x in r]), med([x[1] for x in r]), med([x[2] for x in r]), len(r)))
if "nftables" in rows and "ebpf" in rows:
    print("ebpf / nftables (exec->exit): %.2f   goal: under 100 ms" % (med([x[0] for x in rows["ebpf"]]) / med([x[0] for x in rows["nftables"]])))
EOF
