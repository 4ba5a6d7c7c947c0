#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `amlfw apply` twice gives the same kernel state (same ruleset, one table, the same
# verdicts); apply with a changed config moves to the new policy in place, and back.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

section "apply twice"
expect_rc 0 "first amlfw apply" af apply
first=$(amlfw_table)
expect_ne "" "$first" "a ruleset is installed"
expect_rc 0 "second amlfw apply" af apply
second=$(amlfw_table)
if [ "$first" = "$second" ]; then ok "the ruleset is identical after the second apply"
else bad "the ruleset changed on a repeated apply:"; diff <(echo "$first") <(echo "$second") | head -20; fi
expect_single_enforcement "still exactly one table"
expect_connect "$E2E_AML_WE_V4" 443 tcp "allowed"
expect_blocked "$E2E_UNLISTED_V4" 443 tcp "blocked"

section "apply with custom_images and hbi_workspace on"
CFG_FEATURES='custom_images = true
hbi_workspace = true' write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply (new features)" af apply
expect_connect "$E2E_ACR_WE_V4" 443 tcp "NR6 AzureContainerRegistry.WestEurope"
expect_connect "$E2E_KV_WE_V4" 443 tcp "NR8 AzureKeyVault.WestEurope"
expect_blocked "$E2E_ACR_X_V4" 443 tcp "AzureContainerRegistry outside westeurope"
expect_connect "$E2E_AML_WE_V4" 443 tcp "still allowed"
expect_single_enforcement "still exactly one table"

section "apply the first config again"
write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply (back)" af apply
expect_blocked "$E2E_ACR_WE_V4" 443 tcp "AzureContainerRegistry.WestEurope removed"
expect_blocked "$E2E_KV_WE_V4" 443 tcp "AzureKeyVault.WestEurope removed"
back=$(amlfw_table)
if [ "$first" = "$back" ]; then ok "the ruleset is the first one again"
else bad "the ruleset differs from the first apply:"; diff <(echo "$first") <(echo "$back") | head -20; fi

section "a bad config changes nothing (guarantee 4)"
printf 'regoin = "westeurope"\n' >"$E2E_TMP/bad.toml"
expect_rc 2 "apply with a bad config" hx "$AMLFW" apply --config "$E2E_TMP/bad.toml"
expect_eq "$first" "$(amlfw_table)" "ruleset unchanged"
expect_connect "$E2E_AML_WE_V4" 443 tcp "still allowed"
expect_blocked "$E2E_UNLISTED_V4" 443 tcp "still blocked"
e2e_finish
