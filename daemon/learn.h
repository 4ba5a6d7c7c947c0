// SPDX-License-Identifier: MIT
// What an answer for a name teaches the kernel: which groups, which addresses, how long.
// Shared by the exact-name resolver schedule and the DNS proxy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/enforcer.h"
#include "policy/config.h"
#include "policy/policy.h"

namespace amlfw {

struct LearnLimits {
  uint64_t min_ttl_s = 60;
  uint64_t max_ttl_s = 86400;
  uint64_t grace_s = 900;
  uint32_t max_per_name = 64;
  bool allow_private = false;
  static LearnLimits from(const Config::Dns& d);
};

// The name-set groups of every egress fqdn rule matching `name` (sorted, unique).
std::vector<std::string> groups_for_name(const Policy& p, std::string_view name);

struct LearnPlan {
  std::vector<LearnedAddr> addrs;
  size_t refused_special = 0;   // special-use answers not learned (rebinding)
  size_t over_limit = 0;        // answers beyond max_per_name
};
// Lifetime = clamp(ttl, min_ttl, max_ttl) + grace.
LearnPlan plan_learning(const std::vector<std::pair<IpAddr, uint32_t>>& answers, const LearnLimits& lim);
uint32_t learned_lifetime(uint32_t ttl, const LearnLimits& lim);

}  // namespace amlfw
