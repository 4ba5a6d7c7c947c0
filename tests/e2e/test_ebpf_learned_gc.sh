#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# backend = "ebpf": addresses learned from DNS answers expire in the kernel at their lifetime
# (the programs treat an expired entry as absent: EPERM at once), and the daemon removes them
# from the maps on its timer (when its own table drops them, and every 30 s at least), while
# addresses whose answers keep coming stay. dns.max_ttl = 2s, grace = 0: a learned address
# lives 2 s unless asked again.
AMLFW_E2E_BACKEND=ebpf   # this script is about the eBPF backend (tests/e2e/lib.sh)
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
P=$E2E_PROXY_ADDR
PP=$E2E_PROXY_PORT

# in_map ADDR: the learned entry of ADDR in the active generation ("" when there is none),
# expired ones included ("... expired").
in_map() { "$E2E_EBPF_TOOL" dump --pin-dir "$E2E_PIN" 2>/dev/null | grep "^learned $1 "; }
ask() { dns_query "$P" "$PP" "$1" A >/dev/null; }

CFG_DNS='min_ttl = "0s"
max_ttl = "2s"
grace = "0s"' write_config "$E2E_CONFIG"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi

short=conda.anaconda.org   # asked once
kept=repo.anaconda.com     # asked every second
A=$(name_v4 $short)
B=$(name_v4 $kept)

section "learned through the proxy"
ask $short
ask $kept
expect_connect "$A" 443 tcp "$short right after the answer"
expect_connect "$B" 443 tcp "$kept right after the answer"
expect_match "^learned $A groups=[0-9a-f]+ expires_in=[0-2]s$" "$(in_map "$A")" "$short is in the learned map with a 2 s lifetime"

section "expired: denied at once, then removed from the map by the daemon"
t0=$SECONDS
sleep 2.5
ask $kept
expect_blocked "$A" 443 tcp "$short after its lifetime"
removed=""
for _ in $(seq 45); do
  ask $kept
  if [ -z "$(in_map "$A")" ]; then removed=$((SECONDS - t0)); break; fi
  sleep 1
done
if [ -n "$removed" ]; then
  expect_true "$short removed from the map ${removed} s after it was learned (timer: 5 s, full sweep every 30 s)" test "$removed" -le 40
else
  bad "$short is still in the map 45 s later: $(in_map "$A")"
fi
expect_match "^learned $B groups=[0-9a-f]+ expires_in=[0-9]+s$" "$(in_map "$B")" "$kept, renewed by every answer, is still there (live)"
expect_connect "$B" 443 tcp "$kept still reachable"
expect_blocked "$A" 443 tcp "$short still denied"

section "asked again: learned again"
ask $short
expect_connect "$A" 443 tcp "$short after a new answer"
expect_true "the daemon is still running" kill -0 "$E2E_DAEMON_PID"
e2e_finish
