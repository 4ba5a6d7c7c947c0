// SPDX-License-Identifier: MIT
// The compiler, port groups, the policy diff and explain, on a small catalog built here.
#include <gtest/gtest.h>

#include "policy/policy.h"
#include "policy/render.h"

namespace amlfw {
namespace {

Prefix P(const char* s) { return *Prefix::parse(s); }

ServiceTag tag(const char* name, std::vector<const char*> prefixes) {
  ServiceTag t;
  t.name = name;
  for (auto* p : prefixes) t.prefixes.add(P(p));
  t.prefixes.normalize();
  t.prefix_count = prefixes.size();
  return t;
}

ServiceTags sample_tags() {
  ServiceTags s;
  s.cloud = "Public";
  s.change_number = 42;
  s.tags.push_back(tag("AzureMachineLearning", {"203.0.113.0/25", "2001:db8:1::/48"}));
  s.tags.push_back(tag("Storage.WestEurope", {"198.51.100.0/26", "198.51.100.64/26"}));
  s.tags.push_back(tag("Storage.EastUS", {"198.51.100.128/25"}));
  s.tags.push_back(tag("AzureContainerRegistry.WestEurope", {"192.0.2.0/28"}));
  s.tags.push_back(tag("BatchNodeManagement.WestEurope", {"192.0.2.64/28"}));
  s.build_index();
  return s;
}

CatalogRow row(const char* id, const char* when, std::vector<PortRange> ports, Proto proto = Proto::kTcp) {
  CatalogRow r;
  r.id = id;
  r.section = "test section";
  r.when = *Condition::parse(when);
  r.clouds = {Cloud::kPublic, Cloud::kUsGov, Cloud::kChina};
  r.ports = std::move(ports);
  r.proto = proto;
  r.why = std::string("why ") + id;
  return r;
}

Catalog sample_catalog() {
  Catalog c;
  c.revision = "test";
  auto nr2 = row("NR2", "true", {{443, 443}});
  nr2.service_tag = "AzureMachineLearning";
  auto nr4 = row("NR4", "true", {{443, 443}});
  nr4.service_tag = "Storage.region";
  auto nr6 = row("NR6", "custom_images", {{443, 443}});
  nr6.service_tag = "ContainerRegistry.region";
  auto in1 = row("IN1", "inbound", {{29876, 29877}});
  in1.direction = Direction::kIngress;
  in1.service_tag = "BatchNodeManagement.region";
  auto ar2 = row("AR2", "python", {{80, 80}, {443, 443}});
  ar2.hosts[Cloud::kPublic] = {"anaconda.com", "*.anaconda.com"};
  auto ar6 = row("AR6", "python", {{443, 443}, {80, 80}});
  ar6.hosts[Cloud::kPublic] = {"*pytorch.org"};
  auto ah4 = row("AH4", "true", {{443, 443}});
  ah4.hosts[Cloud::kPublic] = {"<storage>.file.core.windows.net"};
  ah4.hosts[Cloud::kChina] = {"<storage>.file.core.chinacloudapi.cn"};
  auto nr5 = row("NR5", "true", {{443, 443}});
  nr5.clouds = {Cloud::kPublic, Cloud::kUsGov};
  nr5.hosts[Cloud::kPublic] = {"ml.azure.com"};
  c.rows = {nr2, nr4, nr6, in1, ar2, ar6, ah4, nr5};
  return c;
}

Config sample_config() {
  Config c;
  c.path = "test.toml";
  for (const auto& [k, v] : kFeatureDefaults) c.features[k] = v;
  c.region = "westeurope";
  return c;
}

Result<Policy> build(const Config& cfg, const Catalog& cat, const ServiceTags* tags) {
  CompileInput in;
  in.config = &cfg;
  in.catalog = &cat;
  in.tags = tags;
  in.dns_upstreams = {*IpAddr::parse("192.0.2.53")};
  return compile(in);
}

const Rule* find_rule(const Policy& p, std::string_view id, std::string_view dest = {}) {
  for (const auto& r : p.rules)
    if (r.id == id && (dest.empty() || r.dest == dest)) return &r;
  return nullptr;
}

bool skipped(const Policy& p, std::string_view id) {
  for (const auto& s : p.skipped)
    if (s.id == id) return true;
  return false;
}

TEST(Compile, RegionalTagsConditionsAndTemplates) {
  auto tags = sample_tags();
  auto cat = sample_catalog();
  auto cfg = sample_config();
  auto p = build(cfg, cat, &tags);
  ASSERT_TRUE(p.ok()) << p.error().message;
  const Rule* nr4 = find_rule(*p, "NR4");
  ASSERT_NE(nr4, nullptr);
  EXPECT_EQ(nr4->dest, "Storage.WestEurope");
  EXPECT_EQ(nr4->prefix_count, 2u);
  EXPECT_EQ(nr4->prefixes.v4().size(), 1u) << "adjacent /26s merge";
  EXPECT_TRUE(skipped(*p, "NR6")) << "custom_images is off by default";
  EXPECT_NE(find_rule(*p, "AR2", "anaconda.com"), nullptr);
  EXPECT_NE(find_rule(*p, "AR2", "*.anaconda.com"), nullptr);
  EXPECT_EQ(find_rule(*p, "AH4"), nullptr) << "no storage account configured";
  EXPECT_TRUE(skipped(*p, "AH4"));
  const Rule* in1 = find_rule(*p, "IN1");
  ASSERT_NE(in1, nullptr);
  EXPECT_EQ(in1->direction, Direction::kIngress);
  EXPECT_FALSE(in1->enforced) << "inbound.enforce is false by default";

  cfg.features["custom_images"] = true;
  cfg.storage_accounts = {"mystore", "other"};
  cfg.inbound.enforce = true;
  p = build(cfg, cat, &tags);
  ASSERT_TRUE(p.ok()) << p.error().message;
  const Rule* nr6 = find_rule(*p, "NR6");
  ASSERT_NE(nr6, nullptr);
  EXPECT_EQ(nr6->dest, "AzureContainerRegistry.WestEurope") << "article name mapped to the data's";
  EXPECT_NE(find_rule(*p, "AH4", "mystore.file.core.windows.net"), nullptr);
  EXPECT_NE(find_rule(*p, "AH4", "other.file.core.windows.net"), nullptr);
  EXPECT_TRUE(find_rule(*p, "IN1")->enforced);
}

TEST(Compile, CloudFilterAndPerCloudHosts) {
  auto tags = sample_tags();
  tags.cloud = "China";
  auto cat = sample_catalog();
  auto cfg = sample_config();
  cfg.cloud = Cloud::kChina;
  cfg.storage_accounts = {"st"};
  auto p = build(cfg, cat, &tags);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(skipped(*p, "NR5"));
  EXPECT_NE(find_rule(*p, "AH4", "st.file.core.chinacloudapi.cn"), nullptr);
  EXPECT_EQ(find_rule(*p, "AR2"), nullptr) << "AR2 has no China host in this sample";
}

TEST(Compile, MissingTagIsAnErrorNotASmallerPolicy) {
  auto tags = sample_tags();
  auto cat = sample_catalog();
  auto cfg = sample_config();
  cfg.region = "northeurope";
  auto p = build(cfg, cat, &tags);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Exit::kData);
  EXPECT_NE(p.error().message.find("Storage.northeurope"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("NR4"), std::string::npos) << p.error().message;
}

TEST(Compile, WrongCloudDataIsRefused) {
  auto tags = sample_tags();
  tags.cloud = "AzureGovernment";
  auto p = build(sample_config(), sample_catalog(), &tags);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Exit::kData);
  EXPECT_NE(p.error().message.find("AzureGovernment"), std::string::npos);
}

TEST(Compile, NoTagsLoadedIsAnError) {
  auto p = build(sample_config(), sample_catalog(), nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Exit::kData);
}

TEST(Compile, UserRulesAndSsh) {
  auto tags = sample_tags();
  auto cfg = sample_config();
  AllowRule a;
  a.fqdn = "*.github.com";
  a.ports = {{443, 443}};
  AllowRule b;
  b.cidr = "198.51.100.200/32";
  b.ports = {{8443, 8443}};
  AllowRule c;
  c.service_tag = "storage.eastus";
  cfg.allow = {a, b, c};
  cfg.inbound.ssh_from = {"192.0.2.0/24"};
  auto p = build(cfg, sample_catalog(), &tags);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(find_rule(*p, "user-1")->dest, "*.github.com");
  EXPECT_EQ(find_rule(*p, "user-2")->dest, "198.51.100.200/32");
  EXPECT_EQ(find_rule(*p, "user-3")->dest, "Storage.EastUS") << "canonical spelling from the data";
  EXPECT_EQ(find_rule(*p, "user-3")->ports.size(), 1u);
  EXPECT_TRUE(find_rule(*p, "user-3")->ports[0].all());
  const Rule* ssh = find_rule(*p, "ssh-1");
  ASSERT_NE(ssh, nullptr);
  EXPECT_EQ(ssh->direction, Direction::kIngress);

  cfg.allow = {};
  AllowRule bad;
  bad.service_tag = "NoSuchTag";
  cfg.allow = {bad};
  p = build(cfg, sample_catalog(), &tags);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("NoSuchTag"), std::string::npos);
}

