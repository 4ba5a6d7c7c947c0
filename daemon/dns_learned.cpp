// SPDX-License-Identifier: MIT
#include "daemon/dns_learned.h"

#include <algorithm>

namespace amlfw {
// ---- DnsLearner --------------------------------------------------------------------------

DnsLearner::DnsLearner(Enforcer& enforcer, GroupsFn groups, LearnLimits limits, uint32_t max_learned)
    : enforcer_(enforcer), groups_(std::move(groups)), limits_(limits), max_learned_(max_learned) {}

void DnsLearner::set_limits(LearnLimits limits, uint32_t max_learned) {
  limits_ = limits;
  max_learned_ = max_learned;
}

uint32_t DnsLearner::group_index(const std::string& g) {
  auto it = group_ids_.find(g);
  if (it != group_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(group_names_.size());
  group_names_.push_back(g);
  group_ids_.emplace(g, id);
  return id;
}

void DnsLearner::notice(const std::string& line) {
  if (notice_) notice_(line);
}

std::optional<DnsLearner::Clock::time_point> DnsLearner::expiry(const std::string& group, const IpAddr& a) const {
  auto g = group_ids_.find(group);
  if (g == group_ids_.end()) return std::nullopt;
  auto it = table_.find(Key{g->second, a});
  if (it == table_.end()) return std::nullopt;
  return it->second;
}

Status DnsLearner::learn(std::string_view name, const std::vector<std::string>& groups,
                         const std::vector<std::pair<IpAddr, uint32_t>>& answers) {
  if (groups.empty() || answers.empty()) return {};
  const LearnPlan plan = plan_learning(answers, limits_);
  if (plan.refused_special > 0) {
    stats_.refused_special += plan.refused_special;
    notice(std::string(name) + ": " + std::to_string(plan.refused_special) +
           " special-use address(es) in the answer not learned (DNS rebinding; dns.allow_private = false)");
  }
  if (plan.over_limit > 0) {
    stats_.over_name_bound += plan.over_limit;
    notice(std::string(name) + ": " + std::to_string(plan.over_limit) +
           " address(es) beyond dns.max_addresses_per_name = " + std::to_string(limits_.max_per_name) + " not learned");
  }
  if (plan.addrs.empty()) return {};
  std::vector<uint32_t> gids;
  gids.reserve(groups.size());
  for (const auto& g : groups) gids.push_back(group_index(g));

  const auto now = Clock::now();
  std::vector<LearnedAddr> send;
  send.reserve(plan.addrs.size());
  size_t new_entries = 0, refused_total = 0;
  bool pruned = false;
  for (const auto& la : plan.addrs) {
    const auto until = now + std::chrono::seconds(la.timeout_s);
    bool need = false;
    size_t missing = 0;
    for (uint32_t g : gids) {
      auto it = table_.find(Key{g, la.addr});
      if (it == table_.end()) {
        need = true;
        ++missing;
      } else if (it->second + renew_slack_ < until) {
        need = true;
      }
    }
    if (!need) {
      ++stats_.renewals_skipped;
      continue;
    }
    if (missing > 0 && table_.size() + new_entries + missing > max_learned_) {
      if (!pruned) {
        prune();
        pruned = true;
      }
      if (table_.size() + new_entries + missing > max_learned_) {
        ++refused_total;
        continue;
      }
    }
    new_entries += missing;
    send.push_back(la);
  }
  if (refused_total > 0) {
    stats_.over_total_bound += refused_total;
    notice(std::string(name) + ": " + std::to_string(refused_total) + " address(es) not learned: dns.max_learned = " +
           std::to_string(max_learned_) + " addresses are learned already");
  }
  if (send.empty()) return {};
  Status s = enforcer_.learn(groups, send);
  if (!s.ok()) {
    ++stats_.learn_failures;
    return s;
  }
  for (const auto& la : send) {
    const auto until = now + std::chrono::seconds(la.timeout_s);
    for (uint32_t g : gids) {
      auto [it, inserted] = table_.try_emplace(Key{g, la.addr}, until);
      if (!inserted && it->second < until) it->second = until;
    }
  }
  ++stats_.answers_learned;
  stats_.addrs_learned += send.size() * gids.size();
  if (on_learned_) on_learned_(name, groups, send);
  return {};
}

void DnsLearner::seed(const std::vector<std::string>& groups, const IpAddr& addr, uint32_t lifetime_s) {
  const auto until = Clock::now() + std::chrono::seconds(lifetime_s);
  for (const auto& g : groups) {
    auto [it, inserted] = table_.try_emplace(Key{group_index(g), addr}, until);
    if (!inserted && it->second < until) it->second = until;
  }
}

size_t DnsLearner::prune() {
  const auto now = Clock::now();
  return std::erase_if(table_, [&](const auto& kv) { return kv.second <= now; });
}

}  // namespace amlfw
