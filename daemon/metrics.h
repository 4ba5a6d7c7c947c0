// SPDX-License-Identifier: MIT
// What the daemon counts, the packet counters of the programmed rules, and their
// Prometheus text exposition (served at /metrics by the optional [metrics] listener).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/enforcer.h"
#include "policy/net.h"
#include "policy/result.h"

namespace amlfw {

// Simple monotonic counters of the daemon (reset at start). Every component of the daemon
// may bump them; status and /metrics report them.
struct DaemonCounters {
  uint64_t resolve_failures = 0;         // exact-name resolutions that failed (upstream errors)
  uint64_t dns_upstream_errors = 0;      // DNS proxy: upstream timeouts/errors (fed by the proxy)
  uint64_t tag_fetch_errors = 0;         // service-tags source unreachable or unreadable
  uint64_t tag_updates_refused = 0;      // bad data, shrink guard, compile error
  uint64_t apply_errors = 0;             // the kernel refused a policy
  uint64_t learn_errors = 0;             // the kernel refused learned addresses
  uint64_t reloads = 0;                  // applied reloads (SIGHUP or control socket)
  uint64_t reloads_refused = 0;
  uint64_t state_save_errors = 0;
  // Bounds hit.
  uint64_t learn_refused_special = 0;    // special-use answers not learned (rebinding)
  uint64_t learn_over_name_limit = 0;    // answers beyond dns.max_addresses_per_name
  uint64_t learned_table_full = 0;       // addresses beyond dns.max_learned (not tracked)
};

// Recent denied (or, in audit mode, would-be-denied) destinations for `status`: one entry
// per (address, port, protocol) with a count, at most `max` entries (the least recently
// seen one makes room). Fed by the backend's event source (eBPF ring buffer; nftables:
// NFLOG, not collected yet) through Daemon::note_denied().
class DeniedTable {
 public:
  struct Entry {
    IpAddr dst;
    uint16_t port = 0;
    uint8_t proto = 0;          // IP protocol number
    uint64_t count = 0;
    int64_t first_seen = 0, last_seen = 0;  // unix seconds
  };
  explicit DeniedTable(size_t max = 256) : max_(max) {}
  void note(const IpAddr& dst, uint16_t port, uint8_t proto, int64_t now);
  // Most counted first (ties: most recent first).
  std::vector<Entry> entries() const;
  size_t size() const { return table_.size(); }
  uint64_t evicted() const { return evicted_; }

 private:
  size_t max_;
  uint64_t evicted_ = 0;
  std::vector<Entry> table_;
};

// Packets and bytes of the rules with a counter, summed by (chain, label). The label is
// the rule's comment: the rule ids of a group ("NR2,NR3"), "deny" or "audit" for the end of
// a chain, or the base rule ("dns", "platform", "dhcp" ...) when it has one.
struct RuleCounter {
  std::string chain;
  std::string label;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};
// From the kernel through the backend (nftables: a dump of the table's rules; eBPF: the
// per-hook decision counters, chain = the hook, label allowed/deny/audit, no bytes). A
// backend without counters gives an empty list.
Result<std::vector<RuleCounter>> read_rule_counters(Enforcer& e);
// The counters of the deny end rules ("deny" in enforce mode, "audit" in audit mode), per chain.
std::vector<RuleCounter> reject_counters(const std::vector<RuleCounter>& all);

struct MetricsInput {
  uint64_t generation = 0;
  std::string mode;                 // enforce | audit
  std::string backend;
  uint64_t rules = 0;
  uint64_t prefixes = 0;            // ranges programmed (after merging)
  uint64_t learned_addresses = 0;
  uint64_t service_tags_change = 0;
  int64_t service_tags_age_s = -1;  // -1: no data
  int64_t started_at = 0;           // unix seconds
  DaemonCounters counters;
  std::vector<RuleCounter> rule_counters;
  bool counters_ok = true;          // false: the kernel could not be read
  // Connections of the control socket and the metrics listener.
  uint64_t control_clients = 0, control_refused_peer = 0, control_refused_busy = 0, control_oversized = 0,
           control_timed_out = 0;
  uint64_t metrics_clients = 0, metrics_refused_busy = 0;
};

// Prometheus text format 0.0.4 (HELP and TYPE for every family, label values escaped).
std::string render_metrics(const MetricsInput& m);

// One HTTP/1.x request head -> the whole response (status line, headers, body), for
// GET/HEAD /metrics; 404 for other paths, 405 for other methods, 400 for garbage.
std::string http_metrics_response(std::string_view request_head, const std::string& body);

}  // namespace amlfw
