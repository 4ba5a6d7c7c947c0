# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# The amlfw end-to-end harness. Sourced by every tests/e2e/test_*.sh and by demo/demo.sh.
#
#   source "$(dirname "$0")/lib.sh"
#   e2e_init "$@"        # $1 = the amlfw binary; root check, temp dir, cleanup trap
#   topo_up              # namespaces "host" + "inet", listeners, dnsmasq, tags, config
#   af apply             # amlfw apply --config <generated> in the host namespace
#   expect_connect "$E2E_AML_WE_V4" 443
#   expect_blocked "$E2E_ST_EUS_V4" 443
#   e2e_finish           # prints "N passed, N failed"; exit 1 if any failed
#
# Topology (every name ends in the test's pid, so parallel or aborted runs never collide):
#
#   [host ns: amlfw-e2e-h-PID]  veth0 192.0.2.1/28, 2001:db8:ffff::1/64
#        |                      default routes via inet; amlfw runs and enforces here only
#   [inet ns: amlfw-e2e-i-PID]  veth0 192.0.2.2/28, 2001:db8:ffff::2/64
#                               AnyIP: every address of 192.0.2.16-255, 198.51.100.0/24,
#                               203.0.113.0/24 and 2001:db8::/40 is local here, so one
#                               namespace plays every Azure endpoint and every web site.
#                               dnsmasq on 192.0.2.53:53; TCP/UDP listeners on every port;
#                               192.0.2.54 a resolver that is not configured (53, 853, 443).
#
# The real host is never touched: amlfw, nft and the probes always run through
# `ip netns exec`. Cleanup (trap EXIT) kills what the test started, deletes both
# namespaces and the temp dir, and checks that nothing is left.
#
# Backend (AMLFW_E2E_BACKEND=nftables|ebpf, default nftables; ctest runs the e2e_ebpf_*
# variants with ebpf): with ebpf, e2e_init also makes a test cgroup under the cgroup2 mount
# (found in /proc/self/mountinfo: hybrid layouts mount it at /sys/fs/cgroup/unified) and a
# pin directory /sys/fs/bpf/amlfw-e2e-PID (exported as AMLFW_EBPF_PIN_DIR, so the real
# /sys/fs/bpf/amlfw is never touched); write_config says backend = "ebpf" with
# [ebpf] cgroup = that cgroup; hx and `bg hx` run inside the test cgroup (amlfw itself too,
# like the default cgroup, the root, would have it), amlfw through `nsenter --net` (`ip netns
# exec` remounts /sys, which hides bpffs and the cgroup2 mount: pins would be private to the
# process), everything else through `ip netns exec` as usual (its /sys shows the namespace's
# interfaces); hx_out runs a client outside the cgroup. Cleanup flushes the pins and removes
# the cgroup. Tests ask `is_ebpf` / `backend_only` where they check backend state.

set -u
set -o pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NETSIM="$E2E_DIR/netsim.py"
E2E_GEN_TAGS="$E2E_DIR/gen_service_tags.py"
if [ -x /usr/bin/python3 ]; then E2E_PY=/usr/bin/python3; else E2E_PY=$(command -v python3 || echo python3); fi

E2E_PASSED=0
E2E_FAILED=0
E2E_FINISHED=0
E2E_PIDS=()
E2E_NSES=()
E2E_TMP=""
E2E_HNS="amlfw-e2e-h-$$"
E2E_INS="amlfw-e2e-i-$$"
E2E_HOST_V4=192.0.2.1
E2E_HOST_V6=2001:db8:ffff::1
E2E_INET_V4=192.0.2.2
E2E_INET_V6=2001:db8:ffff::2
E2E_DNS_V4=192.0.2.53         # dnsmasq, the upstream resolver
E2E_OTHER_DNS_V4=192.0.2.54   # a resolver that is NOT configured: listens on 53 (TCP, UDP),
                              # 853 (TCP, DNS over TLS) and 443 (TCP, DNS over HTTPS: the
                              # wildcard listener of E2E_INET_TCP_PORTS serves it)
E2E_PROXY_ADDR=127.0.0.1      # amlfw's DNS proxy in the host namespace
E2E_PROXY_PORT=10053
E2E_INET_TCP_PORTS="80,443,445,8080,8787,18881,29876,29877,44224"
E2E_INET_UDP_PORTS="443,5831"
E2E_HOST_TCP_PORTS="22,8080,29876,29877,44224"
E2E_HOST_UDP_PORTS="5831"
E2E_DAEMON_PID=""
E2E_BACKEND=${AMLFW_E2E_BACKEND:-nftables}
E2E_CG=""          # ebpf: the test cgroup (clients, listeners and amlfw of the host namespace)
E2E_CG2=""         # ebpf: the cgroup2 mount
E2E_PIN=""         # ebpf: the pin directory
E2E_CGX=()         # ebpf: prefix that moves a command into the test cgroup, then execs it
E2E_EBPF_TOOL=""

# ---------------------------------------------------------------------------- reporting

e2e_log() { printf '%s\n' "$*" >&2; }
ok() { E2E_PASSED=$((E2E_PASSED + 1)); printf 'ok   %s\n' "$*"; }
bad() { E2E_FAILED=$((E2E_FAILED + 1)); printf 'FAIL %s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

is_ebpf() { [ "$E2E_BACKEND" = ebpf ]; }
# backend_only NAME WHAT: true when the test runs with backend NAME; otherwise prints that
# WHAT is skipped for this backend (an explicit, visible skip of one backend-specific check).
backend_only() {
  [ "$E2E_BACKEND" = "$1" ] && return 0
  printf 'skip %s (%s backend only; this run: %s)\n' "$2" "$1" "$E2E_BACKEND"
  return 1
}

# Not root (or a tool missing): skip with 77, except under CI=true where a skip is a failure.
e2e_skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "e2e: cannot run: $* (CI=true: a skipped privileged test counts as a failure)" >&2
    exit 1
  fi
  echo "e2e: SKIP: $*" >&2
  exit 77
}