TEST(Compile, Deterministic) {
  auto tags = sample_tags();
  auto cfg = sample_config();
  cfg.storage_accounts = {"b", "a"};
  auto p1 = build(cfg, sample_catalog(), &tags);
  auto p2 = build(cfg, sample_catalog(), &tags);
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ(plan_json(*p1).dump(), plan_json(*p2).dump());
}

TEST(Groups, MergeByDirectionProtoAndPorts) {
  auto tags = sample_tags();
  auto p = build(sample_config(), sample_catalog(), &tags);
  ASSERT_TRUE(p.ok());
  auto groups = group_rules(*p);
  std::map<std::string, const PortGroup*> by;
  for (const auto& g : groups) by[g.name] = &g;
  ASSERT_TRUE(by.count("e_tcp_443"));
  const PortGroup& g443 = *by["e_tcp_443"];
  EXPECT_TRUE(g443.prefixes.contains(*IpAddr::parse("203.0.113.5")));    // NR2
  EXPECT_TRUE(g443.prefixes.contains(*IpAddr::parse("198.51.100.10")));  // NR4
  EXPECT_FALSE(g443.prefixes.contains(*IpAddr::parse("198.51.100.200"))) << "another region";
  EXPECT_TRUE(g443.prefixes.contains(*IpAddr::parse("2001:db8:1::1")));
  EXPECT_TRUE(g443.has_names);  // ml.azure.com
  ASSERT_TRUE(by.count("e_tcp_80_443")) << "AR2 and AR6 list the same ports in another order";
  EXPECT_TRUE(by["e_tcp_80_443"]->has_names);
  EXPECT_TRUE(by["e_tcp_80_443"]->prefixes.empty());
  ASSERT_TRUE(by.count("i_tcp_29876-29877"));
  EXPECT_FALSE(by["i_tcp_29876-29877"]->enforced);
  EXPECT_EQ(by["e_tcp_80_443"]->rule_ids, (std::vector<std::string>{"AR2", "AR6"}));
}

