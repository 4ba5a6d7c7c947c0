#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `amlfw plan` and `amlfw explain` need no privileges and no network: run them as nobody
# inside an empty network namespace (when root), on the generated service tags, and check
# the JSON contract of SPEC.md, the policy the default features give, and the exit codes
# and one-line messages for bad input (2: configuration, 3: data).
source "$(dirname "$0")/lib.sh"
e2e_init "$@" --no-root

mkdir -p "$E2E_TMP/state" "$E2E_TMP/run"
E2E_TAGS="$E2E_TMP/ServiceTags_Public.json"
write_tags base
E2E_CONFIG="$E2E_TMP/amlfw.toml"
write_config "$E2E_CONFIG"
chmod -R a+rX "$E2E_TMP"

# offline CMD...: as nobody with no network at all when we can, else as we are.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null && command -v setpriv >/dev/null &&
   setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$AMLFW" 2>/dev/null; then
  offline() { unshare --net -- setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
  echo "running plan/explain as uid 65534 in an empty network namespace"
else
  offline() { "$@"; }
  echo "note: not root (or $AMLFW not readable by nobody): plan/explain run as $(id -un)"
fi
plan() { offline "$AMLFW" plan --config "$E2E_CONFIG" "$@"; }
explain() { offline "$AMLFW" explain "$@" --config "$E2E_CONFIG" --json; }
jq_() { netsim jget "$1" <"$E2E_TMP/plan.json"; }

section "plan --format json: the contract"
expect_rc 0 "plan --format json" plan --format json
echo "$E2E_OUT" >"$E2E_TMP/plan.json"
expect_eq 2021-10 "$(jq_ 'd["catalog"]')" "catalog"
expect_eq public "$(jq_ 'd["cloud"]')" "cloud"
expect_eq westeurope "$(jq_ 'd["region"]')" "region"
# Every rule: id, direction, proto, ports ("N" or "N-M", 1-65535), exactly one destination.
shape=$(netsim jget '[
  r.get("id", "?") for r in d["rules"]
  if not (isinstance(r.get("id"), str) and r["id"]
          and r.get("direction") in ("egress", "ingress")
          and r.get("proto") in ("tcp", "udp", "any")
          and isinstance(r.get("ports"), list) and r["ports"]
          and all(isinstance(p, str) and p.replace("-", "", 1).isdigit()
                  and 1 <= int(p.split("-")[0]) <= int(p.split("-")[-1]) <= 65535 for p in r["ports"])
          and sum(k in r for k in ("fqdn", "service_tag", "cidr")) == 1
          and ("service_tag" not in r or isinstance(r.get("prefixes"), int)))]' <"$E2E_TMP/plan.json")
expect_eq "[]" "$shape" "rules that break the JSON contract"
expect_eq "$(jq_ 'len(d["rules"])')" "$(jq_ 'len({r["id"] + r["direction"] + r.get("fqdn", r.get("service_tag", r.get("cidr", ""))) for r in d["rules"]})')" "rules are unique"

rule() {  # ID FIELD -> the field of the first rule with that id
  netsim jget "next((r.get('$2') for r in d['rules'] if r['id'] == '$1'), 'absent')" <"$E2E_TMP/plan.json"
}
tag_rule() {  # TAG [DIRECTION] -> "id direction proto ports prefixes"
  netsim jget "' '.join(next(([r['id'], r['direction'], r['proto'], ','.join(r['ports']), str(r.get('prefixes'))] for r in d['rules'] if r.get('service_tag') == '$1' and r['direction'] == '${2:-egress}'), ['absent']))" <"$E2E_TMP/plan.json"
}
fqdn_rule() {  # FQDN -> "id ports"
  netsim jget "' '.join(next(([r['id'], ','.join(r['ports'])] for r in d['rules'] if r.get('fqdn') == '$1'), ['absent']))" <"$E2E_TMP/plan.json"
}

section "service-tag rules of the default policy (westeurope)"
expect_eq "NR1 egress tcp 1-65535 5" "$(tag_rule AzureActiveDirectory)" "AzureActiveDirectory, all ports"
expect_eq "NR2 egress tcp 443 15" "$(tag_rule AzureMachineLearning)" "AzureMachineLearning (3 blocks x 5 prefixes)"
expect_eq "NR3 egress tcp 443 5" "$(tag_rule AzureResourceManager)" "AzureResourceManager"
expect_eq "NR4 egress tcp 443 5" "$(tag_rule Storage.WestEurope)" "Storage.region -> Storage.WestEurope"
expect_eq "NR5 egress tcp 443 5" "$(tag_rule AzureFrontDoor.Frontend)" "AzureFrontDoor.FrontEnd -> the data's AzureFrontDoor.Frontend"
expect_eq "IN1 ingress tcp 29876-29877 5" "$(tag_rule BatchNodeManagement.WestEurope ingress)" "inbound BatchNodeManagement.WestEurope"
expect_eq "IN2 ingress tcp 44224 15" "$(tag_rule AzureMachineLearning ingress)" "inbound AzureMachineLearning 44224"
for t in Storage.EastUS Storage AzureContainerRegistry.WestEurope MicrosoftContainerRegistry.WestEurope AzureKeyVault.WestEurope; do
  expect_eq absent "$(tag_rule "$t")" "no rule for $t"
done

section "name rules of the default policy"
expect_eq "AR4 80,443" "$(fqdn_rule pypi.org)" "pypi.org"
expect_eq "AR4b 80,443" "$(fqdn_rule '*.pythonhosted.org')" "*.pythonhosted.org (pythonhosted = true)"
expect_eq "AR6 80,443" "$(fqdn_rule '*pytorch.org')" "*pytorch.org"
expect_eq "MH1 443" "$(fqdn_rule login.microsoftonline.com)" "login.microsoftonline.com"
expect_eq "CH3 443,8787,18881" "$(fqdn_rule '*.instances.azureml.ms')" "*.instances.azureml.ms"
expect_eq absent "$(fqdn_rule cloud.r-project.org)" "no R host (r = false)"
expect_eq absent "$(fqdn_rule update.code.visualstudio.com)" "no VS Code host (vscode = false)"
expect_eq absent "$(fqdn_rule mcr.microsoft.com)" "no mcr.microsoft.com (user_managed_dependencies = false, aks = false)"
expect_match '<storage>|storage' "$(netsim jget '[s for s in d.get("skipped", [])]' <"$E2E_TMP/plan.json" 2>/dev/null) $(plan --format table 2>&1 | grep -i -E 'AH4|storage' | head -3)" "rows needing storage_accounts are reported as skipped"

section "determinism and formats"
a=$(plan --format json 2>&1); b=$(plan --format json 2>&1)
expect_eq "$(echo "$a" | md5sum)" "$(echo "$b" | md5sum)" "two plans are byte-identical"
expect_rc 0 "plan --format table" plan --format table
expect_match 'NR2' "$E2E_OUT" "the table lists NR2"
expect_rc 0 "plan --format nft" plan --format nft
expect_match 'table inet amlfw' "$E2E_OUT" "the nft rendering is table inet amlfw"
expect_rc 0 "plan --service-tags overrides service_tags.source" \
  offline "$AMLFW" plan --config "$E2E_CONFIG" --service-tags "$E2E_TAGS" --format json
CFG_FEATURES='custom_images = true
hbi_workspace = true' write_config "$E2E_TMP/features.toml"
chmod a+r "$E2E_TMP/features.toml"
expect_rc 0 "plan with custom_images and hbi_workspace" offline "$AMLFW" plan --config "$E2E_TMP/features.toml" --format json
echo "$E2E_OUT" >"$E2E_TMP/plan2.json"
expect_match 'NR6 .*AzureContainerRegistry.WestEurope' "$(netsim jget "[(r['id'], r.get('service_tag')) for r in d['rules']]" <"$E2E_TMP/plan2.json" | tr -d "[](),'\"")" "custom_images adds AzureContainerRegistry.WestEurope"
expect_match 'NR8 .*AzureKeyVault.WestEurope' "$(netsim jget "[(r['id'], r.get('service_tag')) for r in d['rules']]" <"$E2E_TMP/plan2.json" | tr -d "[](),'\"")" "hbi_workspace adds AzureKeyVault.WestEurope"
sed 's/^region = "westeurope"/region = "eastus"/' "$E2E_CONFIG" >"$E2E_TMP/eastus.toml"
chmod a+r "$E2E_TMP/eastus.toml"
expect_rc 0 "plan for eastus" offline "$AMLFW" plan --config "$E2E_TMP/eastus.toml" --format json
expect_match '"Storage.EastUS"' "$E2E_OUT" "region eastus uses Storage.EastUS"

section "explain (from the compiled policy)"
explain_is() {  # TARGET VERDICT RULE
  local out
  out=$(explain "$1" 2>&1)
  expect_eq "$2 $3" "$(echo "$out" | netsim jget 'd["verdict"] + " " + str(d["rule"] if d["rule"] is not None else "null")' 2>/dev/null || echo "bad-json: $out")" "explain $1"
}
explain_is "$E2E_AML_WE_V4:443" allow NR2
explain_is "[$E2E_AML_EUS_V6]:443" allow NR2
explain_is "$E2E_AML_WE_V4:8080" deny null
explain_is "$E2E_ST_WE_V4:443" allow NR4
explain_is "$E2E_ST_EUS_V4:443" deny null
explain_is "$E2E_AAD_V4:8080" allow NR1
explain_is "$E2E_UNLISTED_V4:443" deny null
explain_is "$E2E_AML_WE_V4:443/udp" deny null
explain_is pypi.org:443 allow AR4
explain_is PyPI.org.:443 allow AR4
explain_is pypi.org:8080 deny null
explain_is files.pythonhosted.org:443 allow AR4b
explain_is pytorch.org:443 allow AR6
explain_is download.pytorch.org:443 allow AR6
explain_is evilpytorch.org:443 deny null
explain_is anaconda.com:443 allow AR2
explain_is repo.anaconda.com:443 allow AR2
explain_is evilanaconda.com:443 deny null
explain_is ci1.westeurope.instances.azureml.ms:8787 allow CH3
explain_is example.org:443 deny null
expect_rc 2 "explain with a bad target" offline "$AMLFW" explain 'pypi.org:99999' --config "$E2E_CONFIG" --json

section "bad configuration: exit 2, one line naming file:line:col"
printf 'catalog = "2021-10"\nregoin = "westeurope"\n' >"$E2E_TMP/bad1.toml"
printf 'catalog = "2021-10"\n\n[dns]\nmin_ttl = 60s\n' >"$E2E_TMP/bad2.toml"
printf 'region = "westeurop"\n' >"$E2E_TMP/bad3.toml"
printf '[features]\ncustom_imagez = true\n' >"$E2E_TMP/bad4.toml"
chmod a+r "$E2E_TMP"/bad*.toml
expect_rc 2 "unknown key" offline "$AMLFW" plan --config "$E2E_TMP/bad1.toml" --service-tags "$E2E_TAGS"
expect_match "^amlfw: $E2E_TMP/bad1.toml:2:1: .*regoin.*region" "$E2E_OUT" "names bad1.toml:2:1 and suggests 'region'"
expect_eq 1 "$(echo "$E2E_OUT" | wc -l)" "one line"
expect_rc 2 "TOML syntax error" offline "$AMLFW" plan --config "$E2E_TMP/bad2.toml" --service-tags "$E2E_TAGS"
expect_match "^amlfw: $E2E_TMP/bad2.toml:4:[0-9]+: " "$E2E_OUT" "names bad2.toml:4:col"
expect_rc 2 "unknown region" offline "$AMLFW" plan --config "$E2E_TMP/bad3.toml" --service-tags "$E2E_TAGS"
expect_match "^amlfw: $E2E_TMP/bad3.toml:1:[0-9]+: .*westeurope" "$E2E_OUT" "names bad3.toml:1:col and suggests 'westeurope'"
expect_rc 2 "unknown feature" offline "$AMLFW" plan --config "$E2E_TMP/bad4.toml" --service-tags "$E2E_TAGS"
expect_match "^amlfw: $E2E_TMP/bad4.toml:2:1: .*custom_images" "$E2E_OUT" "names bad4.toml:2:1 and suggests 'custom_images'"
expect_rc 2 "unknown command" offline "$AMLFW" frobnicate
expect_rc 2 "unknown option" offline "$AMLFW" plan --frobnicate

section "bad service tags: exit 3, naming the file and the place"
# A missing comma at the end of line 15 (AzureActiveDirectory's first prefix): the parser
# finds the error at line 16, column 11 (python3's json says the same).
awk 'NR == 15 { sub(/,$/, "") } { print }' "$E2E_TAGS" >"$E2E_TMP/bad-syntax.json"
"$E2E_PY" - "$E2E_TAGS" "$E2E_TMP/bad-cidr.json" "$E2E_TMP/bad-cloud.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["values"][1]["properties"]["addressPrefixes"][2] = "198.51.100.24/33"
json.dump(d, open(sys.argv[2], "w"), indent=2)
d = json.load(open(sys.argv[1]))
d["cloud"] = "AzureGovernment"
json.dump(d, open(sys.argv[3], "w"), indent=2)
EOF
head -c 2000 "$E2E_TAGS" >"$E2E_TMP/truncated.json"
"$E2E_PY" "$E2E_GEN_TAGS" --variant nomltag --out "$E2E_TMP/nomltag.json"
chmod a+r "$E2E_TMP"/*.json
expect_rc 3 "JSON syntax error" offline "$AMLFW" plan --config "$E2E_CONFIG" --service-tags "$E2E_TMP/bad-syntax.json"
expect_match "^amlfw: $E2E_TMP/bad-syntax.json:1[56]:[0-9]+: " "$E2E_OUT" "names bad-syntax.json:line:col ($E2E_OUT)"
expect_eq 1 "$(echo "$E2E_OUT" | wc -l)" "one line"
expect_rc 3 "a prefix that is not a CIDR" offline "$AMLFW" plan --config "$E2E_CONFIG" --service-tags "$E2E_TMP/bad-cidr.json"
expect_match "bad-cidr.json.*AzureMachineLearning.*198\.51\.100\.24/33" "$E2E_OUT" "names the file, the tag and the prefix"
expect_rc 3 "a truncated file" offline "$AMLFW" plan --config "$E2E_CONFIG" --service-tags "$E2E_TMP/truncated.json"
expect_match "truncated.json" "$E2E_OUT" "names the file"
expect_rc 3 "another cloud's file" offline "$AMLFW" plan --config "$E2E_CONFIG" --service-tags "$E2E_TMP/bad-cloud.json"
expect_match "AzureGovernment" "$E2E_OUT" "says which cloud the file is for"
expect_rc 3 "a required tag missing" offline "$AMLFW" plan --config "$E2E_CONFIG" --service-tags "$E2E_TMP/nomltag.json"
expect_match "AzureMachineLearning" "$E2E_OUT" "names the missing tag"
"$E2E_PY" "$E2E_GEN_TAGS" --crlf --out "$E2E_TMP/crlf.json"
chmod a+r "$E2E_TMP/crlf.json"
expect_rc 0 "a CRLF file (Microsoft published some) is fine" offline "$AMLFW" plan --config "$E2E_CONFIG" --service-tags "$E2E_TMP/crlf.json" --format json

e2e_finish
