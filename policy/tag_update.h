// SPDX-License-Identifier: MIT
// Guards on a service-tags update: a new file must not silently shrink what the policy uses.
#pragma once

#include <string>
#include <vector>

#include "policy/policy.h"
#include "policy/service_tags.h"

namespace amlfw {

struct TagShrink {
  std::string tag;
  double removed_share = 0;  // share of the tag's addresses (per family, the larger) that would go
};

// The data tag names a compiled policy uses (rules of kind kServiceTag).
std::vector<std::string> tags_used(const Policy& p);

// Tags among `names` whose addresses in `now` lose more than `max_share` compared with `before`
// (a tag that disappears loses 100%). Empty: the update may go ahead.
std::vector<TagShrink> shrinking_tags(const ServiceTags& before, const ServiceTags& now,
                                      const std::vector<std::string>& names, double max_share);

// "Storage.WestEurope would lose 62% of its addresses, AzureMachineLearning 100%".
std::string describe_shrink(const std::vector<TagShrink>& s);

}  // namespace amlfw
