#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The eBPF backend (backend = "ebpf") end to end, driven by tests/tools/ebpf_tool until
# `amlfw apply` selects it. The programs are attached to a cgroup this test creates under the
# cgroup2 mount; clients run inside that cgroup and inside the harness's host namespace:
# allowed destinations connect, others fail fast with EPERM (connect4/6, sendmsg4/6,
# IPv4-mapped), DNS only to the resolver, loopback and the host's own address stay open; a
# client outside the cgroup is unaffected; denials reach the ring buffer with pid, comm,
# cgroup, destination and reason; learned addresses work per port and expire; re-applies
# adopt the pins with no gap and keep established connections; kill -9 of the owning
# process keeps enforcement; audit mode; inbound.enforce; flush leaves no pin, no
# attachment, no program and no map (checked with bpftool).
#
# The tool runs with `nsenter --net` (not `ip netns exec`, which remounts /sys and would hide
# the cgroup2 mount and make the bpffs pins private to one process). Pins go to
# /sys/fs/bpf/amlfw-e2e-PID, never to a real installation's /sys/fs/bpf/amlfw.
# It sets up its own cgroup and pins: the harness's backend switch (AMLFW_E2E_BACKEND=ebpf,
# for the shared suite) stays off here.
AMLFW_E2E_BACKEND=nftables
source "$(dirname "$0")/lib.sh"
e2e_init "$@"

EBPF_TOOL=${AMLFW_EBPF_TOOL:-$(dirname "$AMLFW")/tests/ebpf_tool}
if [ ! -x "$EBPF_TOOL" ]; then
  bad "ebpf_tool not found at $EBPF_TOOL (build the ebpf_tool target, or set AMLFW_EBPF_TOOL)"
  e2e_finish
fi
for t in bpftool nsenter; do
  command -v "$t" >/dev/null 2>&1 || e2e_skip "'$t' is not installed (sudo make deps)"
done
CG2=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' /proc/self/mountinfo | head -n 1)
[ -n "$CG2" ] || e2e_skip "no cgroup2 file system is mounted"
CG="$CG2/amlfw-e2e-$$"
PIN="/sys/fs/bpf/amlfw-e2e-$$"
BPFFS_WAS_MOUNTED=0
[ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ] && BPFFS_WAS_MOUNTED=1

ebpf_cleanup() {
  local p
  [ -d "$PIN" ] && "$EBPF_TOOL" flush --pin-dir "$PIN" >/dev/null 2>&1
  if [ -d "$CG" ]; then
    for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do
      kill -KILL "$p" 2>/dev/null
      wait "$p" 2>/dev/null
    done
    for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
  fi
  # maps.debug and progs.debug are the kernel's own iterators (bpf_preload), not pins.
  if [ "$BPFFS_WAS_MOUNTED" = 0 ] && [ -z "$(ls -A /sys/fs/bpf 2>/dev/null | grep -vE '^(maps|progs)\.debug$')" ]; then
    umount /sys/fs/bpf 2>/dev/null
  fi
}
test_cleanup() {
  local rc=$?
  ebpf_cleanup 2>/dev/null
  [ -d "$PIN" ] && bad "cleanup: $PIN is still there"
  [ -d "$CG" ] && bad "cleanup: the test cgroup $CG is still there"
  (exit "$rc")
  e2e_cleanup
}
trap test_cleanup EXIT

mkdir "$CG" || { bad "mkdir $CG"; e2e_finish; }
topo_up

