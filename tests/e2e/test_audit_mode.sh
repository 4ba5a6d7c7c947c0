#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# mode = "audit": nothing is denied, what would be denied is counted and reported in
# `status --json` "denied"; switching to enforce by reload (SIGHUP) starts denying, and
# denied destinations are reported too.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

denied_count() {  # ADDR PORT -> count reported for it (0 if absent)
  status_get "sum(e.get('count', 0) for e in d.get('denied', []) if e.get('dst') == '$1' and int(e.get('port', 0)) == $2)" || echo 0
}

status_mode() { status_get 'd["mode"]'; }

section "audit"
CFG_TOP='mode = "audit"' write_config "$E2E_CONFIG"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
expect_eq audit "$(status_get 'd["mode"]')" "status mode"
expect_connect "$E2E_UNLISTED_V4" 443 tcp "unlisted connects in audit mode"
expect_connect "$E2E_ST_EUS_V4" 443 tcp "Storage.EastUS connects in audit mode"
expect_connect "$E2E_AML_WE_V4" 443 tcp "allowed connects"
if wait_for 10 '[ "$(denied_count "$E2E_UNLISTED_V4" 443)" -ge 1 ]'; then ok "status lists $E2E_UNLISTED_V4:443 as would-be-denied"
else bad "status denied does not list $E2E_UNLISTED_V4:443: $(af status --json 2>&1 | head -c 300)"; fi
expect_eq 0 "$(denied_count "$E2E_AML_WE_V4" 443)" "an allowed destination is not listed"
expect_true "$(e2e_enforcement_name) exists in audit mode" enforcement_installed

section "enforce by reload"
write_config "$E2E_CONFIG"
kill -HUP "$E2E_DAEMON_PID"
if wait_for 10 '[ "$(status_mode)" = enforce ]'; then ok "status mode enforce after SIGHUP"
else bad "status mode is '$(status_get 'd["mode"]')' after SIGHUP"; fi
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "Storage.EastUS denied now"
if wait_for 10 '[ "$(denied_count "$E2E_ST_EUS_V4" 443)" -ge 1 ]'; then ok "status lists $E2E_ST_EUS_V4:443 as denied"
else bad "status denied does not list $E2E_ST_EUS_V4:443"; fi
expect_connect "$E2E_AML_WE_V4" 443 tcp "allowed still connects"
e2e_finish
