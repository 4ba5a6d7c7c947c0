#!/usr/bin/env bash
# The nftables backend against the real kernel, inside throwaway network namespaces.
# Proves: render_nft is accepted by `nft -c -f` and programs exactly what apply programs;
# apply creates the table; a table of the older linear layout is adopted into the port
# dispatch in one batch; adding or removing a group re-adds only the chains that change;
# a 1% change sends only the difference; adoption by a new process
# keeps learned elements; learned elements carry a timeout that expires and renews; a
# refused element is named in the error; enforcement rejects fast and lets allowed traffic
# out; flush removes the table (twice is fine); a table of someone else is untouched.
# $1: the amlfw binary (unused: the backend is driven by tests/tools/nft_tool).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "test_nft_backend: needs root (network namespaces, nftables)"
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  exit 77
fi
for tool in ip nft python3 timeout; do
  command -v "$tool" >/dev/null || { echo "test_nft_backend: $tool missing"; exit 1; }
done

TOOL="${AMLFW_NFT_TOOL:-}"
if [ -z "$TOOL" ] && [ -n "${1:-}" ]; then TOOL="$(dirname "$1")/tests/nft_tool"; fi
[ -x "$TOOL" ] || { echo "test_nft_backend: nft_tool not found (set AMLFW_NFT_TOOL)"; exit 1; }

