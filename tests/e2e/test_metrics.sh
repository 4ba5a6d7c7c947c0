#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The metrics listener: `[metrics] listen` on loopback serves Prometheus text at /metrics
# (every line well-formed, values matching `status`), kernel counters that move with real
# traffic (accepted per rule group, denied per chain), 404/405/431 answers, a bound on
# connections (503 past it, served again once they close), idle connections closed, and
# a non-loopback address refused unless allow_remote = true.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
PORT=19469
CFG_TAIL=$'[metrics]\n'"listen = \"127.0.0.1:$PORT\"" write_config "$E2E_CONFIG"
URL="http://127.0.0.1:$PORT/metrics"
scrape() { hx curl -s --max-time 5 "$URL"; }
metric() { scrape | awk -v m="$1" '$1 == m {print $2}'; }

section "non-loopback addresses"
CFG_TAIL=$'[metrics]\nlisten = "192.0.2.1:9469"' write_config "$E2E_TMP/remote.toml"
expect_rc 2 "listen on 192.0.2.1: refused (exit 2)" af plan --config "$E2E_TMP/remote.toml"
expect_match "remote.toml:[0-9]+:[0-9]+: metrics.listen: '192.0.2.1:9469' is not a loopback address" "$E2E_OUT" \
  "the error names the file, the key and the fix"
CFG_TAIL=$'[metrics]\nlisten = "192.0.2.1:9469"\nallow_remote = true' write_config "$E2E_TMP/remote.toml"
expect_rc 0 "with allow_remote = true: accepted" af plan --config "$E2E_TMP/remote.toml"

section "scrape"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
hx curl -s -D "$E2E_TMP/headers" -o "$E2E_TMP/metrics.txt" --max-time 5 "$URL"
expect_match "^HTTP/1.1 200 OK" "$(head -1 "$E2E_TMP/headers")" "GET /metrics: 200"
expect_match "Content-Type: text/plain; version=0.0.4" "$(cat "$E2E_TMP/headers")" "Prometheus content type"
bad_lines=$("$E2E_PY" - "$E2E_TMP/metrics.txt" <<'EOF'
import re, sys
sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? -?[0-9]+(\.[0-9]+)?$')
typed, bad = set(), []
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        typed.add(line.split()[2]); continue
    name = re.split(r"[{ ]", line, 1)[0]
    if not sample.match(line) or name not in typed:
        bad.append(line)
print(len(bad), *bad[:3], sep="\n")
EOF
)
expect_eq 0 "$(echo "$bad_lines" | head -1)" "every line is HELP, TYPE or a sample of a typed family ($(echo "$bad_lines" | sed -n 2p))"
st=$(af status --json)
sj() { echo "$st" | netsim jget "$1"; }
m() { awk -v m="$1" '$1 == m {print $2}' "$E2E_TMP/metrics.txt"; }
expect_eq "$(sj 'd["generation"]')" "$(m amlfw_generation)" "amlfw_generation = status generation"
expect_eq "$(sj 'd["rules"]')" "$(m amlfw_rules)" "amlfw_rules = status rules"
expect_eq 375 "$(m amlfw_service_tags_change_number)" "amlfw_service_tags_change_number"
expect_match '^[0-9]+$' "$(m amlfw_service_tags_age_seconds)" "amlfw_service_tags_age_seconds"
expect_eq 1 "$(m "amlfw_info{mode=\"enforce\",backend=\"$E2E_BACKEND\"}")" "amlfw_info (backend $E2E_BACKEND)"
expect_eq 1 "$(m amlfw_counters_read_ok)" "kernel counters read"
# The chain of the denied counters: nftables' output chain; eBPF: the hook (connect4 decides
# an IPv4 connect()).
if is_ebpf; then DENY_CHAIN=connect4; else DENY_CHAIN=output; fi
expect_match '^[0-9]+$' "$(m "amlfw_denied_packets_total{chain=\"$DENY_CHAIN\",action=\"reject\"}")" "denied counter of $DENY_CHAIN"
expect_true "learned addresses appear ($(metric amlfw_learned_addresses))" \
  wait_until 15 bash -c "[ \"\$(ip netns exec $E2E_HNS curl -s $URL | awk '\$1 == \"amlfw_learned_addresses\" {print \$2}')\" -ge 10 ]"

