#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Never lock out the host (SPEC guarantee 3): with egress and inbound enforced, the DHCP
# client still gets its offer, loopback works both ways, and with platform.azure the Azure
# platform addresses (168.63.129.16: DNS 53 udp+tcp, 80, 32526; 169.254.169.254:80) are
# allowed, and only those ports. No traffic is sent to those two addresses (they are not
# documentation addresses): explain and the ruleset are checked instead.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

# A DHCP server on the link (dnsmasq, DHCP only) in inet.
bg ix dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=veth0 \
  --bind-interfaces --dhcp-range=192.0.2.8,192.0.2.14,255.255.255.240,1h \
  --dhcp-leasefile="$E2E_TMP/leases" --user=root --group=root \
  --pid-file="$E2E_TMP/dhcp.pid" --log-facility="$E2E_TMP/dhcp.log" --log-dhcp
dhcp() { hx "$E2E_PY" "$E2E_NETSIM" dhcp veth0 --timeout "${1:-3}"; }

section "before amlfw: the DHCP server answers"
for i in 1 2 3 4 5 6 7 8 9 10; do out=$(dhcp 0.5); [[ "$out" == offer* ]] && break; done
expect_match '^offer 192\.0\.2\.(8|9|1[0-4]) from ' "$out" "DHCP offer"

section "egress and inbound enforced"
CFG_INBOUND='enforce = true' write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply" af apply
expect_match '^offer 192\.0\.2\.(8|9|1[0-4]) from ' "$(dhcp)" "DHCP offer with enforcement"
expect_connect 127.0.0.1 8080 tcp "loopback"
expect_connect ::1 8080 tcp "loopback IPv6"
expect_blocked "$E2E_UNLISTED_V4" 443 tcp "and the rest is enforced"
expect_blocked_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 8080 tcp "inbound enforced"

section "platform.azure = true (the default)"
verdict() { af explain "$1" --json 2>/dev/null | netsim jget 'd["verdict"] + " " + str(d["rule"])'; }
expect_match '^allow platform' "$(verdict 168.63.129.16:53/udp)" "168.63.129.16:53/udp"
expect_match '^allow platform' "$(verdict 168.63.129.16:53)" "168.63.129.16:53/tcp"
expect_match '^allow platform' "$(verdict 168.63.129.16:80)" "168.63.129.16:80 (WireServer)"
expect_match '^allow platform' "$(verdict 168.63.129.16:32526)" "168.63.129.16:32526 (WireServer)"
expect_match '^allow platform' "$(verdict 169.254.169.254:80)" "169.254.169.254:80 (IMDS)"
expect_match '^deny' "$(verdict 168.63.129.16:443)" "168.63.129.16:443"
expect_match '^deny' "$(verdict 169.254.169.254:443)" "169.254.169.254:443"
expect_match '^deny' "$(verdict 168.63.129.17:80)" "168.63.129.17:80 (a neighbour)"
if is_ebpf; then rs=$(amlfw_table); else rs=$(hx nft list table inet amlfw); fi
expect_match '168\.63\.129\.16' "$rs" "the ruleset names 168.63.129.16"
expect_match '169\.254\.169\.254' "$rs" "the ruleset names 169.254.169.254"

section "platform.azure = false"
CFG_INBOUND='enforce = true' CFG_TAIL='
[platform]
azure = false' write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply" af apply
expect_match '^deny' "$(verdict 168.63.129.16:80)" "168.63.129.16:80"
expect_match '^deny' "$(verdict 169.254.169.254:80)" "169.254.169.254:80"
if is_ebpf; then rs=$(amlfw_table); else rs=$(hx nft list table inet amlfw); fi
if [[ "$rs" == *168.63.129.16* || "$rs" == *169.254.169.254* ]]; then bad "the ruleset still names a platform address"
else ok "the ruleset names no platform address"; fi
expect_match '^offer ' "$(dhcp)" "DHCP still works"
e2e_finish