# From here every client of the harness (probes, watches, holds, plan) runs inside the test
# cgroup; hx_out runs outside it. bg is lib.sh's, with `bg hx` moved into the cgroup too (the
# program keeps bg's pid: bash execs into it).
CGX=(bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' cgx "$CG")
cgx() { "${CGX[@]}" "$@"; }
hx() { cgx ip netns exec "$E2E_HNS" "$@"; }
hx_out() { ip netns exec "$E2E_HNS" "$@"; }
bg() {
  case "$1" in
    hx) shift; set -- "${CGX[@]}" ip netns exec "$E2E_HNS" "$@" ;;
    ix) shift; set -- ip netns exec "$E2E_INS" "$@" ;;
  esac
  "$@" &
  E2E_LAST_PID=$!
  E2E_PIDS+=("$E2E_LAST_PID")
}
ebx() { nsenter --net="/run/netns/$E2E_HNS" "$EBPF_TOOL" "$@" --pin-dir "$PIN"; }

# ebpf_config [extra top-level lines]: the harness's config with backend = "ebpf" and the cgroup.
ebpf_config() {
  CFG_TAIL="[ebpf]
cgroup = \"$CG\"" write_config "$E2E_CONFIG"
  sed -i 's/^backend = "nftables"$/backend = "ebpf"/' "$E2E_CONFIG"
}

# expect_eperm ADDR PORT [tcp|udp] [what]: connect() itself must fail with EPERM at once.
expect_eperm() {
  local addr=$1 port=$2 proto=${3:-tcp} what=${4:-} res ms detail
  read -r res ms detail < <(hx "$E2E_PY" "$E2E_NETSIM" probe "$addr" "$port" $(_pflag "$proto") --timeout 2 2>&1)
  if [ "$res" = eperm ] && [ "$ms" -le 200 ]; then ok "EPERM $(_probe_desc "$addr" "$port" "$proto") ${what:+($what) }(${ms} ms)"
  else bad "EPERM $(_probe_desc "$addr" "$port" "$proto") ${what:+($what)}: got $res after ${ms} ms $detail"; fi
}

# sendto ADDR PORT [FAMILY]: one unconnected UDP datagram (the sendmsg4/6 hook); prints ok or the errno name.
sendto() {
  hx "$E2E_PY" -c '
import errno, socket, sys
a, p = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"amlfw-e2e", (a, p)); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
' "$1" "$2"
}

# connect6 ADDR PORT: TCP connect from an AF_INET6 socket (IPv4-mapped destinations).
connect6() {
  hx "$E2E_PY" -c '
import errno, socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout")
' "$1" "$2"
}

attached() { bpftool cgroup show "$CG" 2>/dev/null | grep -c ' amlfw_'; }

section "before apply: the test cgroup reaches everything"
expect_connect "$E2E_UNLISTED_V4" 443 tcp "unlisted, from the test cgroup"

section "apply: eight programs on the test cgroup, pinned"
ebpf_config
out=$(ebx apply --config "$E2E_CONFIG" 2>&1)
expect_match '^apply adopted=0 fresh=1 .*links_created=8' "$out" "first apply creates maps and eight links ($out)"
expect_eq 8 "$(attached)" "programs attached to the test cgroup"
expect_eq 0 "$(bpftool cgroup show "$CG2" 2>/dev/null | grep -c ' amlfw_')" "programs attached to the cgroup2 root"
for n in amlfw_active amlfw_conf amlfw_ports amlfw_lpm4 amlfw_lpm6 amlfw_learn4 amlfw_learn6 amlfw_flows \
  amlfw_events amlfw_stats amlfw_dns_orig amlfw_connect4 amlfw_connect6 amlfw_sendmsg4 amlfw_sendmsg6 amlfw_egress \
  amlfw_ingress amlfw_recvmsg4 amlfw_recvmsg6; do
  [ -e "$PIN/$n" ] || bad "pin $PIN/$n missing"
done
ok "maps and links pinned under $PIN: $(ls "$PIN" | wc -l) entries"
expect_eq "$(ls "$PIN" | wc -l)" "$(ls "$PIN" | grep -c '^amlfw_')" "every pin is named amlfw_*"