section "kernel counters follow traffic"
# nftables counts packets per rule group (NR2's accept rules); eBPF counts decisions per hook
# (amlfw_rule_packets_total{chain="connect4|connect6",rules="allowed"}): one connect() each.
nr2() { scrape | awk '$1 ~ /^amlfw_rule_packets_total\{chain="output",rules="([^"]*,)?NR2(,[^"]*)?"\}$/ {s += $2} END {print s + 0}'; }
allowed() { metric "amlfw_rule_packets_total{chain=\"$1\",rules=\"allowed\"}"; }
den() { metric "amlfw_denied_packets_total{chain=\"$DENY_CHAIN\",action=\"reject\"}"; }
if is_ebpf; then a40=$(allowed connect4); a60=$(allowed connect6); else a0=$(nr2); fi
d0=$(den)
expect_connect "$E2E_AML_WE_V4" 443 tcp "AzureMachineLearning (NR2)"
expect_connect "$E2E_AML_WE_V6" 443 tcp "AzureMachineLearning (NR2, IPv6)"
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp unlisted
d1=$(den)
if is_ebpf; then
  a41=$(allowed connect4); a61=$(allowed connect6)
  expect_true "connect4 allowed grew ($a40 -> $a41)" test "${a41:-0}" -ge $((${a40:-0} + 1))
  expect_true "connect6 allowed grew ($a60 -> $a61)" test "${a61:-0}" -ge $((${a60:-0} + 1))
else
  a1=$(nr2)
  expect_true "NR2 packets grew by 2 or more ($a0 -> $a1)" test "$a1" -ge $((a0 + 2))
fi
expect_true "denied packets grew ($d0 -> $d1)" test "${d1:-0}" -gt "${d0:-0}"

section "other requests"
expect_eq 404 "$(hx curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/")" "GET /: 404"
expect_eq 405 "$(hx curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$URL")" "POST /metrics: 405"
expect_eq 431 "$(hx curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "X-Pad: $(head -c 9000 /dev/zero | tr '\0' a)" "$URL")" \
  "a 9 KB request head: 431"

section "bounded connections"
# Hold 8 idle connections (the bound), then ask: 503; after they close: 200 again.
hx "$E2E_PY" - "$PORT" >"$E2E_TMP/bound.out" 2>&1 <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
held = []
for _ in range(8):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    held.append(s)
time.sleep(0.3)
extra = socket.create_connection(("127.0.0.1", port), timeout=3)
extra.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
try:
    print("extra:", extra.recv(100).split(b"\r\n")[0].decode())
except Exception as e:
    print("extra:", type(e).__name__)
t0 = time.time()
held[0].settimeout(8)
try:
    data = held[0].recv(100)  # idle: the daemon closes it after 5 s
    print("idle closed after %.1f s" % (time.time() - t0), "with data" if data else "")
except socket.timeout:
    print("idle not closed")
for s in held:
    s.close()
EOF
expect_match "extra: HTTP/1.1 503 Service Unavailable" "$(cat "$E2E_TMP/bound.out")" "9th connection: 503"
expect_match "idle closed after [3-7]\.[0-9] s" "$(cat "$E2E_TMP/bound.out")" "an idle connection is closed after ~5 s"
sleep 0.3
expect_eq 200 "$(hx curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$URL")" "served again afterwards"
expect_match '^[1-9][0-9]*$' "$(metric 'amlfw_bounds_hit_total{bound="metrics_clients"}')" "amlfw_bounds_hit_total{bound=\"metrics_clients\"} counts it"
expect_true "the daemon is alive" kill -0 "$E2E_DAEMON_PID"

section "no listener without [metrics]"
daemon_stop
write_config "$E2E_CONFIG"
daemon_start
daemon_wait_ready 15 >/dev/null
expect_eq 000 "$(hx curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL")" "nothing listens on $PORT"
daemon_stop
af flush >/dev/null 2>&1
e2e_finish
