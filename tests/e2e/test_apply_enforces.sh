#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `amlfw apply` on the default features (westeurope): allowed service-tag ranges on their
# ports connect; other ports, another region's Storage, tags of features that are off,
# and unlisted addresses fail FAST (reset/EPERM/ICMP within 1 s, SPEC guarantee 1); DNS
# goes to the configured resolver only; loopback stays open (guarantee 3).
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

section "before apply: the simulated internet answers everything"
expect_connect "$E2E_UNLISTED_V4" 8080 tcp unlisted
expect_connect "$E2E_ST_EUS_V4" 443 tcp Storage.EastUS
expect_connect "$E2E_OTHER_DNS_V4" 53 udp "a DNS server that is not configured"

section "apply"
expect_rc 0 "amlfw apply" af apply
if is_ebpf; then
  expect_true "eBPF programs attached to the test cgroup, maps pinned" enforcement_installed
  expect_eq "" "$(hx nft list tables)" "no nftables table with backend = ebpf"
else
  expect_true "table inet amlfw exists in the host namespace" hx nft list table inet amlfw
  expect_eq "table inet amlfw" "$(hx nft list tables | grep amlfw)" "one amlfw table, nothing else"
fi

section "allowed: service tags on their ports"
expect_connect "$E2E_AML_WE_V4" 443 tcp "NR2 AzureMachineLearning (.WestEurope block)"
expect_connect "$E2E_AML_EUS_V4" 443 tcp "NR2 AzureMachineLearning is global: the eastus block too"
expect_connect "$E2E_AML_X_V6" 443 tcp "NR2 AzureMachineLearning IPv6"
expect_connect "$E2E_ARM_V4" 443 tcp "NR3 AzureResourceManager"
expect_connect "$E2E_ST_WE_V4" 443 tcp "NR4 Storage.WestEurope"
expect_connect "$E2E_ST_WE_V6" 443 tcp "NR4 Storage.WestEurope IPv6"
expect_connect "$E2E_AFD_FE_V4" 443 tcp "NR5 AzureFrontDoor.Frontend"
expect_connect "$E2E_AAD_V4" 443 tcp "NR1 AzureActiveDirectory"
expect_connect "$E2E_AAD_V4" 8080 tcp "NR1 AzureActiveDirectory: every port"

section "blocked: other ports"
expect_blocked "$E2E_AML_WE_V4" 8080 tcp "AzureMachineLearning, port 8080"
expect_blocked "$E2E_AML_WE_V4" 80 tcp "AzureMachineLearning, port 80"
expect_blocked "$E2E_AML_X_V6" 8080 tcp "AzureMachineLearning IPv6, port 8080"
expect_blocked "$E2E_ST_WE_V4" 445 tcp "Storage.WestEurope, port 445 (not in the 2021 catalog)"
expect_blocked "$E2E_ARM_V4" 80 tcp "AzureResourceManager, port 80"
expect_blocked "$E2E_AML_WE_V4" 5831 udp "AzureMachineLearning, UDP 5831 (not in the 2021 catalog)"

section "blocked: another region, tags of features that are off, unlisted"
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "Storage.EastUS: another region"
expect_blocked "$E2E_ST_EUS_V6" 443 tcp "Storage.EastUS IPv6"
expect_blocked "$E2E_ST_X_V4" 443 tcp "global Storage only"
expect_blocked "$E2E_ACR_WE_V4" 443 tcp "AzureContainerRegistry.WestEurope (custom_images = false)"
expect_blocked "$E2E_MCR_WE_V4" 443 tcp "MicrosoftContainerRegistry.WestEurope (user_managed_dependencies = false)"
expect_blocked "$E2E_KV_WE_V4" 443 tcp "AzureKeyVault.WestEurope (hbi_workspace = false)"
expect_blocked "$E2E_BNM_WE_V4" 443 tcp "BatchNodeManagement: inbound only in 2021"
expect_blocked "$E2E_UNLISTED_V4" 443 tcp unlisted
expect_blocked "$E2E_UNLISTED_V4" 80 tcp unlisted
expect_blocked "$E2E_UNLISTED_V6" 443 tcp "unlisted IPv6"
expect_blocked "$E2E_UNLISTED_V4" 5831 udp "unlisted UDP"
expect_blocked "$(name_v4 example.org)" 443 tcp "forbidden: example.org's address"

section "DNS only to the configured resolver (guarantee 3)"
out=$(dns_query "$E2E_DNS_V4" 53 login.microsoftonline.com A)
expect_match '^A 192\.0\.2\.65' "$(echo "$out" | grep '^A ')" "UDP query to the configured upstream $E2E_DNS_V4"
out=$(dns_query "$E2E_DNS_V4" 53 login.microsoftonline.com A --tcp)
expect_match '^A 192\.0\.2\.65' "$(echo "$out" | grep '^A ')" "TCP query to the configured upstream $E2E_DNS_V4"
expect_blocked "$E2E_OTHER_DNS_V4" 53 udp "DNS to a server that is not configured"
expect_blocked "$E2E_OTHER_DNS_V4" 53 tcp "DNS over TCP to a server that is not configured"

if is_ebpf; then
  section "eBPF: a client outside the test cgroup is unaffected (the programs filter [ebpf] cgroup)"
  read -r res ms detail < <(hx_out "$E2E_PY" "$E2E_NETSIM" probe "$E2E_UNLISTED_V4" 443 --timeout 2 2>&1)
  expect_eq ok "$res" "unlisted from outside the test cgroup ($res $ms ms)"
  read -r res ms detail < <(hx_out "$E2E_PY" "$E2E_NETSIM" probe "$E2E_OTHER_DNS_V4" 53 --udp --timeout 2 2>&1)
  expect_eq ok "$res" "a DNS server that is not configured, from outside the test cgroup"
fi

section "loopback stays open (guarantee 3)"
expect_connect 127.0.0.1 8080 tcp loopback
expect_connect ::1 8080 tcp "loopback IPv6"

section "the whole matrix: every block's sample address x ports, as the plan says"
plan_json "$E2E_TMP/plan.json" || bad "plan --format json: $(cat "$E2E_TMP/plan.json.err")"
check_matrix "$E2E_TMP/plan.json" base egress

section "catalog 2026-03 (UDP 5831, 8787/18881, BatchNodeManagement.region outbound, MCR)"
CFG_CATALOG=2026-03 write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply (2026-03)" af apply
expect_connect "$E2E_AML_WE_V4" 5831 udp "AzureMachineLearning UDP 5831"
expect_connect "$E2E_AML_X_V6" 5831 udp "AzureMachineLearning UDP 5831, IPv6"
expect_connect "$E2E_AML_WE_V4" 8787 tcp "AzureMachineLearning 8787"
expect_connect "$E2E_BNM_WE_V4" 443 tcp "BatchNodeManagement.WestEurope outbound 443"
expect_connect "$E2E_BNM_WE_V4" 443 udp "BatchNodeManagement.WestEurope outbound 443 (proto any: UDP too)"
expect_blocked "$E2E_BNM_EUS_V4" 443 tcp "BatchNodeManagement of another region"
expect_blocked "$E2E_AAD_V4" 8080 tcp "AzureActiveDirectory is 80 and 443 only in 2026-03"
expect_blocked "$E2E_UNLISTED_V4" 5831 udp "unlisted UDP 5831"
plan_json "$E2E_TMP/plan2026.json" || bad "plan --format json: $(cat "$E2E_TMP/plan2026.json.err")"
check_matrix "$E2E_TMP/plan2026.json" base egress

e2e_finish