section "allowed destinations connect; others fail at connect() with EPERM"
expect_connect "$E2E_AML_WE_V4" 443 tcp "NR2 AzureMachineLearning"
expect_connect "$E2E_AML_X_V6" 443 tcp "NR2 AzureMachineLearning IPv6"
expect_connect "$E2E_AAD_V4" 8080 tcp "NR1 AzureActiveDirectory: every port"
expect_connect "$E2E_ST_WE_V6" 443 tcp "NR4 Storage.WestEurope IPv6"
expect_eperm "$E2E_UNLISTED_V4" 443 tcp unlisted
expect_eperm "$E2E_UNLISTED_V6" 443 tcp "unlisted IPv6"
expect_eperm "$E2E_AML_WE_V4" 8080 tcp "AzureMachineLearning, port 8080"
expect_eperm "$E2E_ST_EUS_V4" 443 tcp "Storage.EastUS: another region"
expect_eperm "$E2E_UNLISTED_V4" 5831 udp "unlisted UDP (connected socket)"
expect_eq EPERM "$(sendto "$E2E_UNLISTED_V4" 5831)" "sendto() unlisted UDP (sendmsg4)"
expect_eq EPERM "$(sendto "$E2E_UNLISTED_V6" 5831)" "sendto() unlisted UDP IPv6 (sendmsg6)"
expect_eq ok "$(sendto "$E2E_DNS_V4" 53)" "sendto() the resolver"
expect_eq ok "$(connect6 "::ffff:$E2E_AML_WE_V4" 443)" "AF_INET6 socket to an IPv4-mapped allowed address"
expect_eq EPERM "$(connect6 "::ffff:$E2E_UNLISTED_V4" 443)" "AF_INET6 socket to an IPv4-mapped unlisted address"

section "DNS only to the configured resolver; loopback and the host itself stay open"
out=$(dns_query "$E2E_DNS_V4" 53 login.microsoftonline.com A)
expect_match '^A 192\.0\.2\.65' "$(echo "$out" | grep '^A ')" "UDP query to the resolver"
out=$(dns_query "$E2E_DNS_V4" 53 login.microsoftonline.com A --tcp)
expect_match '^A 192\.0\.2\.65' "$(echo "$out" | grep '^A ')" "TCP query to the resolver"
expect_eperm "$E2E_OTHER_DNS_V4" 53 udp "DNS to a server that is not configured"
expect_eperm "$E2E_OTHER_DNS_V4" 53 tcp "DNS over TCP to a server that is not configured"
expect_connect 127.0.0.1 8080 tcp loopback
expect_connect ::1 8080 tcp "loopback IPv6"
expect_connect "$E2E_HOST_V4" 8080 tcp "the host to its own address"

section "a client outside the cgroup is unaffected"
read -r res ms detail < <(hx_out "$E2E_PY" "$E2E_NETSIM" probe "$E2E_UNLISTED_V4" 443 --timeout 2 2>&1)
expect_eq ok "$res" "unlisted from outside the test cgroup"

section "the whole matrix from the test cgroup, as the plan says"
plan_json "$E2E_TMP/plan.json" || bad "plan --format json: $(cat "$E2E_TMP/plan.json.err")"
check_matrix "$E2E_TMP/plan.json" base egress

section "denials reach the ring buffer"
ev=$(ebx events --timeout-ms 200)
expect_match "deny connect4 pid=[1-9][0-9]* comm=python3 cgroup=[1-9][0-9]* tcp $E2E_UNLISTED_V4:443 reason=no-match" "$ev" "connect4 denial with pid, comm, cgroup"
expect_match "deny connect6 pid=[0-9]+ comm=python3 cgroup=[0-9]+ tcp \[$E2E_UNLISTED_V6\]:443 reason=no-match" "$ev" "connect6 denial"
expect_match "deny sendmsg4 .* udp $E2E_UNLISTED_V4:5831 reason=no-match" "$ev" "sendmsg4 denial"
expect_match "deny connect4 .* tcp $E2E_AML_WE_V4:8080 reason=port" "$ev" "allowed address, other port: reason=port"
expect_match "deny connect4 .* udp $E2E_OTHER_DNS_V4:53 reason=dns-not-a-resolver" "$ev" "DNS elsewhere: reason=dns-not-a-resolver"
cgid=$(sed -nE "s/.* cgroup=([0-9]+) tcp $E2E_UNLISTED_V4:443 .*/\1/p" <<<"$ev" | head -n 1)
expect_eq "$(stat -c %i "$CG")" "$cgid" "the event's cgroup id is the test cgroup's"

