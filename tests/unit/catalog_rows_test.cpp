// SPDX-License-Identifier: MIT
// Every row of both built-in catalog revisions, in every cloud, compiled with its condition
// on and off (issue 2, "every catalog row of every cloud with its condition on and off").
//
// catalog_test.cpp proves that the data says what the documents say (hosts, tags, ports,
// conditions per cloud). This file proves what the compiler makes of each of those rows:
// for each (revision, cloud, row) it compiles the real embedded catalog, through the real
// config and service-tags parsers, three times:
//   on   every feature on: the row gives its rules (or, outside its clouds, is skipped);
//   min  only the features its condition names on: the row still gives its rules;
//   off  every feature on except those its condition names: no rule, skipped as "off".
// A row whose condition is "true" has no off state: it must be there with every feature off.
// Service-tag rows must resolve to the data's name (mapped, regional, case-insensitive) and
// carry exactly that tag's prefixes; host rows carry their hosts with the templates filled.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "policy/catalog.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "policy/service_tags.h"

namespace amlfw {
namespace {

struct CloudCase {
  Cloud cloud;
  const char* key;          // config value
  const char* region;       // config value
  const char* data_region;  // the region's spelling in the service-tags names
  const char* data_cloud;   // the data's "cloud"
};

const CloudCase kClouds[] = {
    {Cloud::kPublic, "public", "westeurope", "WestEurope", "Public"},
    {Cloud::kUsGov, "usgov", "usgovvirginia", "USGovVirginia", "AzureGovernment"},
    {Cloud::kChina, "china", "chinaeast2", "ChinaEast2", "China"},
};

// The article's tag names and the data's (docs/catalog.md, servicetags-format.md); "R" is the
// configured region as the data spells it. Restated here, not taken from data_tag_base().
const std::vector<std::pair<std::string, std::string>> kTagNames = {
    {"AzureActiveDirectory", "AzureActiveDirectory"},
    {"AzureMachineLearning", "AzureMachineLearning"},
    {"AzureResourceManager", "AzureResourceManager"},
    {"Storage.region", "Storage.R"},
    {"AzureFrontDoor.FrontEnd", "AzureFrontDoor.Frontend"},
    {"ContainerRegistry.region", "AzureContainerRegistry.R"},
    {"MicrosoftContainerRegistry.region", "MicrosoftContainerRegistry.R"},
    {"KeyVault.region", "AzureKeyVault.R"},
    {"BatchNodeManagement.region", "BatchNodeManagement.R"},
    {"MicrosoftContainerRegistry", "MicrosoftContainerRegistry"},
    {"Frontdoor.FirstParty", "AzureFrontDoor.FirstParty"},
    {"AzureMonitor", "AzureMonitor"},
};

// Tags a wrong lookup could pick instead: the global tag of a regional one, the regional
// tag of a global one, another region. Their prefixes are in 192.0.2.0/24 and 2001:db8:ff00::/40.
const std::vector<std::string> kDecoys = {
    "Storage",         "AzureContainerRegistry",      "AzureKeyVault",          "BatchNodeManagement",
    "Storage.Other",   "BatchNodeManagement.Other",   "AzureMachineLearning.R", "AzureActiveDirectory.R",
    "AzureMonitor.R",  "AzureResourceManager.R",      "AzureFrontDoor.FirstParty.R", "ContainerRegistry.R",
    "KeyVault.R",
};

const std::string kGuid = "0a1b2c3d-0000-4000-8000-00000000abcd";

std::string with_region(std::string s, const CloudCase& c) {
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".R") == 0) s.replace(s.size() - 1, 1, c.data_region);
  return s;
}

std::string v4_of(size_t i) { return "198.51.100." + std::to_string(4 * i) + "/30"; }
std::string v6_of(size_t i) { return "2001:db8:" + std::to_string(i + 1) + "::/48"; }
std::string decoy_v4_of(size_t i) { return "192.0.2." + std::to_string(4 * i) + "/30"; }
std::string decoy_v6_of(size_t i) { return "2001:db8:ff" + std::to_string(10 + i) + "::/48"; }

