#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The control socket of `amlfw run`: its mode and group, who may talk (file mode, then
# SO_PEERCRED: a non-root user is refused even through a socket left world-writable; a
# member of [control] group is let in), bounded requests (an oversized one gets an error
# and the connection is closed; a malformed one gets an error and the connection stays),
# explain from the live state (learned addresses) with the offline fallback, reload applied
# (exit 0) and refused (exit 2: the old policy stays, also for SIGHUP), one daemon per host.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
SOCK="$E2E_TMP/run/control.sock"
GROUP=users
getent group "$GROUP" >/dev/null || GROUP=""
GID=$(getent group "$GROUP" | cut -d: -f3)
CFG_TAIL=$'[control]\n'"group = \"$GROUP\"" write_config "$E2E_CONFIG"
cp "$E2E_CONFIG" "$E2E_TMP/good.toml"

# as_nobody [--group GID] CMD...: uid/gid 65534, no supplementary group (or only GID).
as_nobody() {
  local groups=(--clear-groups)
  if [ "$1" = --group ]; then groups=(--groups "$2"); shift 2; fi
  hx setpriv --reuid=65534 --regid=65534 "${groups[@]}" "$@"
}
# raw_request TEXT: send TEXT on the socket; print the replies, then "EOF" if the daemon closed.
raw_request() {
  "$E2E_PY" - "$SOCK" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode())
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            data += b"EOF\n"
            break
        data += chunk
except socket.timeout:
    pass
sys.stdout.write(data.decode(errors="replace"))
EOF
}

daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi

section "the socket"
if [ -n "$GROUP" ]; then
  expect_eq "660 root $GROUP socket" "$(stat -c '%a %U %G %F' "$SOCK")" "mode, owner, group, type"
else
  expect_eq "660 root root socket" "$(stat -c '%a %U %G %F' "$SOCK")" "mode, owner, group, type"
fi
chmod 755 "$E2E_TMP" "$E2E_TMP/run"
expect_rc 0 "root: amlfw status" af status --json

section "who may talk"
expect_rc 1 "uid 65534 without the group: refused" as_nobody "$AMLFW" status --json --config "$E2E_CONFIG"
expect_match "permission denied" "$E2E_OUT" "the error says permission denied"
if [ -n "$GROUP" ]; then
  expect_rc 0 "uid 65534 in group $GROUP: allowed" as_nobody --group "$GID" "$AMLFW" status --json --config "$E2E_CONFIG"
  expect_eq enforce "$(echo "$E2E_OUT" | netsim jget 'd["mode"]')" "the member gets the status"
fi
chmod 666 "$SOCK"  # a mistake an operator could make: SO_PEERCRED still refuses
expect_rc 1 "uid 65534 through a world-writable socket: refused by SO_PEERCRED" \
  as_nobody "$AMLFW" status --json --config "$E2E_CONFIG"
expect_match "permission denied: uid 65534 is not root" "$E2E_OUT" "the daemon names the uid"
chmod 660 "$SOCK"
out=$(as_nobody "$AMLFW" explain "$E2E_AML_WE_V4:443" --json --config "$E2E_CONFIG" --service-tags "$E2E_TAGS" 2>&1)
expect_eq "allow NR2" "$(echo "$out" | netsim jget 'd["verdict"] + " " + d["rule"]' 2>/dev/null || echo "$out")" \
  "uid 65534: explain --service-tags still answers offline"

section "bounded requests"
out=$(raw_request "$(printf '{"cmd":"explain","target":"%s"}' "$(head -c 6000 /dev/zero | tr '\0' a)")")
expect_match 'request larger than 4096 bytes' "$out" "6000 bytes without a newline: error reply"
expect_match 'EOF' "$out" "... and the connection is closed"
out=$(raw_request "$(printf '%*s' 5000 '')\\n")
expect_match 'request larger than 4096 bytes' "$out" "5000 bytes with a newline: error reply"
expect_match 'EOF' "$out" "... and the connection is closed"
out=$(raw_request 'hello\n{"cmd":"launch"}\n{"cmd":"status"}\n')
expect_match 'not JSON' "$out" "malformed: error reply"
expect_match "unknown cmd 'launch'" "$out" "unknown cmd: error reply"
expect_match '"generation"' "$out" "the connection stays usable: the next request is answered"
expect_true "the daemon is alive" kill -0 "$E2E_DAEMON_PID"