NS="amlfw-t-$$"
NS2="amlfw-t2-$$"
WORK="$(mktemp -d)"
cleanup() {
  ip netns del "$NS" 2>/dev/null || true
  ip netns del "$NS2" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns add "$NS2"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns2() { ip netns exec "$NS2" "$@"; }

PASS=0
FAIL=0
ok() { echo "ok - $*"; PASS=$((PASS + 1)); }
bad() { echo "not ok - $*"; FAIL=$((FAIL + 1)); }
check() {  # check "description" command...
  local what="$1"; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
field() {  # field NAME "line": the value of NAME=value in a report line
  sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"
}

# Canonical view of the table's sets: name, type, flags, sorted elements (timeouts dropped).
sets_json() {
  python3 -c '
import json, sys
data = json.load(sys.stdin)["nftables"]
out = {}
for item in data:
    s = item.get("set")
    if not s: continue
    elems = []
    for e in s.get("elem", []):
        if isinstance(e, dict) and "elem" in e: e = e["elem"]["val"]
        elems.append(json.dumps(e, sort_keys=True))
    out[s["name"]] = {"type": s["type"], "flags": sorted(s.get("flags", [])), "elem": sorted(elems)}
print(json.dumps(out, sort_keys=True))
'
}

# `nft list table` with its sets and chains sorted by name: a table changed in place lists
# the chains it gained last (the kernel keeps creation order), a fresh load in render order.
canon() {
  python3 -c '
import re, sys
text = sys.stdin.read()
blocks = re.findall(r"\t(?:set|chain) \S+ \{\n.*?\n\t\}\n", text, re.S)
print("".join(sorted(blocks)))
'
}

# ---- specs --------------------------------------------------------------------------------
cat >"$WORK/a.spec" <<'EOF'
dns 192.0.2.53
dns 2001:db8::53
group egress tcp 443 names ids=NR2,NR3
prefix 203.0.113.0/24
prefix 198.51.100.7
prefix 2001:db8:1::/48
group egress any 1-65535 ids=user-1
prefix 192.0.2.128/25
group egress tcp 80,443,8000-8010 ids=AR2
prefix 198.51.100.64/26
group ingress tcp 29876-29877 ids=IN1
prefix 198.51.100.0/28
EOF
# Same groups, one prefix changed: adoption must diff, keep learned sets.
sed 's#prefix 198.51.100.64/26#prefix 198.51.100.128/26#' "$WORK/a.spec" >"$WORK/a2.spec"
printf 'inbound 1\n' | cat - "$WORK/a.spec" >"$WORK/in.spec"
printf 'mode audit\n' | cat - "$WORK/a.spec" >"$WORK/audit.spec"
cat >"$WORK/big.spec" <<'EOF'
dns 192.0.2.53
group egress tcp 443 names ids=NR2
gen4 20000 1 0 0
gen6 2000 2 0 0
group egress udp 53 ids=U1
prefix 192.0.2.0/24
EOF
sed 's/^gen4 20000 1 0 0/gen4 20000 1 9 10/; s/^gen6 2000 2 0 0/gen6 2000 2 9 10/' "$WORK/big.spec" >"$WORK/big2.spec"

# ---- someone else's table, to be left alone ------------------------------------------------
in_ns nft -f - <<'EOF'
table inet other {
  set keep {
    type ipv4_addr
    elements = { 192.0.2.99 }
  }
  chain c {
    type filter hook output priority 10; policy accept;
    ip daddr @keep counter
  }
}
EOF
in_ns nft list table inet other >"$WORK/other.before"

# ---- render_nft: nft accepts it, and it is exactly what apply programs ---------------------
"$TOOL" render "$WORK/in.spec" >"$WORK/in.nft"
check "nft -c -f accepts render_nft" in_ns nft -c -f "$WORK/in.nft"
out="$(in_ns "$TOOL" apply "$WORK/in.spec")"
check "first apply creates the table" [ "$(field created "$out")" = 1 ]
check "first apply adopts (reads the kernel first)" [ "$(field adopted "$out")" = 1 ]
in_ns2 nft -f "$WORK/in.nft"
in_ns nft -j list table inet amlfw | sets_json >"$WORK/sets.apply"
in_ns2 nft -j list table inet amlfw | sets_json >"$WORK/sets.render"
check "apply and nft -f of render_nft hold the same sets and elements" cmp -s "$WORK/sets.apply" "$WORK/sets.render"
in_ns nft list table inet amlfw >"$WORK/list.apply"
in_ns2 nft list table inet amlfw >"$WORK/list.render"
check "apply and nft -f of render_nft list the same table (rules included)" cmp -s "$WORK/list.apply" "$WORK/list.render"
check "input chain present with inbound enforcement" grep -q "chain input" "$WORK/list.apply"
in_ns2 nft delete table inet amlfw
# dns.redirect: a nat chain, rendered and programmed alike.
printf 'redirect 127.0.0.1:5353\n' | cat - "$WORK/a.spec" >"$WORK/redir.spec"
"$TOOL" render "$WORK/redir.spec" >"$WORK/redir.nft"
in_ns2 nft -f "$WORK/redir.nft"
in_ns2 nft list table inet amlfw >"$WORK/redir.render"
in_ns2 nft delete table inet amlfw
in_ns "$TOOL" apply "$WORK/redir.spec" >/dev/null
in_ns nft list table inet amlfw >"$WORK/redir.apply"
# (applied over the table of in.spec: the chains it gains are listed last)
check "dns redirect: apply and render_nft list the same table" \
  cmp -s <(canon <"$WORK/redir.apply") <(canon <"$WORK/redir.render")
check "dns redirect: nat chain present" grep -q "type nat hook output priority -100; policy accept;" "$WORK/redir.apply"

# ---- adoption repairs a table of the wrong shape in one batch ------------------------------
in_ns2 nft -f - <<'EOF2'
table inet amlfw {
  set p4_e_tcp_443 { type ipv4_addr; elements = { 192.0.2.1 } }
  set p6_e_tcp_443 { type ipv6_addr; flags interval; elements = { 2001:db8::/64, 2001:db8:0:1::/64 } }
  set stale { type ipv4_addr; }
  chain foo { ip daddr @stale accept; }
  chain output { type filter hook output priority 5; policy accept; ip daddr @p4_e_tcp_443 jump foo; }
}
EOF2
out="$(in_ns2 "$TOOL" apply "$WORK/a.spec")"
check "adoption of a wrong-shaped table succeeds in one batch" [ "$(field adopted "$out")" = 1 -a "$(field created "$out")" = 0 ]
in_ns2 nft -j list table inet amlfw | sets_json >"$WORK/repaired.sets"
"$TOOL" render "$WORK/a.spec" >"$WORK/a.nft"
in_ns2 nft delete table inet amlfw
in_ns2 nft -f "$WORK/a.nft"
in_ns2 nft -j list table inet amlfw | sets_json >"$WORK/a.sets"
check "the repaired table holds exactly the policy's sets" cmp -s "$WORK/repaired.sets" "$WORK/a.sets"
in_ns2 nft delete table inet amlfw

# ---- adoption of the linear layout of an older amlfw (every rule in output/input) ----------
# The table as amlfw programmed it before the port dispatch (render of in.spec), with a
# learned address: one batch turns it into the dispatch layout and keeps the learned element.
in_ns2 nft -f - <<'EOF_OLD'
table inet amlfw {
	set dns4 {
		type ipv4_addr
		elements = { 192.0.2.53 }
	}

	set dns6 {
		type ipv6_addr
		elements = { 2001:db8::53 }
	}

	set p4_e_any_1-65535 {
		type ipv4_addr
		flags interval
		elements = { 192.0.2.128/25 }
	}

	set p6_e_any_1-65535 {
		type ipv6_addr
		flags interval
	}

	set p4_e_tcp_443 {
		type ipv4_addr
		flags interval
		elements = { 198.51.100.7, 203.0.113.0/24 }
	}

	set p6_e_tcp_443 {
		type ipv6_addr
		flags interval
		elements = { 2001:db8:1::/48 }
	}

	set n4_e_tcp_443 {
		type ipv4_addr
		flags timeout
		elements = { 203.0.113.200 timeout 5m }
	}

	set n6_e_tcp_443 {
		type ipv6_addr
		flags timeout
	}

	set p4_e_tcp_80_443_8000-8010 {
		type ipv4_addr
		flags interval
		elements = { 198.51.100.64/26 }
	}

	set p6_e_tcp_80_443_8000-8010 {
		type ipv6_addr
		flags interval
	}

	set p4_i_tcp_29876-29877 {
		type ipv4_addr
		flags interval
		elements = { 198.51.100.0/28 }
	}

	set p6_i_tcp_29876-29877 {
		type ipv6_addr
		flags interval
	}

	chain output {
		type filter hook output priority filter; policy drop;
		oif "lo" accept
		ct state established,related accept
		meta l4proto udp th sport 68 th dport 67 counter accept comment "dhcp"
		meta nfproto ipv6 meta l4proto udp th sport 546 th dport 547 counter accept comment "dhcpv6"
		meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } counter accept comment "icmpv6-nd"
		meta nfproto ipv4 ip daddr 168.63.129.16 meta l4proto { tcp, udp } th dport 53 counter accept comment "platform-wireserver-dns"
		meta nfproto ipv4 ip daddr 168.63.129.16 meta l4proto tcp th dport { 80, 32526 } counter accept comment "platform-wireserver"
		meta nfproto ipv4 ip daddr 169.254.169.254 meta l4proto tcp th dport 80 counter accept comment "platform-imds"
		meta nfproto ipv4 ip daddr @dns4 meta l4proto { tcp, udp } th dport 53 counter accept comment "dns"
		meta nfproto ipv6 ip6 daddr @dns6 meta l4proto { tcp, udp } th dport 53 counter accept comment "dns"
		meta nfproto ipv4 ip daddr @p4_e_any_1-65535 meta l4proto { tcp, udp } counter accept comment "user-1"
		meta nfproto ipv6 ip6 daddr @p6_e_any_1-65535 meta l4proto { tcp, udp } counter accept comment "user-1"
		meta nfproto ipv4 ip daddr @p4_e_tcp_443 meta l4proto tcp th dport 443 counter accept comment "NR2,NR3"
		meta nfproto ipv6 ip6 daddr @p6_e_tcp_443 meta l4proto tcp th dport 443 counter accept comment "NR2,NR3"
		meta nfproto ipv4 ip daddr @n4_e_tcp_443 meta l4proto tcp th dport 443 counter accept comment "NR2,NR3"
		meta nfproto ipv6 ip6 daddr @n6_e_tcp_443 meta l4proto tcp th dport 443 counter accept comment "NR2,NR3"
		meta nfproto ipv4 ip daddr @p4_e_tcp_80_443_8000-8010 meta l4proto tcp th dport { 80, 443, 8000-8010 } counter accept comment "AR2"
		meta nfproto ipv6 ip6 daddr @p6_e_tcp_80_443_8000-8010 meta l4proto tcp th dport { 80, 443, 8000-8010 } counter accept comment "AR2"
		limit rate 10/second log prefix "amlfw deny: " group 4269 snaplen 128
		meta l4proto tcp counter reject with tcp reset comment "deny"
		counter reject with icmpx admin-prohibited comment "deny"
	}

	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		meta l4proto udp th sport 67 th dport 68 counter accept comment "dhcp"
		meta nfproto ipv6 meta l4proto udp th sport 547 th dport 546 counter accept comment "dhcpv6"
		meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } counter accept comment "icmpv6-nd"
		meta l4proto icmp icmp type echo-request counter accept comment "ping"
		meta nfproto ipv6 meta l4proto ipv6-icmp icmpv6 type echo-request counter accept comment "ping"
		meta nfproto ipv4 ip saddr @p4_i_tcp_29876-29877 meta l4proto tcp th dport 29876-29877 counter accept comment "IN1"
		meta nfproto ipv6 ip6 saddr @p6_i_tcp_29876-29877 meta l4proto tcp th dport 29876-29877 counter accept comment "IN1"
		limit rate 10/second log prefix "amlfw deny: " group 4269 snaplen 128
		meta l4proto tcp counter reject with tcp reset comment "deny"
		counter reject with icmpx admin-prohibited comment "deny"
	}
}
EOF_OLD
out="$(in_ns2 "$TOOL" apply "$WORK/in.spec")"
check "an old-layout table is adopted in one batch" [ "$(field adopted "$out")" = 1 -a "$(field created "$out")" = 0 -a "$(field rewritten "$out")" = 1 ]
check "... keeping its learned element" bash -c "ip netns exec $NS2 nft list set inet amlfw n4_e_tcp_443 | grep -q '203.0.113.200 timeout'"
in_ns2 nft delete element inet amlfw n4_e_tcp_443 '{ 203.0.113.200 }'
in_ns2 nft list table inet amlfw >"$WORK/old.adopted"
check "... into exactly the table render_nft describes (dispatch and group chains)" cmp -s "$WORK/old.adopted" "$WORK/list.render"
check "the output chain dispatches on the port" grep -q 'tcp dport vmap { .*443 : jump out_tcp_443' "$WORK/old.adopted"

