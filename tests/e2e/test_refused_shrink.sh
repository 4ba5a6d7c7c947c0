#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad input changes nothing (SPEC guarantee 4), on SIGHUP: a service-tags file that shrinks tags
# beyond service_tags.max_shrink, one missing a required tag, a truncated one, and a bad
# configuration are refused with a message; the kernel keeps the last good policy, the
# daemon keeps running and still accepts the next good update. `amlfw apply` with a bad
# file changes nothing either.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
change() { status_get 'd["service_tags"]["change_number"]'; }

daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
expect_eq 375 "$(change)" "change_number"
good=$(amlfw_table)

unchanged() {  # WHAT
  local now
  sleep 2
  now=$(amlfw_table)
  if [ "$now" = "$good" ]; then ok "ruleset unchanged after $1"
  else bad "ruleset changed after $1:"; diff <(echo "$good") <(echo "$now") | head; fi
  expect_eq 375 "$(change)" "change_number still 375 after $1"
  expect_true "daemon alive after $1" kill -0 "$E2E_DAEMON_PID"
  expect_connect "$E2E_AML_EUS_V4" 443 tcp "AzureMachineLearning (eastus block) still allowed"
  expect_blocked "$E2E_UNLISTED_V4" 443 tcp "unlisted still blocked"
}

section "a shrinking file (AzureMachineLearning, Storage, BatchNodeManagement lose 2/3)"
hold_start est "$E2E_AML_X_V4" 443
log_lines=$(wc -l <"$E2E_TMP/daemon.log")
write_tags shrink
kill -HUP "$E2E_DAEMON_PID"
unchanged "a shrinking file"
expect_connect "$E2E_AML_X_V4" 443 tcp "the ranges the file dropped are still allowed"
msg=$(tail -n +"$((log_lines + 1))" "$E2E_TMP/daemon.log")
expect_match 'AzureMachineLearning' "$msg" "the daemon says which tag would shrink"

section "a file without AzureMachineLearning"
write_tags nomltag
kill -HUP "$E2E_DAEMON_PID"
unchanged "a file missing a required tag"

section "a truncated file"
write_tags base
head -c 3000 "$E2E_TAGS" >"$E2E_TAGS.part" && mv "$E2E_TAGS.part" "$E2E_TAGS"
kill -HUP "$E2E_DAEMON_PID"
unchanged "a truncated file"

section "a bad configuration (SIGHUP)"
write_tags base
kill -HUP "$E2E_DAEMON_PID"
sleep 1
good=$(amlfw_table)
daemon_config=$E2E_CONFIG
cp "$daemon_config" "$E2E_TMP/good.toml"
printf 'regoin = "westeurope"\n' >>"$daemon_config"
E2E_CONFIG="$E2E_TMP/good.toml"   # amlfw status reads the runtime dir from a good copy
kill -HUP "$E2E_DAEMON_PID"
unchanged "a bad configuration"
cp "$E2E_TMP/good.toml" "$daemon_config"
E2E_CONFIG=$daemon_config
expect_match '^OK' "$(hold_stop est)" "an established connection echoed through every refusal"

section "the next good update is accepted"
write_tags update
kill -HUP "$E2E_DAEMON_PID"
if wait_for 15 '[ "$(change)" = 376 ]'; then ok "change_number 376"; else bad "change_number '$(change)', want 376"; fi
expect_connect "$E2E_NEW_V4" 443 tcp "added block"
good=$(amlfw_table)

section "amlfw apply with a truncated file changes nothing"
daemon_stop
write_tags base 380
head -c 3000 "$E2E_TAGS" >"$E2E_TAGS.part" && mv "$E2E_TAGS.part" "$E2E_TAGS"
expect_rc 3 "amlfw apply with a truncated file" af apply
expect_match "$E2E_TAGS" "$E2E_OUT" "names the file"
now=$(amlfw_table)
if [ "$now" = "$good" ]; then ok "ruleset unchanged after a refused apply"
else bad "ruleset changed after a refused apply:"; diff <(echo "$good") <(echo "$now") | head; fi
expect_connect "$E2E_NEW_V4" 443 tcp "still allowed"
e2e_finish