std::string tag_json(const std::string& name, const std::string& region, const std::string& v4,
                     const std::string& v6) {
  return R"({"name": ")" + name + R"(", "id": ")" + name + R"(", "properties": {"changeNumber": 3, "region": ")" +
         region + R"(", "addressPrefixes": [")" + v4 + R"(", ")" + v6 + R"("]}})";
}

// A service-tags document of the cloud's own kind, parsed by the real parser.
ServiceTags tags_for(const CloudCase& c) {
  std::string values;
  auto add = [&](const std::string& v) { values += (values.empty() ? "" : ",\n") + v; };
  for (size_t i = 0; i < kTagNames.size(); ++i) {
    const std::string name = with_region(kTagNames[i].second, c);
    add(tag_json(name, name.find('.') != std::string::npos && name != "AzureFrontDoor.Frontend" &&
                               name != "AzureFrontDoor.FirstParty"
                           ? c.region
                           : "",
                 v4_of(i), v6_of(i)));
  }
  for (size_t i = 0; i < kDecoys.size(); ++i) add(tag_json(with_region(kDecoys[i], c), "", decoy_v4_of(i), decoy_v6_of(i)));
  const std::string json =
      std::string(R"({"changeNumber": 9, "cloud": ")") + c.data_cloud + R"(", "values": [)" + values + "]}";
  auto r = parse_service_tags(json, "rows.json");
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? std::move(r).value() : ServiceTags{};
}

// The features a condition names.
std::set<std::string> named_features(const std::string& when) {
  std::set<std::string> out;
  std::string word;
  for (const char ch : when + " ") {
    if ((ch >= 'a' && ch <= 'z') || ch == '_') {
      word += ch;
      continue;
    }
    if (!word.empty() && word != "true" && word != "false") out.insert(word);
    word.clear();
  }
  return out;
}

Config config_for(const std::string& rev, const CloudCase& c, const std::map<std::string, bool>& features) {
  std::string text = "catalog = \"" + rev + "\"\ncloud = \"" + c.key + "\"\nregion = \"" + c.region +
                     "\"\nstorage_accounts = [\"mystore\"]\ncontainer_registries = [\"myregistry\"]\n"
                     "workspace_id = \"" + kGuid + "\"\n[inbound]\nenforce = true\n[features]\n";
  for (const auto& [name, on] : features) text += name + " = " + (on ? "true" : "false") + "\n";
  auto cfg = parse_config(text, "rows.toml");
  EXPECT_TRUE(cfg.ok()) << cfg.error().message;
  return cfg.ok() ? *cfg : Config{};
}

std::map<std::string, bool> features_where(bool named_on, const std::set<std::string>& named) {
  std::map<std::string, bool> f;
  for (const auto& [name, def] : kFeatureDefaults) f[name] = named.count(name) ? named_on : !named_on;
  return f;
}

Result<Policy> compile_with(const Config& cfg, const Catalog& cat, const ServiceTags& tags) {
  CompileInput in;
  in.config = &cfg;
  in.catalog = &cat;
  in.tags = &tags;
  in.dns_upstreams = {*IpAddr::parse("192.0.2.53")};
  return compile(in);
}

std::string fill(std::string h, const CloudCase& c) {
  for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
           {"<storage>", "mystore"}, {"<acr>", "myregistry"}, {"<region>", c.region}, {"<workspace-id>", kGuid}})
    for (auto p = h.find(var); p != std::string::npos; p = h.find(var)) h.replace(p, var.size(), value);
  return h;
}

std::string port_list(const std::vector<PortRange>& ports) {
  std::string out;
  for (const auto& p : ports) out += (out.empty() ? "" : ",") + p.str();
  return out;
}

std::vector<const Rule*> rules_of(const Policy& p, const std::string& id) {
  std::vector<const Rule*> out;
  for (const auto& r : p.rules)
    if (r.id == id) out.push_back(&r);
  return out;
}

std::vector<std::string> skips_of(const Policy& p, const std::string& id) {
  std::vector<std::string> out;
  for (const auto& s : p.skipped)
    if (s.id == id) out.push_back(s.reason);
  return out;
}