section "explain from the live state"
pypi=$(name_v4 pypi.org)
wait_until 15 test -n "$(af explain "$pypi:443" --json 2>/dev/null | netsim jget 'd["rule"] or ""')" || true
out=$(af explain "$pypi:443" --json 2>&1)
expect_eq "allow AR4 daemon" "$(echo "$out" | netsim jget 'd["verdict"] + " " + str(d["rule"]) + " " + d["source"]' 2>/dev/null || echo "$out")" \
  "explain $pypi:443 (pypi.org, learned by the daemon)"
expect_match "learned from the DNS answer for pypi.org" "$(echo "$out" | netsim jget 'd["why"]')" "why names the name"
out=$(af explain "$pypi:8080" --json 2>&1)
expect_eq "deny" "$(echo "$out" | netsim jget 'd["verdict"]')" "explain $pypi:8080 (a port its rule does not list)"
out=$(af explain "$pypi:443" --json --service-tags "$E2E_TAGS" 2>&1)
expect_eq "deny null" "$(echo "$out" | netsim jget 'd["verdict"] + " " + str(d["rule"] if d["rule"] else "null")' 2>/dev/null || echo "$out")" \
  "explain --service-tags answers offline (learned addresses unknown)"
expect_rc 0 "explain (table) through the daemon" af explain pypi.org:443
expect_match "^allow pypi.org:443 \(rule AR4\).*\[running daemon\]" "$E2E_OUT" "the table says it asked the daemon"

section "reload"
before=$(amlfw_table)
g0=$(status_get 'd["generation"]')
expect_rc 0 "amlfw reload (unchanged config): exit 0" af reload
expect_match "^amlfw: reloaded: enforcing" "$E2E_OUT" "says it was applied"
g1=$(status_get 'd["generation"]')
echo 'regoin = "westeurope"' >>"$E2E_CONFIG"
expect_rc 2 "amlfw reload with a broken config: exit 2" af reload
expect_match "reload refused: .*amlfw.toml:[0-9]+:[0-9]+: unknown key 'regoin'" "$E2E_OUT" "names the file, line, column and key"
expect_eq "$g1" "$(status_get 'd["generation"]')" "generation unchanged"
expect_eq "$before" "$(amlfw_table)" "ruleset unchanged"
expect_connect "$E2E_AML_WE_V4" 443 tcp "still allowed"
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "still blocked"
kill -HUP "$E2E_DAEMON_PID"
if wait_until 5 grep -q "reload refused" "$E2E_TMP/notify.log"; then ok "SIGHUP with the broken config: refused (STATUS)"
else bad "no 'reload refused' STATUS after SIGHUP"; fi
expect_true "the daemon survived" kill -0 "$E2E_DAEMON_PID"
expect_eq "$before" "$(amlfw_table)" "ruleset unchanged after SIGHUP"
expect_eq false "$(status_get 'd["last_reload"]["applied"]')" "status last_reload.applied"
cp "$E2E_TMP/good.toml" "$E2E_CONFIG"
expect_rc 0 "amlfw reload with the config fixed: exit 0" af reload

section "one daemon per host"
# In the host namespace (eBPF: and the test cgroup) like the first: should it get past the
# check, it could only touch the test's own enforcement.
bg hx "$AMLFW" run --config "$E2E_CONFIG" >"$E2E_TMP/second.log" 2>&1
second=$E2E_LAST_PID
if wait_until 20 bash -c "! kill -0 $second 2>/dev/null"; then
  wait "$second"; rc=$?
  expect_eq 1 "$rc" "a second amlfw run exits 1"
  expect_match "another amlfw daemon answers there" "$(cat "$E2E_TMP/second.log")" "and says why"
else
  bad "a second amlfw run keeps running"
fi
expect_rc 0 "the first daemon still answers" af status --json
expect_eq "$before" "$(amlfw_table)" "ruleset untouched by the second daemon"

section "no daemon: explain falls back to the compiled policy"
daemon_stop
out=$(af explain "$E2E_AML_WE_V4:443" --json 2>&1)
expect_eq "allow NR2 offline" "$(echo "$out" | netsim jget 'd["verdict"] + " " + d["rule"] + " " + d.get("source", "offline")' 2>/dev/null || echo "$out")" \
  "explain without a daemon"
expect_rc 1 "amlfw reload without a daemon: exit 1" af reload
af flush >/dev/null 2>&1
e2e_finish
