#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy/kubernetes, offline (no cluster, no root): both kustomizations (the nftables default
# and ebpf/) and the CoreDNS example are validated against the Kubernetes OpenAPI schemas
# (npm package kubernetes-models, installed from the npm registry into the build tree with
# the pinned lock file tests/deploy/package-lock.json), strictly (an unknown field fails, as
# `kubectl apply` refuses it); the validator is shown to catch a typo, a wrong type and a
# missing field. Then what the manifests promise: host network, no host PID, only the
# capabilities each backend needs, system-node-critical, tolerations for every node, rolling
# updates of one node at a time without surge, probes on the control socket, the host paths
# that keep state, pins and cgroups, image and config names that agree. The amlfw.toml of
# each ConfigMap compiles with this amlfw; the CoreDNS example forwards every name of the
# policy to the proxy's address; the Containerfile installs this version's .deb.
source "$(dirname "$0")/lib.sh"
e2e_init "$@" --no-root

REPO=$(cd "$E2E_DIR/../.." && pwd)
DEPLOY="$REPO/deploy/kubernetes"
CHECKS="$REPO/tests/deploy"
for t in node npm; do
  command -v "$t" >/dev/null 2>&1 || e2e_skip "'$t' is not installed (sudo make deps installs nodejs and npm)"
done

