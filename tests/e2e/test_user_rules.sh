#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The operator's own [[allow]] rules (user-N): a CIDR on one port, a service tag, an exact
# name, egress and ingress, enforced like the catalog's rules and nothing more.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

CFG_INBOUND='enforce = true' CFG_TAIL="
[[allow]]
cidr = \"$E2E_SSH_NET4\"
ports = [\"8080\"]
proto = \"tcp\"

[[allow]]
service_tag = \"AzureMonitor\"
ports = [\"443\"]

[[allow]]
fqdn = \"cloud.r-project.org\"
ports = [\"443\"]

[[allow]]
cidr = \"2001:db8:ee::/64\"
ports = [\"8787\"]

[[allow]]
cidr = \"$E2E_UNLISTED_V4/32\"
ports = [\"8080\"]
direction = \"ingress\"
" write_config "$E2E_CONFIG"

section "plan"
plan_json "$E2E_TMP/plan.json" || bad "plan: $(cat "$E2E_TMP/plan.json.err")"
ids=$(netsim jget '" ".join(r["id"] for r in d["rules"] if r["id"].startswith("user-"))' <"$E2E_TMP/plan.json")
expect_eq "user-1 user-2 user-3 user-4 user-5" "$(echo "$ids" | tr ' ' '\n' | sort -t- -k2 -n | tr '\n' ' ' | sed 's/ $//')" "user rule ids"
expect_eq 5 "$(netsim jget 'next(r.get("prefixes") for r in d["rules"] if r.get("service_tag") == "AzureMonitor")' <"$E2E_TMP/plan.json")" "AzureMonitor prefixes"

section "apply"
expect_rc 0 "amlfw apply" af apply
expect_connect "$E2E_SSH_V4" 8080 tcp "user cidr on 8080"
expect_blocked "$E2E_SSH_V4" 443 tcp "user cidr on another port"
expect_connect "$E2E_MON_V4" 443 tcp "user service tag AzureMonitor"
expect_connect "$E2E_MON_V6" 443 tcp "user service tag AzureMonitor, IPv6"
expect_blocked "$E2E_MON_V4" 8080 tcp "AzureMonitor on another port"
expect_connect "$(name_v4 cloud.r-project.org)" 443 tcp "user exact name cloud.r-project.org"
expect_connect "$E2E_UNLISTED_V6" 8787 tcp "user IPv6 cidr on 8787"
expect_blocked "$E2E_UNLISTED_V6" 443 tcp "user IPv6 cidr on another port"
expect_connect_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 8080 tcp "user ingress rule"
expect_blocked_in "$E2E_UNLISTED_V4" "$E2E_HOST_V4" 22 tcp "user ingress rule, other port"
check_matrix "$E2E_TMP/plan.json" base both

section "a bad [[allow]] is a configuration error naming its place"
printf '[[allow]]\ncidr = "203.0.113.0/33"\nports = ["443"]\n' >"$E2E_TMP/bad.toml"
expect_rc 2 "apply with a bad cidr" hx "$AMLFW" apply --config "$E2E_TMP/bad.toml"
expect_match "bad.toml:2:[0-9]+: .*203\.0\.113\.0/33" "$E2E_OUT" "names bad.toml:2 and the value"
e2e_finish
