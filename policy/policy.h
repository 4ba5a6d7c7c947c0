// SPDX-License-Identifier: MIT
// The compiled policy: config + catalog + service tags -> rules with concrete
// destinations; grouped by (direction, protocol, ports) for the backends; diffed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/catalog.h"
#include "policy/config.h"
#include "policy/name_pattern.h"
#include "policy/net.h"
#include "policy/service_tags.h"

namespace amlfw {

enum class DestKind : uint8_t { kFqdn, kServiceTag, kCidr };

struct Rule {
  std::string id;              // catalog row id, "user-N", or "platform-*"
  Direction direction = Direction::kEgress;
  Proto proto = Proto::kTcp;
  std::vector<PortRange> ports;  // normalized
  DestKind kind = DestKind::kCidr;
  std::string dest;            // the pattern, the data's tag name, or the CIDR text
  NamePattern pattern;         // kFqdn
  PrefixSet prefixes;          // kServiceTag, kCidr (normalized)
  size_t prefix_count = 0;     // prefixes as loaded (before merging)
  std::string why;
  std::string section;
  bool enforced = true;        // false for ingress rules while inbound.enforce = false
  std::string note;            // e.g. "URL path reduced to its host"
};

struct SkippedRow {
  std::string id;
  std::string reason;          // "condition 'r' is off", "not in cloud china", "no storage_accounts"
};

struct Policy {
  std::string catalog;         // revision
  std::string cloud;           // "public" | "usgov" | "china"
  std::string region;
  Mode mode = Mode::kEnforce;
  Backend backend = Backend::kNftables;
  bool inbound_enforce = false;
  bool platform_azure = true;          // 168.63.129.16 and 169.254.169.254 stay reachable
  bool dns_redirect = false;           // redirect every local DNS packet to the proxy
  std::vector<IpAddr> dns_upstreams;   // where DNS may go (plus the proxy)
  uint16_t dns_upstream_port = 53;
  std::string dns_listen;              // the proxy
  bool egress_local = true;            // the node's own processes are filtered (nftables: output chain)
  // Traffic routed through the node from pods (nftables: a forward chain applies the egress
  // policy to packets arriving on these interfaces or from these sources).
  std::vector<std::string> forward_interfaces;  // "cni0", "cali*" (trailing * = prefix)
  std::vector<Prefix> forward_sources;          // pod CIDRs, sorted, unique
  bool forward_dns_redirect = false;            // DNAT the pods' DNS to the proxy
  std::string ebpf_cgroup;                      // [ebpf] cgroup as configured ("" = the root), for plan
  bool forward_enabled() const { return !forward_interfaces.empty() || !forward_sources.empty(); }
  std::vector<Rule> rules;             // deterministic order
  std::vector<SkippedRow> skipped;
  std::string service_tags_origin;
  uint64_t service_tags_change = 0;
  std::string service_tags_cloud;

  // Name rules (fqdn) that accept `name`, in order.
  std::vector<const Rule*> rules_for_name(std::string_view name) const;
};

struct CompileInput {
  const Config* config = nullptr;
  const Catalog* catalog = nullptr;
  const ServiceTags* tags = nullptr;   // may be null only if the policy needs no tag
  std::vector<IpAddr> dns_upstreams;   // already resolved (config or resolv.conf)
};

// Deterministic: the same input gives the same Policy. A service tag the policy needs
// that is missing from the data is an error (Exit::kData), never a smaller policy.
Result<Policy> compile(const CompileInput& in);

// ---- Backend view: rules grouped by (direction, proto, ports) -------------------------

struct PortGroup {
  std::string name;            // stable: "e_tcp_443", "e_tcp_80_443", "i_tcp_29876-29877"
  Direction direction = Direction::kEgress;
  Proto proto = Proto::kTcp;
  std::vector<PortRange> ports;
  PrefixSet prefixes;          // union of the group's tag and CIDR rules (normalized)
  bool has_names = false;      // some fqdn rule feeds this group's learned-address sets
  bool enforced = true;
  std::vector<std::string> rule_ids;  // for comments and counters
};

// Groups enforced-or-not rules; sorted by name.
std::vector<PortGroup> group_rules(const Policy& p);
std::string port_group_name(Direction d, Proto p, const std::vector<PortRange>& ports);

struct GroupChange {
  std::string name;
  RangeDiff diff;
};

// What turns `from` into `to`: groups to create (whole), groups to delete, and per-group
// element changes. Base-chain settings (mode, upstreams, platform) compare as `base_changed`.
struct PolicyDiff {
  std::vector<const PortGroup*> added;     // point into `to`
  std::vector<std::string> removed;        // group names in `from`
  std::vector<GroupChange> changed;
  bool base_changed = false;
  bool empty() const { return added.empty() && removed.empty() && changed.empty() && !base_changed; }
  size_t element_changes() const;
};
PolicyDiff diff_groups(const std::vector<PortGroup>& from, const std::vector<PortGroup>& to);

// ---- explain ---------------------------------------------------------------------------

struct Target {
  std::string host;            // set for HOST targets
  std::optional<IpAddr> addr;  // set for IP targets
  std::optional<uint16_t> port;
  Proto proto = Proto::kTcp;
  std::string text;
};
// IP, IP:PORT, [IPv6]:PORT, HOST, HOST:PORT, each optionally /udp (or /tcp).
Result<Target> parse_target(std::string_view s);

struct Verdict {
  bool allow = false;
  const Rule* rule = nullptr;  // null for deny, and for allows by the base chain
  std::string rule_id;         // "NR2", "platform-wireserver", "" on deny
  std::string why;
};
// From the compiled policy. `learned` optionally supplies (address -> rule ids) known live.
Verdict explain(const Policy& p, const Target& t);

}  // namespace amlfw
