#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One Kubernetes node, simulated (docs/kubernetes.md). On top of lib.sh's "host" (the node)
# and "inet" (the internet) namespaces:
#
#   [pod ns amlfw-e2e-p-PID]  eth0 192.0.2.10/29, 2001:db8:ffff:8::10/64, default via cni0
#        | veth
#   [node = host ns]  bridge cni0 192.0.2.9/29, 2001:db8:ffff:8::1/64; forwarding on
#                     cluster DNS stand-in: dnsmasq on 192.0.2.9:53 (kubernetes.default.svc.cluster.local)
#                     amlfw (the DaemonSet's pod: host network, outside the pods' cgroup)
#   [inet ns]         routes 192.0.2.8/29 and 2001:db8:ffff:8::/64 back via the node (no NAT:
#                     the listeners see the pod's own address)
#
# The pod's processes run in kubepods/pod1, a child cgroup the test makes (with the eBPF
# backend, kubepods is the cgroup amlfw attaches to: lib.sh's test cgroup). Each run proves,
# for the backend of AMLFW_E2E_BACKEND (ctest runs both):
#   - the pod reaches allowed service tags, and names after a lookup through the cluster DNS
#     (which forwards to amlfw's proxy: the CoreDNS `forward` set-up), and nothing else, fast;
#   - the node's own processes follow their own setting (nftables: egress.local = true filters
#     them; eBPF: processes outside kubepods are not filtered);
#   - kill -9 of the daemon and a new one (a pod upgrade), and SIGTERM and a new one (a pod
#     deletion), never open a window: a forbidden destination probed every 50 ms from the pod
#     never connects, an allowed one and a learned one never fail;
#   - the transparent redirect: the pod asks the cluster DNS, the query is redirected to
#     amlfw (nftables: [forward] dns_redirect, a prerouting dnat; eBPF: dns.redirect in the
#     pod's cgroup), which asks the cluster DNS itself; cluster names still resolve; the node
#     is not filtered (egress.local = false).
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
command -v nsenter >/dev/null 2>&1 || e2e_skip "'nsenter' is not installed (sudo make deps)"

POD_NS="amlfw-e2e-p-$$"
POD_V4=192.0.2.10
POD_V6=2001:db8:ffff:8::10
CNI_V4=192.0.2.9
CNI_V6=2001:db8:ffff:8::1
CLUSTER_NAME=kubernetes.default.svc.cluster.local
CLUSTER_NAME_V4=192.0.2.12
DNS_PORT=53

# kubepods: with ebpf, lib.sh's test cgroup (the one amlfw's config names); with nftables a
# cgroup of our own, so that the pod is set up the same way for both backends.
CG2=$(awk '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' /proc/self/mountinfo | head -n 1)
[ -n "$CG2" ] || e2e_skip "no cgroup2 file system is mounted"
if is_ebpf; then KUBEPODS=$E2E_CG; OWN_KUBEPODS=0; else KUBEPODS="$CG2/amlfw-e2e-kubepods-$$"; OWN_KUBEPODS=1; fi
POD_CG="$KUBEPODS/pod1"

