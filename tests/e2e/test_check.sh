#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `amlfw check` probes every concrete required endpoint: with the policy applied and the
# simulated internet up, every one is reachable (exit 0); when an endpoint refuses or
# drops its traffic, check names it (refused / timed out) and exits 4; an address amlfw
# refuses is "blocked" with amlfw's reason; a name that does not resolve is a DNS failure.
# With the daemon running, check resolves through its proxy (wildcard samples), asks it
# for verdicts, and --probe-tags probes one address per service tag. Bounded in time.
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
expect_match 'login\.microsoftonline\.com:443 +192\.0\.2\.65:443 [0-9.]+ ms' "$E2E_OUT" "the table gives the address and the time"
expect_match 'not-probed +AR2 +\*\.anaconda\.com:80,443 +wildcard' "$E2E_OUT" "a wildcard without a sample is not probed"
expect_match 'not-probed +NR2 +AzureMachineLearning:443 +service tag' "$E2E_OUT" "service tags are not probed by default"

section "the JSON answer: per endpoint and per address"
af check --json >"$E2E_TMP/check.json" 2>&1
j() { netsim jget "$1" <"$E2E_TMP/check.json"; }
login='[e for e in d["endpoints"] if e.get("host") == "login.microsoftonline.com"][0]'
expect_eq "reachable" "$(j "$login[\"status\"]")" "login.microsoftonline.com status"
expect_eq '["MH1"]' "$(j "$login[\"rules\"]")" "login.microsoftonline.com rule"
expect_eq "2" "$(j "len($login[\"addresses\"])")" "one IPv4 and one IPv6 address probed"
expect_eq "true" "$(j 'd["ok"] and d["failed"] == 0 and d["reachable"] >= 11')" "ok, no failure, 11+ reachable"
expect_eq "false" "$(j 'd["daemon"]')" "no daemon: resolved through the upstream"
expect_eq "0" "$(j 'len([e for e in d["endpoints"] if e["proto"] == "udp" and e["status"] != "not-probed"])')" "UDP is never probed"

section "blocked by amlfw, and a DNS failure: exit 4"
# rebind.anaconda.org answers 10.0.0.5 / fd00::5, which amlfw does not learn (rebinding);
# nothing.e2e.test does not exist.
CFG_TAIL='
[[allow]]
fqdn = "rebind.anaconda.org"
ports = ["443"]

[[allow]]
fqdn = "nothing.e2e.test"
ports = ["443"]' write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply with two more exact names" af apply
expect_rc 4 "amlfw check" af check --json
echo "$E2E_OUT" >"$E2E_TMP/check.json"
rebind='[e for e in d["endpoints"] if e.get("host") == "rebind.anaconda.org"][0]'
expect_eq "blocked" "$(j "$rebind[\"status\"]")" "rebind.anaconda.org: blocked (by amlfw)"
expect_eq "deny" "$(j "$rebind[\"addresses\"][0][\"amlfw\"]")" "the judgement is amlfw's deny"
expect_match 'special-use' "$(j "$rebind[\"addresses\"][0][\"why\"]")" "the reason names the special-use answer"
nothing='[e for e in d["endpoints"] if e.get("host") == "nothing.e2e.test"][0]'
expect_eq "dns-failure" "$(j "$nothing[\"status\"]")" "nothing.e2e.test: DNS failure"
expect_eq "2" "$(j 'd["failed"]')" "two endpoints failed, the others still reachable"
write_config "$E2E_CONFIG"
expect_rc 0 "amlfw apply with the plain config" af apply

section "with the daemon: through its DNS proxy, live verdicts, samples, --probe-tags"
daemon_start
if daemon_wait_ready 15; then ok "daemon ready"; else bad "daemon not ready"; fi
expect_rc 0 "amlfw check --json --probe-tags" af check --json --probe-tags
echo "$E2E_OUT" >"$E2E_TMP/check.json"
expect_eq "true" "$(j 'd["daemon"]')" "the daemon is used"
expect_match "127\.0\.0\.1:$E2E_PROXY_PORT" "$(j 'd["resolver"]')" "resolved through the DNS proxy"
expect_eq "reachable" "$(j '[e for e in d["endpoints"] if e.get("host") == "pytorch.org" and e["port"] == 443][0]["status"]')" \
  "*pytorch.org probed with its apex pytorch.org"
expect_eq "reachable" "$(j '[e for e in d["endpoints"] if e["destination"] == "AzureMachineLearning"][0]["status"]')" \
  "one address of AzureMachineLearning probed"
aml=$(j '[e for e in d["endpoints"] if e["destination"] == "AzureMachineLearning"][0]["address"]')
ix nft -f - <<NFT
table inet e2e_check {
  chain in {
    type filter hook input priority 0; policy accept;
    ip daddr $aml tcp dport 443 reject with tcp reset
  }
}
NFT
expect_rc 4 "amlfw check --probe-tags with the tag's address refusing" af check --json --probe-tags
echo "$E2E_OUT" >"$E2E_TMP/check.json"
expect_eq "refused" "$(j '[e for e in d["endpoints"] if e["destination"] == "AzureMachineLearning"][0]["status"]')" \
  "refused elsewhere (amlfw allows it)"
expect_eq "NR2" "$(j '[e for e in d["endpoints"] if e["destination"] == "AzureMachineLearning"][0]["addresses"][0]["rule"]')" \
  "the daemon names the rule that allows it"
expect_rc 0 "amlfw check without --probe-tags ignores the tag" af check
ix nft delete table inet e2e_check

section "bounded time: every endpoint dropped"
ix nft -f - <<'NFT'
table inet e2e_check {
  chain in {
    type filter hook input priority 0; policy accept;
    ip daddr 192.0.2.64/26 tcp dport { 80, 443 } drop
    ip6 daddr 2001:db8:c0::/48 tcp dport { 80, 443 } drop
  }
}
NFT
t0=$(date +%s%N)
expect_rc 4 "amlfw check with every name dropping" af check
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -lt 6000 ]; then ok "22 connects timing out (3 s each, 32 at a time) took ${ms} ms (< 6 s)"; else bad "check took ${ms} ms"; fi
ix nft delete table inet e2e_check
daemon_stop
e2e_finish