section "learned addresses: one by one, for their rule's ports, with a lifetime"
repo=repo.anaconda.com
expect_eperm "$(name_v4 $repo)" 443 tcp "$repo before it is learned"
out=$(ebx learn --config "$E2E_CONFIG" --name $repo 600 "$(name_v4 $repo)" "$(name_v6 $repo)" 2>&1)
expect_match 'apply adopted=1 fresh=0 .*links_updated=8' "$out" "a new process adopts the pins"
expect_match 'learn groups=e_tcp_80_443 addrs=2' "$out" "learned for *.anaconda.com's group"
expect_connect "$(name_v4 $repo)" 443 tcp "$repo learned"
expect_connect "$(name_v6 $repo)" 80 tcp "$repo learned, IPv6, port 80"
expect_eperm "$(name_v4 $repo)" 8080 tcp "$repo on a port its rule does not list"
conda=conda.anaconda.org
out=$(ebx learn --config "$E2E_CONFIG" --name $conda 1 "$(name_v4 $conda)" 2>&1)
expect_connect "$(name_v4 $conda)" 443 tcp "$conda learned for 1 s"
sleep 2.2
expect_eperm "$(name_v4 $conda)" 443 tcp "$conda after its lifetime"
expect_match "tcp $(name_v4 $conda):443 reason=expired" "$(ebx events --timeout-ms 200)" "reason=expired"
expect_match '^gc removed=1$' "$(ebx gc)" "garbage collection removes the expired address only"
expect_connect "$(name_v4 $repo)" 443 tcp "$repo still learned"

section "re-apply: a new generation, learned addresses carried, no gap, established connections kept"
hold_start h1 "$E2E_AML_WE_V4" 443
watch_start allowed "$E2E_AML_WE_V4" 443
watch_start denied "$E2E_UNLISTED_V4" 443
gen0=$(ebx dump | sed -nE 's/^active .*generation=([0-9]+).*/\1/p')
for i in 1 2 3 4; do
  if [ $((i % 2)) = 1 ]; then CFG_FEATURES="custom_images = true" ebpf_config; else ebpf_config; fi
  out=$(ebx apply --config "$E2E_CONFIG" 2>&1) || bad "re-apply $i: $out"
done
expect_match 'adopted=1 .*carried=[1-9]' "$out" "the last re-apply carried the learned addresses over"
sleep 0.3
watch_stop allowed
watch_stop denied
summary=$(watch_summary allowed)
expect_match '^[0-9]+ probes: ok x[0-9]+$' "$summary" "allowed destination during 4 re-applies: never cut ($summary)"
summary=$(watch_summary denied)
expect_match '^[0-9]+ probes: eperm x[0-9]+$' "$summary" "denied destination during 4 re-applies: never open ($summary)"
expect_match '^OK [0-9]+' "$(hold_stop h1)" "an established connection kept echoing through the re-applies"
gen1=$(ebx dump | sed -nE 's/^active .*generation=([0-9]+).*/\1/p')
expect_eq $((gen0 + 4)) "$gen1" "four re-applies, four generations"
expect_connect "$(name_v4 $repo)" 443 tcp "$repo carried into the new generations"
cp "$E2E_CONFIG" "$E2E_TMP/base.toml"
CFG_FEATURES="custom_images = true" ebpf_config
cp "$E2E_CONFIG" "$E2E_TMP/acr.toml"
out=$(ebx apply --config "$E2E_TMP/base.toml" --then "$E2E_TMP/acr.toml" --then "$E2E_TMP/acr.toml" 2>&1)
expect_match $'\napply adopted=0 fresh=0 nothing=0 .*links_created=0 links_updated=0' "$out" \
  "a change in the same process: a new generation, links untouched"
