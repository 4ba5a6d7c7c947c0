// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include "policy/tag_update.h"

namespace amlfw {
namespace {

ServiceTags tags(std::vector<std::pair<const char*, std::vector<const char*>>> spec) {
  ServiceTags s;
  s.cloud = "Public";
  for (auto& [name, prefixes] : spec) {
    ServiceTag t;
    t.name = name;
    for (auto* p : prefixes) t.prefixes.add(*Prefix::parse(p));
    t.prefixes.normalize();
    t.prefix_count = prefixes.size();
    s.tags.push_back(std::move(t));
  }
  s.build_index();
  return s;
}

TEST(TagUpdate, SmallChangesPass) {
  auto a = tags({{"AzureMachineLearning", {"203.0.113.0/24", "2001:db8::/48"}}});
  auto b = tags({{"AzureMachineLearning", {"203.0.113.0/25", "203.0.113.128/26", "198.51.100.0/24", "2001:db8::/48"}}});
  // 64 of 256 IPv4 addresses go: 25%.
  EXPECT_TRUE(shrinking_tags(a, b, {"AzureMachineLearning"}, 0.30).empty());
  auto s = shrinking_tags(a, b, {"AzureMachineLearning"}, 0.20);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_NEAR(s[0].removed_share, 0.25, 1e-9);
  EXPECT_NE(describe_shrink(s).find("25%"), std::string::npos);
}

TEST(TagUpdate, IPv6CountsSeparately) {
  auto a = tags({{"T", {"203.0.113.0/24", "2001:db8::/32"}}});
  auto b = tags({{"T", {"203.0.113.0/24", "2001:db8::/33"}}});
  auto s = shrinking_tags(a, b, {"T"}, 0.10);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_NEAR(s[0].removed_share, 0.5, 1e-9);
}

TEST(TagUpdate, VanishedTagLosesEverything) {
  auto a = tags({{"Storage.WestEurope", {"198.51.100.0/24"}}, {"Other", {"192.0.2.0/24"}}});
  auto b = tags({{"Other", {"192.0.2.0/24"}}});
  auto s = shrinking_tags(a, b, {"Storage.WestEurope", "Other"}, 0.5);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].tag, "Storage.WestEurope");
  EXPECT_DOUBLE_EQ(s[0].removed_share, 1.0);
}

TEST(TagUpdate, UnusedTagsAreIgnoredAndGrowthIsFine) {
  auto a = tags({{"Used", {"198.51.100.0/25"}}, {"Unused", {"192.0.2.0/24"}}});
  auto b = tags({{"Used", {"198.51.100.0/24"}}, {"Unused", {"192.0.2.0/30"}}});
  EXPECT_TRUE(shrinking_tags(a, b, {"Used"}, 0.0).empty());
}

TEST(TagUpdate, HolesInsideARange) {
  auto a = tags({{"T", {"198.51.100.0/24"}}});
  auto b = tags({{"T", {"198.51.100.0/26", "198.51.100.192/26"}}});  // the middle half goes
  auto s = shrinking_tags(a, b, {"T"}, 0.0);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_NEAR(s[0].removed_share, 0.5, 1e-9);
}

}  // namespace
}  // namespace amlfw