# ---- adding and removing a group: one batch, only the chains that change -----------------
rules_of() {  # rules_of FILE CHAIN: rules of a chain in a rendered table
  awk -v c="$2" '$1 == "chain" && $2 == c { on = 1; next } on && $1 == "}" { exit } on && $1 != "type" { n++ } END { print n + 0 }' "$1"
}
{ cat "$WORK/in.spec"; echo "group egress udp 123 ids=NTP"; echo "prefix 192.0.2.0/28"; } >"$WORK/plus.spec"
"$TOOL" render "$WORK/plus.spec" >"$WORK/plus.nft"
out="$(in_ns2 "$TOOL" apply "$WORK/in.spec" "$WORK/plus.spec" "$WORK/in.spec" | tail -2)"
add="$(head -1 <<<"$out")"
del="$(tail -1 <<<"$out")"
echo "# add group:    $add"
echo "# remove group: $del"
# UDP 123 is also in e_any_1-65535: a dispatch chain out_udp_123 tries both groups.
want_add=$(( $(rules_of "$WORK/plus.nft" output) + $(rules_of "$WORK/plus.nft" out_udp_123) +
             $(rules_of "$WORK/plus.nft" g_e_udp_123) ))
total=$(grep -c '^		[a-z]' "$WORK/plus.nft")
check "adding a group re-adds only the rules of output, out_udp_123, g_e_udp_123 ($want_add of $total lines)" \
  [ "$(field rules "$add")" = "$want_add" -a "$(field elements "$add")" = 2 ]
