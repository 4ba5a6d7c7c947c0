#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The DNS proxy under operating conditions (SPEC guarantees 6 and 7): learned addresses
# expire with their lifetime (new connections blocked, an established one keeps working);
# a 40-address answer over TCP is learned whole; a dead upstream gives SERVFAIL quickly and
# teaches nothing; a flood of random names stays within dns.max_learned and bounded memory;
# learned addresses come back after a restart (even after a flush, with the upstream
# unreachable); dns.redirect sends every local DNS query through the proxy.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
# A 40-address name (TCP only: too big for 512-byte UDP) and a look-alike with an address.
E2E_MANY_NAME=forty.anaconda.org
E2E_MANY_COUNT=40
E2E_NAMES+=$'\nanaconda.com.evil.example   192.0.2.204 2001:db8:c2::204'
topo_up
P=$E2E_PROXY_ADDR
PP=$E2E_PROXY_PORT
FLOOD_DNS=192.0.2.55

ask() {  # NAME [TYPE] [--tcp]: query the proxy; sets ANS, RCODE, ASK_MS
  local out t0 t1
  t0=$(date +%s%N)
  out=$(dns_query "$P" "$PP" "$1" "${2:-A}" ${3:-})
  t1=$(date +%s%N)
  ASK_MS=$(( (t1 - t0) / 1000000 ))
  ANS=$(echo "$out" | awk '$1 == "A" || $1 == "AAAA" {print $2}')
  RCODE=$(echo "$out" | head -1)
}
# learned_count [REGEX]: (group, address) entries the kernel holds for learned addresses
# matching REGEX (what dns.max_learned bounds). nftables: the elements of the learned-address
# sets (n4_*, n6_*, one per group). eBPF: the live entries of the active generation's
# learned maps (amlfw_table: `ebpf_tool dump --content`, "learned ADDR groups=BITMAP"), each
# counted once per group bit.
learned_count() {
  if is_ebpf; then
    amlfw_table | "$E2E_PY" -c '
import re, sys
pat = re.compile(sys.argv[1])
n = 0
for line in sys.stdin:
    f = line.split()
    if len(f) == 3 and f[0] == "learned" and f[2].startswith("groups=") and pat.search(f[1]):
        n += bin(int(f[2][7:])).count("1")
print(n)' "${1:-.}"
    return
  fi
  hx nft -j list table inet amlfw 2>/dev/null | "$E2E_PY" -c '
import json, re, sys
pat = re.compile(sys.argv[1])
n = 0
for o in json.load(sys.stdin)["nftables"]:
    s = o.get("set")
    if not s or not s["name"][:3] in ("n4_", "n6_"):
        continue
    for e in s.get("elem", []):
        v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
        if pat.search(str(v)):
            n += 1
print(n)' "${1:-.}"
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$E2E_DAEMON_PID/status" 2>/dev/null; }

# ---------------------------------------------------------------------------------------
section "lifetimes: TTL 60 s, max_ttl 3s, no grace: learned for 3 s"
CFG_DNS=$'min_ttl = "0s"\nmax_ttl = "3s"\ngrace = "0s"' write_config "$E2E_CONFIG"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
ask MyStore.Blob.Core.Windows.NET.
expect_eq "$(name_v4 mystore.blob.core.windows.net)" "$ANS" "mixed case, trailing dot, through a CNAME"
expect_connect "$(name_v4 mystore.blob.core.windows.net)" 443 tcp "right after the answer"
ask Conda.Anaconda.ORG.
hold_start conda "$(name_v4 conda.anaconda.org)" 443
sleep 4
expect_blocked "$(name_v4 mystore.blob.core.windows.net)" 443 tcp "new connection after the lifetime"
expect_blocked "$(name_v4 conda.anaconda.org)" 443 tcp "new connection after the lifetime"
expect_match '^OK' "$(hold_stop conda)" "the connection established before the expiry kept working"
ask mystore.blob.core.windows.net
expect_connect "$(name_v4 mystore.blob.core.windows.net)" 443 tcp "a new answer allows it again"

section "an exact name through the proxy, look-alikes"
ask AnaConda.com.
expect_connect "$(name_v4 anaconda.com)" 443 tcp "exact name anaconda.com., mixed case"
for name in evilpytorch.org anaconda.com.evil.example; do
  ask "$name"
  expect_eq "$(name_v4 "$name")" "$ANS" "the proxy relays the answer for $name"
  expect_blocked "$(name_v4 "$name")" 443 tcp "look-alike $name after its lookup"
done

daemon_stop

# ---------------------------------------------------------------------------------------
section "restart: learned addresses are enforced again before any DNS works"
write_config "$E2E_CONFIG"
daemon_start
daemon_wait_ready 15 || bad "amlfw run did not become ready"
ask files.pythonhosted.org
ask chain.anaconda.org
expect_connect "$(name_v4 chain.anaconda.org)" 443 tcp "learned"

section "a 40-address answer: truncated over UDP, whole over TCP, all 40 allowed"
ask "$E2E_MANY_NAME" A
expect_match 'TC' "$RCODE" "UDP answer is truncated ($RCODE)"
ask "$E2E_MANY_NAME" A --tcp
expect_eq 40 "$(echo "$ANS" | grep -c .)" "TCP answer has 40 addresses"
res=$(for ((i = 0; i < 40; i++)); do echo "203.0.113.$((128 + i)) 443 tcp"; done |
  hx "$E2E_PY" "$E2E_NETSIM" probes --timeout 2 | awk '{print $4}' | sort | uniq -c | tr -s ' ')
expect_eq " 40 ok" "$res" "connections to the 40 addresses"
sleep 6  # the state file is written every 5 s
daemon_stop
expect_rc 0 "amlfw flush (as after a reboot: the kernel forgot everything)" af flush
dpid=$(cat "$E2E_TMP/dnsmasq.pid")
kill "$dpid" 2>/dev/null
wait_until 3 bash -c "! kill -0 $dpid 2>/dev/null" || bad "dnsmasq did not stop"
daemon_start
daemon_wait_ready 15 || bad "amlfw run did not become ready after the flush"
expect_connect "$(name_v4 chain.anaconda.org)" 443 tcp "after flush + restart, upstream down"
expect_connect "$(name_v4 files.pythonhosted.org)" 443 tcp "after flush + restart, upstream down"
expect_blocked "$(name_v4 download.pytorch.org)" 443 tcp "never learned: still blocked"

section "upstream down: SERVFAIL quickly, nothing learned"
ask download.pytorch.org
expect_match 'SERVFAIL' "$RCODE" "answer with the upstream dead"
# ICMP port-unreachable is rate-limited by the kernel, so an attempt may have to time out
# (dns proxy: 2 attempts of 1 s with one upstream).
expect_true "SERVFAIL within 2.5 s (took ${ASK_MS} ms, python start included)" test "$ASK_MS" -lt 2500
expect_blocked "$(name_v4 download.pytorch.org)" 443 tcp "nothing learned"
ask download.pytorch.org A --tcp
expect_match 'SERVFAIL' "$RCODE" "over TCP too (${ASK_MS} ms)"
daemon_stop

# ---------------------------------------------------------------------------------------
section "a flood of random names stays within dns.max_learned and bounded memory"
# A resolver that answers every name under flood.anaconda.org with one of 512 addresses.
cat >"$E2E_TMP/floodsrv.py" <<'EOF'
import random, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], 53))
pool = [f"198.51.100.{i}" for i in range(256)] + [f"203.0.113.{i}" for i in range(256)]
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 17:
        continue
    end = 12
    while end < len(q) and q[end] != 0:
        end += 1 + q[end]
    qd = q[12:end + 5]
    qtype = struct.unpack(">H", q[end + 1:end + 3])[0] if end + 3 <= len(q) else 0
    name = q[12:end].lower()
    ok = name.endswith(b"\x05flood\x08anaconda\x03org") and qtype == 1
    flags = 0x8180 if ok else 0x8183
    ans = b""
    if ok:
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(random.choice(pool))
    s.sendto(q[:2] + struct.pack(">HHHHH", flags, 1, 1 if ok else 0, 0, 0) + qd + ans, peer)