# e2e_init AMLFW [--no-root]
e2e_init() {
  local need_root=1
  AMLFW="${1:-}"
  [ "${2:-}" = "--no-root" ] && need_root=0
  if [ -z "$AMLFW" ]; then
    echo "usage: bash $0 /path/to/amlfw" >&2
    exit 2
  fi
  case "$AMLFW" in /*) ;; *) AMLFW="$PWD/$AMLFW" ;; esac
  if [ ! -x "$AMLFW" ]; then
    echo "e2e: amlfw binary '$AMLFW' not found or not executable (build it first: make build)" >&2
    exit 1
  fi
  case "$E2E_BACKEND" in
    nftables|ebpf) ;;
    *) echo "e2e: AMLFW_E2E_BACKEND='$E2E_BACKEND': want nftables or ebpf" >&2; exit 2 ;;
  esac
  if [ "$need_root" = 1 ]; then
    [ "$(id -u)" -eq 0 ] || e2e_skip "needs root (network namespaces, nftables); run with sudo"
    local t
    for t in ip nft dnsmasq; do
      command -v "$t" >/dev/null 2>&1 || e2e_skip "'$t' is not installed (sudo make deps)"
    done
    if is_ebpf; then
      for t in bpftool nsenter; do
        command -v "$t" >/dev/null 2>&1 || e2e_skip "'$t' is not installed (sudo make deps)"
      done
      E2E_CG2=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' /proc/self/mountinfo | head -n 1)
      [ -n "$E2E_CG2" ] || e2e_skip "no cgroup2 file system is mounted (the eBPF backend needs cgroup v2)"
    fi
  fi
  command -v "$E2E_PY" >/dev/null 2>&1 || e2e_skip "python3 is not installed"
  E2E_TMP=$(mktemp -d /tmp/amlfw-e2e.XXXXXX)
  chmod 755 "$E2E_TMP"
  E2E_NEED_ROOT=$need_root
  if [ "$need_root" = 1 ]; then
    E2E_ROOT_HAD_AMLFW=0
    nft list table inet amlfw >/dev/null 2>&1 && E2E_ROOT_HAD_AMLFW=1
    E2E_ROOT_TABLES_BEFORE=$(nft list tables 2>/dev/null | sort)
  fi
  trap e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [ "$need_root" = 1 ] && is_ebpf; then e2e_ebpf_init; fi
  # shellcheck disable=SC1090
  eval "$("$E2E_PY" "$E2E_GEN_TAGS" --emit-env)"
}

e2e_finish() {
  E2E_FINISHED=1
  exit 0
}

e2e_cleanup() {
  local rc=$? p ns left
  trap - EXIT INT TERM
  for p in "${E2E_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for ns in "${E2E_NSES[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  for p in "${E2E_PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for ns in "${E2E_NSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "$E2E_PIN$E2E_CG" ]; then e2e_ebpf_cleanup; fi
  if [ "${#E2E_NSES[@]}" -gt 0 ]; then
    left=$(ip netns list 2>/dev/null | grep -E "amlfw-e2e-[hi]-$$"'( |$)' || true)
    if [ -n "$left" ]; then bad "cleanup: namespaces left behind: $left"; fi
  fi
  if [ "${E2E_NEED_ROOT:-0}" = 1 ]; then
    local has=0
    nft list table inet amlfw >/dev/null 2>&1 && has=1
    if [ "$has" != "$E2E_ROOT_HAD_AMLFW" ]; then
      bad "the real host's ruleset changed: table inet amlfw present before=$E2E_ROOT_HAD_AMLFW after=$has"
    fi
    local after
    after=$(nft list tables 2>/dev/null | sort)
    if [ "$after" != "$E2E_ROOT_TABLES_BEFORE" ]; then
      e2e_log "note: the real host's table list changed during the test (another process?):"
      e2e_log "  before: $(echo "$E2E_ROOT_TABLES_BEFORE" | tr '\n' ' ')"
      e2e_log "  after:  $(echo "$after" | tr '\n' ' ')"
    fi
  fi
  if [ "$E2E_FINISHED" != 1 ]; then
    bad "test aborted (exit status $rc) before e2e_finish"
  fi
  if [ -n "$E2E_TMP" ]; then
    if [ "$E2E_FAILED" -gt 0 ] && [ -f "$E2E_TMP/daemon.log" ]; then
      echo "--- amlfw run log (last 40 lines)"
      tail -n 40 "$E2E_TMP/daemon.log"
    fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "kept $E2E_TMP"; else rm -rf "$E2E_TMP"; fi
  fi
  if [ "${E2E_NO_SUMMARY:-0}" != 1 ]; then
    echo
    echo "$E2E_PASSED passed, $E2E_FAILED failed"
  fi
  if [ "$E2E_FAILED" -gt 0 ]; then exit 1; fi
  if [ "$E2E_FINISHED" != 1 ]; then exit "${rc:-1}"; fi
  exit 0
}

# The eBPF backend's test cgroup and pin directory (AMLFW_E2E_BACKEND=ebpf).
e2e_ebpf_init() {
  local cg pid
  E2E_EBPF_TOOL=${AMLFW_EBPF_TOOL:-$(dirname "$AMLFW")/tests/ebpf_tool}
  if [ ! -x "$E2E_EBPF_TOOL" ]; then
    echo "e2e: ebpf_tool not found at $E2E_EBPF_TOOL (build the ebpf_tool target, or set AMLFW_EBPF_TOOL)" >&2
    exit 1
  fi
  E2E_BPFFS_WAS_MOUNTED=0
  [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] && E2E_BPFFS_WAS_MOUNTED=1
  E2E_REAL_PINS_BEFORE=$(ls /sys/fs/bpf/amlfw 2>/dev/null | sort | tr '\n' ' ')
  # Leftovers of a killed run (kill -9 skips traps): its pins and its empty cgroup.
  for cg in "$E2E_CG2"/amlfw-e2e-[0-9]*; do
    [ -d "$cg" ] || continue
    pid=${cg##*-}
    kill -0 "$pid" 2>/dev/null && continue
    [ -n "$(cat "$cg/cgroup.procs" 2>/dev/null)" ] && continue
    [ -d "/sys/fs/bpf/amlfw-e2e-$pid" ] && "$E2E_EBPF_TOOL" flush --pin-dir "/sys/fs/bpf/amlfw-e2e-$pid" >/dev/null 2>&1
    rmdir "$cg" 2>/dev/null
  done
  E2E_CG="$E2E_CG2/amlfw-e2e-$$"
  E2E_PIN="/sys/fs/bpf/amlfw-e2e-$$"
  mkdir "$E2E_CG" || { echo "e2e: cannot create the test cgroup $E2E_CG" >&2; E2E_CG=""; exit 1; }
  export AMLFW_EBPF_PIN_DIR="$E2E_PIN"
  E2E_CGX=(bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' cgx "$E2E_CG")
}

e2e_ebpf_cleanup() {
  local p left
  if [ -n "$E2E_PIN" ] && [ -d "$E2E_PIN" ]; then
    "$E2E_EBPF_TOOL" flush --pin-dir "$E2E_PIN" >/dev/null 2>&1 || rm -rf "$E2E_PIN"
    [ -d "$E2E_PIN" ] && bad "cleanup: the pin directory $E2E_PIN is still there"
  fi
  if [ -n "$E2E_CG" ] && [ -d "$E2E_CG" ]; then
    for p in $(cat "$E2E_CG/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    for _ in $(seq 30); do rmdir "$E2E_CG" 2>/dev/null && break; sleep 0.1; done
    [ -d "$E2E_CG" ] && bad "cleanup: the test cgroup $E2E_CG is still there"
  fi
  left=$(ls /sys/fs/bpf/amlfw 2>/dev/null | sort | tr '\n' ' ')
  if [ "$left" != "${E2E_REAL_PINS_BEFORE:-}" ]; then
    bad "the real host's /sys/fs/bpf/amlfw changed: before '${E2E_REAL_PINS_BEFORE:-}' after '$left'"
  fi
  # maps.debug and progs.debug are the kernel's own iterators (bpf_preload), not pins.
  if [ "${E2E_BPFFS_WAS_MOUNTED:-1}" = 0 ] && [ -z "$(ls -A /sys/fs/bpf 2>/dev/null | grep -vE '^(maps|progs)\.debug$')" ]; then
    umount /sys/fs/bpf 2>/dev/null
  fi
}

# Namespaces named amlfw-e2e-[hi]-PID whose PID is dead and which hold no process are
# leftovers of a killed run (kill -9 skips traps): remove them.
e2e_gc_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^amlfw-e2e-[hi]-[0-9]+$'); do
    pid=${ns##*-}
    kill -0 "$pid" 2>/dev/null && continue
    [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && ip netns del "$ns" 2>/dev/null
  done
}

# --------------------------------------------------------------------------- run helpers

# In the host namespace. ebpf: inside the test cgroup, amlfw through nsenter (see the header).
hx() {
  if is_ebpf; then _e2e_ebpf_hx "$@"
  else ip netns exec "$E2E_HNS" "$@"; fi
}
# In the host namespace, outside the test cgroup (ebpf: a client the programs do not filter).
hx_out() { ip netns exec "$E2E_HNS" "$@"; }
# ebpf: does this command line run amlfw (directly, or through env VAR=...)?
_e2e_runs_amlfw() {
  local a
  for a in "$@"; do
    [ "$a" = "$AMLFW" ] && return 0
    case "$a" in env|*=*) ;; *) return 1 ;; esac
  done
  return 1
}
_e2e_ebpf_hx() {
  if _e2e_runs_amlfw "$@"; then "${E2E_CGX[@]}" nsenter --net="/run/netns/$E2E_HNS" "$@"
  else "${E2E_CGX[@]}" ip netns exec "$E2E_HNS" "$@"; fi
}
ix() { ip netns exec "$E2E_INS" "$@"; }   # in the simulated internet
netsim() { "$E2E_PY" "$E2E_NETSIM" "$@"; }
# amlfw COMMAND [args] with the generated config, in the host namespace.
af() { local cmd=$1; shift; hx "$AMLFW" "$cmd" --config "$E2E_CONFIG" "$@"; }
# Background a command; its pid is recorded for cleanup. Sets E2E_LAST_PID. hx/ix are
# expanded here, so that the pid is the program's own (ip netns exec execs it), not a
# subshell's: a signal sent to E2E_LAST_PID reaches the program.
bg() {
  case "$1" in
    hx)
      shift
      if is_ebpf && _e2e_runs_amlfw "$@"; then set -- "${E2E_CGX[@]}" nsenter --net="/run/netns/$E2E_HNS" "$@"
      elif is_ebpf; then set -- "${E2E_CGX[@]}" ip netns exec "$E2E_HNS" "$@"
      else set -- ip netns exec "$E2E_HNS" "$@"; fi ;;
    ix) shift; set -- ip netns exec "$E2E_INS" "$@" ;;
  esac
  "$@" &
  E2E_LAST_PID=$!
  E2E_PIDS+=("$E2E_LAST_PID")
}

wait_for_file() {  # FILE TIMEOUT_S
  local i n
  n=$(( ${2:-5} * 20 ))
  for ((i = 0; i < n; i++)); do [ -e "$1" ] && return 0; sleep 0.05; done
  return 1
}

# ----------------------------------------------------------------------- the simulation

# name  IPv4  IPv6  [CNAME chain: the name is an alias of the first, which is an alias of
# the next ..., the last one holds the addresses]. Exact names of the catalog, names that
# match its wildcards, and forbidden names.
E2E_NAMES=$(cat <<'EOF'
login.microsoftonline.com     192.0.2.65  2001:db8:c0::65
management.azure.com          192.0.2.66  2001:db8:c0::66
ml.azure.com                  192.0.2.67  2001:db8:c0::67
graph.windows.net             192.0.2.68  2001:db8:c0::68
graph.microsoft.com           192.0.2.69  2001:db8:c0::69
pypi.org                      192.0.2.70  2001:db8:c0::70  dualstack.python.map.fastly.e2e.test
anaconda.com                  192.0.2.71  2001:db8:c0::71
viennaglobal.azurecr.io       192.0.2.72  2001:db8:c0::72  weu.fe.azcr.e2e.test weu-1.fe.azcr.e2e.test weu-1-az.fe.azcr.e2e.test
mcr.microsoft.com             192.0.2.73  2001:db8:c0::73
cloud.r-project.org           192.0.2.74  2001:db8:c0::74
update.code.visualstudio.com  192.0.2.75  2001:db8:c0::75
raw.githubusercontent.com     192.0.2.76  2001:db8:c0::76
dc.applicationinsights.azure.com      192.0.2.77  2001:db8:c0::77
dc.applicationinsights.microsoft.com  192.0.2.78  2001:db8:c0::78
dc.services.visualstudio.com          192.0.2.79  2001:db8:c0::79
pytorch.org                   192.0.2.80  2001:db8:c0::80
repo.anaconda.com             192.0.2.129 2001:db8:c1::129
conda.anaconda.org            192.0.2.130 2001:db8:c1::130
files.pythonhosted.org        192.0.2.131 2001:db8:c1::131
download.pytorch.org          192.0.2.132 2001:db8:c1::132
www.tensorflow.org            192.0.2.133 2001:db8:c1::133
westeurope.api.azureml.ms     192.0.2.134 2001:db8:c1::134
abc.notebooks.azure.net       192.0.2.135 2001:db8:c1::135
ci1.westeurope.instances.azureml.ms  192.0.2.136 2001:db8:c1::136
mystore.blob.core.windows.net 192.0.2.137 2001:db8:c1::137  blob.ams07prdstr02a.store.core.windows.net
x.aznbcontent.net             192.0.2.138 2001:db8:c1::138
chain.anaconda.org            192.0.2.139 2001:db8:c1::139  c1.e2e.test c2.e2e.test c3.e2e.test c4.e2e.test c5.e2e.test c6.e2e.test c7.e2e.test c8.e2e.test
example.org                   192.0.2.200 2001:db8:c2::200
evilpytorch.org               192.0.2.201 2001:db8:c2::201
www.example.com               192.0.2.202 2001:db8:c2::202
pypi.org.evil.e2e.test        192.0.2.203 2001:db8:c2::203
rebind.anaconda.org           10.0.0.5    fd00::5
EOF
)
# A name with more addresses than amlfw lets one name add (the default bound is 64).
E2E_MANY_NAME=many.anaconda.org
E2E_MANY_COUNT=70      # 203.0.113.128 .. 203.0.113.197

name_v4() { echo "$E2E_NAMES" | awk -v n="$1" '$1 == n {print $2}'; }
name_v6() { echo "$E2E_NAMES" | awk -v n="$1" '$1 == n {print $3}'; }

dnsmasq_args() {
  local name v4 v6 chain prev c i
  while read -r name v4 v6 chain; do
    [ -z "$name" ] && continue
    if [ -z "$chain" ]; then
      echo "--host-record=$name,$v4,$v6"
    else
      prev=$name
      for c in $chain; do echo "--cname=$prev,$c"; prev=$c; done
      echo "--host-record=$prev,$v4,$v6"
    fi
  done <<<"$E2E_NAMES"
  for ((i = 0; i < E2E_MANY_COUNT; i++)); do
    echo "--host-record=$E2E_MANY_NAME,203.0.113.$((128 + i))"
  done
}

# Writes the generated service tags (variant base|update|shrink|nomltag) to $E2E_TAGS
# atomically, so a daemon reading it never sees half a file.
# A second argument sets the top-level changeNumber.
write_tags() { "$E2E_PY" "$E2E_GEN_TAGS" --variant "${1:-base}" ${2:+--change-number "$2"} --out "$E2E_TAGS"; }

# write_config FILE: amlfw's TOML. Knobs (environment, all optional):
#   CFG_CATALOG   catalog revision        (default: 2021-10)
#   CFG_TOP       extra top-level lines ("mode = \"audit\"")
#   CFG_FEATURES  lines inside [features]
#   CFG_INBOUND   lines inside [inbound]    (default: enforce = false)
#   CFG_REFRESH   service_tags.refresh      (default: 1h)
#   CFG_DNS       extra lines inside [dns]
#   CFG_TAIL      lines appended at the end ([[allow]] tables ...)
write_config() {
  cat >"$1" <<EOF
# generated by tests/e2e/lib.sh for one test run
catalog = "${CFG_CATALOG:-2021-10}"
cloud = "public"
region = "westeurope"
backend = "$E2E_BACKEND"
${CFG_TOP:-}

[features]
${CFG_FEATURES:-}

[inbound]
${CFG_INBOUND:-enforce = false}

[service_tags]
source = "$E2E_TAGS"
refresh = "${CFG_REFRESH:-1h}"

[dns]
listen = "$E2E_PROXY_ADDR:$E2E_PROXY_PORT"
upstreams = ["$E2E_DNS_V4"]
${CFG_DNS:-}

[paths]
state_dir = "$E2E_TMP/state"
runtime_dir = "$E2E_TMP/run"
${CFG_TAIL:-}
EOF
  if is_ebpf && [ -n "$E2E_CG" ]; then printf '\n[ebpf]\ncgroup = "%s"\n' "$E2E_CG" >>"$1"; fi
}

# topo_up: the whole simulation. Sets E2E_TAGS, E2E_CONFIG.
topo_up() {
  e2e_gc_stale
  local ns
  for ns in "$E2E_HNS" "$E2E_INS"; do
    ip netns add "$ns" || { bad "ip netns add $ns"; exit 1; }
    E2E_NSES+=("$ns")
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ns" link set lo up
  done
  ip -n "$E2E_HNS" link add veth0 type veth peer name veth0 netns "$E2E_INS" || { bad "veth"; exit 1; }
  ip -n "$E2E_HNS" addr add "$E2E_HOST_V4/28" dev veth0
  ip -n "$E2E_HNS" -6 addr add "$E2E_HOST_V6/64" dev veth0 nodad
  ip -n "$E2E_INS" addr add "$E2E_INET_V4/28" dev veth0
  ip -n "$E2E_INS" -6 addr add "$E2E_INET_V6/64" dev veth0 nodad
  ip -n "$E2E_HNS" link set veth0 up
  ip -n "$E2E_INS" link set veth0 up
  ip -n "$E2E_HNS" route add default via "$E2E_INET_V4"
  ip -n "$E2E_HNS" -6 route add default via "$E2E_INET_V6"
  # AnyIP in "inet": whole documentation ranges are local there (except the link /28).
  local r
  for r in 192.0.2.16/28 192.0.2.32/27 192.0.2.64/26 192.0.2.128/25 198.51.100.0/24 203.0.113.0/24; do
    ip -n "$E2E_INS" route add local "$r" dev lo
  done
  ip -n "$E2E_INS" -6 route add local 2001:db8::/40 dev lo
  ip -n "$E2E_INS" addr add "$E2E_DNS_V4/32" dev lo
  ip -n "$E2E_INS" addr add "$E2E_OTHER_DNS_V4/32" dev lo

  # Listeners: inet plays every endpoint; host has the inbound ports.
  bg ix "$E2E_PY" "$E2E_NETSIM" serve --label inet --tcp "$E2E_INET_TCP_PORTS" \
    --udp "$E2E_INET_UDP_PORTS" --tcp-at "$E2E_OTHER_DNS_V4:53" --udp-at "$E2E_OTHER_DNS_V4:53" \
    --tcp-at "$E2E_OTHER_DNS_V4:853" \
    --ready "$E2E_TMP/inet.ready" >"$E2E_TMP/inet-listener.log" 2>&1
  bg hx "$E2E_PY" "$E2E_NETSIM" serve --label host --tcp "$E2E_HOST_TCP_PORTS" \
    --udp "$E2E_HOST_UDP_PORTS" --ready "$E2E_TMP/host.ready" >"$E2E_TMP/host-listener.log" 2>&1

  # dnsmasq: the upstream resolver, in inet.
  local args
  mapfile -t args < <(dnsmasq_args)
  bg ix dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --bind-interfaces --listen-address="$E2E_DNS_V4" --port=53 --user=root --group=root \
    --pid-file="$E2E_TMP/dnsmasq.pid" --log-queries=extra --log-facility="$E2E_TMP/dnsmasq.log" \
    --local-ttl=60 "${args[@]}" >"$E2E_TMP/dnsmasq.out" 2>&1

  mkdir -p "$E2E_TMP/state" "$E2E_TMP/run"
  E2E_TAGS="$E2E_TMP/ServiceTags_Public.json"
  write_tags base
  E2E_CONFIG="$E2E_TMP/amlfw.toml"
  write_config "$E2E_CONFIG"

  wait_for_file "$E2E_TMP/inet.ready" 5 || { bad "inet listeners did not start: $(cat "$E2E_TMP/inet-listener.log")"; exit 1; }
  wait_for_file "$E2E_TMP/host.ready" 5 || { bad "host listeners did not start: $(cat "$E2E_TMP/host-listener.log")"; exit 1; }
  local i
  for ((i = 0; i < 50; i++)); do
    hx "$E2E_PY" "$E2E_NETSIM" dnsq "$E2E_DNS_V4" pypi.org --timeout 0.2 2>/dev/null | grep -q '^A ' && break
    sleep 0.1
  done
  if [ "$i" -ge 50 ]; then bad "dnsmasq does not answer: $(cat "$E2E_TMP/dnsmasq.out")"; exit 1; fi
  # Warm up neighbour discovery both ways (the first IPv6 SYN is otherwise lost, 1 s).
  hx "$E2E_PY" "$E2E_NETSIM" probe "$E2E_INET_V6" 443 --timeout 3 >/dev/null 2>&1
  ix "$E2E_PY" "$E2E_NETSIM" probe "$E2E_HOST_V6" 22 --timeout 3 >/dev/null 2>&1
}

# ------------------------------------------------------------------------------ daemon

# daemon_start: `amlfw run` in the host namespace, with a NOTIFY_SOCKET collector.
daemon_start() {
  if [ ! -e "$E2E_TMP/notify.sock" ]; then
    bg "$E2E_PY" "$E2E_NETSIM" notify "$E2E_TMP/notify.sock" "$E2E_TMP/notify.log"
    wait_for_file "$E2E_TMP/notify.sock" 3
  fi
  : >"$E2E_TMP/notify.log"
  echo "--- amlfw run (started $(date +%T.%N))" >>"$E2E_TMP/daemon.log"
  bg hx env NOTIFY_SOCKET="$E2E_TMP/notify.sock" "$AMLFW" run --config "$E2E_CONFIG" \
    >>"$E2E_TMP/daemon.log" 2>&1
  E2E_DAEMON_PID=$E2E_LAST_PID
}

# daemon_wait_ready [TIMEOUT_S]: READY=1 on the notify socket, or `status --json` answers.
daemon_wait_ready() {
  local i n=$(( ${1:-10} * 10 ))
  for ((i = 0; i < n; i++)); do
    if ! kill -0 "$E2E_DAEMON_PID" 2>/dev/null; then
      e2e_log "amlfw run exited: $(tail -n 5 "$E2E_TMP/daemon.log")"
      return 1
    fi
    grep -q '^READY=1' "$E2E_TMP/notify.log" 2>/dev/null && return 0
    af status --json >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

daemon_stop() {  # SIGTERM, then SIGKILL after 5 s
  local i
  [ -z "$E2E_DAEMON_PID" ] && return 0
  kill -TERM "$E2E_DAEMON_PID" 2>/dev/null
  for ((i = 0; i < 50; i++)); do kill -0 "$E2E_DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$E2E_DAEMON_PID" 2>/dev/null
  wait "$E2E_DAEMON_PID" 2>/dev/null
  E2E_DAEMON_PID=""
}

# watch_start NAME ADDR PORT: probe ADDR:PORT every 50 ms in the background until
# watch_stop NAME; the results are in $E2E_TMP/watch.NAME ("RESULT MS DETAIL" lines).
watch_start() {
  rm -f "$E2E_TMP/watch.$1" "$E2E_TMP/watch.$1.stop"
  bg hx "$E2E_PY" "$E2E_NETSIM" watch "$2" "$3" --stop "$E2E_TMP/watch.$1.stop" \
    --out "$E2E_TMP/watch.$1" --interval 0.05
  eval "E2E_WATCH_PID_$1=$E2E_LAST_PID"
}
watch_stop() {
  local pid_var="E2E_WATCH_PID_$1"
  touch "$E2E_TMP/watch.$1.stop"
  wait "${!pid_var}" 2>/dev/null
}
# watch_summary NAME: "N probes: <result> x<count> ..."
watch_summary() {
  printf '%s probes:' "$(wc -l <"$E2E_TMP/watch.$1")"
  awk '{print $1}' "$E2E_TMP/watch.$1" | sort | uniq -c | awk '{printf " %s x%s", $2, $1}'
  echo
}

# hold_start NAME ADDR PORT: a long-lived TCP connection echoing a line every 100 ms
# until hold_stop NAME, which prints "OK <n>" or "FAIL <reason>".
hold_start() {
  rm -f "$E2E_TMP/hold.$1" "$E2E_TMP/hold.$1.stop" "$E2E_TMP/hold.$1.started"
  bg hx "$E2E_PY" "$E2E_NETSIM" hold "$2" "$3" --stop "$E2E_TMP/hold.$1.stop" --out "$E2E_TMP/hold.$1"
  eval "E2E_HOLD_PID_$1=$E2E_LAST_PID"
  wait_for_file "$E2E_TMP/hold.$1.started" 3 || wait_for_file "$E2E_TMP/hold.$1" 1
}
hold_stop() {  # (may run in a $(...) subshell: waits for the result file, not the pid)
  touch "$E2E_TMP/hold.$1.stop"
  wait_for_file "$E2E_TMP/hold.$1" 5
  cat "$E2E_TMP/hold.$1" 2>/dev/null || echo "FAIL no result"
}

# wait_for TIMEOUT_S 'SHELL EXPRESSION': evaluate it every 100 ms until it is true (the
# expression is re-evaluated each time: '[ "$(change)" = 376 ]').
wait_for() {
  local end=$((SECONDS + $1))
  while :; do
    eval "$2" && return 0
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}

# wait_until TIMEOUT_S CMD...: retry CMD every 100 ms until it succeeds (CMD's arguments
# are expanded once, by the caller: use wait_for for expressions with $(...)).
wait_until() {
  local end=$((SECONDS + $1))
  shift
  while :; do
    "$@" && return 0
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}

# status_get EXPR: evaluate a Python expression on `amlfw status --json` (d).
status_get() { af status --json 2>/dev/null | netsim jget "$1" 2>/dev/null; }

# The ruleset amlfw installed, without counters and expiry times (comparable over time).
# ebpf: what the maps of the active generation hold (groups, port table, tries, learned
# addresses without their expiry) and the programs attached to the test cgroup; no
# generation number or program id (a new process installs the same content as a new
# generation with its own programs).
amlfw_table() {
  if is_ebpf; then
    "$E2E_EBPF_TOOL" dump --content --pin-dir "$E2E_PIN" 2>/dev/null || return 1
    ebpf_attached | sed 's/^/attached /'
    return 0
  fi
  hx nft -s list table inet amlfw 2>/dev/null | sed -E 's/ expires [0-9hms.]+//g'
}
# ebpf: the amlfw programs attached to the test cgroup, one "ATTACH_TYPE NAME" a line.
ebpf_attached() {
  bpftool cgroup show "$E2E_CG" 2>/dev/null | awk '/ amlfw_/ {print $2, $NF}' | LC_ALL=C sort
}
# ebpf: what ebpf_attached shows when amlfw enforces (each program once), on one line.
E2E_EBPF_ATTACHED="cgroup_inet4_connect amlfw_connect4 cgroup_inet6_connect amlfw_connect6 \
cgroup_inet_egress amlfw_egress cgroup_inet_ingress amlfw_ingress cgroup_udp4_recvmsg amlfw_recvmsg4 \
cgroup_udp4_sendmsg amlfw_sendmsg4 cgroup_udp6_recvmsg amlfw_recvmsg6 cgroup_udp6_sendmsg amlfw_sendmsg6"
# expect_single_enforcement WHAT: amlfw is installed exactly once: the one table inet amlfw
# and no other (nftables); each program attached once to the test cgroup, and no nftables
# table (ebpf).
expect_single_enforcement() {
  if is_ebpf; then
    expect_eq "$E2E_EBPF_ATTACHED" "$(ebpf_attached | tr '\n' ' ' | sed 's/ $//')" "$1 (programs on the test cgroup)"
    expect_eq "" "$(hx nft list tables)" "$1 (no nftables table with backend = ebpf)"
  else
    expect_eq "table inet amlfw" "$(hx nft list tables)" "$1"
  fi
}
# What holds amlfw's enforcement, for messages.
e2e_enforcement_name() { if is_ebpf; then echo "eBPF programs and pins"; else echo "table inet amlfw"; fi; }
# Enforcement is installed: the table (nftables), or the pins and the programs on the test
# cgroup (ebpf).
enforcement_installed() {
  if is_ebpf; then
    [ -e "$E2E_PIN/amlfw_active" ] && [ -n "$(ebpf_attached)" ]
  else
    hx nft list table inet amlfw >/dev/null 2>&1
  fi
}
# Nothing of amlfw is left: no table in the host namespace, and (ebpf) no pin and no
# program on the test cgroup.
enforcement_absent() {
  hx nft list table inet amlfw >/dev/null 2>&1 && return 1
  if is_ebpf; then [ ! -e "$E2E_PIN" ] && [ -z "$(ebpf_attached)" ]; fi
}

# ---------------------------------------------------------------------------- assertions

_pflag() { [ "$1" = udp ] && echo --udp; }
_probe_desc() {  # ADDR PORT PROTO
  case "$1" in *:*) echo "[$1]:$2/$3" ;; *) echo "$1:$2/$3" ;; esac
}

# Verdicts on one probe result ("RESULT MS DETAIL").
_judge_connect() {  # DESC ADDR PORT PROTO RESULT MS DETAIL
  local d=$1 addr=$2 port=$3 proto=$4 res=$5 ms=$6 detail=${7:-}
  if [ "$res" = ok ]; then
    if [ "$proto" = tcp ] && [[ "$detail" != *"dst=$addr:$port"* && "$detail" != *"dst=[$addr]:$port"* ]]; then
      bad "connect $d: answered by the wrong endpoint: $detail"
    else
      ok "connect $d (${ms} ms)"
    fi
  else
    bad "connect $d: $res after ${ms} ms $detail"
  fi
}
_judge_blocked() {  # DESC RESULT MS DETAIL
  local d=$1 res=$2 ms=$3 detail=${4:-}
  case "$res" in
    refused|unreach|eperm)
      if [ "$ms" -le 1000 ]; then ok "blocked $d: $res $detail (${ms} ms)"
      else bad "blocked $d but slowly: $res after ${ms} ms (must fail within 1 s)"; fi ;;
    ok) bad "blocked $d: it CONNECTED ($detail)" ;;
    timeout) bad "blocked $d: timed out after ${ms} ms (must fail fast: reset/EPERM/ICMP)" ;;
    *) bad "blocked $d: unexpected probe result: $res $ms $detail" ;;
  esac
}

# expect_connect ADDR PORT [tcp|udp] [what]: must connect (and get the listener's
# greeting naming ADDR:PORT, or the UDP echo) within 2 s.
expect_connect() {
  local addr=$1 port=$2 proto=${3:-tcp} what=${4:-} res ms detail
  read -r res ms detail < <(hx "$E2E_PY" "$E2E_NETSIM" probe "$addr" "$port" $(_pflag "$proto") --timeout 2 2>&1)
  _judge_connect "$(_probe_desc "$addr" "$port" "$proto")${what:+ ($what)}" "$addr" "$port" "$proto" "$res" "$ms" "$detail"
}

# expect_blocked ADDR PORT [tcp|udp] [what]: must FAIL FAST (reset, EPERM or ICMP error
# within 1 s). A timeout is a failure: SPEC guarantee 1.
expect_blocked() {
  local addr=$1 port=$2 proto=${3:-tcp} what=${4:-} res ms detail
  read -r res ms detail < <(hx "$E2E_PY" "$E2E_NETSIM" probe "$addr" "$port" $(_pflag "$proto") --timeout 2 2>&1)
  _judge_blocked "$(_probe_desc "$addr" "$port" "$proto")${what:+ ($what)}" "$res" "$ms" "$detail"
}

# check_matrix PLAN_JSON [VARIANT] [egress|ingress|both]: every block's sample addresses
# (IPv4 and IPv6) on the listener ports must be reachable exactly when the plan allows
# them (gen_service_tags.py --expect computes that from the plan and the address plan).
E2E_MATRIX_TCP="80,443,8080,8787"
check_matrix() {
  local plan=$1 variant=${2:-base} which=${3:-egress} dir addr port proto verdict label
  local res ms detail exp
  if [ "$which" != ingress ]; then
    exp=$("$E2E_PY" "$E2E_GEN_TAGS" --expect "$plan" --variant "$variant" \
      --tcp "$E2E_MATRIX_TCP" --udp "$E2E_INET_UDP_PORTS" | grep '^egress ')
    while read -r dir addr port proto verdict label res ms detail; do
      if [ "$verdict" = allow ]; then
        _judge_connect "$(_probe_desc "$addr" "$port" "$proto") ($label)" "$addr" "$port" "$proto" "$res" "$ms" "$detail"
      else
        _judge_blocked "$(_probe_desc "$addr" "$port" "$proto") ($label)" "$res" "$ms" "$detail"
      fi
    done < <(paste -d' ' <(echo "$exp") <(echo "$exp" | awk '{print $2, $3, $4}' |
      hx "$E2E_PY" "$E2E_NETSIM" probes --timeout 2 | awk '{print $4, $5, $6}'))
  fi
  if [ "$which" != egress ]; then
    exp=$("$E2E_PY" "$E2E_GEN_TAGS" --expect "$plan" --variant "$variant" \
      --tcp "$E2E_HOST_TCP_PORTS" --udp "$E2E_HOST_UDP_PORTS" | grep '^ingress ')
    while read -r dir addr port proto verdict label res ms detail; do
      local dst=$E2E_HOST_V4
      [[ "$addr" == *:* ]] && dst=$E2E_HOST_V6
      if [ "$verdict" = allow ]; then
        if [ "$res" = ok ]; then ok "inbound from $addr to $(_probe_desc "$dst" "$port" "$proto") ($label) (${ms} ms)"
        else bad "inbound from $addr to $(_probe_desc "$dst" "$port" "$proto") ($label): $res $ms $detail"; fi
      else
        if [ "$res" = ok ]; then bad "inbound blocked from $addr to $(_probe_desc "$dst" "$port" "$proto") ($label): it CONNECTED"
        else ok "inbound blocked from $addr to $(_probe_desc "$dst" "$port" "$proto") ($label): $res (${ms} ms)"; fi
      fi
    done < <(paste -d' ' <(echo "$exp") <(echo "$exp" | awk -v h4="$E2E_HOST_V4" -v h6="$E2E_HOST_V6" \
      '{print ($2 ~ /:/ ? h6 : h4), $3, $4, $2}' |
      ix "$E2E_PY" "$E2E_NETSIM" probes --timeout 1.5 | awk '{print $4, $5, $6}'))
  fi
}

# plan_json FILE: `amlfw plan --format json` with the generated config (host namespace).
plan_json() { af plan --format json >"$1" 2>"$1.err"; }

# Inbound: from SRC (an address of inet) to the host namespace.
# expect_connect_in SRC DST PORT [tcp|udp] [what]
expect_connect_in() {
  local src=$1 addr=$2 port=$3 proto=${4:-tcp} what=${5:-} out res ms detail d
  d="from $src to $(_probe_desc "$addr" "$port" "$proto")${what:+ ($what)}"
  out=$(ix "$E2E_PY" "$E2E_NETSIM" probe "$addr" "$port" --src "$src" $(_pflag "$proto") --timeout 2 2>&1)
  read -r res ms detail <<<"$out"
  if [ "$res" = ok ] && [[ "$detail" == *"amlfw-e2e_host"* ]]; then ok "inbound $d (${ms} ms)"
  else bad "inbound $d: $out"; fi
}
# expect_blocked_in SRC DST PORT [tcp|udp] [what]: no connection within 1.5 s. Inbound
# may be dropped or rejected (an operator often prefers drop towards the internet).
expect_blocked_in() {
  local src=$1 addr=$2 port=$3 proto=${4:-tcp} what=${5:-} out res ms detail d
  d="from $src to $(_probe_desc "$addr" "$port" "$proto")${what:+ ($what)}"
  out=$(ix "$E2E_PY" "$E2E_NETSIM" probe "$addr" "$port" --src "$src" $(_pflag "$proto") --timeout 1.5 2>&1)
  read -r res ms detail <<<"$out"
  if [ "$res" = ok ]; then bad "inbound blocked $d: it CONNECTED ($detail)"
  else ok "inbound blocked $d: $res (${ms} ms)"; fi
}

# expect_resolves NAME [SERVER] [PORT]: an A answer through the given resolver.
dns_query() {  # SERVER PORT NAME [TYPE] [--tcp]
  hx "$E2E_PY" "$E2E_NETSIM" dnsq "$1" "$3" --port "$2" --type "${4:-A}" ${5:-} --timeout 2 2>&1
}

_short() { local s=${1//$'\n'/ | }; [ "${#s}" -gt 120 ] && s="${s:0:117}..."; printf '%s' "$s"; }
expect_eq() {  # WANT GOT WHAT
  if [ "$1" = "$2" ]; then ok "$3 = $(_short "$2")"; else bad "$3: want '$(_short "$1")', got '$(_short "$2")'"; fi
}
expect_ne() {  # UNWANTED GOT WHAT
  if [ "$1" != "$2" ]; then ok "$3 ($(_short "$2"))"; else bad "$3: got '$(_short "$2")'"; fi
}
expect_match() {  # REGEX TEXT WHAT
  if [[ "$2" =~ $1 ]]; then ok "$3"; else bad "$3: '$2' does not match /$1/"; fi
}
expect_true() {  # WHAT CMD...  (exit status 0)
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what (command failed: $*)"; fi
}
# expect_rc WANT WHAT CMD...: runs CMD, stdout+stderr in $E2E_OUT.
expect_rc() {
  local want=$1 what=$2 rc
  shift 2
  E2E_OUT=$("$@" 2>&1)
  rc=$?
  if [ "$rc" = "$want" ]; then ok "$what (exit $rc)"
  else bad "$what: exit $rc, want $want: $(echo "$E2E_OUT" | tail -n 3)"; fi
}