check "removing it re-adds only the output chain's rules" [ "$(field rules "$del")" = "$(rules_of "$WORK/plus.nft" output)" ]
in_ns2 nft list table inet amlfw >"$WORK/after.del"
check "after add and remove the table is the render again" cmp -s "$WORK/after.del" "$WORK/list.render"
check "the removed group's chain and sets are gone" bash -c "! grep -q 'e_udp_123' $WORK/after.del"
in_ns2 nft delete table inet amlfw

# ---- a group with many ports: its set names are shortened (the kernel allows 255 bytes) ---
{ cat "$WORK/a.spec"; echo "group egress tcp $(seq -s, 1000 2 1300) ids=LONG"; echo "prefix 192.0.2.77"; } >"$WORK/long.spec"
out="$(in_ns2 "$TOOL" apply "$WORK/long.spec" 2>&1)" || true
check "a group with 151 ports applies" [ "$(field created "$out")" = 1 ]
"$TOOL" render "$WORK/long.spec" >"$WORK/long.nft"
in_ns2 nft list table inet amlfw >"$WORK/long.apply"
in_ns2 nft delete table inet amlfw
in_ns2 nft -f "$WORK/long.nft"
in_ns2 nft list table inet amlfw >"$WORK/long.render"
check "... and render_nft names its sets the same" cmp -s "$WORK/long.apply" "$WORK/long.render"
in_ns2 nft delete table inet amlfw

