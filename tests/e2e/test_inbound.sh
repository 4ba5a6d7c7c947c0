#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Inbound rules with inbound.enforce = true: BatchNodeManagement.<region> may reach TCP
# 29876-29877 (IN1), AzureMachineLearning TCP 44224 (IN2), ssh_from TCP 22, and nothing
# else gets in; loopback and replies to our own connections still work. With
# inbound.enforce = false, inbound is not filtered.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

CFG_INBOUND="enforce = true
ssh_from = [\"$E2E_SSH_NET4\"]" write_config "$E2E_CONFIG"

section "before apply: everything gets in"
expect_connect_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 8080 tcp unlisted

section "apply with inbound.enforce = true"
expect_rc 0 "amlfw apply" af apply
expect_connect_in "$E2E_BNM_WE_V4" "$E2E_HOST_V4" 29876 tcp "IN1 BatchNodeManagement.WestEurope"
expect_connect_in "$E2E_BNM_WE_V4" "$E2E_HOST_V4" 29877 tcp "IN1 BatchNodeManagement.WestEurope"
expect_connect_in "$E2E_BNM_WE_V6" "$E2E_HOST_V6" 29876 tcp "IN1 IPv6"
expect_connect_in "$E2E_AML_WE_V4" "$E2E_HOST_V4" 44224 tcp "IN2 AzureMachineLearning"
expect_connect_in "$E2E_AML_EUS_V4" "$E2E_HOST_V4" 44224 tcp "IN2 AzureMachineLearning (global tag)"
expect_connect_in "$E2E_AML_X_V6" "$E2E_HOST_V6" 44224 tcp "IN2 IPv6"
expect_connect_in "$E2E_SSH_V4" "$E2E_HOST_V4" 22 tcp "ssh_from"
expect_blocked_in "$E2E_BNM_EUS_V4" "$E2E_HOST_V4" 29876 tcp "BatchNodeManagement of another region"
expect_blocked_in "$E2E_BNM_WE_V4" "$E2E_HOST_V4" 44224 tcp "BatchNodeManagement on 44224"
expect_blocked_in "$E2E_AML_WE_V4" "$E2E_HOST_V4" 29876 tcp "AzureMachineLearning on 29876"
expect_blocked_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 22 tcp "ssh from outside ssh_from"
expect_blocked_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 8080 tcp "unlisted"
expect_blocked_in "$E2E_UNLISTED_V6" "$E2E_HOST_V6" 29876 tcp "unlisted IPv6"
expect_blocked_in "$E2E_AAD_V4" "$E2E_HOST_V4" 8080 tcp "egress-only tag AzureActiveDirectory"
expect_blocked_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 5831 udp "unlisted UDP"

section "what still works with inbound enforced"
expect_connect 127.0.0.1 8080 tcp "loopback"
expect_connect "$E2E_HOST_V4" 8080 tcp "the host to its own address"
expect_connect "$E2E_AML_WE_V4" 443 tcp "egress and its replies"
expect_blocked "$E2E_UNLISTED_V4" 443 tcp "egress still enforced"

section "the whole inbound matrix, as the plan says"
plan_json "$E2E_TMP/plan.json" || bad "plan --format json: $(cat "$E2E_TMP/plan.json.err")"
check_matrix "$E2E_TMP/plan.json" base ingress

section "inbound.enforce = false: inbound is not filtered"
write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply" af apply
expect_connect_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 8080 tcp "unlisted"
expect_connect_in "$E2E_UNLISTED_V6" "$E2E_HOST_V6" 22 tcp "unlisted IPv6"
expect_connect_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 5831 udp "unlisted UDP"
expect_blocked "$E2E_UNLISTED_V4" 443 tcp "egress still enforced"
e2e_finish