EOF
cat >"$E2E_TMP/flood.py" <<'EOF'
import random, socket, struct, sys, time
server, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.connect((server, port))
s.setblocking(False)
rcodes = {}
sent = got = 0
t_end = time.time() + 60
while (sent < n or got < sent) and time.time() < t_end:
    if sent < n and sent - got < 500:
        name = b"".join(bytes([len(l)]) + l for l in [b"r%08x" % random.getrandbits(32), b"flood", b"anaconda", b"org"]) + b"\0"
        s.send(struct.pack(">HHHHHH", sent & 0xffff, 0x0100, 1, 0, 0, 0) + name + b"\0\1\0\1")
        sent += 1
        continue
    try:
        m = s.recv(4096)
        got += 1
        rcodes[m[3] & 15] = rcodes.get(m[3] & 15, 0) + 1
    except BlockingIOError:
        if sent >= n:
            time.sleep(0.01)
            if time.time() > t_end - 55 and got < sent and sent - got < 600:
                break
print(sent, got, " ".join(f"{k}:{v}" for k, v in sorted(rcodes.items())))
EOF
ip -n "$E2E_INS" addr add "$FLOOD_DNS/32" dev lo
bg ix "$E2E_PY" "$E2E_TMP/floodsrv.py" "$FLOOD_DNS"
sleep 0.3
CFG_DNS='max_learned = 300' write_config "$E2E_CONFIG"
sed -i "s/^upstreams = .*/upstreams = [\"$FLOOD_DNS\"]/" "$E2E_CONFIG"
daemon_start
daemon_wait_ready 15 || bad "amlfw run did not become ready (flood)"
ask one.flood.anaconda.org
expect_match NOERROR "$RCODE" "the flood resolver answers through the proxy"
rss0=$(rss_kb)
read -r sent got rc < <(hx "$E2E_PY" "$E2E_TMP/flood.py" "$P" "$PP" 20000)
echo "  flood: sent $sent, answered $got ($rc)"
expect_true "most of 20000 queries answered ($got)" test "${got:-0}" -ge 18000
n=$(learned_count '^(198\.51\.100|203\.0\.113)\.')
expect_true "learned (group, address) entries from the flood: $n <= dns.max_learned = 300" test "${n:-999}" -le 300
expect_true "the bound was reached ($n >= 250)" test "${n:-0}" -ge 250
rss1=$(rss_kb)
echo "  daemon RSS: ${rss0} kB before, ${rss1} kB after"
expect_true "daemon RSS grew by less than 16 MB" test $(( ${rss1:-0} - ${rss0:-0} )) -lt 16384
grep -q 'dns.max_learned' "$E2E_TMP/daemon.log" && ok "the bound was logged" || bad "no log line for the bound"
ask two.flood.anaconda.org
expect_match NOERROR "$RCODE" "still answering after the flood"
daemon_stop

