#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Wildcard names through amlfw's DNS proxy (SPEC guarantees 5, 6, 7): an answer for an
# allowed name (through CNAME chains, A and AAAA, UDP and TCP) is in the kernel before the
# client gets it, for the rule's ports only; look-alikes and forbidden names stay blocked;
# queries that bypass the proxy teach nothing; DNS over TLS (853) and HTTPS (443) to a
# resolver that is not configured is blocked; private answers are not learned (DNS
# rebinding); learned addresses survive a restart.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up
P=$E2E_PROXY_ADDR
PP=$E2E_PROXY_PORT

daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi

# ask NAME [TYPE] [--tcp]: query the proxy; sets ANS (addresses, one per line)
ask() {
  local out
  out=$(dns_query "$P" "$PP" "$1" "${2:-A}" ${3:-})
  ANS=$(echo "$out" | awk '$1 == "A" || $1 == "AAAA" {print $2}')
  RCODE=$(echo "$out" | head -1)
}

section "nothing is learned before a query"
expect_blocked "$(name_v4 files.pythonhosted.org)" 443 tcp "files.pythonhosted.org before any query"

section "a query that bypasses the proxy teaches nothing"
out=$(dns_query "$E2E_DNS_V4" 53 conda.anaconda.org A)
expect_match "A $(name_v4 conda.anaconda.org)" "$out" "the upstream answers directly"
expect_blocked "$(name_v4 conda.anaconda.org)" 443 tcp "conda.anaconda.org still blocked"

section "DNS over TLS / HTTPS to a resolver that is not configured is blocked"
# The listeners are up: probed from inside inet, where no policy applies.
for port in 853 443; do
  read -r res ms detail < <(ix "$E2E_PY" "$E2E_NETSIM" probe "$E2E_OTHER_DNS_V4" "$port" --timeout 2 2>&1)
  _judge_connect "$E2E_OTHER_DNS_V4:$port/tcp (from inside inet: the listener is up)" \
    "$E2E_OTHER_DNS_V4" "$port" tcp "$res" "$ms" "$detail"
done
expect_blocked "$E2E_OTHER_DNS_V4" 853 tcp "DNS over TLS to a resolver that is not configured"
expect_blocked "$E2E_OTHER_DNS_V4" 443 tcp "DNS over HTTPS to a resolver that is not configured"
if is_ebpf; then  # the same path from the host namespace, outside the test cgroup: open
  for port in 853 443; do
    read -r res ms detail < <(hx_out "$E2E_PY" "$E2E_NETSIM" probe "$E2E_OTHER_DNS_V4" "$port" --timeout 2 2>&1)
    _judge_connect "$E2E_OTHER_DNS_V4:$port/tcp (from outside the test cgroup: not filtered)" \
      "$E2E_OTHER_DNS_V4" "$port" tcp "$res" "$ms" "$detail"
  done
fi

section "allowed names: the answer's addresses are usable at once"
for name in files.pythonhosted.org repo.anaconda.com conda.anaconda.org download.pytorch.org pytorch.org \
            www.tensorflow.org westeurope.api.azureml.ms abc.notebooks.azure.net x.aznbcontent.net; do
  ask "$name"
  expect_eq "$(name_v4 "$name")" "$ANS" "proxy answer for $name"
  expect_connect "$(name_v4 "$name")" 443 tcp "$name right after the answer"
done
expect_blocked "$(name_v4 files.pythonhosted.org)" 8080 tcp "files.pythonhosted.org on a port the rule does not list"
ask ci1.westeurope.instances.azureml.ms
expect_connect "$(name_v4 ci1.westeurope.instances.azureml.ms)" 8787 tcp "CH3 *.instances.azureml.ms on 8787"
expect_connect "$(name_v4 ci1.westeurope.instances.azureml.ms)" 18881 tcp "CH3 on 18881"
expect_blocked "$(name_v4 ci1.westeurope.instances.azureml.ms)" 8080 tcp "CH3 on 8080"
ask files.pythonhosted.org AAAA
expect_eq "$(name_v6 files.pythonhosted.org)" "$ANS" "AAAA answer"
expect_connect "$(name_v6 files.pythonhosted.org)" 443 tcp "files.pythonhosted.org over IPv6"

section "CNAME chains: decided by the question"
ask mystore.blob.core.windows.net
expect_eq "$(name_v4 mystore.blob.core.windows.net)" "$ANS" "answer through the CNAME"
expect_connect "$(name_v4 mystore.blob.core.windows.net)" 443 tcp "CH4 *.blob.core.windows.net via a CNAME outside the pattern"
ask chain.anaconda.org
expect_eq "$(name_v4 chain.anaconda.org)" "$ANS" "answer through 8 CNAMEs"
expect_connect "$(name_v4 chain.anaconda.org)" 443 tcp "8-long CNAME chain"

section "case and trailing dot"
ask DownLoad.PyTorch.ORG.
expect_connect "$(name_v4 download.pytorch.org)" 443 tcp "DownLoad.PyTorch.ORG."

section "look-alikes and forbidden names stay blocked"
for name in evilpytorch.org example.org www.example.com pypi.org.evil.e2e.test; do
  ask "$name"
  echo "  (proxy: $RCODE ${ANS//$'\n'/ })"
  expect_blocked "$(name_v4 "$name")" 443 tcp "forbidden: $name"
done

section "TCP and truncated answers"
ask "$E2E_MANY_NAME" A
expect_match 'TC|NOERROR' "$RCODE" "UDP answer for $E2E_MANY_COUNT addresses ($RCODE)"
ask "$E2E_MANY_NAME" A --tcp
expect_eq "$E2E_MANY_COUNT" "$(echo "$ANS" | grep -c .)" "TCP answer has all $E2E_MANY_COUNT addresses"
expect_connect 203.0.113.128 443 tcp "the first of them"

section "DNS rebinding: private answers are not learned"
ask rebind.anaconda.org
out=$(af explain 10.0.0.5:443 --json 2>&1)
expect_eq deny "$(echo "$out" | netsim jget 'd["verdict"]' 2>/dev/null || echo "$out")" "explain 10.0.0.5:443 after a private answer"
ask rebind.anaconda.org AAAA
if is_ebpf; then rs=$(amlfw_table); else rs=$(hx nft list table inet amlfw); fi
expect_eq 0 "$(echo "$rs" | grep -cE '10\.0\.0\.5|fd00::5')" "no private address in the kernel's learned sets"

section "the daemon's view"
n=$(status_get 'd["learned_addresses"]')
expect_true "status learned_addresses = $n (>= 12)" test "${n:-0}" -ge 12
out=$(af explain "$(name_v4 files.pythonhosted.org):443" --json 2>&1)
expect_eq "allow AR4b" "$(echo "$out" | netsim jget 'd["verdict"] + " " + str(d["rule"])' 2>/dev/null || echo "$out")" "explain a learned address (live state)"

section "learned addresses survive a restart (guarantee 7)"
daemon_stop
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready again"; else bad "amlfw run did not restart"; fi
expect_connect "$(name_v4 files.pythonhosted.org)" 443 tcp "learned before the restart"
expect_connect "$(name_v4 chain.anaconda.org)" 443 tcp "learned before the restart"
expect_blocked "$(name_v4 evilpytorch.org)" 443 tcp "still blocked"
e2e_finish