section "the validator: kubernetes-models from the npm registry, into the build tree"
CACHE="$(dirname "$AMLFW")/deploy-checks"
mkdir -p "$CACHE"
LOCK_SUM=$(cat "$CHECKS/package.json" "$CHECKS/package-lock.json" | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/.installed" 2>/dev/null)" != "$LOCK_SUM" ] || [ ! -d "$CACHE/node_modules/kubernetes-models" ]; then
  cp "$CHECKS/package.json" "$CHECKS/package-lock.json" "$CACHE/"
  if (cd "$CACHE" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >"$E2E_TMP/npm.log" 2>&1; then
    echo "$LOCK_SUM" >"$CACHE/.installed"
    ok "npm ci into $CACHE ($(ls "$CACHE/node_modules" | wc -l) packages)"
  else
    bad "npm ci failed: $(tail -n 5 "$E2E_TMP/npm.log")"
    e2e_finish
  fi
else
  ok "npm packages already in $CACHE (lock unchanged)"
fi
export NODE_PATH="$CACHE/node_modules"
vjs() { node "$CHECKS/validate.cjs" "$@"; }

# py EXPR FILE.json: evaluate a Python expression with the rendered objects as `objs` and
# helpers ds (the DaemonSet), cm (the amlfw ConfigMap), c (the amlfw container).
py() {
  "$E2E_PY" - "$1" "$2" <<'EOF'
import json, sys
objs = json.load(open(sys.argv[2]))
def one(kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None
ds = one("DaemonSet")
cm = one("ConfigMap", "amlfw")
pod = ds["spec"]["template"]["spec"] if ds else {}
c = [x for x in pod.get("containers", []) if x["name"] == "amlfw"][0] if ds else {}
vol = {v["name"]: v for v in pod.get("volumes", [])}
mnt = {m["name"]: m for m in c.get("volumeMounts", [])}
r = eval(sys.argv[1])
print(r if not isinstance(r, (list, dict, bool)) else json.dumps(r, sort_keys=True))
EOF
}
expect_py() {  # WANT EXPR FILE WHAT
  expect_eq "$1" "$(py "$2" "$3" 2>&1)" "$4"
}

section "schemas: both kustomizations and the CoreDNS example"
for v in base ebpf; do
  dir=$DEPLOY
  [ "$v" = ebpf ] && dir=$DEPLOY/ebpf
  if vjs render "$dir" >"$E2E_TMP/$v.json" 2>"$E2E_TMP/$v.err"; then
    ok "$v: rendered $(py 'len(objs)' "$E2E_TMP/$v.json") objects ($(py '" ".join(o["kind"] for o in objs)' "$E2E_TMP/$v.json"))"
  else
    bad "$v: render: $(cat "$E2E_TMP/$v.err")"
    continue
  fi
  while read -r verdict rest; do
    if [ "$verdict" = ok ]; then ok "$v: $rest valid"; else bad "$v: $rest"; fi
  done < <(vjs validate "$E2E_TMP/$v.json" 2>&1)
done
vjs yaml "$DEPLOY/examples/coredns-custom.yaml" >"$E2E_TMP/coredns.json" || bad "coredns-custom.yaml does not parse"
expect_match '^ok +ConfigMap/coredns-custom' "$(vjs validate "$E2E_TMP/coredns.json" 2>&1)" "examples/coredns-custom.yaml valid"

section "the validator refuses what the API server would"
mutate() {  # EXPR: a Python statement on `objs` (ds, c as in py) -> $E2E_TMP/bad.json
  "$E2E_PY" - "$1" "$E2E_TMP/base.json" "$E2E_TMP/bad.json" <<'EOF'
import json, sys
objs = json.load(open(sys.argv[2]))
ds = [o for o in objs if o["kind"] == "DaemonSet"][0]
c = ds["spec"]["template"]["spec"]["containers"][0]
exec(sys.argv[1])
json.dump(objs, open(sys.argv[3], "w"))
EOF
}
mutate 'ds["spec"]["template"]["spec"]["hostNetwrok"] = True'
expect_match 'FAIL DaemonSet/amlfw: /spec/template/spec/hostNetwrok: unknown field' "$(vjs validate "$E2E_TMP/bad.json")" "a misspelt field is refused"
mutate 'ds["spec"]["updateStrategy"]["rollingUpdate"]["maxSurge"] = [0]'
expect_match 'FAIL DaemonSet/amlfw: /spec/updateStrategy/rollingUpdate/maxSurge: type' "$(vjs validate "$E2E_TMP/bad.json")" "a list where an int-or-string belongs is refused"
mutate 'del c["name"]'
expect_match 'missingProperty":"name"' "$(vjs validate "$E2E_TMP/bad.json")" "a container without a name is refused"
mutate 'c["securityContext"]["capabilities"]["add"] = "NET_ADMIN"'
expect_match 'capabilities/add: type' "$(vjs validate "$E2E_TMP/bad.json")" "capabilities.add as a string is refused"
mutate 'ds["apiVersion"] = "extensions/v1beta2"'
expect_match 'FAIL DaemonSet/amlfw: no schema' "$(vjs validate "$E2E_TMP/bad.json")" "an API version that does not exist is refused"
vjs validate "$E2E_TMP/bad.json" >/dev/null
expect_eq 1 "$?" "validate exits 1 on a bad manifest"

section "what the DaemonSet promises (both variants)"
B=$E2E_TMP/base.json
E=$E2E_TMP/ebpf.json
for f in "$B" "$E"; do
  v=$(basename "$f" .json)
  expect_py true 'pod.get("hostNetwork") is True' "$f" "$v: host network"
  expect_py true 'not pod.get("hostPID") and not pod.get("hostIPC")' "$f" "$v: no host PID or IPC namespace"
  expect_py system-node-critical 'pod.get("priorityClassName")' "$f" "$v: priority class"
  expect_py true 'any(t.get("operator") == "Exists" and "key" not in t and "effect" not in t for t in pod.get("tolerations", []))' "$f" \
    "$v: tolerates every taint (operator Exists, no key, no effect)"
  expect_py '{"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"}' 'ds["spec"]["updateStrategy"]' "$f" \
    "$v: one node at a time, never two daemons on a node"
  expect_py true 'c["securityContext"].get("privileged") in (None, False) and c["securityContext"]["allowPrivilegeEscalation"] is False' "$f" \
    "$v: not privileged, no privilege escalation"
  expect_py '["ALL"]' 'c["securityContext"]["capabilities"]["drop"]' "$f" "$v: every capability dropped first"
  expect_py true 'all(x["securityContext"]["capabilities"]["drop"] == ["ALL"] and x["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"] for x in pod.get("initContainers", []))' "$f" \
    "$v: the init container gets NET_ADMIN only"
  for p in startupProbe readinessProbe livenessProbe; do
    expect_py '["amlfw", "status", "--config", "/etc/amlfw/amlfw.toml"]' "c[\"$p\"][\"exec\"][\"command\"]" "$f" "$v: $p asks the daemon on its control socket"
  done
  expect_py '["run", "--config", "/etc/amlfw/amlfw.toml"]' 'c["args"]' "$f" "$v: amlfw run with the mounted config"
  expect_py true 'mnt["config"]["mountPath"] == "/etc/amlfw" and vol["config"]["configMap"]["name"] == cm["metadata"]["name"] and "amlfw.toml" in cm["data"]' "$f" \
    "$v: the ConfigMap's amlfw.toml is /etc/amlfw/amlfw.toml"
  expect_py true 'vol["state"]["hostPath"]["path"] == mnt["state"]["mountPath"] == "/var/lib/amlfw"' "$f" "$v: state_dir is the host's /var/lib/amlfw"
  expect_py true 'vol["run"]["hostPath"]["path"] == mnt["run"]["mountPath"] == "/run/amlfw"' "$f" "$v: runtime_dir is the host's /run/amlfw"
  expect_py true 'c["securityContext"]["readOnlyRootFilesystem"] is True' "$f" "$v: read-only root file system"
  expect_py 1 'len({x["image"] for x in pod["containers"] + pod.get("initContainers", [])})' "$f" "$v: one image for all containers"
  expect_py true 'all(o["metadata"].get("namespace") == "amlfw-system" for o in objs if o["kind"] != "Namespace")' "$f" "$v: everything in amlfw-system"
  expect_py privileged '[o for o in objs if o["kind"] == "Namespace"][0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]' "$f" \
    "$v: Pod Security Admission allows the node agent"
  expect_py true 'pod["serviceAccountName"] in [o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"] and pod["automountServiceAccountToken"] is False' "$f" \
    "$v: own service account, no API token"
done
expect_py '["NET_ADMIN", "NET_BIND_SERVICE"]' 'sorted(c["securityContext"]["capabilities"]["add"])' "$B" "nftables: NET_ADMIN and NET_BIND_SERVICE only"
expect_py false '"bpffs" in vol or "cgroup" in vol' "$B" "nftables: no bpffs, no cgroup mount"
expect_py '["BPF", "NET_ADMIN", "NET_BIND_SERVICE", "PERFMON"]' 'sorted(c["securityContext"]["capabilities"]["add"])' "$E" \
  "ebpf: BPF and PERFMON besides, no SYS_ADMIN"
expect_py true 'vol["bpffs"]["hostPath"]["path"] == mnt["bpffs"]["mountPath"] == "/sys/fs/bpf" and mnt["bpffs"]["mountPropagation"] == "HostToContainer" and not mnt["bpffs"].get("readOnly")' "$E" \
  "ebpf: the host's bpffs, writable, host mounts visible (the pins outlive the pod)"
expect_py true 'vol["cgroup"]["hostPath"]["path"] == mnt["cgroup"]["mountPath"] == "/sys/fs/cgroup" and mnt["cgroup"]["readOnly"] is True' "$E" \
  "ebpf: the host's cgroup2 tree, read only"

section "each ConfigMap's amlfw.toml compiles with this amlfw"
E2E_TAGS="$E2E_TMP/ServiceTags_Public.json"
write_tags base
for f in "$B" "$E"; do
  v=$(basename "$f" .json)
  py 'cm["data"]["amlfw.toml"]' "$f" >"$E2E_TMP/$v.toml"
  # cloud = "auto" asks Azure IMDS at run time; plan works offline: a region stands in.
  sed 's/^cloud = "auto".*/cloud = "public"\nregion = "westeurope"/' "$E2E_TMP/$v.toml" >"$E2E_TMP/$v.plan.toml"
  expect_rc 0 "$v: amlfw plan of the ConfigMap's amlfw.toml" "$AMLFW" plan --config "$E2E_TMP/$v.plan.toml" --service-tags "$E2E_TAGS" --format json
  echo "$E2E_OUT" >"$E2E_TMP/$v.plan.json"
  expect_match 'cloud = "auto"' "$(cat "$E2E_TMP/$v.toml")" "$v: cloud from IMDS on the node"
done
planq() { "$E2E_PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps(eval(sys.argv[2]), sort_keys=True))' "$1" "$2"; }
expect_eq '["nftables", false, true]' "$(planq "$E2E_TMP/base.plan.json" '[d["backend"], d["egress_local"], d["forward"]["dns_redirect"]]')" \
  "nftables: pods through the forward chain, their DNS redirected, the node's processes not filtered"
expect_eq '"ebpf"' "$(planq "$E2E_TMP/ebpf.plan.json" 'd["backend"]')" "ebpf: backend ebpf"
expect_match 'kubepods.slice' "$(planq "$E2E_TMP/ebpf.plan.json" 'd["applies_to"]')" "ebpf: the programs confine kubepods.slice"
for v in base ebpf; do
  expect_eq '"audit"' "$(planq "$E2E_TMP/$v.plan.json" 'd["mode"]')" "$v: shipped in audit mode (the rollout recipe)"
  expect_match '"(AK1|ATI1|AT1)"' "$(planq "$E2E_TMP/$v.plan.json" '[r["id"] for r in d["rules"]]')" "$v: the Kubernetes rows are on"
done
listen=$(sed -nE 's/^listen = "([0-9.]+):53".*/\1/p' "$E2E_TMP/base.toml" | head -n 1)
expect_match "ip addr replace $listen/32 dev amlfw-dns" "$(py 'pod["initContainers"][0]["command"][-1]' "$B")" \
  "the init container gives the node the proxy's address $listen"
expect_match '^listen = "127\.0\.0\.1:[0-9]+"' "$(sed -n '/^\[metrics\]/,/^\[/p' "$E2E_TMP/base.toml" | grep '^listen')" \
  "metrics on the node's loopback only (host network)"

section "the CoreDNS example forwards every name of the policy to the proxy"
elisten=$(sed -nE 's/^listen = "([0-9.]+):53".*/\1/p' "$E2E_TMP/ebpf.toml" | head -n 1)
block=$("$E2E_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["data"]["amlfw.server"])' "$E2E_TMP/coredns.json")
expect_match "forward \. $elisten" "$block" "forward . $elisten (the proxy's address in the eBPF config)"
zones=$(echo "$block" | head -n 1 | sed 's/{//')
missing=$("$E2E_PY" - "$E2E_TMP/ebpf.plan.json" "$zones" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
zones = [z.rstrip(".").lower() for z in sys.argv[2].split()]
names = [r["fqdn"] for r in d["rules"] if r.get("fqdn")]
for name in names:
    bare = name.lstrip("*").lstrip(".")
    if not any(bare == z or bare.endswith("." + z) for z in zones):
        print("outside the zones:", name)
print("names=%d" % len(names))
EOF
)
expect_match '^names=[1-9][0-9]*$' "$missing" "every fqdn of the eBPF policy is under a zone of amlfw.server ($missing)"

section "the image recipe"
CF="$DEPLOY/Containerfile"
version=$("$AMLFW" version | sed -nE '1s/^amlfw ([0-9][^ ]*).*/\1/p')
expect_match '^FROM debian:12' "$(grep '^FROM' "$CF")" "built from Debian 12"
expect_match "AMLFW_DEB=amlfw_${version}_amd64\.deb" "$(grep '^ARG' "$CF")" "installs this version's .deb ($version)"
expect_match 'apt-get install -y --no-install-recommends /tmp/amlfw\.deb' "$(cat "$CF")" "apt installs the .deb with its Debian dependencies"
expect_match '^ENTRYPOINT \["/usr/sbin/amlfw"\]' "$(grep '^ENTRYPOINT' "$CF")" "the packaged binary is the entry point"
expect_match "newTag: $version" "$(cat "$DEPLOY/kustomization.yaml")" "the kustomization's image tag is $version"
expect_match 'iproute2' "$(grep 'apt-get install' "$CF")" "iproute2 for the init container"

if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  section "kubectl kustomize renders the same objects"
  for v in base ebpf; do
    dir=$DEPLOY
    [ "$v" = ebpf ] && dir=$DEPLOY/ebpf
    if kubectl kustomize "$dir" >"$E2E_TMP/$v.kubectl.yaml" 2>"$E2E_TMP/$v.kubectl.err"; then
      vjs yaml "$E2E_TMP/$v.kubectl.yaml" >"$E2E_TMP/$v.kubectl.json"
      same=$("$E2E_PY" -c '
import json, sys
key = lambda o: (o["kind"], o["metadata"]["name"])
a = sorted(json.load(open(sys.argv[1])), key=key)
b = sorted(json.load(open(sys.argv[2])), key=key)
print("same" if json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) else "differ")' "$E2E_TMP/$v.json" "$E2E_TMP/$v.kubectl.json")
      expect_eq same "$same" "$v: kubectl kustomize = the test's rendering"
    else
      bad "$v: kubectl kustomize: $(head -n 2 "$E2E_TMP/$v.kubectl.err")"
    fi
  done
else
  echo "note: kubectl is not installed; the kustomizations were rendered by tests/deploy/validate.cjs only"
fi
e2e_finish