expect_match $'\napply adopted=0 fresh=0 nothing=1 ' "$out" "the same policy again in the same process: nothing to do"
expect_connect "$E2E_ACR_WE_V4" 443 tcp "custom_images = true: AzureContainerRegistry.WestEurope"
ebx apply --config "$E2E_TMP/base.toml" >/dev/null
expect_eperm "$E2E_ACR_WE_V4" 443 tcp "custom_images = false again"
ebpf_config

section "kill -9 of the owning process keeps enforcement; a new process adopts"
rm -f "$E2E_TMP/owner.out"
bg nsenter --net="/run/netns/$E2E_HNS" "$EBPF_TOOL" apply --config "$E2E_CONFIG" --pin-dir "$PIN" --stay \
  >"$E2E_TMP/owner.out" 2>&1
owner=$E2E_LAST_PID
wait_until 10 grep -q '^ready' "$E2E_TMP/owner.out" || bad "the owning process did not get ready: $(cat "$E2E_TMP/owner.out")"
hold_start h2 "$E2E_AML_WE_V4" 443
kill -KILL "$owner"
wait "$owner" 2>/dev/null
expect_true "the owning process is gone" bash -c "! kill -0 $owner 2>/dev/null"
expect_eq 8 "$(attached)" "programs still attached after kill -9"
expect_eperm "$E2E_UNLISTED_V4" 443 tcp "still denied after kill -9"
expect_connect "$E2E_AML_WE_V4" 443 tcp "still allowed after kill -9"
expect_connect "$(name_v4 $repo)" 443 tcp "learned address still allowed after kill -9"
expect_match '^OK [0-9]+' "$(hold_stop h2)" "an established connection survived kill -9"
out=$(ebx apply --config "$E2E_CONFIG" 2>&1)
expect_match '^apply adopted=1 fresh=0 .*links_created=0 links_updated=8' "$out" "re-creation adopts the pins"
expect_eq 8 "$(attached)" "still eight programs (updated in place, not added)"

section "audit mode: would-be denials are reported, nothing is denied"
CFG_TOP='mode = "audit"' ebpf_config
ebx apply --config "$E2E_CONFIG" >/dev/null
ebx events --timeout-ms 100 >/dev/null
expect_connect "$E2E_UNLISTED_V4" 443 tcp "unlisted in audit mode"
expect_match "audit connect4 .* tcp $E2E_UNLISTED_V4:443 reason=no-match" "$(ebx events --timeout-ms 200)" "audit event"
ebpf_config
ebx apply --config "$E2E_CONFIG" >/dev/null
expect_eperm "$E2E_UNLISTED_V4" 443 tcp "enforce again"