# ---- a second apply of the same policy sends nothing; dropping inbound deletes its chains --
out="$(in_ns "$TOOL" apply "$WORK/in.spec" "$WORK/in.spec" "$WORK/a.spec" | tail -2)"
check "re-applying the same policy sends no batch" [ "$(field nothing "$(head -1 <<<"$out")")" = 1 ]
last="$(tail -1 <<<"$out")"
check "dropping inbound is one batch that re-adds no rule (output does not change)" \
  [ "$(field nothing "$last")" = 0 -a "$(field rules "$last")" = 0 ]
check "its dispatch and group chains removed" bash -c "! ip netns exec $NS nft list table inet amlfw | grep -Eq 'chain (in_|g_i_)'"
check "input chain removed" bash -c "! ip netns exec $NS nft list chain inet amlfw input >/dev/null 2>&1"
check "ingress sets removed" bash -c "! ip netns exec $NS nft list set inet amlfw p4_i_tcp_29876-29877 >/dev/null 2>&1"

# ---- 1% change: only the difference -------------------------------------------------------
out="$(in_ns "$TOOL" apply "$WORK/big.spec" "$WORK/big2.spec")"
full="$(head -1 <<<"$out")"
diffl="$(tail -1 <<<"$out")"
echo "# full:   $full"
echo "# change: $diffl"
check "full load has all elements" [ "$(field elements "$full")" -ge 44000 ]
check "1% change rewrites no rule" [ "$(field rewritten "$diffl")" = 0 -a "$(field rules "$diffl")" = 0 ]
n_el="$(field elements "$diffl")"
check "1% change sends only the difference ($n_el elements)" [ "$n_el" -gt 0 -a "$n_el" -le 1200 ]
check "1% change fits in a handful of messages" [ "$(field messages "$diffl")" -le 8 ]
"$TOOL" render "$WORK/big2.spec" >"$WORK/big2.nft"
in_ns2 nft -f "$WORK/big2.nft"
in_ns nft -j list table inet amlfw | sets_json >"$WORK/big.apply"
in_ns2 nft -j list table inet amlfw | sets_json >"$WORK/big.render"
check "after the change the kernel holds exactly the new policy" cmp -s "$WORK/big.apply" "$WORK/big.render"
in_ns2 nft delete table inet amlfw

# ---- learn, adoption keeps learned elements, timeouts expire and renew -------------------
out="$(in_ns "$TOOL" learn "$WORK/a.spec" e_tcp_443 300 203.0.113.200 2001:db8:99::1 198.51.100.250)"
check "learn sends one batch" grep -q '^learn .*messages=[12] ' <<<"$out"
check "learned IPv4 in n4 with a timeout" bash -c "ip netns exec $NS nft list set inet amlfw n4_e_tcp_443 | grep -q '203.0.113.200 timeout 5m'"
check "learned IPv6 went to n6" bash -c "ip netns exec $NS nft list set inet amlfw n6_e_tcp_443 | grep -q '2001:db8:99::1 timeout 5m'"
out="$(in_ns "$TOOL" apply "$WORK/a2.spec")"
check "a new process adopts the table" [ "$(field adopted "$out")" = 1 -a "$(field created "$out")" = 0 ]
check "adoption refills the prefix sets in its one batch" [ "$(field elements "$out")" = 10 ]
check "adoption keeps learned elements" bash -c "ip netns exec $NS nft list set inet amlfw n4_e_tcp_443 | grep -q '203.0.113.200'"
check "adoption applied the change" bash -c "ip netns exec $NS nft list set inet amlfw p4_e_tcp_80_443_8000-8010 | grep -q '198.51.100.128/26'"
# Renewal: an element known with a short lifetime is replaced (delete + add, one batch).
in_ns "$TOOL" learn "$WORK/a2.spec" e_tcp_443 3 203.0.113.201 >/dev/null
out="$(in_ns "$TOOL" learn "$WORK/a2.spec" e_tcp_443 600 203.0.113.201 | tail -1)"
check "renewal deletes and re-adds in one batch" [ "$(field messages "$out")" = 2 ]
check "renewal extends the timeout" bash -c "ip netns exec $NS nft list set inet amlfw n4_e_tcp_443 | grep -q '203.0.113.201 timeout 10m'"
in_ns "$TOOL" learn "$WORK/a2.spec" e_tcp_443 2 203.0.113.202 >/dev/null
check "short-lived element present" bash -c "ip netns exec $NS nft list set inet amlfw n4_e_tcp_443 | grep -q '203.0.113.202'"
sleep 3
check "short-lived element expired" bash -c "! ip netns exec $NS nft list set inet amlfw n4_e_tcp_443 | grep -q '203.0.113.202'"
check "learn refuses a group without name sets" bash -c "! ip netns exec $NS $TOOL learn $WORK/a2.spec e_any_1-65535 60 192.0.2.7 >/dev/null 2>&1"

