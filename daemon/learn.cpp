// SPDX-License-Identifier: MIT
#include "daemon/learn.h"

#include <algorithm>

namespace amlfw {

LearnLimits LearnLimits::from(const Config::Dns& d) {
  LearnLimits l;
  l.min_ttl_s = d.min_ttl_s;
  l.max_ttl_s = std::max(d.max_ttl_s, d.min_ttl_s);
  l.grace_s = d.grace_s;
  l.max_per_name = d.max_addresses_per_name;
  l.allow_private = d.allow_private;
  return l;
}

std::vector<std::string> groups_for_name(const Policy& p, std::string_view name) {
  std::vector<std::string> out;
  for (const Rule* r : p.rules_for_name(name)) out.push_back(port_group_name(r->direction, r->proto, r->ports));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

uint32_t learned_lifetime(uint32_t ttl, const LearnLimits& lim) {
  uint64_t t = std::clamp<uint64_t>(ttl, lim.min_ttl_s, lim.max_ttl_s) + lim.grace_s;
  return static_cast<uint32_t>(std::min<uint64_t>(t, 0xffffffffu / 1000));  // nft timeouts are in ms
}

LearnPlan plan_learning(const std::vector<std::pair<IpAddr, uint32_t>>& answers, const LearnLimits& lim) {
  LearnPlan plan;
  for (const auto& answer : answers) {
    const IpAddr& addr = answer.first;  // not a structured binding: clang 14 cannot capture those
    const uint32_t ttl = answer.second;
    if (!lim.allow_private && is_special_use(addr)) {
      ++plan.refused_special;
      continue;
    }
    auto dup = std::find_if(plan.addrs.begin(), plan.addrs.end(), [&](const LearnedAddr& l) { return l.addr == addr; });
    const uint32_t life = learned_lifetime(ttl, lim);
    if (dup != plan.addrs.end()) {
      dup->timeout_s = std::max(dup->timeout_s, life);
      continue;
    }
    if (plan.addrs.size() >= lim.max_per_name) {
      ++plan.over_limit;
      continue;
    }
    plan.addrs.push_back({addr, life});
  }
  return plan;
}

}  // namespace amlfw