TEST(Diff, AddsRemovesAndChangesElementsOnly) {
  auto tags = sample_tags();
  auto cfg = sample_config();
  auto p1 = build(cfg, sample_catalog(), &tags);
  ASSERT_TRUE(p1.ok());
  auto g1 = group_rules(*p1);
  EXPECT_TRUE(diff_groups(g1, g1).empty());

  auto tags2 = sample_tags();
  tags2.tags[0] = tag("AzureMachineLearning", {"203.0.113.0/25", "203.0.113.200/32", "2001:db8:1::/48"});
  tags2.tags[1] = tag("Storage.WestEurope", {"198.51.100.0/26"});
  tags2.build_index();
  auto p2 = build(cfg, sample_catalog(), &tags2);
  ASSERT_TRUE(p2.ok());
  auto g2 = group_rules(*p2);
  auto d = diff_groups(g1, g2);
  EXPECT_TRUE(d.added.empty());
  EXPECT_TRUE(d.removed.empty());
  EXPECT_FALSE(d.base_changed);
  ASSERT_EQ(d.changed.size(), 1u);
  EXPECT_EQ(d.changed[0].name, "e_tcp_443");
  // 198.51.100.0-127 shrinks to 0-63 (one range removed, one added); 203.0.113.200 added.
  EXPECT_EQ(d.changed[0].diff.del4.size(), 1u);
  EXPECT_EQ(d.changed[0].diff.add4.size(), 2u);
  EXPECT_TRUE(d.changed[0].diff.add6.empty());

  cfg.features["custom_images"] = true;  // adds NR6 to an existing group: elements only
  cfg.features["python"] = false;        // removes the 80,443 group
  auto p3 = build(cfg, sample_catalog(), &tags);
  ASSERT_TRUE(p3.ok());
  auto g3 = group_rules(*p3);
  auto d3 = diff_groups(g1, g3);
  EXPECT_EQ(d3.removed, (std::vector<std::string>{"e_tcp_80_443"}));
  EXPECT_TRUE(d3.base_changed) << "rule ids of e_tcp_443 changed";
}