section "inbound.enforce = true: a listener inside the test cgroup"
host_listener() {
  local p
  for p in $(ip netns pids "$E2E_HNS"); do
    { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q 'netsim.py serve --label host' && echo "$p"
  done
}
no_host_listener() { [ -z "$(host_listener)" ]; }
for p in $(host_listener); do kill -TERM "$p"; done
wait_until 3 no_host_listener || bad "the harness's host listener did not stop"
rm -f "$E2E_TMP/host2.ready"
bg hx "$E2E_PY" "$E2E_NETSIM" serve --label host --tcp "$E2E_HOST_TCP_PORTS" --udp "$E2E_HOST_UDP_PORTS" \
  --ready "$E2E_TMP/host2.ready" >"$E2E_TMP/host2-listener.log" 2>&1
wait_for_file "$E2E_TMP/host2.ready" 5 || bad "listener in the cgroup did not start: $(cat "$E2E_TMP/host2-listener.log")"
expect_connect_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 8080 tcp "inbound.enforce = false: unlisted gets in"
CFG_INBOUND="enforce = true
ssh_from = [\"$E2E_SSH_NET4\"]" ebpf_config
ebx apply --config "$E2E_CONFIG" >/dev/null
expect_connect_in "$E2E_BNM_WE_V4" "$E2E_HOST_V4" 29876 tcp "IN1 BatchNodeManagement.WestEurope"
expect_connect_in "$E2E_BNM_WE_V6" "$E2E_HOST_V6" 29877 tcp "IN1 IPv6"
expect_connect_in "$E2E_AML_WE_V4" "$E2E_HOST_V4" 44224 tcp "IN2 AzureMachineLearning"
expect_connect_in "$E2E_SSH_V4" "$E2E_HOST_V4" 22 tcp "ssh_from"
expect_blocked_in "$E2E_BNM_EUS_V4" "$E2E_HOST_V4" 29876 tcp "BatchNodeManagement of another region"
expect_blocked_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 22 tcp "ssh from outside ssh_from"
expect_blocked_in "$E2E_UNLISTED_V6" "$E2E_HOST_V6" 29876 tcp "unlisted IPv6"
expect_blocked_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 5831 udp "unlisted UDP"
expect_connect "$E2E_AML_WE_V4" 443 tcp "egress and its replies with inbound enforced"
out=$(dns_query "$E2E_DNS_V4" 53 login.microsoftonline.com A)
expect_match '^A 192\.0\.2\.65' "$(echo "$out" | grep '^A ')" "the resolver's UDP answer gets in"
expect_match "deny ingress pid=0 comm=- cgroup=[0-9]+ tcp $E2E_UNLISTED_V4:22 reason=no-match" \
  "$(ebx events --timeout-ms 200)" "inbound denial in the ring buffer (remote address, local port)"

section "flush leaves nothing: no pin, no attachment, no program, no map"
progs=$(bpftool cgroup show "$CG" 2>/dev/null | awk '/ amlfw_/ {print $1}' | sort)
maps=$(for n in amlfw_active amlfw_conf amlfw_ports amlfw_lpm4 amlfw_lpm6 amlfw_learn4 amlfw_learn6 amlfw_flows amlfw_events amlfw_stats amlfw_dns_orig; do
  bpftool map show pinned "$PIN/$n" 2>/dev/null | sed -nE 's/^([0-9]+): .*/\1/p'; done | sort)
expect_eq 8 "$(echo "$progs" | wc -w)" "eight program ids recorded"
expect_eq 11 "$(echo "$maps" | wc -w)" "eleven map ids recorded"
expect_match '^flush ok$' "$(ebx flush)" "flush"
expect_true "pin directory removed" test ! -e "$PIN"
expect_eq 0 "$(attached)" "programs attached to the test cgroup after flush"
gone() {
  local id
  for id in $progs; do bpftool prog show id "$id" >/dev/null 2>&1 && return 1; done
  for id in $maps; do bpftool map show id "$id" >/dev/null 2>&1 && return 1; done
  return 0
}
if wait_until 5 gone; then ok "the programs and maps are freed"
else bad "programs or maps left: $(for id in $progs; do bpftool prog show id "$id" 2>/dev/null | head -n 1; done)"; fi
expect_connect "$E2E_UNLISTED_V4" 443 tcp "unlisted after flush"
expect_match '^flush ok$' "$(ebx flush)" "a second flush succeeds (idempotent)"
out=$(ebx apply --config "$E2E_CONFIG" 2>&1)
expect_match '^apply adopted=0 fresh=1 .*links_created=8' "$out" "apply after flush installs afresh"
expect_eperm "$E2E_UNLISTED_V4" 443 tcp "enforced again"
expect_match '^flush ok$' "$(ebx flush)" "final flush"
expect_eq 0 "$(attached)" "nothing attached at the end"
e2e_finish
