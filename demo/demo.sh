#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# amlfw demo: `sudo make demo` (= bash demo/demo.sh build/amlfw).
#
# Runs `amlfw run` on its embedded default policy inside a throwaway network namespace
# wired to a simulated internet (tests/e2e/lib.sh: documentation addresses play Azure's
# service-tag ranges and the package sites; dnsmasq plays DNS), then tries a list of
# destinations and prints what is reachable, what is BLOCKED, and which rule decided.
# The real host is never touched; the demo checks its nftables tables before and after.
set -u
DEMO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$DEMO_DIR/.." && pwd)
AMLFW_BIN=${1:-$REPO/build/amlfw}

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root for network namespaces and nftables: sudo make demo" >&2
  exit 1
fi
host_tables_before=$(nft list tables 2>/dev/null)

# shellcheck source=../tests/e2e/lib.sh
source "$REPO/tests/e2e/lib.sh"
E2E_NO_SUMMARY=1
e2e_init "$AMLFW_BIN"

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m' "$*"; else printf '%s' "$*"; fi; }
red() { if [ -t 1 ]; then printf '\033[31m%s\033[0m' "$*"; else printf '%s' "$*"; fi; }
green() { if [ -t 1 ]; then printf '\033[32m%s\033[0m' "$*"; else printf '%s' "$*"; fi; }

echo "$(bold "amlfw demo") ($("$AMLFW" version 2>/dev/null | head -1))"
echo "Setting up a throwaway network namespace \"$E2E_HNS\" (amlfw runs there) and a simulated"
echo "internet \"$E2E_INS\": documentation addresses stand for Azure service-tag ranges and"
echo "package sites, dnsmasq answers DNS. Nothing runs in or changes the host's own network."
topo_up >/dev/null

# The embedded default configuration (config/amlfw.toml), with only the places changed.
CFG="$E2E_TMP/demo.toml"
if ! "$E2E_PY" - "$REPO/config/amlfw.toml" "$CFG" "$E2E_TAGS" "$E2E_DNS_V4" "$E2E_TMP" <<'EOF'
import re, sys
src, dst, tags, dns, tmp = sys.argv[1:]
text = open(src).read()
subs = [  # key -> new value; the line's comment is kept
    ("source", f'"{tags}"'),
    ("upstreams", f'["{dns}"]'),
    ("state_dir", f'"{tmp}/state"'),
    ("runtime_dir", f'"{tmp}/run"'),
]
for key, value in subs:
    pat = r'(?m)^(' + key + r' = )("[^"]*"|\[[^\]]*\])'
    text, n = re.subn(pat, lambda m: m.group(1) + value, text)
    if n != 1:
        sys.exit(f"demo: config/amlfw.toml: expected one '{key} = ' line, found {n}")
open(dst, "w").write(text)
EOF
then
  E2E_FAILED=1
  exit 1
fi
E2E_CONFIG=$CFG
E2E_PROXY_ADDR=127.0.0.1
E2E_PROXY_PORT=53
echo
echo "$(bold "Configuration"): the embedded default (config/amlfw.toml: catalog 2021-10, public cloud,"
echo "westeurope, default features), except where it would touch the host. Differences:"
diff "$REPO/config/amlfw.toml" "$CFG" | sed -n 's/^[<>]/  &/p'
echo "(service tags: a synthetic file in Microsoft's format, tests/e2e/gen_service_tags.py)"

echo
echo "Starting: amlfw run --config $CFG   (in namespace $E2E_HNS)"
daemon_start
if ! daemon_wait_ready 20; then
  echo "demo: amlfw run did not become ready; its log:" >&2
  tail -n 20 "$E2E_TMP/daemon.log" >&2
  E2E_FAILED=1
  exit 1
fi
af status --json 2>/dev/null | netsim jget '"  ready: mode %s, backend %s, generation %s, %s rules, service tags #%s (%s), %s addresses learned so far" % (d["mode"], d["backend"], d["generation"], len(d["rules"]) if isinstance(d["rules"], list) else d["rules"], d["service_tags"]["change_number"], d["service_tags"]["cloud"], d["learned_addresses"])' 2>/dev/null || echo "  ready"