# ---- errors name the message and the element ----------------------------------------------
err="$(in_ns "$TOOL" add-element p4_e_tcp_443 192.0.2.0/28 203.0.113.0/24 2>&1 || true)"
echo "# $err"
check "a refused element is named" grep -Eq "nft batch seq [0-9]+ \(add element to set 'p4_e_tcp_443' \[203\.0\.113\.0/24\]\): File exists" <<<"$err"
check "the refused batch changed nothing" bash -c "! ip netns exec $NS nft list set inet amlfw p4_e_tcp_443 | grep -q '192.0.2.0/28'"

# ---- enforcement: denied fails fast (reset), allowed leaves ------------------------------
in_ns ip link set lo up
# Traffic leaves through a veth whose peer answers nothing: allowed SYNs wait (timeout),
# denied ones are reset by the output chain at once.
in_ns ip link add v0 type veth peer name v1
in_ns ip link set v0 up
in_ns ip link set v1 up
in_ns ip addr add 192.0.2.1/24 dev v0
in_ns ip route add default dev v0
in_ns "$TOOL" apply "$WORK/a2.spec" >/dev/null
connect() {  # connect IP PORT -> prints refused | timeout | connected
  ip netns exec "$NS" timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && { echo connected; return; }
  local rc=$?
  if [ "$rc" = 124 ]; then echo timeout; else echo refused; fi
}
start=$(date +%s%N)
r="$(connect 203.0.113.9 444)"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "a denied connection is refused fast (${r}, ${ms} ms)" [ "$r" = refused -a "$ms" -lt 1000 ]
check "an allowed destination is not rejected (SYN leaves)" [ "$(connect 203.0.113.9 443)" = timeout ]
check "a learned address is allowed" [ "$(connect 203.0.113.200 443)" = timeout ]
check "deny counter counted" bash -c "ip netns exec $NS nft list chain inet amlfw output | grep -Eq 'counter packets [1-9][0-9]* bytes [0-9]+ reject with tcp reset'"
check "a port the dispatch sends to the all-ports group is allowed" [ "$(connect 192.0.2.200 9999)" = timeout ]
check "the same port to an address outside it is refused" [ "$(connect 203.0.113.9 9999)" = refused ]
check "a group's counter is read back under the output chain" bash -c "ip netns exec $NS $TOOL dump | grep -Eq '^rule output \"NR2,NR3\" packets=[1-9]'"
in_ns "$TOOL" apply "$WORK/audit.spec" >/dev/null
check "audit mode lets a denied destination out" [ "$(connect 203.0.113.9 444)" = timeout ]

# ---- dns.redirect: unmarked DNS goes to the proxy, the proxy's marked queries do not --------
in_ns "$TOOL" apply "$WORK/redir.spec" >/dev/null
udp_probe() {  # udp_probe MARK -> "redirected" when the listener on 127.0.0.1:5353 got it
  ip netns exec "$NS" python3 - "$1" <<'PY'
import socket, sys, threading
mark = int(sys.argv[1], 0)
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.1", 5353))
srv.settimeout(1.5)
cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if mark:
    cli.setsockopt(socket.SOL_SOCKET, 36, mark)  # SO_MARK
cli.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01", ("192.0.2.53", 53))
try:
    data, _ = srv.recvfrom(512)
    print("redirected" if data[:2] == b"\x12\x34" else "other")
except socket.timeout:
    print("not-redirected")
PY
}
check "dns redirect: an unmarked DNS query reaches the proxy" [ "$(udp_probe 0)" = redirected ]
check "dns redirect: the proxy's marked query goes to the upstream" [ "$(udp_probe 0x616d6c66)" = not-redirected ]

# ---- flush ------------------------------------------------------------------------------
out="$(in_ns "$TOOL" flush)"
check "flush removes the table" bash -c "! ip netns exec $NS nft list table inet amlfw >/dev/null 2>&1"
check "flush again is no error" in_ns "$TOOL" flush
in_ns nft list table inet other >"$WORK/other.after"
check "table inet other untouched" cmp -s "$WORK/other.before" "$WORK/other.after"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
