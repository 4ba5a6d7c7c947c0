#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# cloud = "auto", region = "auto" and service_tags.source = "azure-api" against mock Azure
# IMDS + ARM servers on the host namespace's loopback (tests/e2e/azure_mock.py), reached
# through the test-only AMLFW_IMDS_ENDPOINT / AMLFW_ARM_ENDPOINT:
#  - apply: instance metadata and a managed-identity token from IMDS (Metadata: true), both
#    serviceTags pages from ARM (Bearer token, nextLink), the policy enforced from them;
#  - the daemon: a new changeNumber is applied; the same one is not read past page 1;
#    401, 403, 429 + Retry-After and garbage keep the last good data and are logged; it
#    recovers when ARM does; a restart with IMDS down starts from the saved state; a hanging
#    ARM never blocks the daemon.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

AZ="$E2E_TMP/azure"
mkdir -p "$AZ"
cp "$E2E_TAGS" "$AZ/tags.json"
echo ok >"$AZ/mode"
port=$((20000 + $$ % 20000))
bg hx "$E2E_PY" "$E2E_DIR/azure_mock.py" --port "$port" --dir "$AZ" --ready "$AZ/ready"
wait_for_file "$AZ/ready" 5 || { bad "azure mock did not start"; e2e_finish; }
export AMLFW_IMDS_ENDPOINT="http://127.0.0.1:$port" AMLFW_ARM_ENDPOINT="http://127.0.0.1:$port"

write_config "$E2E_CONFIG"
sed -i -e 's/^cloud = .*/cloud = "auto"/' -e 's/^region = .*/region = "auto"/' \
  -e 's|^source = .*|source = "azure-api"|' "$E2E_CONFIG"

log_count() { grep -c "$1" "$AZ/requests.log" 2>/dev/null || echo 0; }
log_count_gt() { [ "$(log_count "$1")" -gt "$2" ]; }
refresh_lines() { grep -c 'service tags refresh' "$E2E_TMP/daemon.log"; }
refresh_lines_gt() { [ "$(refresh_lines)" -gt "$1" ]; }
change_number_is() { [ "$(status_get 'd["service_tags"]["change_number"]')" = "$1" ]; }
daemon_log_has() { grep -q "$1" "$E2E_TMP/daemon.log"; }
mode() { echo "$1" >"$AZ/mode"; }

section "plan stays offline"
expect_rc 2 "plan with cloud = auto" af plan --service-tags "$E2E_TAGS"
expect_match 'resolved from Azure IMDS' "$E2E_OUT" "plan says auto needs IMDS (at run time)"

section "apply: IMDS, token, ARM pages"
expect_rc 0 "amlfw apply with cloud/region auto and azure-api" af apply
expect_connect "$E2E_AML_WE_V4" 443 tcp "AzureMachineLearning from the ARM answer"
expect_connect "$E2E_ST_WE_V4" 443 tcp "Storage.WestEurope: region westeurope from IMDS"
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "Storage.EastUS: another region"
expect_true "IMDS instance asked with Metadata: true" \
  grep -q '"path": "/metadata/instance", "query": "api-version=2021-02-01", "metadata": "true"' "$AZ/requests.log"
expect_true "token asked for ARM with Metadata: true" \
  grep -q '"path": "/metadata/identity/oauth2/token", "query": "api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F", "metadata": "true"' "$AZ/requests.log"
expect_true "serviceTags for the IMDS subscription and location, with the bearer token" \
  grep -q '"path": "/subscriptions/0a1b2c3d-0000-4000-8000-00000000abcd/providers/Microsoft.Network/locations/westeurope/serviceTags", "query": "api-version=2023-09-01", "metadata": null, "authorization": "Bearer e2e-token-1"' "$AZ/requests.log"
expect_eq 1 "$(log_count 'skipToken=2')" "the second page followed through nextLink"
expect_rc 0 "amlfw check on the enforced policy (cloud and region as resolved)" af check

section "the daemon"
daemon_start
if daemon_wait_ready 20; then ok "daemon ready"; else bad "daemon not ready"; fi
expect_eq public "$(status_get 'd["cloud"]')" "status: cloud from IMDS"
expect_eq westeurope "$(status_get 'd["region"]')" "status: region from IMDS"
expect_eq azure-api "$(status_get 'd["service_tags"]["source"]')" "status: source"
base_cn=$(status_get 'd["service_tags"]["change_number"]')
expect_match '^[0-9]+$' "$base_cn" "status: change number $base_cn"

