#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Exact host names of the policy are resolved by amlfw at apply time through the
# configured upstream (dnsmasq here), CNAME chains included, and their addresses are
# reachable on the rule's ports (A and AAAA). Names of features that are off, forbidden
# names, and wildcard-only names (learned through the DNS proxy only) stay blocked.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

section "apply"
expect_rc 0 "amlfw apply" af apply
plan_json "$E2E_TMP/plan.json" || bad "plan --format json: $(cat "$E2E_TMP/plan.json.err")"

section "exact names of the default policy"
expect_connect "$(name_v4 login.microsoftonline.com)" 443 tcp "MH1 login.microsoftonline.com"
expect_connect "$(name_v6 login.microsoftonline.com)" 443 tcp "MH1 login.microsoftonline.com AAAA"
expect_blocked "$(name_v4 login.microsoftonline.com)" 80 tcp "MH1 is 443 only"
expect_connect "$(name_v4 management.azure.com)" 443 tcp "MH2/MH3 management.azure.com"
expect_connect "$(name_v4 ml.azure.com)" 443 tcp "AH1 ml.azure.com"
expect_connect "$(name_v4 graph.windows.net)" 80 tcp "AR1 graph.windows.net (http)"
expect_connect "$(name_v4 graph.microsoft.com)" 443 tcp "AH7 graph.microsoft.com"
expect_connect "$(name_v4 pypi.org)" 443 tcp "AR4 pypi.org, through a CNAME"
expect_connect "$(name_v6 pypi.org)" 443 tcp "AR4 pypi.org AAAA, through a CNAME"
expect_connect "$(name_v4 pypi.org)" 80 tcp "AR4 pypi.org http"
expect_blocked "$(name_v4 pypi.org)" 8080 tcp "AR4 pypi.org on 8080"
expect_connect "$(name_v4 anaconda.com)" 443 tcp "AR2 anaconda.com"
expect_connect "$(name_v4 viennaglobal.azurecr.io)" 443 tcp "DI2 viennaglobal.azurecr.io, through 3 CNAMEs"

section "names that must stay blocked"
expect_blocked "$(name_v4 cloud.r-project.org)" 443 tcp "AR5 cloud.r-project.org (r = false)"
expect_blocked "$(name_v4 mcr.microsoft.com)" 443 tcp "DI1 mcr.microsoft.com (user_managed_dependencies = false)"
expect_blocked "$(name_v4 update.code.visualstudio.com)" 443 tcp "AR8 (vscode = false)"
expect_blocked "$(name_v4 dc.services.visualstudio.com)" 443 tcp "AR12 (support_diagnostics = false)"
expect_blocked "$(name_v4 example.org)" 443 tcp "forbidden: example.org"
expect_blocked "$(name_v4 evilpytorch.org)" 443 tcp "forbidden: evilpytorch.org (look-alike)"
expect_blocked "$(name_v4 files.pythonhosted.org)" 443 tcp "*.pythonhosted.org: nothing learned without a DNS query through the proxy"
expect_blocked "$(name_v4 repo.anaconda.com)" 443 tcp "*.anaconda.com: nothing learned without the proxy"

section "amlfw asked the configured upstream"
for n in login.microsoftonline.com pypi.org viennaglobal.azurecr.io; do
  expect_true "dnsmasq saw A $n" grep -q "query\[A\] $n from $E2E_HOST_V4" "$E2E_TMP/dnsmasq.log"
  expect_true "dnsmasq saw AAAA $n" grep -q "query\[AAAA\] $n from $E2E_HOST_V4" "$E2E_TMP/dnsmasq.log"
done

section "every exact name of the plan that the simulation knows"
while read -r id name ports; do
  v4=$(name_v4 "$name")
  if [ -z "$v4" ]; then echo "note: $id $name is not in the simulation's DNS"; continue; fi
  port=${ports%%,*}; port=${port%%-*}
  expect_connect "$v4" "$port" tcp "$id $name"
  expect_connect "$(name_v6 "$name")" "$port" tcp "$id $name AAAA"
  [[ ",$ports," != *",8080,"* ]] && expect_blocked "$v4" 8080 tcp "$id $name on 8080"
done < <(netsim jget '"\n".join(" ".join([r["id"], r["fqdn"], ",".join(r["ports"])]) for r in d["rules"] if "fqdn" in r and "*" not in r["fqdn"] and "<" not in r["fqdn"] and r["direction"] == "egress")' <"$E2E_TMP/plan.json")

section "new answers are picked up by the next apply"
# Move pypi.org: restart dnsmasq with a different address for it.
kill "$(cat "$E2E_TMP/dnsmasq.pid")"
sleep 0.3
E2E_NAMES=$(echo "$E2E_NAMES" | sed -E 's/^(dualstack.python.map.fastly.e2e.test|pypi.org) .*/pypi.org 192.0.2.90 2001:db8:c0::90 dualstack.python.map.fastly.e2e.test/')
mapfile -t args < <(dnsmasq_args)
bg ix dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
  --bind-interfaces --listen-address="$E2E_DNS_V4" --port=53 --user=root --group=root \
  --pid-file="$E2E_TMP/dnsmasq.pid" --log-queries=extra --log-facility="$E2E_TMP/dnsmasq.log" \
  --local-ttl=60 "${args[@]}"
for i in $(seq 50); do dns_query "$E2E_DNS_V4" 53 pypi.org | grep -q '^A 192.0.2.90' && break; sleep 0.1; done
expect_rc 0 "amlfw apply" af apply
expect_connect 192.0.2.90 443 tcp "pypi.org's new address"
e2e_finish