node_cleanup() {
  local rc=$? p
  if [ -d "$POD_CG" ]; then
    for p in $(cat "$POD_CG/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    for _ in $(seq 30); do rmdir "$POD_CG" 2>/dev/null && break; sleep 0.1; done
    [ -d "$POD_CG" ] && bad "cleanup: the pod cgroup $POD_CG is still there"
  fi
  if [ "$OWN_KUBEPODS" = 1 ] && [ -d "$KUBEPODS" ]; then
    rmdir "$KUBEPODS" 2>/dev/null || bad "cleanup: $KUBEPODS is still there"
  fi
  (exit "$rc")
  e2e_cleanup
}
trap node_cleanup EXIT

# The node's own processes (the daemon, the cluster DNS, node probes) are not in kubepods:
# lib.sh's ebpf mode would move hx into its test cgroup, which here is kubepods.
E2E_CGX=(env)

[ "$OWN_KUBEPODS" = 1 ] && { mkdir "$KUBEPODS" || { bad "mkdir $KUBEPODS"; e2e_finish; }; }
mkdir "$POD_CG" || { bad "mkdir $POD_CG"; e2e_finish; }
topo_up

section "the node: a bridge, a pod behind it, routes back from the internet"
ip netns add "$POD_NS" || { bad "ip netns add $POD_NS"; e2e_finish; }
E2E_NSES+=("$POD_NS")
ip netns exec "$POD_NS" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip -n "$POD_NS" link set lo up
hx sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip -n "$E2E_HNS" link add cni0 type bridge
ip -n "$E2E_HNS" addr add "$CNI_V4/29" dev cni0
ip -n "$E2E_HNS" -6 addr add "$CNI_V6/64" dev cni0 nodad
ip -n "$E2E_HNS" link add vethpod1 type veth peer name eth0 netns "$POD_NS"
ip -n "$E2E_HNS" link set vethpod1 master cni0
ip -n "$E2E_HNS" link set vethpod1 up
ip -n "$E2E_HNS" link set cni0 up
ip -n "$POD_NS" addr add "$POD_V4/29" dev eth0
ip -n "$POD_NS" -6 addr add "$POD_V6/64" dev eth0 nodad
ip -n "$POD_NS" link set eth0 up
ip -n "$POD_NS" route add default via "$CNI_V4"
ip -n "$POD_NS" -6 route add default via "$CNI_V6"
ip -n "$E2E_INS" route add 192.0.2.8/29 via "$E2E_HOST_V4"
ip -n "$E2E_INS" -6 route add 2001:db8:ffff:8::/64 via "$E2E_HOST_V6"

# px CMD...: in the pod (its network namespace, its cgroup). pbg: the same in the background.
PX=(bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' px "$POD_CG" ip netns exec "$POD_NS")
px() { "${PX[@]}" "$@"; }
pbg() {
  "${PX[@]}" "$@" &
  E2E_LAST_PID=$!
  E2E_PIDS+=("$E2E_LAST_PID")
}
pod_probe() {  # ADDR PORT [tcp|udp]: "RESULT MS DETAIL"
  px "$E2E_PY" "$E2E_NETSIM" probe "$1" "$2" $(_pflag "${3:-tcp}") --timeout 2 2>&1
}
pod_connect() {  # ADDR PORT [tcp|udp] [what]
  local res ms detail
  read -r res ms detail < <(pod_probe "$1" "$2" "${3:-tcp}")
  _judge_connect "pod: $(_probe_desc "$1" "$2" "${3:-tcp}")${4:+ ($4)}" "$1" "$2" "${3:-tcp}" "$res" "$ms" "$detail"
}
pod_blocked() {  # ADDR PORT [tcp|udp] [what]
  local res ms detail
  read -r res ms detail < <(pod_probe "$1" "$2" "${3:-tcp}")
  _judge_blocked "pod: $(_probe_desc "$1" "$2" "${3:-tcp}")${4:+ ($4)}" "$res" "$ms" "$detail"
}
node_probe() { hx "$E2E_PY" "$E2E_NETSIM" probe "$1" "$2" --timeout 2 2>&1 | awk '{print $1}'; }
# pod_dns NAME [TYPE] [SERVER]: the answer's A/AAAA addresses through the cluster DNS.
pod_dns() {
  px "$E2E_PY" "$E2E_NETSIM" dnsq "${3:-$CNI_V4}" "$1" --port "$DNS_PORT" --type "${2:-A}" --timeout 2 2>&1 |
    awk '$1 == "A" || $1 == "AAAA" {print $2}' | sort | tr '\n' ' ' | sed 's/ $//'
}
# pwatch_start NAME ADDR PORT / pwatch_stop NAME: lib.sh's watch, from the pod.
pwatch_start() {
  rm -f "$E2E_TMP/watch.$1" "$E2E_TMP/watch.$1.stop"
  pbg "$E2E_PY" "$E2E_NETSIM" watch "$2" "$3" --stop "$E2E_TMP/watch.$1.stop" --out "$E2E_TMP/watch.$1" --interval 0.05
  eval "E2E_WATCH_PID_$1=$E2E_LAST_PID"
}

# phold_start NAME ADDR PORT: lib.sh's hold (a long-lived echoing connection), from the pod;
# hold_stop NAME reads its result.
phold_start() {
  rm -f "$E2E_TMP/hold.$1" "$E2E_TMP/hold.$1.stop" "$E2E_TMP/hold.$1.started"
  pbg "$E2E_PY" "$E2E_NETSIM" hold "$2" "$3" --stop "$E2E_TMP/hold.$1.stop" --out "$E2E_TMP/hold.$1"
  wait_for_file "$E2E_TMP/hold.$1.started" 3 || wait_for_file "$E2E_TMP/hold.$1" 1
}

# The cluster DNS stand-in (CoreDNS): dnsmasq on the bridge address, authoritative for a
# cluster name, forwarding everything else to SERVER (amlfw's proxy, or the upstream).
CLUSTER_DNS_PID=""
cluster_dns_start() {  # SERVER#PORT
  [ -n "$CLUSTER_DNS_PID" ] && { kill "$CLUSTER_DNS_PID" 2>/dev/null; wait "$CLUSTER_DNS_PID" 2>/dev/null; }
  : >"$E2E_TMP/clusterdns.log"
  bg hx dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
    --bind-interfaces --listen-address="$CNI_V4" --port=53 --user=root --group=root \
    --pid-file="$E2E_TMP/clusterdns.pid" --log-queries=extra --log-facility="$E2E_TMP/clusterdns.log" \
    --cache-size=0 --server="$1" --host-record="$CLUSTER_NAME,$CLUSTER_NAME_V4" \
    >"$E2E_TMP/clusterdns.out" 2>&1
  CLUSTER_DNS_PID=$E2E_LAST_PID
  wait_for 5 '[ "$(pod_dns $CLUSTER_NAME)" = $CLUSTER_NAME_V4 ]' || bad "the cluster DNS does not answer: $(cat "$E2E_TMP/clusterdns.out")"
}

# node_config MODE: A = the cluster DNS forwards to amlfw's proxy (node filtered with
# nftables); B = the pods' DNS is redirected to amlfw, which asks the cluster DNS.
node_config() {
  local top dns tail=""
  if [ "$1" = A ]; then
    E2E_PROXY_ADDR=127.0.0.1
    dns=""
    if is_ebpf; then top="[egress]
local = false"
    else top="[egress]
local = true

[forward]
interfaces = [\"cni0\"]"
    fi
  else
    E2E_PROXY_ADDR=$CNI_V4
    if is_ebpf; then dns="redirect = true"; top="[egress]
local = false"
    else dns=""; top="[egress]
local = false

[forward]
interfaces = [\"cni0\"]
dns_redirect = true"
    fi
  fi
  CFG_TAIL="$top" CFG_DNS="$dns" write_config "$E2E_CONFIG"
  if [ "$1" = B ]; then sed -i "s/^upstreams = .*/upstreams = [\"$CNI_V4\"]/" "$E2E_CONFIG"; fi
  cp "$E2E_CONFIG" "$E2E_TMP/amlfw-$1.toml"
}

# The pod to the internet before amlfw: the simulation routes it, without NAT.
read -r res ms detail < <(pod_probe "$E2E_UNLISTED_V4" 443)
expect_match "src=${POD_V4//./\\.}([^0-9]|$)" "$res $detail" "pod to the internet before amlfw: routed, the listener sees the pod's address"
read -r res ms detail < <(pod_probe "$E2E_UNLISTED_V6" 443)
expect_eq ok "$res" "pod to the internet over IPv6 before amlfw"

section "set-up A ($E2E_BACKEND): the cluster DNS forwards to amlfw's proxy"
node_config A
cluster_dns_start "127.0.0.1#$E2E_PROXY_PORT"
daemon_start
daemon_wait_ready 20 || bad "amlfw run did not get ready: $(tail -n 5 "$E2E_TMP/daemon.log")"
expect_match 'processes of cgroup|traffic forwarded from cni0' "$(af plan 2>/dev/null | sed -n 3p)" "plan says what is filtered"

section "A: the pod reaches allowed tags, and nothing else, fast"
pod_connect "$E2E_AML_WE_V4" 443 tcp "NR2 AzureMachineLearning"
pod_connect "$E2E_AML_X_V6" 443 tcp "NR2 IPv6"
pod_connect "$E2E_AAD_V4" 8080 tcp "NR1 AzureActiveDirectory, every port"
pod_blocked "$E2E_UNLISTED_V4" 443 tcp unlisted
pod_blocked "$E2E_UNLISTED_V6" 443 tcp "unlisted IPv6"
pod_blocked "$E2E_AML_WE_V4" 8080 tcp "allowed address, other port"
pod_blocked "$E2E_ST_EUS_V4" 443 tcp "Storage.EastUS: another region"
pod_blocked "$E2E_UNLISTED_V4" 5831 udp "unlisted UDP"
pod_blocked "$E2E_OTHER_DNS_V4" 53 udp "DNS to a server that is no resolver"
pod_blocked "$E2E_OTHER_DNS_V4" 53 tcp "DNS over TCP to a server that is no resolver"

section "A: names after a lookup through the cluster DNS"
repo=repo.anaconda.com
files=files.pythonhosted.org
pod_blocked "$(name_v4 $repo)" 443 tcp "$repo before any lookup"
expect_eq "$(name_v4 $repo)" "$(pod_dns $repo)" "pod asks the cluster DNS for $repo"
pod_connect "$(name_v4 $repo)" 443 tcp "$repo after the lookup"
expect_eq "$(name_v6 $repo)" "$(pod_dns $repo AAAA)" "pod asks the cluster DNS for $repo AAAA"
pod_connect "$(name_v6 $repo)" 80 tcp "$repo IPv6 after the lookup, port 80"
pod_blocked "$(name_v4 $repo)" 8080 tcp "$repo on a port its rule does not list"
expect_eq "$(name_v4 $files)" "$(pod_dns $files)" "pod asks for $files"
pod_connect "$(name_v4 $files)" 443 tcp "$files after the lookup"
expect_eq "$(name_v4 evilpytorch.org)" "$(pod_dns evilpytorch.org)" "pod asks for evilpytorch.org (answered)"
pod_blocked "$(name_v4 evilpytorch.org)" 443 tcp "evilpytorch.org: answered, not allowed"
expect_eq "$CLUSTER_NAME_V4" "$(pod_dns $CLUSTER_NAME)" "cluster names resolve"
expect_match "query\[A\] $repo from 127\.0\.0\.1|forwarded $repo to 127\.0\.0\.1" "$(cat "$E2E_TMP/clusterdns.log")" \
  "the cluster DNS forwarded $repo to amlfw's proxy"

section "A: the node's own processes follow their own setting"
if is_ebpf; then
  expect_eq ok "$(node_probe "$E2E_UNLISTED_V4" 443)" "ebpf: the node outside kubepods reaches an unlisted address"
  expect_eq ok "$(node_probe "$(name_v4 evilpytorch.org)" 443)" "ebpf: the node outside kubepods reaches a forbidden name"
else
  expect_blocked "$E2E_UNLISTED_V4" 443 tcp "nftables, egress.local = true: the node to an unlisted address"
  expect_connect "$E2E_AML_WE_V4" 443 tcp "nftables, egress.local = true: the node to an allowed tag"
fi

section "A: the rollout recipe: audit mode lets the pod through and lists what it would deny"
denied_has() {  # ADDR PORT: the daemon's denied list names ADDR:PORT
  [ "$(status_get "'yes' if any(x['dst'] == '$1' and x['port'] == $2 for x in d['denied']) else 'no'")" = yes ]
}
# (only the pod asked for Storage.EastUS, in "nothing else" above)
if wait_for 5 "denied_has $E2E_ST_EUS_V4 443"; then ok "enforce: status lists the pod's denied $E2E_ST_EUS_V4:443"
else bad "enforce: status does not list $E2E_ST_EUS_V4:443: $(status_get 'd["denied"]')"; fi
if ! is_ebpf; then
  expect_match '^[1-9][0-9]*$' "$(status_get 'd["rejected"]["forward"]["packets"]')" "status counts the pods' rejected packets under forward"
fi
sed -i 's/^mode = .*//; s/^backend = /mode = "audit"\nbackend = /' "$E2E_CONFIG"
expect_rc 0 "reload to mode = audit" af reload
pod_connect "$E2E_ST_EUS_V4" 8080 tcp "audit: a destination outside the policy connects"
if wait_for 5 "denied_has $E2E_ST_EUS_V4 8080"; then ok "audit: status lists $E2E_ST_EUS_V4:8080 as would-be denied"
else bad "audit: status does not list $E2E_ST_EUS_V4:8080: $(status_get 'd["denied"]')"; fi
cp "$E2E_TMP/amlfw-A.toml" "$E2E_CONFIG"
expect_rc 0 "reload to mode = enforce" af reload
pod_blocked "$E2E_ST_EUS_V4" 8080 tcp "enforce again: blocked"

# upgrade NAME SIGNAL: the daemon dies by SIGNAL and a new one starts, while the pod probes
# a forbidden, an allowed and a learned destination every 50 ms.
upgrade() {
  local what=$1 sig=$2 s
  pwatch_start denied "$E2E_UNLISTED_V4" 443
  pwatch_start allowed "$E2E_AML_WE_V4" 443
  pwatch_start learned "$(name_v4 $repo)" 443
  phold_start h1 "$E2E_AML_WE_V4" 443
  sleep 0.5
  kill "-$sig" "$E2E_DAEMON_PID"
  wait "$E2E_DAEMON_PID" 2>/dev/null
  expect_true "$what: the daemon is gone" bash -c "! kill -0 $E2E_DAEMON_PID 2>/dev/null"
  E2E_DAEMON_PID=""
  sleep 0.5
  expect_true "$what: enforcement stays while no daemon runs" enforcement_installed
  daemon_start
  daemon_wait_ready 20 || bad "$what: the new daemon did not get ready: $(tail -n 5 "$E2E_TMP/daemon.log")"
  sleep 0.5
  for w in denied allowed learned; do
    touch "$E2E_TMP/watch.$w.stop"
    eval "wait \$E2E_WATCH_PID_$w" 2>/dev/null
  done
  s=$(watch_summary denied)
  expect_match '^[0-9]+ probes: (refused|eperm|unreach) x[0-9]+$' "$s" "$what: the forbidden destination never connected ($s)"
  s=$(watch_summary allowed)
  expect_match '^[0-9]+ probes: ok x[0-9]+$' "$s" "$what: the allowed tag never failed ($s)"
  s=$(watch_summary learned)
  expect_match '^[0-9]+ probes: ok x[0-9]+$' "$s" "$what: the learned name never failed ($s)"
  expect_match '^OK [0-9]+' "$(hold_stop h1)" "$what: an established connection of the pod kept echoing"
  expect_ge_probes "$what"
}
# At least ~20 probes each: the watches really ran through the restart.
expect_ge_probes() {
  local n
  n=$(wc -l <"$E2E_TMP/watch.denied")
  if [ "$n" -ge 20 ]; then ok "$1: $n probes of the forbidden destination"; else bad "$1: only $n probes"; fi
}

section "A: kill -9 and a new daemon (the DaemonSet pod upgraded) never open a window"
upgrade "kill -9" KILL
pod_blocked "$E2E_UNLISTED_V4" 443 tcp "unlisted after the upgrade"
pod_connect "$(name_v4 $files)" 443 tcp "$files still learned after the upgrade"
section "A: SIGTERM and a new daemon (the pod deleted and recreated)"
upgrade "SIGTERM" TERM

section "set-up B ($E2E_BACKEND): the pods' DNS redirected to amlfw, which asks the cluster DNS"
daemon_stop
node_config B
cluster_dns_start "$E2E_DNS_V4"
daemon_start
daemon_wait_ready 20 || bad "amlfw run (B) did not get ready: $(tail -n 5 "$E2E_TMP/daemon.log")"
if ! is_ebpf; then
  expect_match "iifname \"cni0\" .*dnat ip to $CNI_V4:$E2E_PROXY_PORT" "$(hx nft list chain inet amlfw pods_dns 2>&1)" \
    "a prerouting dnat sends the pods' DNS to the proxy"
  expect_eq "" "$(hx nft list table inet amlfw | grep -E '^\s+chain output \{')" "egress.local = false: no output chain"
  # What the daemon programmed is what `plan --format nft` says (chain by chain, rules included).
  chain_list() {  # NETNS: every chain of table inet amlfw, without counters
    local c
    for c in $(ip netns exec "$1" nft list table inet amlfw | awk '$1 == "chain" {print $2}' | LC_ALL=C sort); do
      ip netns exec "$1" nft -s list chain inet amlfw "$c"
    done
  }
  RNS="amlfw-e2e-r-$$"
  ip netns add "$RNS" && E2E_NSES+=("$RNS")
  af plan --format nft >"$E2E_TMP/plan.nft" 2>"$E2E_TMP/plan.nft.err" || bad "plan --format nft: $(cat "$E2E_TMP/plan.nft.err")"
  expect_true "nft -f accepts plan --format nft with [forward]" ip netns exec "$RNS" nft -f "$E2E_TMP/plan.nft"
  chain_list "$E2E_HNS" >"$E2E_TMP/chains.kernel"
  chain_list "$RNS" >"$E2E_TMP/chains.text"
  expect_true "the daemon's chains = plan --format nft's ($(grep -c '^\s*chain ' "$E2E_TMP/chains.kernel") chains: forward, pods, pods_dns ...)" \
    cmp -s "$E2E_TMP/chains.kernel" "$E2E_TMP/chains.text"
  ip netns del "$RNS"
fi
conda=conda.anaconda.org
pod_blocked "$(name_v4 $conda)" 443 tcp "$conda before any lookup"
expect_eq "$(name_v4 $conda)" "$(pod_dns $conda)" "pod asks the cluster DNS ($CNI_V4:53) for $conda"
pod_connect "$(name_v4 $conda)" 443 tcp "$conda learned: the query went through amlfw"
from=$(sed -nE "s/.*query\[A\] $conda from ([0-9.]+).*/\1/p" "$E2E_TMP/clusterdns.log" | sort -u | tr '\n' ' ')
expect_ne "" "$from" "the cluster DNS got the query for $conda (from $from)"
expect_true "... from amlfw, never from the pod itself ($POD_V4)" bash -c "[ -n '$from' ] && ! grep -qw '$POD_V4' <<<'$from'"
expect_eq "$CLUSTER_NAME_V4" "$(pod_dns $CLUSTER_NAME)" "cluster names still resolve through amlfw"
pod_blocked "$(name_v4 evilpytorch.org)" 443 tcp "a forbidden name stays blocked"
pod_blocked "$E2E_UNLISTED_V4" 443 tcp "unlisted stays blocked"
expect_eq ok "$(node_probe "$E2E_UNLISTED_V4" 443)" "egress.local = false: the node reaches an unlisted address"
applies=$(af check --json 2>/dev/null | netsim jget 'd["applies_to"]' 2>&1)
if is_ebpf; then expect_match "processes of cgroup $KUBEPODS" "$applies" "amlfw check says whose traffic is filtered"
else expect_match "not the node's own processes .*forwarded from cni0" "$applies" "amlfw check says whose traffic is filtered"; fi
section "B: kill -9 and a new daemon never open a window"
repo=$conda
upgrade "B kill -9" KILL

section "flush"
daemon_stop
if is_ebpf; then
  out=$(nsenter --net="/run/netns/$E2E_HNS" "$AMLFW" flush --config "$E2E_CONFIG" 2>&1)
else
  out=$(af flush 2>&1)
fi
expect_true "amlfw flush ($out)" enforcement_absent
pod_connect "$E2E_UNLISTED_V4" 443 tcp "after flush the pod is free again"
e2e_finish
