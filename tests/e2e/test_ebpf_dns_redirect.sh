#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# dns.redirect = true with backend = "ebpf": the cgroup connect4/6 and sendmsg4/6 programs
# send DNS (port 53, UDP and TCP) for any server to the proxy (dns.listen); recvmsg4/6 show
# the proxy's answer as coming from the server the client asked, so that unconnected UDP
# clients (and resolvers that check the source) accept it; the proxy's own upstream
# queries (SO_MARK kDnsProxyMark) are not redirected to itself. The daemon runs inside the
# test cgroup like everything else, so its upstream sockets pass through the programs.
# 198.51.100.53 has no DNS server in the simulation: an answer from there is the proxy's.
AMLFW_E2E_BACKEND=ebpf   # this script is about the eBPF backend (tests/e2e/lib.sh)
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
P=$E2E_PROXY_ADDR
PP=$E2E_PROXY_PORT
NOWHERE=198.51.100.53   # nothing listens on 53 there

# udpq SERVER NAME [inet6]: one A query from an UNCONNECTED UDP socket (sendto/recvfrom);
# prints "from ADDR PORT" and the A records, or the error.
udpq() {
  hx "$E2E_PY" - "$1" "$2" "${3:-}" <<'PY'
import random, socket, struct, sys
server, name, fam = sys.argv[1], sys.argv[2], sys.argv[3]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
for label in name.split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", 1, 1)
if fam == "inet6":
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    dst = ("::ffff:" + server, 53)
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = (server, 53)
s.settimeout(2)
try:
    s.sendto(q, dst)
    while True:
        msg, src = s.recvfrom(4096)
        if struct.unpack(">H", msg[:2])[0] == qid:
            break
except OSError as e:
    print("error", e)
    sys.exit(0)
print("from", src[0], src[1])
def skip_name(off):
    while msg[off] != 0:
        if msg[off] & 0xC0 == 0xC0:
            return off + 2
        off += msg[off] + 1
    return off + 1
an = struct.unpack(">H", msg[6:8])[0]
off = skip_name(12) + 4
for _ in range(an):
    off = skip_name(off)
    rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off: off + 10])
    off += 10
    if rtype == 1:
        print("A", socket.inet_ntoa(msg[off: off + 4]))
    off += rdlen
PY
}
answer_a() { awk '$1 == "A" {print $2}' <<<"$1" | head -n 1; }

section "amlfw run with dns.redirect = true, inside the test cgroup"
CFG_DNS='redirect = true' write_config "$E2E_CONFIG"
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
expect_true "the daemon (and so its proxy) is in the test cgroup" grep -qx "$E2E_DAEMON_PID" "$E2E_CG/cgroup.procs"

section "connected UDP and TCP to a server that does not exist: the proxy answers"
name=files.pythonhosted.org
expect_blocked "$(name_v4 $name)" 443 tcp "$name before any query"
out=$(dns_query "$NOWHERE" 53 $name A)
expect_eq "$(name_v4 $name)" "$(awk '$1 == "A" {print $2}' <<<"$out")" "UDP query to $NOWHERE:53 answered through the proxy ($(head -n 1 <<<"$out"))"
expect_connect "$(name_v4 $name)" 443 tcp "$name learned from the redirected query"
name=westeurope.api.azureml.ms
out=$(dns_query "$NOWHERE" 53 $name A --tcp)
expect_eq "$(name_v4 $name)" "$(awk '$1 == "A" {print $2}' <<<"$out")" "TCP query to $NOWHERE:53 answered through the proxy"
expect_connect "$(name_v4 $name)" 443 tcp "$name learned from the redirected TCP query"
name=www.tensorflow.org
out=$(dns_query "$E2E_DNS_V4" 53 $name A)
expect_eq "$(name_v4 $name)" "$(awk '$1 == "A" {print $2}' <<<"$out")" "a query straight to the configured upstream is answered"
expect_connect "$(name_v4 $name)" 443 tcp "and went through the proxy: $name learned"

section "unconnected UDP: the answer comes back from the address the client asked (recvmsg4/6)"
out=$(udpq "$NOWHERE" repo.anaconda.com)
expect_match "^from $NOWHERE 53"$'\n'"A $(name_v4 repo.anaconda.com)" "$out" "sendto($NOWHERE:53) + recvfrom: source $NOWHERE:53 ($(tr '\n' ' ' <<<"$out"))"
expect_connect "$(name_v4 repo.anaconda.com)" 443 tcp "learned from the unconnected query"
out=$(udpq "$NOWHERE" conda.anaconda.org inet6)
expect_match "^from ::ffff:$NOWHERE 53"$'\n'"A $(name_v4 conda.anaconda.org)" "$out" "AF_INET6 socket, IPv4-mapped server: source ::ffff:$NOWHERE:53 ($(tr '\n' ' ' <<<"$out"))"
expect_connect "$(name_v4 conda.anaconda.org)" 443 tcp "learned from the IPv4-mapped query"

section "what is not redirected"
out=$(dns_query "$P" "$PP" pytorch.org A)
expect_match "A $(name_v4 pytorch.org)" "$out" "the proxy itself on loopback"
out=$(dns_query 2001:db8:53::53 53 download.pytorch.org AAAA)
expect_match 'rcode=ERROR EPERM' "$out" "IPv6 DNS (the proxy listens on IPv4): denied, not redirected, like nftables"
read -r res ms detail < <(hx_out "$E2E_PY" "$E2E_NETSIM" dnsq "$NOWHERE" pytorch.org --timeout 1 2>&1)
expect_match '^rcode=(ERROR|TIMEOUT)' "$res $ms $detail" "a client outside the test cgroup is not redirected ($res $ms)"
n=$(status_get 'd["learned_addresses"]')
expect_true "status learned_addresses = $n (>= 5)" test "${n:-0}" -ge 5

section "dns.redirect = false by reload: the same query is refused at once"
write_config "$E2E_CONFIG"
expect_rc 0 "amlfw reload" af reload
out=$(dns_query "$NOWHERE" 53 x.aznbcontent.net A)
expect_match 'rcode=ERROR EPERM' "$out" "UDP to $NOWHERE:53 without redirect: EPERM (not a configured resolver)"
out=$(udpq "$NOWHERE" x.aznbcontent.net)
expect_match '^error .*Operation not permitted' "$out" "sendto($NOWHERE:53) without redirect: EPERM"
expect_blocked "$(name_v4 x.aznbcontent.net)" 443 tcp "nothing learned"
CFG_DNS='redirect = true' write_config "$E2E_CONFIG"
expect_rc 0 "amlfw reload (redirect again)" af reload
out=$(udpq "$NOWHERE" x.aznbcontent.net)
expect_match "^from $NOWHERE 53"$'\n'"A $(name_v4 x.aznbcontent.net)" "$out" "redirected again after the reload"
expect_connect "$(name_v4 x.aznbcontent.net)" 443 tcp "learned"

section "flush removes the redirect too"
daemon_stop
expect_rc 0 "amlfw flush" af flush
expect_true "nothing of amlfw left" enforcement_absent
read -r res ms detail < <(dns_query "$NOWHERE" 53 pytorch.org A)
expect_match '^rcode=(ERROR|TIMEOUT)' "$res" "after flush, $NOWHERE:53 is what it is: nobody answers ($res $ms $detail)"
e2e_finish
