# SPDX-License-Identifier: MIT
# What the data-plane benchmarks share (bench/ebpf_connect_bench.sh, bench/nft_dataplane.sh):
# the two-namespace topology, the servers in it, amlfw's configuration for the full real
# policy, and the statistics. Sourced; the caller keeps PIDS (the servers started here are
# appended) and removes the namespaces at exit.

# bench_real_tags HERE: the real public service-tags file of ../shared, or nothing.
bench_real_tags() {
  (cd "$1/../../shared/data/servicetags" 2>/dev/null && ls "$PWD"/ServiceTags_Public_*.json | head -n 1)
}

# bench_cgroup2: where cgroup v2 is mounted (from /proc/self/mountinfo: not always
# /sys/fs/cgroup; /sys/fs/cgroup/unified on hybrid machines), or nothing.
bench_cgroup2() {
  awk '{for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' /proc/self/mountinfo | head -n 1
}

# bench_topology H I: namespace H (the client) --veth-- namespace I, where 203.0.113.0/24 is
# local; H routes everything to I. Room for the connection churn of the client.
bench_topology() {
  local h=$1 i=$2
  ip netns add "$h" && ip netns add "$i" || return 1
  ip -n "$h" link set lo up
  ip -n "$i" link set lo up
  ip -n "$h" link add veth0 type veth peer name veth0 netns "$i"
  ip -n "$h" addr add 192.0.2.1/28 dev veth0
  ip -n "$i" addr add 192.0.2.2/28 dev veth0
  ip -n "$h" link set veth0 up
  ip -n "$i" link set veth0 up
  ip -n "$h" route add default via 192.0.2.2
  ip -n "$i" route add local 203.0.113.0/24 dev lo
  ip netns exec "$h" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
  ip netns exec "$i" sysctl -qw net.ipv4.tcp_max_syn_backlog=8192 net.core.somaxconn=8192
}

# bench_servers I BENCH TMP: the connect server on 203.0.113.x:443 and iperf3 on
# 203.0.113.10:8443, in namespace I.
bench_servers() {
  ip netns exec "$1" "$2" serve 443 1 >"$3/server.log" 2>&1 &
  PIDS+=($!)
  ip netns exec "$1" iperf3 -s -B 203.0.113.10 -p 8443 >"$3/iperf.log" 2>&1 &
  PIDS+=($!)
  sleep 0.5
}

# bench_config BACKEND TAGS TMP: amlfw.toml for the full real policy (2021-10, every feature
# on, inbound enforced) plus an [[allow]] that puts the benchmark's endpoint 203.0.113.0/24 on
# TCP 443 and 8443. More TOML (an [ebpf] section) may follow on the caller's side.
bench_config() {
  cat <<EOT
catalog = "2021-10"
cloud = "public"
region = "westeurope"
storage_accounts = ["mystore"]
container_registries = ["myregistry1"]
backend = "$1"

[features]
custom_images = true
user_managed_dependencies = true
hbi_workspace = true
r = true
vscode = true
support_diagnostics = true
aks = true
arc_extension = true
arc_training = true
arc_inference = true

[inbound]
enforce = true
ssh_from = ["198.51.100.0/24"]

[service_tags]
source = "$2"

[dns]
upstreams = ["127.0.0.1"]

[paths]
state_dir = "$3/state"
runtime_dir = "$3/run"

[[allow]]
cidr = "203.0.113.0/24"
ports = ["443", "8443"]
proto = "tcp"
why = "benchmark endpoint"
EOT
}

# med X...: the median (the upper one of an even count).
med() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
# pct BASE VALUE: VALUE / BASE in %.
pct() { python3 -c "print(f'{100 * $2 / $1:.1f}')"; }
# rmed "BASE_SERIES" "SERIES": the median of SERIES[i] / BASE_SERIES[i], in %.
rmed() {
  python3 -c 'import statistics, sys; b, v = map(str.split, sys.argv[1:3]); print(f"{100 * statistics.median(float(y) / float(x) for x, y in zip(b, v)):.1f}")' "$1" "$2"
}
