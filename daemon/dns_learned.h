// SPDX-License-Identifier: MIT
// What the DNS proxy taught the kernel: every (group, address) with its expiry.
//
// DnsLearner turns one answer into one Enforcer::learn() call (SPEC guarantee 6): the
// groups of the rules matching the question, the A/AAAA of the answer filtered by
// plan_learning (special-use addresses, the per-name bound), the total bound
// (dns.max_learned), each with lifetime clamp(ttl, min_ttl, max_ttl) + grace. It keeps the
// table of what it taught (for the total bound and to skip renewals that would change
// nothing), counts every refusal, and reports each learned batch to the daemon
// (on_learned), which keeps it in state_dir with the addresses of exact names
// (daemon/state.h) and teaches it again at the next start.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/enforcer.h"
#include "daemon/learn.h"
#include "policy/net.h"
#include "policy/result.h"

namespace amlfw {

struct DnsLearnStats {
  uint64_t answers_learned = 0;   // answers that went to the kernel
  uint64_t addrs_learned = 0;     // (group, address) added or renewed
  uint64_t renewals_skipped = 0;  // already alive long enough (within renew_slack)
  uint64_t refused_special = 0;   // special-use answers (rebinding)
  uint64_t over_name_bound = 0;   // beyond dns.max_addresses_per_name
  uint64_t over_total_bound = 0;  // beyond dns.max_learned
  uint64_t learn_failures = 0;    // Enforcer::learn refused: the client got SERVFAIL
};

class DnsLearner {
 public:
  using Clock = std::chrono::steady_clock;
  using GroupsFn = std::function<std::vector<std::string>(std::string_view name)>;
  // Called once per bound hit ("what, name"); the daemon logs it (rate-limited there).
  using NoticeFn = std::function<void(const std::string& line)>;
  // Called after each successful Enforcer::learn() with what went to the kernel.
  using LearnedFn = std::function<void(std::string_view name, const std::vector<std::string>& groups,
                                       const std::vector<LearnedAddr>& addrs)>;

  // `enforcer` must outlive the learner.
  DnsLearner(Enforcer& enforcer, GroupsFn groups, LearnLimits limits, uint32_t max_learned);

  void set_limits(LearnLimits limits, uint32_t max_learned);
  void set_groups(GroupsFn groups) { groups_ = std::move(groups); }
  void set_notice(NoticeFn n) { notice_ = std::move(n); }
  void set_on_learned(LearnedFn f) { on_learned_ = std::move(f); }
  // An address already alive for at least (lifetime - slack) is not sent again.
  void set_renew_slack(std::chrono::milliseconds s) { renew_slack_ = s; }

  // The name-set groups for a question name ("" or no match: empty).
  std::vector<std::string> groups_for(std::string_view name) const { return groups_(name); }
  // Programs what the answer teaches and returns only when the kernel has it. An error
  // means the kernel refused it: the caller must not release the answer. Bounds and
  // refused addresses are not errors (counted, noticed).
  Status learn(std::string_view name, const std::vector<std::string>& groups,
               const std::vector<std::pair<IpAddr, uint32_t>>& answers);

  // Records (group, addr) as alive for `lifetime_s` more seconds without teaching the kernel
  // (what the daemon re-learned from state_dir before the proxy started), so that it counts
  // against dns.max_learned.
  void seed(const std::vector<std::string>& groups, const IpAddr& addr, uint32_t lifetime_s);
  // Forgets expired entries; returns how many.
  size_t prune();
  size_t size() const { return table_.size(); }
  const DnsLearnStats& stats() const { return stats_; }
  // Expiry of (group, addr), if known.
  std::optional<Clock::time_point> expiry(const std::string& group, const IpAddr& a) const;

 private:
  struct Key {
    uint32_t group = 0;
    IpAddr addr;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      const uint64_t lo = static_cast<uint64_t>(k.addr.value), hi = static_cast<uint64_t>(k.addr.value >> 64);
      return std::hash<uint64_t>()(lo * 0x9e3779b97f4a7c15ULL ^ hi ^ (uint64_t{k.group} << 1 | k.addr.v6));
    }
  };
  uint32_t group_index(const std::string& g);
  void notice(const std::string& line);

  Enforcer& enforcer_;
  GroupsFn groups_;
  NoticeFn notice_;
  LearnedFn on_learned_;
  LearnLimits limits_;
  uint32_t max_learned_;
  std::chrono::milliseconds renew_slack_{1000};
  std::vector<std::string> group_names_;
  std::unordered_map<std::string, uint32_t> group_ids_;
  std::unordered_map<Key, Clock::time_point, KeyHash> table_;
  DnsLearnStats stats_;
};

}  // namespace amlfw
