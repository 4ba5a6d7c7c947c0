// SPDX-License-Identifier: MIT
#include "policy/tag_update.h"

#include <algorithm>
#include <cstdio>

namespace amlfw {
namespace {

// Number of addresses (as long double: IPv6 counts overflow 64 bits) in a - b.
template <class R>
long double removed_size(const std::vector<R>& a, const std::vector<R>& b, long double* total) {
  long double removed = 0;
  *total = 0;
  size_t j = 0;
  for (const auto& r : a) {
    *total += static_cast<long double>(r.hi - r.lo) + 1;
    auto lo = r.lo;
    while (j < b.size() && b[j].hi < lo) ++j;
    size_t k = j;
    while (true) {
      if (k >= b.size() || b[k].lo > r.hi) {  // the rest of r is gone
        removed += static_cast<long double>(r.hi - lo) + 1;
        break;
      }
      if (b[k].lo > lo) removed += static_cast<long double>(b[k].lo - lo);
      if (b[k].hi >= r.hi) break;  // covered to the end
      lo = b[k].hi + 1;
      ++k;
    }
  }
  return removed;
}

double share(long double removed, long double total) { return total > 0 ? static_cast<double>(removed / total) : 0.0; }

}  // namespace

std::vector<std::string> tags_used(const Policy& p) {
  std::vector<std::string> out;
  for (const auto& r : p.rules)
    if (r.kind == DestKind::kServiceTag && std::find(out.begin(), out.end(), r.dest) == out.end())
      out.push_back(r.dest);
  return out;
}

std::vector<TagShrink> shrinking_tags(const ServiceTags& before, const ServiceTags& now,
                                      const std::vector<std::string>& names, double max_share) {
  std::vector<TagShrink> out;
  for (const auto& name : names) {
    const ServiceTag* b = before.find(name);
    if (b == nullptr) continue;  // new to the policy: nothing to lose
    const ServiceTag* n = now.find(name);
    if (n == nullptr) {
      out.push_back({b->name, 1.0});
      continue;
    }
    long double t4 = 0, t6 = 0;
    const long double r4 = removed_size(b->prefixes.v4(), n->prefixes.v4(), &t4);
    const long double r6 = removed_size(b->prefixes.v6(), n->prefixes.v6(), &t6);
    const double s4 = share(r4, t4);
    const double s6 = share(r6, t6);
    const double s = std::max(s4, s6);
    if (s > max_share) out.push_back({b->name, s});
  }
  return out;
}

std::string describe_shrink(const std::vector<TagShrink>& s) {
  std::string out;
  for (const auto& t : s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f%%", t.removed_share * 100);
    if (!out.empty()) out += ", ";
    out += t.tag + " would lose " + buf + " of its addresses";
  }
  return out;
}

}  // namespace amlfw
