#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fail closed (SPEC guarantee 2): `amlfw run` says READY=1 to systemd, and what it
# programmed stays in force after kill -9 and after SIGTERM; a restart takes over without
# a moment where the machine is open or cut off from what was allowed.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

section "amlfw run"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
expect_true "READY=1 on NOTIFY_SOCKET (systemd Type=notify)" grep -q '^READY=1' "$E2E_TMP/notify.log"
expect_rc 0 "amlfw status --json" af status --json
st=$E2E_OUT
expect_eq enforce "$(echo "$st" | netsim jget 'd["mode"]')" "status mode"
expect_eq "$E2E_BACKEND" "$(echo "$st" | netsim jget 'd["backend"]')" "status backend"
expect_eq 375 "$(echo "$st" | netsim jget 'd["service_tags"]["change_number"]')" "status service_tags.change_number"
expect_match '^[1-9][0-9]*$' "$(echo "$st" | netsim jget 'd["generation"]')" "status generation >= 1"
expect_match "ServiceTags_Public.json" "$(echo "$st" | netsim jget 'd["service_tags"]["source"]')" "status service_tags.source"
expect_rc 0 "amlfw reload (same as SIGHUP)" af reload
expect_true "the daemon survived the reload" kill -0 "$E2E_DAEMON_PID"
expect_connect "$E2E_AML_WE_V4" 443 tcp allowed
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp unlisted
before=$(amlfw_table)
# eBPF: the ids of the pinned maps, which a restarted daemon adopts (nftables: the table).
pinned_map_ids() { for m in amlfw_active amlfw_lpm4 amlfw_learn4 amlfw_flows; do bpftool map show pinned "$E2E_PIN/$m" | cut -d: -f1; done | tr '\n' ' '; }
is_ebpf && maps_before=$(pinned_map_ids)

section "kill -9"
hold_start k9 "$E2E_AML_WE_V4" 443
kill -KILL "$E2E_DAEMON_PID"
wait "$E2E_DAEMON_PID" 2>/dev/null
E2E_DAEMON_PID=""
sleep 0.5
expect_true "$(e2e_enforcement_name) still there" enforcement_installed
after=$(amlfw_table)
if [ "$before" = "$after" ]; then ok "the ruleset is unchanged after kill -9"
else bad "the ruleset changed after kill -9:"; diff <(echo "$before") <(echo "$after") | head; fi
expect_connect "$E2E_AML_WE_V4" 443 tcp "still allowed"
expect_connect "$(name_v4 pypi.org)" 443 tcp "names resolved before the kill still allowed"
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "still blocked"
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "still blocked"
expect_rc 1 "amlfw status without a daemon: exit 1" af status --json

section "restart: no open moment, no cut-off moment"
watch_start open "$E2E_UNLISTED_V4" 8080
watch_start cut "$E2E_AML_WE_V4" 443
sleep 0.2
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready again"; else bad "amlfw run did not restart"; fi
sleep 0.5
watch_stop open
watch_stop cut
expect_eq 0 "$(grep -c '^ok' "$E2E_TMP/watch.open")" "unlisted never reachable during the restart ($(watch_summary open))"
expect_eq 0 "$(grep -vc '^ok' "$E2E_TMP/watch.cut")" "allowed never cut during the restart ($(watch_summary cut))"
expect_match '^OK' "$(hold_stop k9)" "a connection established before the kill still echoes"
expect_rc 0 "amlfw status --json" af status --json
expect_single_enforcement "one table after the restart"
if is_ebpf; then
  expect_eq "$maps_before" "$(pinned_map_ids)" "eBPF: the restarted daemon adopted the pinned maps (same map ids)"
fi

section "SIGTERM keeps enforcement too"
daemon_stop
expect_true "$(e2e_enforcement_name) still there" enforcement_installed
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "still blocked after SIGTERM"
expect_connect "$E2E_AML_WE_V4" 443 tcp "still allowed after SIGTERM"

section "flush ends it"
expect_rc 0 "amlfw flush" af flush
expect_connect "$E2E_UNLISTED_V4" 8080 tcp "open after flush"
e2e_finish
