#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd units: `systemd-analyze verify` of amlfw.service and amlfw-restore.service
# (offline, no PID 1 needed; ExecStart points at the built binary through temporary copies),
# with the eBPF drop-in too; their exposure score (`systemd-analyze security --offline`);
# and the capability sets they grant are enough: `amlfw run` and `amlfw restore` work under
# exactly the unit's CapabilityBoundingSet with no_new_privs (setpriv), in a test namespace.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
UNITS="$(cd "$E2E_DIR/../../systemd" && pwd)"
command -v systemd-analyze >/dev/null 2>&1 || e2e_skip "systemd-analyze is not installed"
U="$E2E_TMP/units"
mkdir -p "$U/amlfw.service.d"
for f in amlfw.service amlfw-restore.service; do
  sed "s#/usr/sbin/amlfw#$AMLFW#g" "$UNITS/$f" >"$U/$f"
done
cp "$UNITS/amlfw-ebpf.conf" "$U/amlfw.service.d/ebpf.conf"

section "systemd-analyze verify"
expect_rc 0 "verify amlfw.service amlfw-restore.service" systemd-analyze verify "$U/amlfw.service" "$U/amlfw-restore.service"
expect_eq "" "$E2E_OUT" "no warning"
expect_rc 0 "verify with the eBPF drop-in" env SYSTEMD_UNIT_PATH="$U:" systemd-analyze verify "$U/amlfw.service"
expect_eq "" "$E2E_OUT" "no warning"
sed 's/^Type=notify$/Type=notyfy/' "$U/amlfw.service" >"$U/broken.service"
systemd-analyze verify "$U/broken.service" >"$E2E_TMP/broken.out" 2>&1
expect_match "notyfy" "$(cat "$E2E_TMP/broken.out")" "verify does catch a broken unit (the check can fail)"
rm -f "$U/broken.service"
grep -q '^Type=notify$' "$U/amlfw.service" && ok "amlfw.service is Type=notify" || bad "amlfw.service is not Type=notify"
grep -q '^WatchdogSec=' "$U/amlfw.service" && ok "amlfw.service has WatchdogSec" || bad "no WatchdogSec"
for k in 'DefaultDependencies=no' 'Before=network-pre.target shutdown.target' 'Wants=network-pre.target'; do
  grep -qx "$k" "$U/amlfw-restore.service" && ok "amlfw-restore.service: $k" || bad "amlfw-restore.service lacks $k"
done

section "exposure (systemd-analyze security --offline)"
for f in amlfw.service amlfw-restore.service; do
  score=$(systemd-analyze security --offline=true "$U/$f" 2>/dev/null | sed -nE 's/.*Overall exposure level for [^:]+: ([0-9.]+).*/\1/p')
  expect_true "$f exposure $score <= 3.0 (systemd's scale: 0 best, 10 worst)" \
    "$E2E_PY" -c "import sys; sys.exit(0 if float('${score:-10}') <= 3.0 else 1)"
done

# caps UNIT: the unit's CapabilityBoundingSet as a setpriv --bounding-set argument.
caps() {
  local list c out=-all
  list=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNITS/$1")
  for c in $list; do c=${c#CAP_}; out+=",+${c,,}"; done
  echo "$out"
}

section "the unit's capabilities are enough"
topo_up
tail=""
getent group users >/dev/null && tail=$'[control]\ngroup = "users"'  # chown of the socket: CAP_CHOWN
E2E_PROXY_PORT=53 CFG_TAIL="$tail" write_config "$E2E_CONFIG"  # port 53: CAP_NET_BIND_SERVICE
run_caps=$(caps amlfw.service)
echo "    amlfw.service: setpriv --bounding-set=$run_caps --no-new-privs"
: >"$E2E_TMP/notify.log"
bg "$E2E_PY" "$E2E_NETSIM" notify "$E2E_TMP/notify.sock" "$E2E_TMP/notify.log"
wait_for_file "$E2E_TMP/notify.sock" 3
bg hx setpriv --bounding-set="$run_caps" --inh-caps=-all --no-new-privs env NOTIFY_SOCKET="$E2E_TMP/notify.sock" \
  "$AMLFW" run --config "$E2E_CONFIG" >>"$E2E_TMP/daemon.log" 2>&1
E2E_DAEMON_PID=$E2E_LAST_PID
if daemon_wait_ready 15; then ok "amlfw run is ready under the unit's capabilities"; else bad "amlfw run failed under the unit's capabilities"; fi
expect_match "^CapBnd:\s+0*1401$" "$(grep CapBnd "/proc/$E2E_DAEMON_PID/status")" \
  "the daemon's bounding set is CAP_CHOWN|CAP_NET_BIND_SERVICE|CAP_NET_ADMIN (0x1401)"
expect_rc 0 "amlfw status" af status --json
expect_connect "$E2E_AML_WE_V4" 443 tcp "enforced: allowed"
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "enforced: blocked"
out=$(dns_query 127.0.0.1 53 files.pythonhosted.org A)
expect_match "A $(name_v4 files.pythonhosted.org)" "$out" "the DNS proxy serves on port 53"
if getent group users >/dev/null; then
  expect_eq "users" "$(stat -c %G "$E2E_TMP/run/control.sock")" "the control socket's group was set (CAP_CHOWN)"
fi
expect_rc 0 "amlfw reload" af reload
daemon_stop
hx nft delete table inet amlfw
restore_caps=$(caps amlfw-restore.service)
echo "    amlfw-restore.service: setpriv --bounding-set=$restore_caps --no-new-privs"
expect_rc 0 "amlfw restore under the unit's capabilities" \
  hx setpriv --bounding-set="$restore_caps" --inh-caps=-all --no-new-privs "$AMLFW" restore --config "$E2E_CONFIG"
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "restored: blocked"
expect_connect "$E2E_AML_WE_V4" 443 tcp "restored: allowed"
hx nft delete table inet amlfw
expect_rc 1 "without CAP_NET_ADMIN restore fails (the capability check can fail)" \
  hx setpriv --bounding-set=-all --inh-caps=-all --no-new-privs "$AMLFW" restore --config "$E2E_CONFIG"
af flush >/dev/null 2>&1
e2e_finish
