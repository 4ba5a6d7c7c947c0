#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# systemd's notification protocol as a Type=notify unit with WatchdogSec sees it, collected
# by a python3 datagram socket standing in for PID 1 ($NOTIFY_SOCKET): READY=1 only once
# the first policy is in the kernel (never for a start that fails), STATUS= lines,
# WATCHDOG=1 at about half of WATCHDOG_USEC from the event loop, RELOADING=1 (with
# MONOTONIC_USEC) then READY=1 for SIGHUP and for `amlfw reload`, also when the reload is
# refused, and STOPPING=1 at SIGTERM.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
NLOG="$E2E_TMP/notify.log"
bg "$E2E_PY" "$E2E_NETSIM" notify "$E2E_TMP/notify.sock" "$NLOG"
wait_for_file "$E2E_TMP/notify.sock" 3 || { bad "notify collector did not start"; exit 1; }

# run_daemon CONFIG [WATCHDOG_USEC]: amlfw run under the fake NOTIFY_SOCKET.
run_daemon() {
  : >"$NLOG"
  bg hx env NOTIFY_SOCKET="$E2E_TMP/notify.sock" ${2:+WATCHDOG_USEC=$2} "$AMLFW" run --config "$1" \
    >>"$E2E_TMP/daemon.log" 2>&1
  E2E_DAEMON_PID=$E2E_LAST_PID
}
count() { grep -c "^$1" "$NLOG" 2>/dev/null || true; }
at_least() { test "$(count "$1")" -ge "$2"; }  # for wait_until (re-evaluated each try)

section "a start that fails never says READY=1"
CFG_TOP='mode = "enforced"' write_config "$E2E_TMP/broken.toml"
run_daemon "$E2E_TMP/broken.toml"
if wait_until 10 bash -c "! kill -0 $E2E_DAEMON_PID 2>/dev/null"; then
  wait "$E2E_DAEMON_PID"; rc=$?
  expect_eq 2 "$rc" "amlfw run with a bad config exits 2"
else
  bad "amlfw run with a bad config keeps running"
fi
E2E_DAEMON_PID=""
expect_eq 0 "$(count READY=1)" "no READY=1"
expect_match "STATUS=start failed: .*broken.toml:[0-9]+:[0-9]+: mode: 'enforced'" "$(cat "$NLOG")" "STATUS says why"
expect_eq 1 "$(count ERRNO=)" "ERRNO= sent"
expect_true "nothing was programmed (no $(e2e_enforcement_name))" enforcement_absent

section "READY=1 once the policy is in the kernel"
run_daemon "$E2E_CONFIG" 400000
if wait_until 15 grep -q '^READY=1' "$NLOG"; then ok "READY=1"; else bad "no READY=1: $(cat "$NLOG")"; fi
expect_true "$(e2e_enforcement_name) in place when READY=1 is seen" enforcement_installed
expect_match "^STATUS=enforcing 30 rules .*generation 1, service tags #375" "$(grep -m1 '^STATUS=' "$NLOG")" \
  "STATUS with READY=1 summarises the policy"
expect_eq 1 "$(count READY=1)" "exactly one READY=1 at start"

section "WATCHDOG=1 from the loop"
w0=$(count WATCHDOG=1)
sleep 2
w1=$(count WATCHDOG=1)
# WATCHDOG_USEC=400000: a ping every 200 ms, ~10 in 2 s.
expect_true "WATCHDOG=1 pings in 2 s: $((w1 - w0)) (want 6..14)" test $((w1 - w0)) -ge 6 -a $((w1 - w0)) -le 14

section "reload: RELOADING=1 then READY=1"
kill -HUP "$E2E_DAEMON_PID"
if wait_until 5 at_least READY=1 2; then ok "READY=1 after SIGHUP"; else bad "no READY=1 after SIGHUP"; fi
expect_eq 1 "$(count RELOADING=1)" "RELOADING=1 once"
expect_match '^MONOTONIC_USEC=[0-9]+$' "$(grep -m1 '^MONOTONIC_USEC=' "$NLOG")" "MONOTONIC_USEC with RELOADING=1"
expect_true "RELOADING=1 comes before the second READY=1" \
  test "$(grep -n '^RELOADING=1' "$NLOG" | head -1 | cut -d: -f1)" -lt "$(grep -n '^READY=1' "$NLOG" | sed -n 2p | cut -d: -f1)"
# The same config and tags: nothing changes in the kernel, so the generation stays (it counts
# applied changes, SPEC status.generation).
expect_match "^STATUS=enforcing .*generation 1," "$(grep '^STATUS=' "$NLOG" | tail -1)" "STATUS after the reload"
expect_rc 0 "amlfw reload" af reload
expect_eq 2 "$(count RELOADING=1)" "RELOADING=1 for amlfw reload too"
echo 'bogus = 1' >>"$E2E_CONFIG"
expect_rc 2 "amlfw reload with a broken config: exit 2" af reload
expect_eq 3 "$(count RELOADING=1)" "RELOADING=1 for the refused reload"
expect_eq 4 "$(count READY=1)" "READY=1 after the refused reload (the old policy stays in force)"
expect_match "^STATUS=reload refused: .*unknown key 'bogus'" "$(grep '^STATUS=' "$NLOG" | tail -1)" "STATUS says the reload was refused"
expect_true "still alive" kill -0 "$E2E_DAEMON_PID"
w2=$(count WATCHDOG=1)
sleep 1
expect_true "WATCHDOG=1 continues after reloads" test "$(count WATCHDOG=1)" -gt "$w2"

section "STOPPING=1"
daemon_stop
expect_eq 1 "$(count STOPPING=1)" "STOPPING=1 at SIGTERM"
expect_match "^STATUS=stopping; enforcement stays in force" "$(grep '^STATUS=' "$NLOG" | tail -1)" "last STATUS"
expect_true "the policy stays after the stop ($(e2e_enforcement_name))" enforcement_installed
af flush >/dev/null 2>&1
e2e_finish