TEST(Explain, AddressesPortsAndNames) {
  auto tags = sample_tags();
  auto p = build(sample_config(), sample_catalog(), &tags);
  ASSERT_TRUE(p.ok());
  auto v = explain(*p, *parse_target("203.0.113.9:443"));
  EXPECT_TRUE(v.allow);
  EXPECT_EQ(v.rule_id, "NR2");
  v = explain(*p, *parse_target("203.0.113.9:8080"));
  EXPECT_FALSE(v.allow);
  EXPECT_NE(v.why.find("NR2"), std::string::npos) << "deny names the nearest rule: " << v.why;
  v = explain(*p, *parse_target("198.51.100.130:443"));
  EXPECT_FALSE(v.allow) << "Storage in another region";
  v = explain(*p, *parse_target("[2001:db8:1::5]:443"));
  EXPECT_TRUE(v.allow);
  v = explain(*p, *parse_target("203.0.113.9:443/udp"));
  EXPECT_FALSE(v.allow);
  v = explain(*p, *parse_target("168.63.129.16:32526"));
  EXPECT_TRUE(v.allow);
  EXPECT_EQ(v.rule_id, "platform-wireserver");
  v = explain(*p, *parse_target("192.0.2.53:53/udp"));
  EXPECT_EQ(v.rule_id, "base-dns");

  v = explain(*p, *parse_target("repo.anaconda.com:443"));
  EXPECT_TRUE(v.allow);
  EXPECT_EQ(v.rule_id, "AR2");
  v = explain(*p, *parse_target("Download.PyTorch.org.:80"));
  EXPECT_TRUE(v.allow);
  EXPECT_EQ(v.rule_id, "AR6");
  EXPECT_TRUE(explain(*p, *parse_target("pytorch.org")).allow);
  EXPECT_FALSE(explain(*p, *parse_target("evilpytorch.org:443")).allow);
  EXPECT_FALSE(explain(*p, *parse_target("anaconda.com.evil.example:443")).allow);
  EXPECT_FALSE(explain(*p, *parse_target("repo.anaconda.com:22")).allow);
}

TEST(Explain, AuditModeSaysSo) {
  auto tags = sample_tags();
  auto cfg = sample_config();
  cfg.mode = Mode::kAudit;
  auto p = build(cfg, sample_catalog(), &tags);
  ASSERT_TRUE(p.ok());
  auto v = explain(*p, *parse_target("192.0.2.200:443"));
  EXPECT_FALSE(v.allow);
  EXPECT_NE(v.why.find("audit"), std::string::npos);
}

TEST(Target, Forms) {
  auto t = parse_target("192.0.2.1");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->port.has_value());
  t = parse_target("192.0.2.1:443/udp");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->port, 443);
  EXPECT_EQ(t->proto, Proto::kUdp);
  t = parse_target("[2001:db8::1]:8443");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->addr->v6);
  t = parse_target("2001:db8::1");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t->addr->v6);
  t = parse_target("PyPI.org.:443");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "pypi.org");
  for (const char* bad : {"", "host:0", "host:65536", "host:x", "[2001:db8::1", "2001:db8::1:443x", "1.2.3.4:80/sctp",
                          "bad host:80"}) {
    auto r = parse_target(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Exit::kUsage);
    }
  }
}

TEST(PlanJson, ShapeOfTheContract) {
  auto tags = sample_tags();
  auto p = build(sample_config(), sample_catalog(), &tags);
  ASSERT_TRUE(p.ok());
  auto j = plan_json(*p);
  EXPECT_EQ(j["catalog"], "test");
  EXPECT_EQ(j["cloud"], "public");
  EXPECT_EQ(j["region"], "westeurope");
  for (const auto& r : j["rules"]) {
    int kinds = r.contains("fqdn") + r.contains("service_tag") + r.contains("cidr");
    EXPECT_EQ(kinds, 1) << r.dump();
    EXPECT_TRUE(r["direction"] == "egress" || r["direction"] == "ingress");
    EXPECT_TRUE(r["ports"].is_array());
    if (r.contains("service_tag")) {
      EXPECT_TRUE(r["prefixes"].is_number());
    }
  }
}

}  // namespace
}  // namespace amlfw
