#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `amlfw status` against a running daemon: every field SPEC.md names (mode, backend,
# generation, rules, learned_addresses, service_tags {source, change_number, loaded_at},
# denied), counters read back from the kernel (accepted per rule group, rejected per chain)
# that move with real traffic, the generation that grows with an applied change, the human
# table, and exit 1 without a daemon.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

section "no daemon"
expect_rc 1 "amlfw status without a daemon: exit 1" af status --json
expect_match "no amlfw daemon answers on $E2E_TMP/run/control.sock" "$E2E_OUT" "the error names the socket"
expect_rc 1 "amlfw status (table) without a daemon: exit 1" af status

section "the daemon's status"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
expect_rc 0 "amlfw status --json" af status --json
st=$E2E_OUT
j() { echo "$st" | netsim jget "$1" 2>&1; }
expect_eq enforce "$(j 'd["mode"]')" "mode"
expect_eq "$E2E_BACKEND" "$(j 'd["backend"]')" "backend"
expect_match '^[1-9][0-9]*$' "$(j 'd["generation"]')" "generation is a positive integer"
plan_json "$E2E_TMP/plan.json"
want_rules=$(netsim jget 'len(d["rules"])' <"$E2E_TMP/plan.json")
expect_eq "$want_rules" "$(j 'd["rules"]')" "rules = the plan's rule count"
expect_match '^[0-9]+$' "$(j 'd["learned_addresses"]')" "learned_addresses is a count"
expect_eq "$E2E_TAGS" "$(j 'd["service_tags"]["source"]')" "service_tags.source"
expect_eq 375 "$(j 'd["service_tags"]["change_number"]')" "service_tags.change_number"
expect_match '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z$' "$(j 'd["service_tags"]["loaded_at"]')" \
  "service_tags.loaded_at is an ISO 8601 UTC time"
expect_eq "list" "$(j 'type(d["denied"]).__name__')" "denied is a list"
# The chain whose counters follow our probes: nftables' output chain; the eBPF backend
# counts per hook (connect4: the TCP connects below).
if is_ebpf; then chain=connect4; acc_rules='c["rules"] == "allowed"'; else chain=output; acc_rules='"NR2" in c["rules"].split(",")'; fi
expect_eq "true" "$(j "\"$chain\" in d[\"rejected\"]")" "rejected has the $chain chain's counters"
expect_eq "$E2E_CONFIG" "$(j 'd["config"]')" "config path"
expect_eq "false" "$(j 'd["started_from_state"]')" "started_from_state"

section "learned addresses (exact names resolved by the daemon)"
learned() { status_get 'd["learned_addresses"]' || echo 0; }
if wait_until 15 test "$(learned)" -ge 10; then ok "learned_addresses = $(learned) (>= 10: the catalog's exact names, A and AAAA)"
else bad "learned_addresses stays at $(learned)"; fi

section "counters follow traffic"
rej() { status_get "d[\"rejected\"][\"$chain\"][\"packets\"]"; }
acc() { status_get "sum(c[\"packets\"] for c in d[\"accepted\"] if c[\"chain\"] == \"$chain\" and $acc_rules)"; }
r0=$(rej); a0=$(acc)
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp unlisted
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "Storage.EastUS"
expect_connect "$E2E_AML_WE_V4" 443 tcp "AzureMachineLearning (NR2)"
r1=$(rej); a1=$(acc)
expect_true "rejected $chain packets grew ($r0 -> $r1)" test "$r1" -ge $((r0 + 2))
expect_true "accepted packets of the NR2 group grew ($a0 -> $a1)" test "$a1" -gt "$a0"

section "generation grows with an applied change"
g0=$(status_get 'd["generation"]')
CFG_FEATURES="r = true" write_config "$E2E_CONFIG"
expect_rc 0 "amlfw reload with R enabled" af reload
g1=$(status_get 'd["generation"]')
expect_eq $((g0 + 1)) "$g1" "generation after the reload"
n1=$(status_get 'd["rules"]')
expect_true "more rules with R ($want_rules -> $n1)" test "$n1" -gt "$want_rules"
expect_eq true "$(status_get 'd["last_reload"]["applied"]')" "last_reload.applied"

section "the human table"
expect_rc 0 "amlfw status" af status
expect_match "amlfw daemon +enforce with $E2E_BACKEND, generation $g1" "$E2E_OUT" "first line: mode, backend, generation"
expect_match "service tags +#375 from $E2E_TAGS" "$E2E_OUT" "service tags line"
expect_match "denied +(.*, )?$chain [0-9]+ packets \(reject\)" "$E2E_OUT" "denied line"
expect_match "learned +[0-9]+ addresses" "$E2E_OUT" "learned line"

section "after the daemon stops"
daemon_stop
expect_rc 1 "amlfw status after SIGTERM: exit 1" af status --json
expect_true "the control socket is removed at stop" test ! -e "$E2E_TMP/run/control.sock"
af flush >/dev/null 2>&1
e2e_finish
