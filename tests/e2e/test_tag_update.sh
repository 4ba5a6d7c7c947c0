#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Service-tag updates in the running daemon, by SIGHUP (reload re-reads the configuration
# and the tags file) and by the service_tags.refresh timer: added ranges become reachable,
# removed ones blocked, in one atomic step: an established TCP connection keeps echoing,
# an allowed address is never cut, an unlisted one never opens (guarantee 2).
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
CFG_REFRESH=1m write_config "$E2E_CONFIG"   # the shortest refresh amlfw accepts
change() { status_get 'd["service_tags"]["change_number"]'; }

section "daemon on the base tags (changeNumber 375)"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
expect_eq 375 "$(change)" "change_number"
gen0=$(status_get 'd["generation"]')
expect_connect "$E2E_AML_X_V4" 443 tcp "AzureMachineLearning"
expect_connect "$E2E_AML_REMOVED_V4" 443 tcp "AzureMachineLearning, the /30 the update removes"
expect_blocked "$E2E_NEW_V4" 443 tcp "the block the update adds"
expect_blocked "$E2E_NEW_V6" 443 tcp "the block the update adds, IPv6"

section "update by SIGHUP: AzureMachineLearning +203.0.113.64/28 +IPv6, -198.51.100.60/30"
hold_start est "$E2E_AML_WE_V4" 443
hold_start est6 "$E2E_AML_EUS_V6" 443
watch_start cut "$E2E_AML_X_V4" 443
watch_start open "$E2E_UNLISTED_V4" 443
write_tags update
kill -HUP "$E2E_DAEMON_PID"
if wait_for 15 '[ "$(change)" = 376 ]'; then ok "change_number 376 after SIGHUP"
else bad "change_number is '$(change)' 15 s after SIGHUP, want 376"; fi
if is_ebpf; then wait_for 5 '[ "$(amlfw_table | grep -c 203.0.113.64)" -gt 0 ]'
else wait_for 5 '[ "$(hx nft list table inet amlfw 2>/dev/null | grep -c 203.0.113.64)" -gt 0 ]'; fi
gen1=$(status_get 'd["generation"]')
expect_true "generation increased ($gen0 -> $gen1)" test "${gen1:-0}" -gt "${gen0:-0}"
expect_connect "$E2E_NEW_V4" 443 tcp "added block"
expect_connect "$E2E_NEW_V6" 443 tcp "added block, IPv6"
expect_blocked "$E2E_AML_REMOVED_V4" 443 tcp "removed /30"
expect_connect "$E2E_AML_X_V4" 443 tcp "rest of aml_x kept"
expect_blocked "$E2E_NEW_V4" 8080 tcp "added block, other port"
plan_json "$E2E_TMP/plan.json" && check_matrix "$E2E_TMP/plan.json" update egress

section "update by the refresh timer (service_tags.refresh = 1m, no signal): 198.51.100.60/30 back, -203.0.113.76/30"
expect_connect "$E2E_NEW_REMOVED_V4" 443 tcp "the /30 of the new block that the next update removes"
write_tags update2
if wait_for 75 '[ "$(change)" = 379 ]'; then ok "change_number 379 without a signal"
else bad "change_number is '$(change)' 75 s after the file changed, want 379"; fi
expect_blocked "$E2E_NEW_REMOVED_V4" 443 tcp "removed by the timer's update"
expect_connect "$E2E_NEW_V4" 443 tcp "rest of the new block kept"
expect_connect "$E2E_AML_REMOVED_V4" 443 tcp "/30 back"

section "a SIGHUP with the same configuration and tags changes nothing"
gen2=$(status_get 'd["generation"]')
kill -HUP "$E2E_DAEMON_PID"
sleep 1
expect_eq "$gen2" "$(status_get 'd["generation"]')" "generation (it counts applied changes)"
expect_connect "$E2E_AML_REMOVED_V4" 443 tcp "still allowed after SIGHUP"
expect_blocked "$E2E_NEW_REMOVED_V4" 443 tcp "still blocked after SIGHUP"
sleep 0.5

section "nothing dropped, nothing opened while updating"
watch_stop cut
watch_stop open
expect_eq 0 "$(grep -vc '^ok' "$E2E_TMP/watch.cut")" "allowed never cut ($(watch_summary cut))"
expect_eq 0 "$(grep -c '^ok' "$E2E_TMP/watch.open")" "unlisted never reachable ($(watch_summary open))"
expect_match '^OK' "$(hold_stop est)" "an established IPv4 connection echoed through every update"
expect_match '^OK' "$(hold_stop est6)" "an established IPv6 connection echoed through every update"
expect_true "the daemon is still running" kill -0 "$E2E_DAEMON_PID"
e2e_finish
