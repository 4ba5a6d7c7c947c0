// SPDX-License-Identifier: MIT
// `amlfw check`: probe every concrete required endpoint of a compiled policy.
//
// 1. plan_check(): the policy's egress rules -> probe targets. Exact host names with each
//    of their ports (a port range gives its first ports, at most kMaxPortsPerRule); a
//    wildcard name is "not probed (wildcard)" unless a known sample name matches it (the
//    apex of a "*example.com" pattern, names the DNS proxy learned before); service tags
//    and CIDRs are probed (one address each) only when asked; UDP is never probed (no
//    handshake to tell an answer from a silent drop). Same host+port of several rules is
//    probed once.
// 2. run_check(): resolves every name at once (c-ares, through the given servers: the
//    upstreams, or the running daemon's DNS proxy so that the answer is learned), then
//    TCP-connects to one IPv4 and one IPv6 address of each, non-blocking, at most
//    `concurrency` at a time, each within `connect_timeout`, all within `total_timeout`.
// 3. Each failed address is judged (the caller's Judge: explain() against the policy or
//    the running daemon) to tell "blocked by amlfw" (no rule allows it) from "refused"
//    or "timed out" elsewhere.
// No logging, no exit codes: the CLI prints and decides.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/net.h"
#include "policy/policy.h"
#include "policy/result.h"

namespace amlfw {

enum class CheckStatus : uint8_t {
  kReachable,    // connected
  kBlocked,      // refused by amlfw: no rule allows this address and port
  kRefused,      // reset / EPERM / ICMP error although amlfw allows it: elsewhere
  kTimeout,      // no answer within connect_timeout: dropped upstream (or the total time ran out)
  kUnreachable,  // no route to the address (ENETUNREACH), network down
  kDnsFailure,   // the name did not resolve (error, NXDOMAIN, no address)
  kNotProbed,    // wildcard without a sample, service tag without --probe-tags, UDP
};
std::string_view to_string(CheckStatus s);
// Reachable and not-probed are fine; everything else makes `amlfw check` exit 4.
inline bool check_failed(CheckStatus s) { return s != CheckStatus::kReachable && s != CheckStatus::kNotProbed; }

struct CheckTarget {
  std::vector<std::string> rule_ids;  // every rule this host/address and port serves
  std::string pattern;                // the rule's destination: pattern, tag or CIDR
  DestKind kind = DestKind::kFqdn;
  std::string host;                   // name to resolve; empty for tag/CIDR probes
  std::optional<IpAddr> addr;         // tag/CIDR probes: the address to connect to
  uint16_t port = 0;
  std::vector<PortRange> rule_ports;  // every port of the rule (for not-probed lines)
  Proto proto = Proto::kTcp;
  bool probe = true;                  // false: reported as not probed
  std::string note;                   // why not probed, or "sample of *.x.com"
};

struct CheckPlanOptions {
  bool probe_ranges = false;               // one address of each service tag and CIDR rule
  bool wildcard_samples = false;           // probe the apex of "*example.com" patterns
  std::vector<std::string> known_names;    // sample names for wildcards (e.g. learned before)
};
inline constexpr size_t kMaxPortsPerRule = 4;

// Deterministic: rule order, then port order.
std::vector<CheckTarget> plan_check(const Policy& p, const CheckPlanOptions& o);

// The address chosen for a service-tag or CIDR probe: the first address after the network
// address of the first IPv4 range (IPv6 when there is none). nullopt for an empty set.
std::optional<IpAddr> sample_address(const PrefixSet& s);

// Does the policy allow this address (learned from `host`, when not empty) on this port?
struct CheckJudgement {
  bool allow = false;
  std::string rule;   // "" when no rule allows it
  std::string why;
};
using CheckJudge = std::function<CheckJudgement(const IpAddr& a, uint16_t port, Proto proto, const std::string& host)>;

struct AddrProbe {
  IpAddr addr;
  CheckStatus status = CheckStatus::kTimeout;
  double ms = 0;
  std::string detail;          // errno text, "no answer within 3 s"
  std::optional<CheckJudgement> judgement;  // for failures
};

struct EndpointResult {
  CheckTarget target;
  CheckStatus status = CheckStatus::kNotProbed;
  std::string detail;          // one line for the table
  std::vector<AddrProbe> addrs;
};

struct CheckOptions {
  std::vector<std::string> dns_servers;     // "ip:port" for c-ares
  std::chrono::milliseconds dns_timeout{5000};
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds total_timeout{60000};
  size_t concurrency = 32;
  CheckJudge judge;                          // may be empty: failures are not judged
};

struct CheckReport {
  std::vector<EndpointResult> endpoints;     // in target order
  size_t reachable = 0, failed = 0, not_probed = 0;
  double elapsed_ms = 0;
  bool ok() const { return failed == 0; }
};

// Errors only for setup (bad DNS server); probe failures are in the report.
Result<CheckReport> run_check(const std::vector<CheckTarget>& targets, const CheckOptions& o);

// One TCP connect, blocking up to `timeout` (exposed for tests).
AddrProbe probe_tcp(const IpAddr& a, uint16_t port, std::chrono::milliseconds timeout);

nlohmann::json check_json(const CheckReport& r);
std::string check_table(const CheckReport& r);

}  // namespace amlfw