section "a new changeNumber is applied"
"$E2E_PY" "$E2E_GEN_TAGS" --variant update --change-number 900 --out "$AZ/tags.json"
kill -USR1 "$E2E_DAEMON_PID"
if wait_until 15 change_number_is 900; then ok "change number 900 applied"
else bad "change number: $(status_get 'd["service_tags"]["change_number"]')"; fi
expect_connect "$E2E_NEW_V4" 443 tcp "the block the update added"

section "the same changeNumber: page 1 only, nothing applied"
gen=$(status_get 'd["generation"]')
pages=$(log_count 'skipToken=2')
first=$(log_count '/serviceTags", "query": "api-version=2023-09-01"')
kill -HUP "$E2E_DAEMON_PID"
wait_until 10 log_count_gt '/serviceTags", "query": "api-version=2023-09-01"' "$first" ||
  bad "no serviceTags request after SIGHUP"
sleep 0.5
expect_eq "$pages" "$(log_count 'skipToken=2')" "page 2 not read again"
expect_eq "$gen" "$(status_get 'd["generation"]')" "generation unchanged"

section "errors keep the last good data"
tokens=$(log_count '/metadata/identity')
for m in 401 403 429 garbage; do
  mode "$m"
  before=$(refresh_lines)
  kill -USR1 "$E2E_DAEMON_PID"
  if wait_until 10 refresh_lines_gt "$before"; then
    line=$(grep 'service tags refresh' "$E2E_TMP/daemon.log" | tail -n 1)
    case $m in
      401) expect_match 'HTTP 401: InvalidAuthenticationToken.*managed identity.*keeping the last good data' "$line" "401 logged" ;;
      403) expect_match 'HTTP 403: AuthorizationFailed.*Reader role.*keeping the last good data' "$line" "403 logged" ;;
      429) expect_match 'HTTP 429 \(throttled, Retry-After 3600 s\).*keeping the last good data' "$line" "429 logged" ;;
      garbage) expect_match 'not JSON.*keeping the last good data' "$line" "garbage logged" ;;
    esac
  else
    bad "$m: nothing logged"
  fi
  expect_eq 900 "$(status_get 'd["service_tags"]["change_number"]')" "$m: change number kept"
  expect_connect "$E2E_NEW_V4" 443 tcp "$m: enforcement kept"
done
expect_eq $((tokens + 1)) "$(log_count '/metadata/identity')" "a 401 renews the token once"
expect_eq 0 "$(grep -c 'e2e-token' "$E2E_TMP/daemon.log")" "no token in the log"

section "ARM answers again"
mode ok
"$E2E_PY" "$E2E_GEN_TAGS" --variant update2 --change-number 901 --out "$AZ/tags.json"
kill -USR1 "$E2E_DAEMON_PID"
if wait_until 15 change_number_is 901; then ok "change number 901 applied"
else bad "change number: $(status_get 'd["service_tags"]["change_number"]')"; fi
expect_blocked "$E2E_NEW_REMOVED_V4" 443 tcp "the range update2 removed"

section "restart with IMDS down: the saved state"
daemon_stop
mode imds-down
daemon_start
if daemon_wait_ready 20; then ok "daemon ready without IMDS"; else bad "daemon not ready without IMDS"; fi
expect_eq true "$(status_get 'd["started_from_state"]')" "started from the saved state"
expect_true "the log says why" daemon_log_has 'needs Azure IMDS'
expect_connect "$E2E_AML_WE_V4" 443 tcp "still enforcing the last good policy"
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "still blocking"
daemon_stop
mode ok
daemon_start
if daemon_wait_ready 20; then ok "daemon ready with IMDS back"; else bad "daemon not ready"; fi
expect_eq false "$(status_get 'd["started_from_state"]')" "a normal start again"

section "a hanging ARM does not block the daemon"
mode hang
kill -USR1 "$E2E_DAEMON_PID"
sleep 0.5
t0=$(date +%s%N)
expect_eq 901 "$(status_get 'd["service_tags"]["change_number"]')" "status answers while the fetch hangs"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -lt 2000 ]; then ok "status took ${ms} ms"; else bad "status took ${ms} ms"; fi
expect_connect "$E2E_AML_WE_V4" 443 tcp "enforcing meanwhile"
daemon_stop
mode ok

section "a user-assigned identity: service_tags.client_id"
sed -i 's|^source = "azure-api"|&\nclient_id = "aaaaaaaa-1111-2222-3333-444444444444"|' "$E2E_CONFIG"
expect_rc 0 "amlfw apply with client_id" af apply
expect_true "the token asked for that identity" \
  grep -q '"path": "/metadata/identity/oauth2/token", "query": "api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F&client_id=aaaaaaaa-1111-2222-3333-444444444444", "metadata": "true"' "$AZ/requests.log"
e2e_finish
