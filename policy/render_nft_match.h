// SPDX-License-Identifier: MIT
// Builders of NftMatch values, shared by the table (render_nft.cpp) and the [forward]
// chains (render_nft_forward.cpp). Internal to policy/: not an interface.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "policy/net.h"
#include "policy/render_nft.h"

namespace amlfw::nft_match {

inline NftMatch of(NftMatch::Kind k) {
  NftMatch x;
  x.kind = k;
  return x;
}
inline NftMatch nfproto(bool v6) {
  NftMatch x = of(NftMatch::Kind::kNfproto);
  x.value = v6 ? kNfprotoIpv6 : kNfprotoIpv4;
  x.v6 = v6;
  return x;
}
inline NftMatch addr_in_set(bool v6, bool src, std::string set) {
  NftMatch x = of(NftMatch::Kind::kAddrInSet);
  x.v6 = v6;
  x.src = src;
  x.set = std::move(set);
  return x;
}
inline NftMatch addr_eq(const IpAddr& a, bool src) {
  NftMatch x = of(NftMatch::Kind::kAddrEq);
  x.addr = a;
  x.v6 = a.v6;
  x.src = src;
  return x;
}

// A counted rule that sends what `matches` selects to the DNS proxy (dnat to addr:port).
inline NftRuleSpec dnat_to_proxy(std::vector<NftMatch> matches, const IpAddr& addr, uint16_t port,
                                 std::string comment) {
  NftRuleSpec r;
  r.matches = std::move(matches);
  r.counter = true;
  r.verdict = NftVerdict::kDnat;
  r.nat_addr = addr;
  r.nat_port = port;
  r.comment = std::move(comment);
  return r;
}

}  // namespace amlfw::nft_match
