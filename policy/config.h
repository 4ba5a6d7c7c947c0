// SPDX-License-Identifier: MIT
// The TOML configuration of SPEC.md. Every key is optional; unknown keys are errors.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/net.h"
#include "policy/result.h"

namespace amlfw {

enum class Cloud : uint8_t { kPublic, kUsGov, kChina, kAuto };
std::string_view to_string(Cloud c);
std::optional<Cloud> parse_cloud(std::string_view s);

enum class Backend : uint8_t { kNftables, kEbpf };
std::string_view to_string(Backend b);
std::optional<Backend> parse_backend(std::string_view s);

enum class Mode : uint8_t { kEnforce, kAudit };
std::string_view to_string(Mode m);
std::optional<Mode> parse_mode(std::string_view s);

// A duration of the configuration: one or more <number><unit> groups, unit s, m, h or d
// ("60s", "15m", "24h", "1d", "1h30m"), in whole seconds. Errors are "what (fix)".
Result<uint64_t> parse_duration(std::string_view s);

// An address and port: "192.0.2.1:53" or "[2001:db8::1]:53". When default_port is not 0,
// a bare "192.0.2.1" or "2001:db8::1" is accepted too and gets that port. Port 0 is refused.
struct SocketAddress {
  IpAddr addr;
  uint16_t port = 0;
  std::string str() const;  // "192.0.2.1:53", "[2001:db8::1]:53"
  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
};
Result<SocketAddress> parse_socket_address(std::string_view s, uint16_t default_port = 0);

// The features of SPEC.md [features]; the catalog's conditions name them.
// Kept as a name -> bool map so that the catalog can refer to any of them by name.
extern const std::vector<std::pair<std::string, bool>> kFeatureDefaults;

struct AllowRule {
  std::string fqdn;         // exactly one of fqdn, cidr, service_tag is set
  std::string cidr;
  std::string service_tag;
  std::vector<PortRange> ports;  // default: all ports
  Proto proto = Proto::kTcp;
  std::string direction = "egress";  // egress | ingress
  std::string why;                   // optional comment shown by plan/explain
  std::string where;                 // "file:line:col" of the [[allow]] table, for messages
};

struct Config {
  std::string path;            // the file it came from, or "<embedded default>"
  bool is_default = false;     // true when the file did not exist

  std::string catalog = "2021-10";
  Cloud cloud = Cloud::kPublic;
  std::string region = "westeurope";
  std::vector<std::string> storage_accounts;
  std::vector<std::string> container_registries;
  std::string workspace_id;    // fills <workspace-id> (Kubernetes rows of 2026-03)
  Backend backend = Backend::kNftables;
  Mode mode = Mode::kEnforce;

  std::map<std::string, bool> features;  // every key of kFeatureDefaults, filled

  struct Inbound {
    bool enforce = false;
    std::vector<std::string> ssh_from;  // CIDRs, validated
  } inbound;

  // Traffic of the node's own processes (SPEC: the host). nftables: the output chain.
  struct Egress {
    bool local = true;  // false: the node's own processes are not filtered (pods only)
  } egress;

  // Traffic routed through the node: pods and containers behind a bridge or veths
  // (docs/kubernetes.md). nftables only: a forward chain applies the egress policy to it.
  struct Forward {
    std::vector<std::string> interfaces;  // input interfaces ("cni0"; "cali*": a trailing * is a prefix)
    std::vector<std::string> sources;     // pod CIDRs (canonical text)
    bool dns_redirect = false;            // DNAT the pods' DNS (udp/tcp 53) to the DNS proxy
    bool enabled() const { return !interfaces.empty() || !sources.empty(); }
  } forward;

  struct ServiceTags {
    std::string source = "/var/lib/amlfw/ServiceTags_Public.json";
    uint64_t refresh_s = 24 * 3600;
    double max_shrink = 0.10;     // refuse an update removing more than this share of a tag
    std::string subscription;     // azure-api
    std::string client_id;        // azure-api: a user-assigned managed identity (empty: the machine's only one)
  } service_tags;

  struct Dns {
    std::string listen = "127.0.0.1:53";
    std::vector<std::string> upstreams;  // "ip" or "ip:port"; empty: /etc/resolv.conf at start
    uint64_t min_ttl_s = 60;
    uint64_t max_ttl_s = 86400;
    uint64_t grace_s = 15 * 60;
    uint32_t max_addresses_per_name = 64;
    uint32_t max_learned = 65536;
    bool allow_private = false;   // learn special-use answers (rebinding protection off)
    bool redirect = false;        // redirect every local DNS packet to the proxy
  } dns;

  struct Platform {
    bool azure = true;
  } platform;

  std::vector<AllowRule> allow;

  struct Ebpf {
    std::string cgroup;
  } ebpf;

  struct Paths {
    std::string state_dir = "/var/lib/amlfw";
    std::string runtime_dir = "/run/amlfw";
  } paths;

  struct Metrics {
    std::string listen;
    bool allow_remote = false;  // listen on a non-loopback address (refused unless true)
  } metrics;

  struct Control {
    std::string group;  // besides root, members of this group may use the control socket
  } control;

  // The TOML text this configuration was parsed from (the embedded default's text when
  // is_default); kept with the last good policy in state_dir.
  std::string source_text;

  bool feature(std::string_view name) const;
};

// Parses TOML text. `origin` names the file in messages ("/etc/amlfw/amlfw.toml").
// Errors are Exit::kUsage, one line: "origin:line:col: what (fix)".
Result<Config> parse_config(std::string_view toml_text, std::string_view origin);

// Reads `path`; if it does not exist, returns the embedded default (is_default = true).
Result<Config> load_config(const std::string& path);

// The embedded default configuration text (config/amlfw.toml, embedded at build time).
std::string_view embedded_default_config();

// Known region names per cloud (lower-case ARM names), for validation and suggestions.
const std::vector<std::string>& known_regions(Cloud c);

// Closest candidate by edit distance (for "did you mean"), or "" if none is close.
std::string suggest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace amlfw
