#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `amlfw check` probes every concrete required endpoint: with the policy applied and the
# simulated internet up, every one is reachable (exit 0); when an endpoint refuses or
# drops its traffic, check names it (blocked / timed out) and exits 4.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

expect_rc 0 "amlfw apply" af apply

section "everything reachable"
expect_rc 0 "amlfw check --json" af check --json
echo "$E2E_OUT" >"$E2E_TMP/check.json"
expect_match 'login\.microsoftonline\.com' "$E2E_OUT" "probes login.microsoftonline.com"
expect_match 'pypi\.org' "$E2E_OUT" "probes pypi.org"
expect_true "the answer is JSON" netsim jget 'd' <"$E2E_TMP/check.json"
expect_rc 0 "amlfw check (text)" af check

section "an endpoint that refuses: exit 4"
ix nft -f - <<'NFT'
table inet e2e_check {
  chain in {
    type filter hook input priority 0; policy accept;
    ip daddr 192.0.2.65 tcp dport 443 reject with tcp reset
  }
}
NFT
expect_rc 4 "amlfw check with login.microsoftonline.com refusing" af check --json
expect_match 'login\.microsoftonline\.com' "$E2E_OUT" "names it"
expect_match '[Bb]locked|[Uu]nreachable|[Rr]efused' "$E2E_OUT" "says it is blocked"

section "an endpoint that drops: exit 4, timed out"
ix nft flush table inet e2e_check
ix nft add rule inet e2e_check in ip daddr 192.0.2.70 tcp dport 443 drop
expect_rc 4 "amlfw check with pypi.org dropping" af check --json
expect_match '[Tt]imed.out|timeout' "$E2E_OUT" "says it timed out"
ix nft delete table inet e2e_check

section "back to normal"
expect_rc 0 "amlfw check" af check
e2e_finish