// The row compiled into its rules, with everything the row says.
void expect_rules(const Policy& p, const CatalogRow& row, const CloudCase& c, const char* state) {
  SCOPED_TRACE(std::string(state) + " " + row.id);
  const auto rules = rules_of(p, row.id);
  EXPECT_TRUE(skips_of(p, row.id).empty()) << "skipped: " << skips_of(p, row.id).front();
  for (const Rule* r : rules) {
    EXPECT_EQ(r->direction, row.direction);
    EXPECT_EQ(r->proto, row.proto);
    EXPECT_EQ(port_list(r->ports), port_list(row.ports));
    EXPECT_EQ(r->why, row.why);
    EXPECT_EQ(r->section, row.section);
    EXPECT_TRUE(r->enforced) << "inbound.enforce = true";
  }
  if (!row.service_tag.empty()) {
    ASSERT_EQ(rules.size(), 1u);
    const Rule& r = *rules[0];
    EXPECT_EQ(r.kind, DestKind::kServiceTag);
    size_t i = kTagNames.size();
    for (size_t k = 0; k < kTagNames.size(); ++k)
      if (kTagNames[k].first == row.service_tag) i = k;
    ASSERT_LT(i, kTagNames.size()) << "tag '" << row.service_tag << "' is not in this test's name table";
    EXPECT_EQ(r.dest, with_region(kTagNames[i].second, c)) << "the data's name, as the data spells it";
    EXPECT_EQ(r.prefix_count, 2u);
    EXPECT_EQ(r.prefixes.to_prefixes().size(), 2u);
    EXPECT_TRUE(r.prefixes.contains(Prefix::parse(v4_of(i))->addr));
    EXPECT_TRUE(r.prefixes.contains(Prefix::parse(v6_of(i))->addr));
    for (size_t d = 0; d < kDecoys.size(); ++d)
      EXPECT_FALSE(r.prefixes.contains(Prefix::parse(decoy_v4_of(d))->addr)) << "took " << kDecoys[d];
  } else {
    std::set<std::string> want;
    for (const auto& h : row.hosts.at(c.cloud)) want.insert(fill(h, c));
    std::set<std::string> have;
    for (const Rule* r : rules) {
      EXPECT_EQ(r->kind, DestKind::kFqdn);
      EXPECT_EQ(r->dest, r->pattern.str());
      have.insert(r->dest);
    }
    EXPECT_EQ(have, want);
    EXPECT_EQ(rules.size(), want.size());
  }
}

struct Counts {
  size_t pairs = 0;         // (revision, cloud, row)
  size_t not_in_cloud = 0;  // skipped in every state, no rule
  size_t conditional = 0;   // on, min and off checked
  size_t always = 0;        // condition "true": present with every feature off and on
};