# ---------------------------------------------------------------------------------------
section "dns.redirect: local DNS to any server goes through the proxy"
# dnsmasq again (it was killed above).
mapfile -t dargs < <(dnsmasq_args)
bg ix dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --bind-interfaces --listen-address="$E2E_DNS_V4" --port=53 --user=root --group=root \
  --pid-file="$E2E_TMP/dnsmasq2.pid" --local-ttl=60 "${dargs[@]}" >"$E2E_TMP/dnsmasq2.out" 2>&1
# (asked from inside inet: the host's table still allows only the flood resolver)
wait_until 5 bash -c "ip netns exec $E2E_INS $E2E_PY $E2E_NETSIM dnsq $E2E_DNS_V4 pypi.org --timeout 0.2 | grep -q '^A '" ||
  bad "dnsmasq did not come back"
CFG_DNS='redirect = true' write_config "$E2E_CONFIG"
daemon_start
daemon_wait_ready 15 || bad "amlfw run did not become ready (redirect)"
out=$(dns_query "$E2E_OTHER_DNS_V4" 53 www.tensorflow.org A)
expect_match "A $(name_v4 www.tensorflow.org)" "$out" "a query to $E2E_OTHER_DNS_V4:53 is answered by the proxy"
expect_connect "$(name_v4 www.tensorflow.org)" 443 tcp "learned from the redirected query"
out=$(dns_query "$E2E_DNS_V4" 53 westeurope.api.azureml.ms A --tcp)
expect_match "A $(name_v4 westeurope.api.azureml.ms)" "$out" "a TCP query straight to the upstream is redirected too"
expect_connect "$(name_v4 westeurope.api.azureml.ms)" 443 tcp "learned from the redirected TCP query"
ask abc.notebooks.azure.net
expect_connect "$(name_v4 abc.notebooks.azure.net)" 443 tcp "the proxy's own upstream queries are not looped back"
daemon_stop
# The redirect stays in force with the daemon stopped (nothing listens on the proxy's port):
# `amlfw apply` must still resolve the exact names, its c-ares sockets carry the proxy's
# mark and are not redirected to the dead proxy.
expect_rc 0 "amlfw apply with the redirect in force and no proxy" hx "$AMLFW" apply --config "$E2E_CONFIG"
resolved=$(echo "$E2E_OUT" | sed -nE 's/.*resolved ([0-9]+) of ([0-9]+) exact names.*/\1 \2/p' | tail -1)
read -r got total <<<"${resolved:-0 -1}"
expect_true "every exact name resolved straight from the upstream ($got of $total)" test "$got" -gt 0 -a "$got" = "$total"

# ---------------------------------------------------------------------------------------
section "the proxy's port is taken at start: the daemon runs, the proxy comes when it is free"
write_config "$E2E_CONFIG"
bg hx "$E2E_PY" -c "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('$P', $PP)); time.sleep(60)"
squatter=$E2E_LAST_PID
sleep 0.3
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready without its proxy"; else bad "amlfw run did not start"; fi
wait_until 3 grep -q "retrying every" "$E2E_TMP/daemon.log" && ok "the bind failure is logged" || bad "no log line for the bind failure"
kill "$squatter" 2>/dev/null
if wait_until 10 bash -c "ip netns exec $E2E_HNS $E2E_PY $E2E_NETSIM dnsq $P pytorch.org --port $PP --timeout 0.5 | grep -q '^A '"; then
  ok "the proxy serves once the port is free"
else
  bad "the proxy did not come up after the port was freed"
fi
expect_eq 1 "$(grep -c 'retrying every' "$E2E_TMP/daemon.log")" "the bind failure is logged once, not every retry"
daemon_stop
e2e_finish
