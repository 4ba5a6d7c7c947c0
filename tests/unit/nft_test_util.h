// SPDX-License-Identifier: MIT
// A PortGroup written in one line, for the nftables render tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "policy/policy.h"

namespace amlfw::testing {

inline PortGroup group(Direction d, Proto p, std::vector<PortRange> ports, std::vector<std::string> prefixes,
                       std::vector<std::string> ids, bool names = false) {
  PortGroup g;
  g.direction = d;
  g.proto = p;
  g.ports = ports;
  g.name = port_group_name(d, p, ports);
  for (const auto& s : prefixes) g.prefixes.add(*Prefix::parse(s));
  g.prefixes.normalize();
  g.rule_ids = std::move(ids);
  g.has_names = names;
  return g;
}

}  // namespace amlfw::testing
