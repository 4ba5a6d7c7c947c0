#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The harness itself, without amlfw enforcing anything: the simulated internet answers on
# every address and port the other tests use, dnsmasq serves the catalog's names, the
# probes tell a reset from a timeout, and cleanup leaves nothing behind.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

section "baseline: no enforcement, everything answers"
expect_connect "$E2E_AML_WE_V4" 443 tcp AzureMachineLearning.WestEurope
expect_connect "$E2E_AML_WE_V6" 443 tcp "AzureMachineLearning IPv6"
expect_connect "$E2E_ST_EUS_V4" 443 tcp Storage.EastUS
expect_connect "$E2E_UNLISTED_V4" 8080 tcp unlisted
expect_connect "$E2E_UNLISTED_V6" 8080 tcp "unlisted IPv6"
expect_connect "$(name_v4 example.org)" 443 tcp example.org
expect_connect "$E2E_AML_WE_V4" 5831 udp "UDP echo"
expect_connect "$E2E_OTHER_DNS_V4" 53 udp "UDP 53 on a non-resolver"
expect_connect_in "$E2E_BNM_WE_V4" "$E2E_HOST_V4" 29876 tcp "inbound BatchNodeManagement"
expect_connect_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 8080 tcp "inbound unlisted"
expect_connect_in "$E2E_AML_WE_V6" "$E2E_HOST_V6" 44224 tcp "inbound IPv6"

section "the probes classify failures"
out=$(hx "$E2E_PY" "$E2E_NETSIM" probe "$E2E_UNLISTED_V4" 9 --timeout 2)
expect_match '^refused ' "$out" "a closed port is 'refused' ($out)"
hx nft -f - <<'EOF'
table inet e2e_probe_check {
  chain out {
    type filter hook output priority 0; policy accept;
    ip daddr 203.0.113.201 tcp dport 443 reject with tcp reset
    ip daddr 203.0.113.202 tcp dport 443 drop
    ip daddr 203.0.113.203 reject with icmp type admin-prohibited
  }
}
EOF
out=$(hx "$E2E_PY" "$E2E_NETSIM" probe 203.0.113.201 443 --timeout 2)
expect_match '^refused ' "$out" "tcp reset is 'refused' ($out)"
out=$(hx "$E2E_PY" "$E2E_NETSIM" probe 203.0.113.202 443 --timeout 1)
expect_match '^(timeout|eperm) ' "$out" "output drop is EPERM or a timeout ($out)"
out=$(hx "$E2E_PY" "$E2E_NETSIM" probe 203.0.113.203 5831 --udp --timeout 2)
expect_match '^(unreach|refused|eperm) ' "$out" "udp with ICMP admin-prohibited fails ($out)"
expect_blocked 203.0.113.201 443 tcp "reset"
hx nft delete table inet e2e_probe_check

section "dnsmasq, the upstream resolver"
out=$(dns_query "$E2E_DNS_V4" 53 login.microsoftonline.com A)
expect_match 'A 192\.0\.2\.65 ttl=60' "$out" "exact name A"
out=$(dns_query "$E2E_DNS_V4" 53 login.microsoftonline.com AAAA)
expect_match 'AAAA 2001:db8:c0::65' "$out" "exact name AAAA"
out=$(dns_query "$E2E_DNS_V4" 53 viennaglobal.azurecr.io A)
expect_match 'CNAME weu.fe.azcr.e2e.test.*CNAME weu-1-az.fe.azcr.e2e.test.*A 192\.0\.2\.72' "$(echo $out)" "CNAME chain"
out=$(dns_query "$E2E_DNS_V4" 53 chain.anaconda.org A)
expect_eq 8 "$(echo "$out" | grep -c '^CNAME')" "8-long CNAME chain"
out=$(dns_query "$E2E_DNS_V4" 53 "$E2E_MANY_NAME" A)
expect_match 'TC' "$(echo "$out" | head -1)" "$E2E_MANY_COUNT addresses truncate over UDP"
out=$(dns_query "$E2E_DNS_V4" 53 "$E2E_MANY_NAME" A --tcp)
expect_eq "$E2E_MANY_COUNT" "$(echo "$out" | grep -c '^A ')" "all $E2E_MANY_COUNT addresses over TCP"
out=$(dns_query "$E2E_DNS_V4" 53 nothing.e2e.test A)
expect_match 'rcode=(NXDOMAIN|REFUSED)' "$out" "unknown names are not answered"
expect_true "dnsmasq logs queries" grep -q 'query\[A\] login.microsoftonline.com' "$E2E_TMP/dnsmasq.log"

section "service tags file"
n=$("$E2E_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["cloud"], d["changeNumber"], len(d["values"]))' "$E2E_TAGS")
expect_eq "Public 375 21" "$n" "cloud, changeNumber, values"
tail -c 1 "$E2E_TAGS" | grep -q '}' && ok "no final newline, like Microsoft's file" || bad "final byte"

section "cleanup"
expect_true "namespaces exist while the test runs" bash -c "ip netns list | grep -q '$E2E_HNS'"
e2e_finish