TEST(CatalogRows, EveryRowOfEveryCloudWithItsConditionOnAndOff) {
  Counts n;
  for (const auto& rev : catalog_revisions()) {
    auto cat_r = builtin_catalog(rev);
    ASSERT_TRUE(cat_r.ok()) << cat_r.error().message;
    const Catalog& cat = **cat_r;
    for (const CloudCase& c : kClouds) {
      SCOPED_TRACE(rev + " " + c.key);
      const ServiceTags tags = tags_for(c);
      ASSERT_EQ(tags.tags.size(), kTagNames.size() + kDecoys.size());
      const std::set<std::string> none;
      auto all_on = compile_with(config_for(rev, c, features_where(false, none)), cat, tags);
      auto all_off = compile_with(config_for(rev, c, features_where(true, none)), cat, tags);
      ASSERT_TRUE(all_on.ok()) << all_on.error().message;
      ASSERT_TRUE(all_off.ok()) << all_off.error().message;
      for (const CatalogRow& row : cat.rows) {
        ++n.pairs;
        const bool in_cloud = std::find(row.clouds.begin(), row.clouds.end(), c.cloud) != row.clouds.end();
        const std::set<std::string> named = named_features(row.when.text());
        if (!in_cloud) {
          ++n.not_in_cloud;
          for (const Policy* p : {&*all_on, &*all_off}) {
            EXPECT_TRUE(rules_of(*p, row.id).empty()) << row.id << " is not for cloud " << c.key;
            EXPECT_EQ(skips_of(*p, row.id), (std::vector<std::string>{std::string("not required in cloud ") + c.key}))
                << row.id;
          }
          continue;
        }
        expect_rules(*all_on, row, c, "every feature on:");
        if (named.empty()) {
          ++n.always;
          EXPECT_EQ(row.when.text(), "true") << row.id;
          expect_rules(*all_off, row, c, "every feature off (condition true):");
          continue;
        }
        ++n.conditional;
        auto min_on = compile_with(config_for(rev, c, features_where(true, named)), cat, tags);
        ASSERT_TRUE(min_on.ok()) << min_on.error().message;
        expect_rules(*min_on, row, c, "only its features on:");
        auto off = compile_with(config_for(rev, c, features_where(false, named)), cat, tags);
        ASSERT_TRUE(off.ok()) << off.error().message;
        EXPECT_TRUE(rules_of(*off, row.id).empty()) << row.id << " with '" << row.when.text() << "' off";
        EXPECT_EQ(skips_of(*off, row.id),
                  (std::vector<std::string>{"condition '" + row.when.text() + "' is off"}))
            << row.id;
        EXPECT_TRUE(rules_of(*all_off, row.id).empty()) << row.id << " with every feature off";
      }
    }
  }
  // 2021-10: 55 rows, 9 public only, NR5 not in China; 2026-03: 59 rows, 10 public only,
  // NR5 not in China. (revision, cloud, row) = 3 x (55 + 59) = 342, of which 40 are
  // outside the row's clouds.
  EXPECT_EQ(n.pairs, 342u);
  EXPECT_EQ(n.not_in_cloud, 9u * 2 + 1 + 10u * 2 + 1);
  EXPECT_EQ(n.conditional + n.always, 302u);
  RecordProperty("pairs", static_cast<int>(n.pairs));
  RecordProperty("conditional", static_cast<int>(n.conditional));
  RecordProperty("always", static_cast<int>(n.always));
  std::cout << "[ rows ] " << n.pairs << " (revision, cloud, row) pairs: " << n.conditional
            << " conditional (on, only-its-features-on, off), " << n.always << " always on, " << n.not_in_cloud
            << " outside their clouds\n";
}

// Templates without a value: the host is left out and the skip says which key to set; the
// row's other hosts stay (2026-03 ATI1 has two <acr> hosts, CH6 mixes <region> only).
TEST(CatalogRows, TemplatedHostsWithoutValuesAreSkippedAndSaid) {
  size_t checked = 0;
  for (const auto& rev : catalog_revisions()) {
    const Catalog& cat = **builtin_catalog(rev);
    for (const CloudCase& c : kClouds) {
      SCOPED_TRACE(rev + " " + c.key);
      std::string text = "catalog = \"" + rev + "\"\ncloud = \"" + c.key + "\"\nregion = \"" + c.region +
                         "\"\n[features]\n";
      for (const auto& [name, def] : kFeatureDefaults) text += name + " = true\n";
      auto cfg = parse_config(text, "rows.toml");
      ASSERT_TRUE(cfg.ok()) << cfg.error().message;
      const ServiceTags tags = tags_for(c);
      auto p = compile_with(*cfg, cat, tags);
      ASSERT_TRUE(p.ok()) << p.error().message;
      for (const CatalogRow& row : cat.rows) {
        auto h = row.hosts.find(c.cloud);
        if (h == row.hosts.end()) continue;
        std::set<std::string> want;
        std::vector<std::string> want_skips;
        for (const auto& host : h->second) {
          const char* key = host.find("<storage>") != std::string::npos        ? "storage_accounts"
                            : host.find("<acr>") != std::string::npos          ? "container_registries"
                            : host.find("<workspace-id>") != std::string::npos ? "workspace_id"
                                                                               : nullptr;
          if (key == nullptr) {
            want.insert(fill(host, c));
          } else {
            want_skips.push_back(std::string("set ") + key + " to allow it");
            ++checked;
          }
        }
        std::set<std::string> have;
        for (const Rule* r : rules_of(*p, row.id)) have.insert(r->dest);
        EXPECT_EQ(have, want) << row.id;
        // "<host>: set KEY to allow it" (the host as far as it is filled).
        std::vector<std::string> skips;
        for (const auto& s : skips_of(*p, row.id)) {
          const auto colon = s.rfind(": ");
          EXPECT_NE(colon, std::string::npos) << s;
          if (colon != std::string::npos) skips.push_back(s.substr(colon + 2));
        }
        std::sort(skips.begin(), skips.end());
        std::sort(want_skips.begin(), want_skips.end());
        EXPECT_EQ(skips, want_skips) << row.id;
      }
    }
  }
  EXPECT_GT(checked, 20u);
}

