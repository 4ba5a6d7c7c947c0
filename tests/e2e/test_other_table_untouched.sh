#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# amlfw owns one table, inet amlfw, and nothing else: tables made by someone else in the
# same namespace (including ones with similar names and base chains on the same hooks)
# survive apply, run, kill and flush unchanged, and cannot open a hole in enforcement.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

hx nft -f - <<'NFT'
table inet other {
  set friends { type ipv4_addr; flags interval; elements = { 203.0.113.200, 198.51.100.96/28 } }
  counter seen { }
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr @friends counter name "seen" accept
  }
  chain in {
    type filter hook input priority -10; policy accept;
    tcp dport 22 counter accept
  }
}
table ip legacy {
  chain post { type nat hook postrouting priority 100; policy accept; }
}
table inet amlfw_other {
  chain keep { }
}
NFT
others() { hx nft -s list ruleset | awk '/^table inet amlfw \{/{skip=1} skip && /^\}/{skip=0; next} !skip'; }
before=$(others)
tables_before=$(hx nft list tables | sort)
expect_match 'table inet other' "$before" "someone else's tables are in place"

check_others() {
  local now
  now=$(others)
  if [ "$now" = "$before" ]; then ok "other tables unchanged $1"
  else bad "other tables changed $1:"; diff <(echo "$before") <(echo "$now") | head -20; fi
}

section "apply"
expect_rc 0 "amlfw apply" af apply
check_others "after apply"
expect_eq "$(printf '%s\ntable inet amlfw' "$tables_before" | sort)" "$(hx nft list tables | sort)" "tables: theirs plus inet amlfw"
expect_blocked "$E2E_UNLISTED_V4" 443 tcp "their accept on 203.0.113.200 does not open amlfw's deny"
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "their accept on 198.51.100.96/28 does not open amlfw's deny"
expect_connect "$E2E_AML_WE_V4" 443 tcp "allowed"

section "apply again, daemon, kill -9"
expect_rc 0 "amlfw apply again" af apply
check_others "after a second apply"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
check_others "while the daemon runs"
kill -KILL "$E2E_DAEMON_PID"; wait "$E2E_DAEMON_PID" 2>/dev/null; E2E_DAEMON_PID=""
check_others "after kill -9 of the daemon"

section "flush"
expect_rc 0 "amlfw flush" af flush
check_others "after flush"
expect_eq "$tables_before" "$(hx nft list tables | sort)" "tables as before amlfw"
expect_true "table inet amlfw_other (a similar name) survived" hx nft list table inet amlfw_other
expect_rc 0 "amlfw flush again" af flush
check_others "after a second flush"
expect_connect "$E2E_UNLISTED_V4" 443 tcp "open again"
e2e_finish