# destination | what it stands for | expected
ROWS=$(cat <<EOF
login.microsoftonline.com:443|Azure AD sign-in|reachable
management.azure.com:443|Azure Resource Manager|reachable
ml.azure.com:443|Azure ML studio|reachable
westeurope.api.azureml.ms:443|Azure ML API (*.azureml.ms)|reachable
ci1.westeurope.instances.azureml.ms:8787|compute instance, RStudio port|reachable
mystore.blob.core.windows.net:443|Batch storage (*.blob..., through a CNAME)|reachable
viennaglobal.azurecr.io:443|Azure ML base images|reachable
pypi.org:443|pypi.org|reachable
files.pythonhosted.org:443|pip downloads (*.pythonhosted.org)|reachable
repo.anaconda.com:443|conda packages|reachable
download.pytorch.org:443|PyTorch (*pytorch.org)|reachable
pypi.org:8080|pypi.org on a port no rule lists|BLOCKED
cloud.r-project.org:443|CRAN (feature r is off)|BLOCKED
mcr.microsoft.com:443|MCR (user_managed_dependencies off)|BLOCKED
evilpytorch.org:443|forbidden: look-alike of pytorch.org|BLOCKED
example.org:443|forbidden: example.org|BLOCKED
$E2E_AML_WE_V4:443|AzureMachineLearning service tag|reachable
[$E2E_AML_WE_V6]:443|AzureMachineLearning, IPv6|reachable
$E2E_ST_WE_V4:443|Storage.WestEurope|reachable
$E2E_ST_EUS_V4:443|Storage in another region (Storage.EastUS)|BLOCKED
$E2E_AFD_FE_V4:443|AzureFrontDoor.Frontend (ml.azure.com)|reachable
$E2E_AAD_V4:443|AzureActiveDirectory|reachable
$E2E_ACR_WE_V4:443|AzureContainerRegistry (custom_images off)|BLOCKED
$E2E_AML_WE_V4:22|AzureMachineLearning on port 22|BLOCKED
$E2E_UNLISTED_V4:443|an address no rule lists|BLOCKED
$E2E_OTHER_DNS_V4:53/udp|a DNS server that is not configured|BLOCKED
EOF
)

echo
printf '%-41s %-46s %-15s %-22s %s\n' "DESTINATION" "STANDS FOR" "ADDRESS" "RESULT" "RULE (amlfw explain --json)"
printf '%s\n' "$(printf '%.0s-' {1..150})"
unexpected=0
starred=0
while IFS='|' read -r dest what expected; do
  target=$dest proto=tcp
  case "$target" in */udp) proto=udp; target=${target%/udp} ;; esac
  port=${target##*:}
  host=${target%:*}
  host=${host#[}; host=${host%]}
  addr=$host note=""
  if ! [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then
    # A name: ask amlfw's DNS proxy, as an application on the machine would.
    out=$(dns_query "$E2E_PROXY_ADDR" "$E2E_PROXY_PORT" "$host" A)
    addr=$(echo "$out" | awk '$1 == "A" {print $2; exit}')
    if [ -z "$addr" ]; then
      note="dns: $(echo "$out" | head -1 | sed 's/rcode=//')"
      addr=$(name_v4 "$host")   # try the address anyway: the kernel must block it too
    fi
  fi
  read -r res ms _ < <(hx "$E2E_PY" "$E2E_NETSIM" probe "$addr" "$port" $( [ "$proto" = udp ] && echo --udp ) --timeout 2)
  if [ "$res" = ok ]; then result="reachable"; else result="BLOCKED"; fi
  shown="$result"
  [ "$result" = BLOCKED ] && shown="BLOCKED ($res, ${ms}ms)"
  rule=$(af explain "$dest" --json 2>/dev/null | netsim jget 'd["rule"] or "-"' 2>/dev/null || echo "? (explain failed)")
  [ -n "$note" ] && starred=1
  mark=""
  if [ "$result" != "$expected" ]; then mark="  <-- expected $expected"; unexpected=$((unexpected + 1)); fi
  if [ "$result" = reachable ]; then col=$(green "$(printf '%-22s' "$shown")"); else col=$(red "$(printf '%-22s' "$shown")"); fi
  printf '%-41s %-46s %-15s %s %s%s\n' "$dest" "${what:0:46}" "$addr${note:+*}" "$col" "$rule" "$mark"
done <<<"$ROWS"
[ "$starred" = 1 ] && echo "(* the proxy gave no usable answer for the name; the demo tried its simulated address directly)"
echo "BLOCKED connections fail fast: a reset or an ICMP error, not a timeout."

daemon_stop
echo
host_tables_after=$(nft list tables 2>/dev/null)
if [ "$host_tables_before" = "$host_tables_after" ]; then
  echo "Host untouched: 'nft list tables' on the host is the same before and after the demo" \
       "($(echo "$host_tables_before" | grep -c . ) tables)."
else
  echo "WARNING: the host's nftables tables changed during the demo:"
  diff <(echo "$host_tables_before") <(echo "$host_tables_after")
  unexpected=$((unexpected + 1))
fi
if [ "$unexpected" -eq 0 ]; then
  echo "Every destination behaved as the policy says."
  E2E_PASSED=1
else
  echo "$unexpected destination(s) did not behave as expected."
  E2E_FAILED=$unexpected
fi
echo "Cleaning up the namespaces."
e2e_finish
