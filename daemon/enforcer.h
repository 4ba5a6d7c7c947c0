// SPDX-License-Identifier: MIT
// The one small interface every enforcement backend implements (nftables, eBPF, fake).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"
#include "policy/result.h"

namespace amlfw {

struct LearnedAddr {
  IpAddr addr;
  uint32_t timeout_s = 0;  // lifetime from now (TTL clamped + grace)
};

class Enforcer {
 public:
  virtual ~Enforcer() = default;
  virtual std::string_view name() const = 0;
  // Programs the whole policy atomically. The first call of a process adopts whatever
  // this backend finds in the kernel and reconciles it in one transaction; later calls
  // send only the difference from the last applied state.
  virtual Status apply(const Policy& p, const std::vector<PortGroup>& groups) = 0;
  // Adds learned addresses (or renews their timeout) to the name sets of `groups`, in one
  // transaction. Groups that have no name sets are an error.
  virtual Status learn(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) = 0;
  // Removes every trace of enforcement. Idempotent.
  virtual Status flush() = 0;
};

}  // namespace amlfw