// Each tag the real catalog needs, taken out of the data in turn: the compile fails with
// one line naming the row and the tag, never a policy without that row.
TEST(CatalogRows, EachRequiredTagMissingIsAnErrorNamingRowAndTag) {
  size_t checked = 0;
  for (const auto& rev : catalog_revisions()) {
    const Catalog& cat = **builtin_catalog(rev);
    for (const CloudCase& c : kClouds) {
      SCOPED_TRACE(rev + " " + c.key);
      const Config cfg = config_for(rev, c, features_where(false, {}));  // every feature on
      const ServiceTags full = tags_for(c);
      for (const CatalogRow& row : cat.rows) {
        if (row.service_tag.empty() ||
            std::find(row.clouds.begin(), row.clouds.end(), c.cloud) == row.clouds.end())
          continue;
        std::string data_name;
        for (const auto& [article, data] : kTagNames)
          if (article == row.service_tag) data_name = with_region(data, c);
        ASSERT_FALSE(data_name.empty()) << row.service_tag;
        ServiceTags cut = full;
        cut.tags.erase(std::remove_if(cut.tags.begin(), cut.tags.end(),
                                      [&](const ServiceTag& t) { return t.name == data_name; }),
                       cut.tags.end());
        ASSERT_EQ(cut.tags.size() + 1, full.tags.size()) << data_name;
        cut.build_index();
        auto p = compile_with(cfg, cat, cut);
        ASSERT_FALSE(p.ok()) << row.id << " compiled without " << data_name;
        EXPECT_EQ(p.error().code, Exit::kData);
        const std::string& m = p.error().message;
        EXPECT_EQ(m.find('\n'), std::string::npos) << m;
        // The first row that needs the tag is named (NR2 before IN2 for AzureMachineLearning ...).
        std::string first;
        for (const CatalogRow& r : cat.rows)
          if (first.empty() && r.service_tag == row.service_tag &&
              std::find(r.clouds.begin(), r.clouds.end(), c.cloud) != r.clouds.end())
            first = r.id;
        EXPECT_EQ(m, "catalog " + rev + " row " + first + ": service tag '" +
                         (data_name.find('.') != std::string::npos && row.service_tag.find(".region") != std::string::npos
                              ? data_name.substr(0, data_name.find('.') + 1) + c.region
                              : data_name) +
                         "' is missing from " + c.data_cloud +
                         " data (changeNumber 9); check region, or use a newer service-tags file");
        ++checked;
      }
    }
  }
  // 2021-10: 10 tag rows (NR5 not in China) -> 29; 2026-03: 12 tag rows (NR5 not in China) -> 35.
  EXPECT_EQ(checked, 29u + 35u);

  // Data that names no cloud (built in memory) is "the service-tags data".
  ServiceTags nameless = tags_for(kClouds[0]);
  nameless.cloud.clear();
  nameless.tags.erase(nameless.tags.begin());  // AzureActiveDirectory
  nameless.build_index();
  auto p = compile_with(config_for("2021-10", kClouds[0], features_where(false, {})), **builtin_catalog("2021-10"),
                        nameless);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message,
            "catalog 2021-10 row NR1: service tag 'AzureActiveDirectory' is missing from the service-tags data "
            "(changeNumber 9); check region, or use a newer service-tags file");
}

}  // namespace
}  // namespace amlfw
