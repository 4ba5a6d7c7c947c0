// SPDX-License-Identifier: MIT
#include "policy/config.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "policy/name_pattern.h"
#include "tests/unit/ci_skip.h"

namespace amlfw {
namespace {

constexpr const char* kOrigin = "t.toml";

Config parse_ok(std::string_view text) {
  auto c = parse_config(text, kOrigin);
  EXPECT_TRUE(c.ok()) << text << "\n-> " << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

std::string parse_err(std::string_view text) {
  auto c = parse_config(text, kOrigin);
  EXPECT_FALSE(c.ok()) << "parsed: " << text;
  if (c.ok()) return "";
  EXPECT_EQ(c.error().code, Exit::kUsage) << text;
  EXPECT_EQ(c.error().message.find('\n'), std::string::npos) << c.error().message;
  return c.error().message;
}

// Every field of two configs, with the field's name on failure.
void expect_same(const Config& a, const Config& b) {
  EXPECT_EQ(a.catalog, b.catalog);
  EXPECT_EQ(a.cloud, b.cloud);
  EXPECT_EQ(a.region, b.region);
  EXPECT_EQ(a.storage_accounts, b.storage_accounts);
  EXPECT_EQ(a.container_registries, b.container_registries);
  EXPECT_EQ(a.workspace_id, b.workspace_id);
  EXPECT_EQ(a.backend, b.backend);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.inbound.enforce, b.inbound.enforce);
  EXPECT_EQ(a.inbound.ssh_from, b.inbound.ssh_from);
  EXPECT_EQ(a.egress.local, b.egress.local);
  EXPECT_EQ(a.forward.interfaces, b.forward.interfaces);
  EXPECT_EQ(a.forward.sources, b.forward.sources);
  EXPECT_EQ(a.forward.dns_redirect, b.forward.dns_redirect);
  EXPECT_EQ(a.service_tags.source, b.service_tags.source);
  EXPECT_EQ(a.service_tags.refresh_s, b.service_tags.refresh_s);
  EXPECT_DOUBLE_EQ(a.service_tags.max_shrink, b.service_tags.max_shrink);
  EXPECT_EQ(a.service_tags.subscription, b.service_tags.subscription);
  EXPECT_EQ(a.dns.listen, b.dns.listen);
  EXPECT_EQ(a.dns.upstreams, b.dns.upstreams);
  EXPECT_EQ(a.dns.min_ttl_s, b.dns.min_ttl_s);
  EXPECT_EQ(a.dns.max_ttl_s, b.dns.max_ttl_s);
  EXPECT_EQ(a.dns.grace_s, b.dns.grace_s);
  EXPECT_EQ(a.dns.max_addresses_per_name, b.dns.max_addresses_per_name);
  EXPECT_EQ(a.dns.max_learned, b.dns.max_learned);
  EXPECT_EQ(a.dns.allow_private, b.dns.allow_private);
  EXPECT_EQ(a.dns.redirect, b.dns.redirect);
  EXPECT_EQ(a.platform.azure, b.platform.azure);
  EXPECT_EQ(a.allow.size(), b.allow.size());
  EXPECT_EQ(a.ebpf.cgroup, b.ebpf.cgroup);
  EXPECT_EQ(a.paths.state_dir, b.paths.state_dir);
  EXPECT_EQ(a.paths.runtime_dir, b.paths.runtime_dir);
  EXPECT_EQ(a.metrics.listen, b.metrics.listen);
}

// ---- defaults ------------------------------------------------------------------------------

TEST(Config, EmptyTextGivesTheDefaults) {
  const Config c = parse_ok("");
  EXPECT_EQ(c.path, kOrigin);
  EXPECT_FALSE(c.is_default);
  EXPECT_EQ(c.catalog, "2021-10");
  EXPECT_EQ(c.cloud, Cloud::kPublic);
  EXPECT_EQ(c.region, "westeurope");
  EXPECT_TRUE(c.storage_accounts.empty());
  EXPECT_TRUE(c.container_registries.empty());
  EXPECT_EQ(c.workspace_id, "");
  EXPECT_EQ(c.backend, Backend::kNftables);
  EXPECT_EQ(c.mode, Mode::kEnforce);
  ASSERT_EQ(c.features.size(), kFeatureDefaults.size());
  for (const auto& [name, on] : kFeatureDefaults) {
    EXPECT_EQ(c.features.at(name), on) << name;
    EXPECT_EQ(c.feature(name), on) << name;
  }
  EXPECT_FALSE(c.inbound.enforce);
  EXPECT_TRUE(c.inbound.ssh_from.empty());
  EXPECT_TRUE(c.egress.local);
  EXPECT_TRUE(c.forward.interfaces.empty());
  EXPECT_TRUE(c.forward.sources.empty());
  EXPECT_FALSE(c.forward.dns_redirect);
  EXPECT_FALSE(c.forward.enabled());
  EXPECT_EQ(c.service_tags.source, "/var/lib/amlfw/ServiceTags_Public.json");
  EXPECT_EQ(c.service_tags.refresh_s, 86400u);
  EXPECT_DOUBLE_EQ(c.service_tags.max_shrink, 0.10);
  EXPECT_EQ(c.service_tags.subscription, "");
  EXPECT_EQ(c.service_tags.client_id, "");
  EXPECT_EQ(c.dns.listen, "127.0.0.1:53");
  EXPECT_TRUE(c.dns.upstreams.empty());
  EXPECT_EQ(c.dns.min_ttl_s, 60u);
  EXPECT_EQ(c.dns.max_ttl_s, 86400u);
  EXPECT_EQ(c.dns.grace_s, 900u);
  EXPECT_EQ(c.dns.max_addresses_per_name, 64u);
  EXPECT_EQ(c.dns.max_learned, 65536u);
  EXPECT_FALSE(c.dns.allow_private);
  EXPECT_FALSE(c.dns.redirect);
  EXPECT_TRUE(c.platform.azure);
  EXPECT_TRUE(c.allow.empty());
  EXPECT_EQ(c.ebpf.cgroup, "");
  EXPECT_EQ(c.paths.state_dir, "/var/lib/amlfw");
  EXPECT_EQ(c.paths.runtime_dir, "/run/amlfw");
  EXPECT_EQ(c.metrics.listen, "");
}

TEST(Config, FeatureDefaultsAreTheSpecsFeatures) {
  // SPEC.md [features], in its order, with its defaults.
  const std::vector<std::pair<std::string, bool>> spec = {
      {"compute_instance", true}, {"compute_cluster", true}, {"custom_images", false},
      {"user_managed_dependencies", false}, {"hbi_workspace", false}, {"python", true},
      {"r", false}, {"vscode", false}, {"support_diagnostics", false}, {"aks", false},
      {"arc_extension", false}, {"arc_training", false}, {"arc_inference", false},
      {"inbound", true}, {"pythonhosted", true}};
  EXPECT_EQ(kFeatureDefaults, spec);
}

TEST(Config, FeatureOfAnUnknownNameIsFalse) {
  Config c;  // features not filled: falls back to kFeatureDefaults
  EXPECT_TRUE(c.feature("python"));
  EXPECT_FALSE(c.feature("r"));
  EXPECT_FALSE(c.feature("no_such_feature"));
  c.features["python"] = false;
  EXPECT_FALSE(c.feature("python"));
}

TEST(Config, EmbeddedDefaultParsesAndEqualsTheDefaults) {
  ASSERT_FALSE(embedded_default_config().empty());
  auto c = parse_config(embedded_default_config(), "<embedded default>");
  ASSERT_TRUE(c.ok()) << c.error().message;
  expect_same(*c, parse_ok(""));
  expect_same(*c, Config{.features = parse_ok("").features});
}

// ---- every key set and read back ------------------------------------------------------------

TEST(Config, EveryKeyIsReadBack) {
  const Config c = parse_ok(R"(
catalog = "2026-03"
cloud = "usgov"
region = "USGov Virginia"
storage_accounts = ["mystore", "other2", "mystore"]
container_registries = ["MyRegistry", "acr12345"]
workspace_id = "0A1B2C3D-0000-4000-8000-00000000ABCD"
backend = "ebpf"
mode = "audit"

[features]
compute_instance = false
compute_cluster = false
custom_images = true
user_managed_dependencies = true
hbi_workspace = true
python = false
r = true
vscode = true
support_diagnostics = true
aks = true
arc_extension = true
arc_training = true
arc_inference = true
inbound = false
pythonhosted = false

[inbound]
enforce = true
ssh_from = ["198.51.100.0/24", "2001:db8::/32", "203.0.113.7"]

[service_tags]
source = "https://example.com/ServiceTags_AzureGovernment.json"
refresh = "1h30m"
max_shrink = 0.25
subscription = "11111111-2222-3333-4444-555555555555"
client_id = "AAAAAAAA-1111-2222-3333-444444444444"

[dns]
listen = "[::1]:5353"
upstreams = ["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:53", "2001:db8::54"]
min_ttl = "0s"
max_ttl = "2h"
grace = "1d"
max_addresses_per_name = 128
max_learned = 1000
allow_private = true
redirect = true

[platform]
azure = false

[[allow]]
fqdn = "*.GitHub.com."
ports = ["443", "80", 8080, "8000-8100"]
proto = "tcp"
why = "CI pulls from GitHub"

[[allow]]
cidr = "198.51.100.0/24"
proto = "udp"
direction = "ingress"

[[allow]]
service_tag = "Storage.WestEurope"
ports = ["*"]
proto = "any"

[ebpf]
cgroup = "/sys/fs/cgroup/amlfw.slice"

[paths]
state_dir = "/srv/amlfw/state"
runtime_dir = "/run/amlfw-test"

[metrics]
listen = "127.0.0.1:9469"
)");
  EXPECT_EQ(c.catalog, "2026-03");
  EXPECT_EQ(c.cloud, Cloud::kUsGov);
  EXPECT_EQ(c.region, "usgovvirginia");
  EXPECT_EQ(c.storage_accounts, (std::vector<std::string>{"mystore", "other2"}));
  EXPECT_EQ(c.container_registries, (std::vector<std::string>{"myregistry", "acr12345"}));
  EXPECT_EQ(c.workspace_id, "0a1b2c3d-0000-4000-8000-00000000abcd");
  EXPECT_EQ(c.backend, Backend::kEbpf);
  EXPECT_EQ(c.mode, Mode::kAudit);
  for (const auto& [name, on] : kFeatureDefaults) EXPECT_EQ(c.feature(name), !on) << name;
  EXPECT_TRUE(c.inbound.enforce);
  EXPECT_EQ(c.inbound.ssh_from,
            (std::vector<std::string>{"198.51.100.0/24", "2001:db8::/32", "203.0.113.7/32"}));
  EXPECT_EQ(c.service_tags.source, "https://example.com/ServiceTags_AzureGovernment.json");
  EXPECT_EQ(c.service_tags.refresh_s, 5400u);
  EXPECT_DOUBLE_EQ(c.service_tags.max_shrink, 0.25);
  EXPECT_EQ(c.service_tags.subscription, "11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(c.service_tags.client_id, "aaaaaaaa-1111-2222-3333-444444444444");
  EXPECT_EQ(c.dns.listen, "[::1]:5353");
  EXPECT_EQ(c.dns.upstreams,
            (std::vector<std::string>{"192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:53", "2001:db8::54"}));
  EXPECT_EQ(c.dns.min_ttl_s, 0u);
  EXPECT_EQ(c.dns.max_ttl_s, 7200u);
  EXPECT_EQ(c.dns.grace_s, 86400u);
  EXPECT_EQ(c.dns.max_addresses_per_name, 128u);
  EXPECT_EQ(c.dns.max_learned, 1000u);
  EXPECT_TRUE(c.dns.allow_private);
  EXPECT_TRUE(c.dns.redirect);
  EXPECT_FALSE(c.platform.azure);
  ASSERT_EQ(c.allow.size(), 3u);
  EXPECT_EQ(c.allow[0].fqdn, NamePattern::parse("*.github.com")->str());
  EXPECT_EQ(c.allow[0].cidr, "");
  EXPECT_EQ(c.allow[0].service_tag, "");
  EXPECT_EQ(c.allow[0].ports, (std::vector<PortRange>{{80, 80}, {443, 443}, {8000, 8100}}));
  EXPECT_EQ(c.allow[0].proto, Proto::kTcp);
  EXPECT_EQ(c.allow[0].direction, "egress");
  EXPECT_EQ(c.allow[0].why, "CI pulls from GitHub");
  EXPECT_EQ(c.allow[0].where, "t.toml:53:1");
  EXPECT_EQ(c.allow[1].cidr, "198.51.100.0/24");
  EXPECT_EQ(c.allow[1].fqdn, "");
  EXPECT_EQ(c.allow[1].proto, Proto::kUdp);
  EXPECT_EQ(c.allow[1].direction, "ingress");
  EXPECT_EQ(c.allow[1].ports, (std::vector<PortRange>{{1, 65535}}));  // default: all ports
  EXPECT_EQ(c.allow[2].service_tag, "Storage.WestEurope");
  EXPECT_EQ(c.allow[2].proto, Proto::kAny);
  EXPECT_EQ(c.allow[2].ports, (std::vector<PortRange>{{1, 65535}}));
  EXPECT_EQ(c.ebpf.cgroup, "/sys/fs/cgroup/amlfw.slice");
  EXPECT_EQ(c.paths.state_dir, "/srv/amlfw/state");
  EXPECT_EQ(c.paths.runtime_dir, "/run/amlfw-test");
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9469");
}

// [egress] and [forward] (nftables: a node that routes pods; docs/kubernetes.md).
TEST(Config, EgressAndForwardKeysAreReadBack) {
  const Config c = parse_ok(R"(
[egress]
local = false

[forward]
interfaces = ["cni0", "cali*", "cni0", "lxc.x_1-2"]
sources = ["10.244.0.0/16", "2001:db8:ffff:8::/64", "192.0.2.10", "10.244.0.0/16"]
dns_redirect = true

[dns]
listen = "10.244.0.1:53"
)");
  EXPECT_FALSE(c.egress.local);
  EXPECT_EQ(c.forward.interfaces, (std::vector<std::string>{"cni0", "cali*", "lxc.x_1-2"}));
  EXPECT_EQ(c.forward.sources,
            (std::vector<std::string>{"10.244.0.0/16", "2001:db8:ffff:8::/64", "192.0.2.10/32"}));
  EXPECT_TRUE(c.forward.dns_redirect);
  EXPECT_TRUE(c.forward.enabled());
  // Sources alone name the pods too; local = true keeps the node filtered beside them.
  const Config d = parse_ok("[forward]\nsources = [\"198.51.100.0/24\"]\n[egress]\nlocal = true");
  EXPECT_TRUE(d.forward.enabled());
  EXPECT_TRUE(d.egress.local);
  // With ebpf the cgroup decides which processes are filtered: local = false needs a subtree.
  const Config e = parse_ok("backend = \"ebpf\"\n[egress]\nlocal = false\n[ebpf]\ncgroup = \"/sys/fs/cgroup/kubepods.slice\"");
  EXPECT_FALSE(e.egress.local);
  EXPECT_EQ(e.ebpf.cgroup, "/sys/fs/cgroup/kubepods.slice");
  // A path relative to the cgroup v2 mount, as docs/ebpf.md says (resolved at attach time).
  EXPECT_EQ(parse_ok("backend = \"ebpf\"\n[ebpf]\ncgroup = \"kubepods.slice/burstable\"").ebpf.cgroup,
            "kubepods.slice/burstable");
  // Empty lists and dns_redirect = false are the defaults, whatever the backend.
  parse_ok("backend = \"ebpf\"\n[forward]\ninterfaces = []\nsources = []\ndns_redirect = false");
}

TEST(Config, InlineTablesAndDottedKeysAreTheSameKeys) {
  const Config c = parse_ok(
      "dns.min_ttl = \"5m\"\n"
      "features = { r = true }\n"
      "allow = [{ cidr = \"192.0.2.0/24\", ports = [\"22\"] }]\n");
  EXPECT_EQ(c.dns.min_ttl_s, 300u);
  EXPECT_TRUE(c.feature("r"));
  EXPECT_TRUE(c.feature("python"));  // the others keep their defaults
  ASSERT_EQ(c.allow.size(), 1u);
  EXPECT_EQ(c.allow[0].cidr, "192.0.2.0/24");
  EXPECT_EQ(c.allow[0].where, "t.toml:3:10");
}

TEST(Config, CloudAutoMakesTheRegionAuto) {
  EXPECT_EQ(parse_ok("cloud = \"auto\"").region, "auto");
  EXPECT_EQ(parse_ok("cloud = \"auto\"\nregion = \"chinanorth3\"").region, "chinanorth3");
  EXPECT_EQ(parse_ok("cloud = \"china\"\nregion = \"auto\"").region, "auto");
  EXPECT_EQ(parse_ok("region = \"auto\"").region, "auto");
  EXPECT_EQ(parse_ok("cloud = \"public\"").region, "westeurope");
}

// ---- errors: one line, exact text, position of the offending value ---------------------------

struct ErrorCase {
  const char* text;
  const char* message;
};

class ConfigError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigError, ExactMessage) { EXPECT_EQ(parse_err(GetParam().text), GetParam().message); }

const ErrorCase kErrorCases[] = {
    // unknown keys, with suggestions
    {"regoin = \"westeurope\"", "t.toml:1:1: unknown key 'regoin' (did you mean 'region'?)"},
    {"Region = \"westeurope\"", "t.toml:1:1: unknown key 'Region' (did you mean 'region'?)"},
    {"storage = [\"a\"]", "t.toml:1:1: unknown key 'storage' (did you mean 'storage_accounts'?)"},
    {"\n[dns]\n  lisen = \"127.0.0.1:53\"", "t.toml:3:3: unknown key 'lisen' (did you mean 'listen'?)"},
    {"[features]\npyhton = true", "t.toml:2:1: unknown key 'pyhton' (did you mean 'python'?)"},
    {"[features]\nrr = true", "t.toml:2:1: unknown key 'rr' (did you mean 'r'?)"},
    {"[[allow]]\nfdqn = \"a.example.com\"", "t.toml:2:1: unknown key 'fdqn' (did you mean 'fqdn'?)"},
    {"[[allow]]\ncidr = \"192.0.2.0/24\"\n[[allow]]\nfqdn = \"a.example.com\"\nport = [\"443\"]",
     "t.toml:5:1: unknown key 'port' (did you mean 'ports'?)"},
    {"python = true", "t.toml:1:1: unknown key 'python' (it belongs under [features])"},
    {"listen = \"127.0.0.1:53\"", "t.toml:1:1: unknown key 'listen' (it belongs under [dns] or [metrics])"},
    {"foo = 1",
     "t.toml:1:1: unknown key 'foo' (remove it; known keys: catalog, cloud, region, storage_accounts, "
     "container_registries, workspace_id, backend, mode, features, inbound, egress, forward, service_tags, "
     "dns, platform, allow, ebpf, paths, metrics, control)"},
    {"local = false", "t.toml:1:1: unknown key 'local' (it belongs under [egress])"},
    {"interfaces = [\"cni0\"]", "t.toml:1:1: unknown key 'interfaces' (it belongs under [forward])"},
    {"[forward]\ninterface = [\"cni0\"]", "t.toml:2:1: unknown key 'interface' (did you mean 'interfaces'?)"},
    {"[platform]\nzzz = 1", "t.toml:2:1: unknown key 'zzz' (remove it; known keys here: azure)"},
    {"[platform.extra]", "t.toml:1:11: unknown key 'extra' (remove it; known keys here: azure)"},
    // cloud, region, backend, mode, catalog
    {"cloud = \"azure\"", "t.toml:1:9: cloud: 'azure' is not valid (use public, usgov, china or auto)"},
    {"cloud = \"pubic\"", "t.toml:1:9: cloud: 'pubic' is not valid (did you mean 'public'?)"},
    {"cloud = 1", "t.toml:1:9: cloud: expected a string, found an integer (write cloud = \"public\")"},
    {"region = \"westeruope\"",
     "t.toml:1:10: region: 'westeruope' is not a region of the public cloud (did you mean 'westeurope'?)"},
    {"region = \"mars\"",
     "t.toml:1:10: region: 'mars' is not a region of the public cloud (use a lower-case Azure region name "
     "such as westeurope, or \"auto\")"},
    {"region = \"centralfrance\"",
     "t.toml:1:10: region: 'centralfrance' is not a region of the public cloud (use a lower-case Azure "
     "region name such as westeurope, or \"auto\")"},
    {"region = \"usgovvirginia\"",
     "t.toml:1:10: region: 'usgovvirginia' is in the usgov cloud, not in public (set cloud = \"usgov\" or "
     "pick a region of public)"},
    {"cloud = \"china\"\nregion = \"westeurope\"",
     "t.toml:2:10: region: 'westeurope' is in the public cloud, not in china (set cloud = \"public\" or pick "
     "a region of china)"},
    {"cloud = \"usgov\"",
     "t.toml:1:9: cloud: the default region 'westeurope' is not in the usgov cloud (add region = "
     "\"usgovvirginia\" or region = \"auto\")"},
    {"region = 1979-05-27", "t.toml:1:10: region: expected a string, found a date (write region = \"westeurope\")"},
    {"region = \"x\\u0007y\"",
     "t.toml:1:10: region: 'x\\x07y' is not a region of the public cloud (use a lower-case Azure region "
     "name such as westeurope, or \"auto\")"},
    {"backend = \"bpf\"", "t.toml:1:11: backend: 'bpf' is not valid (did you mean 'ebpf'?)"},
    {"mode = \"dry-run\"", "t.toml:1:8: mode: 'dry-run' is not valid (use enforce or audit)"},
    {"catalog = \"2021-11\"", "t.toml:1:11: catalog: '2021-11' is not a catalog revision (did you mean '2021-10'?)"},
    {"catalog = \"latest\"", "t.toml:1:11: catalog: 'latest' is not a catalog revision (use 2021-10 or 2026-03)"},
    // names
    {"storage_accounts = [\"My_Store\"]",
     "t.toml:1:21: storage_accounts: 'My_Store' is not a valid name (use 3 to 24 lower-case letters and "
     "digits, e.g. \"mystore\")"},
    {"storage_accounts = [\"MyStore\"]",
     "t.toml:1:21: storage_accounts: 'MyStore' is not a valid name (write it in lower case)"},
    {"storage_accounts = [\"ok1\", \"ab\"]",
     "t.toml:1:28: storage_accounts: 'ab' is not a valid name (use 3 to 24 lower-case letters and digits, "
     "e.g. \"mystore\")"},
    {"storage_accounts = [\"mystore.blob.core.windows.net\"]",
     "t.toml:1:21: storage_accounts: 'mystore.blob.core.windows.net' is not a valid name (give the name "
     "only, without '.blob.core.windows.net')"},
    {"storage_accounts = \"mystore\"",
     "t.toml:1:20: storage_accounts: expected an array of strings, found a string (write storage_accounts = "
     "[\"mystore\"])"},
    {"container_registries = [\"acr\"]",
     "t.toml:1:25: container_registries: 'acr' is not a valid name (use 5 to 50 letters and digits, e.g. "
     "\"myregistry\")"},
    {"container_registries = [\"myacr.azurecr.io\"]",
     "t.toml:1:25: container_registries: 'myacr.azurecr.io' is not a valid name (give the name only, "
     "without '.azurecr.io')"},
    {"workspace_id = \"abc\"",
     "t.toml:1:16: workspace_id: 'abc' is not a GUID (write the 36-character ID, e.g. "
     "\"0a1b2c3d-0000-4000-8000-00000000abcd\")"},
    // tables of the wrong type, booleans
    {"features = 1",
     "t.toml:1:12: features: expected a table, found an integer (write [features] on its own line, then its "
     "keys)"},
    {"[features]\npython = \"yes\"",
     "t.toml:2:10: features.python: expected true or false, found a string (write python = true or python "
     "= false)"},
    {"[platform]\nazure = 1",
     "t.toml:2:9: platform.azure: expected true or false, found an integer (write azure = true or azure = "
     "false)"},
    {"[dns]\nallow_private = \"yes\"",
     "t.toml:2:17: dns.allow_private: expected true or false, found a string (write allow_private = true or "
     "allow_private = false)"},
    // inbound
    {"[inbound]\nssh_from = \"198.51.100.0/24\"",
     "t.toml:2:12: inbound.ssh_from: expected an array of strings, found a string (write ssh_from = "
     "[\"198.51.100.0/24\"])"},
    {"[inbound]\nssh_from = [22]",
     "t.toml:2:13: inbound.ssh_from: expected a string, found an integer (write ssh_from = "
     "[\"198.51.100.0/24\"])"},
    {"[inbound]\nenforce = \"true\"",
     "t.toml:2:11: inbound.enforce: expected true or false, found a string (write enforce = true or enforce "
     "= false)"},
    // service_tags
    {"[service_tags]\nrefresh = \"24x\"",
     "t.toml:2:11: service_tags.refresh: '24x': unknown unit 'x' (write a number and a unit s, m, h or d, "
     "e.g. \"15m\" or \"1h30m\")"},
    {"[service_tags]\nrefresh = \"60\"",
     "t.toml:2:11: service_tags.refresh: '60': missing unit after 60 (write \"60s\" for seconds)"},
    {"[service_tags]\nrefresh = \"10s\"", "t.toml:2:11: service_tags.refresh: '10s' is out of range (use 1m to 30d)"},
    {"[service_tags]\nrefresh = 3600",
     "t.toml:2:11: service_tags.refresh: expected a string, found an integer (write refresh = \"24h\")"},
    {"[service_tags]\nmax_shrink = 1.5",
     "t.toml:2:14: service_tags.max_shrink: 1.5 is out of range (use a share from 0.0 to 1.0, e.g. 0.1 for "
     "10%)"},
    {"[service_tags]\nmax_shrink = -1",
     "t.toml:2:14: service_tags.max_shrink: -1 is out of range (use a share from 0.0 to 1.0, e.g. 0.1 for "
     "10%)"},
    {"[service_tags]\nmax_shrink = nan",
     "t.toml:2:14: service_tags.max_shrink: nan is out of range (use a share from 0.0 to 1.0, e.g. 0.1 for "
     "10%)"},
    {"[service_tags]\nmax_shrink = \"10%\"",
     "t.toml:2:14: service_tags.max_shrink: expected a number, found a string (write max_shrink = 0.1)"},
    {"[service_tags]\nsource = \"http://example.com/tags.json\"",
     "t.toml:2:10: service_tags.source: 'http://example.com/tags.json' is not https (use an https:// URL)"},
    {"[service_tags]\nsource = \"tags.json\"",
     "t.toml:2:10: service_tags.source: 'tags.json' is not a source (write an absolute file path, an "
     "https:// URL or \"azure-api\")"},
    {"[service_tags]\nsubscription = \"my-subscription\"",
     "t.toml:2:16: service_tags.subscription: 'my-subscription' is not a GUID (write the 36-character ID, "
     "e.g. \"0a1b2c3d-0000-4000-8000-00000000abcd\")"},
    {"[service_tags]\nclient_id = \"my-identity\"",
     "t.toml:2:13: service_tags.client_id: 'my-identity' is not a GUID (write the 36-character ID, "
     "e.g. \"0a1b2c3d-0000-4000-8000-00000000abcd\")"},
    // dns
    {"[dns]\nlisten = \"127.0.0.1\"",
     "t.toml:2:10: dns.listen: '127.0.0.1': missing port (write \"ip:port\" or \"[ipv6]:port\")"},
    {"[dns]\nlisten = \"[::1]:0\"", "t.toml:2:10: dns.listen: '[::1]:0': '0' is not a port (use 1 to 65535)"},
    {"[dns]\nlisten = \"localhost:53\"",
     "t.toml:2:10: dns.listen: 'localhost:53': 'localhost' is not an IP address (write \"ip:port\" or "
     "\"[ipv6]:port\")"},
    {"[dns]\nlisten = \"[::1:53\"", "t.toml:2:10: dns.listen: '[::1:53': missing ']' (write \"ip:port\" or \"[ipv6]:port\")"},
    {"[dns]\nupstreams = [\"192.0.2.1\", \"192.0.2.1:99999\"]",
     "t.toml:2:27: dns.upstreams: '192.0.2.1:99999': '99999' is not a port (use 1 to 65535)"},
    {"[dns]\nupstreams = [\"resolver.example\"]",
     "t.toml:2:14: dns.upstreams: 'resolver.example': 'resolver.example' is not an IP address (write \"ip\", "
     "\"ip:port\" or \"[ipv6]:port\")"},
    {"[dns]\nmax_ttl = \"1x\\ry\"",  // found by config_fuzz: the unit was echoed with its raw CR
     "t.toml:2:11: dns.max_ttl: '1x\\x0dy': unknown unit 'x\\x0dy' (write a number and a unit s, m, h or d, "
     "e.g. \"15m\" or \"1h30m\")"},
    {"[dns]\nlisten = \"127.0.0.1:5\\t3\"",
     "t.toml:2:10: dns.listen: '127.0.0.1:5\\x093': '5\\x093' is not a port (use 1 to 65535)"},
    {"[dns]\nmin_ttl = \"2d\"", "t.toml:2:11: dns.min_ttl: '2d' is out of range (use 0s to 1d)"},
    {"[dns]\nmin_ttl = \"500ms\"", "t.toml:2:11: dns.min_ttl: '500ms': durations are whole seconds (write \"1s\" or more)"},
    {"[dns]\ngrace = \"-5m\"",
     "t.toml:2:9: dns.grace: '-5m': a duration starts with a number (write a number and a unit s, m, h or d, "
     "e.g. \"15m\" or \"1h30m\")"},
    {"[dns]\nmax_ttl = \"30s\"",
     "t.toml:2:11: dns: min_ttl (1m) is above max_ttl (30s) (make min_ttl at most max_ttl)"},
    {"[dns]\nmin_ttl = \"1h\"\nmax_ttl = \"30m\"",
     "t.toml:3:11: dns: min_ttl (1h) is above max_ttl (30m) (make min_ttl at most max_ttl)"},
    {"[dns]\nmax_addresses_per_name = 0",
     "t.toml:2:26: dns.max_addresses_per_name: 0 is out of range (use 1 to 4096)"},
    {"[dns]\nmax_learned = \"many\"",
     "t.toml:2:15: dns.max_learned: expected an integer, found a string (write max_learned = 65536)"},
    {"[dns]\nmax_learned = -3", "t.toml:2:15: dns.max_learned: -3 is out of range (use 1 to 16777216)"},
    // [[allow]]
    {"[[allow]]\nports = [\"443\"]",
     "t.toml:1:1: allow: a rule needs a destination (add exactly one of fqdn, cidr or service_tag)"},
    {"[[allow]]\nfqdn = \"*.github.com\"\ncidr = \"198.51.100.0/24\"",
     "t.toml:3:8: allow: fqdn and cidr in one rule (keep one; write one [[allow]] per destination)"},
    {"[[allow]]\nservice_tag = \"AzureCloud\"\nfqdn = \"a.example.com\"\ncidr = \"192.0.2.0/24\"",
     "t.toml:3:8: allow: service_tag and fqdn in one rule (keep one; write one [[allow]] per destination)"},
    {"[[allow]]\nfqdn = \"a.example.com\"\nports = []",
     "t.toml:3:9: allow.ports: no port listed (list ports such as [\"443\"], or remove the key for all ports)"},
    {"[[allow]]\nfqdn = \"a.example.com\"\nports = [0]", "t.toml:3:10: allow.ports: 0 is not a port (use 1 to 65535)"},
    {"[[allow]]\nfqdn = \"a.example.com\"\nports = \"443\"",
     "t.toml:3:9: allow.ports: expected an array, found a string (write ports = [\"443\"])"},
    {"[[allow]]\nfqdn = \"a.example.com\"\nports = [true]",
     "t.toml:3:10: allow.ports: expected a port, found a boolean (write \"443\", \"80-90\" or \"*\")"},
    {"[[allow]]\nfqdn = \"a.example.com\"\nproto = \"icmp\"", "t.toml:3:9: allow.proto: 'icmp' is not valid (use tcp, udp or any)"},
    {"[[allow]]\nfqdn = \"a.example.com\"\ndirection = \"out\"",
     "t.toml:3:13: allow.direction: 'out' is not valid (use egress or ingress)"},
    {"[[allow]]\nfqdn = \"a.example.com\"\ndirection = \"ingress\"",
     "t.toml:3:13: allow: a host name cannot name the source of inbound traffic (use cidr or service_tag for "
     "ingress)"},
    {"[[allow]]\nservice_tag = \"Storage..WestEurope\"",
     "t.toml:2:15: allow.service_tag: 'Storage..WestEurope' is not a service tag name (write a name of the "
     "service-tags data such as \"AzureCloud\" or \"Storage.WestEurope\")"},
    {"[[allow]]\ncidr = \"192.0.2.0/24\"\nwhy = \"two\\nlines\"",
     "t.toml:3:7: allow.why: line break or control character (write why on one line)"},
    {"allow = 1",
     "t.toml:1:9: allow: expected an array of tables, found an integer (write each rule under its own "
     "[[allow]] header)"},
    {"allow = [1]",
     "t.toml:1:10: allow: expected a table, found an integer (write each rule under its own [[allow]] "
     "header)"},
    {"[allow]\nfqdn = \"a.example.com\"",
     "t.toml:1:1: allow: expected an array of tables, found a table (write each rule under its own [[allow]] "
     "header)"},
    // paths, ebpf, metrics
    {"[paths]\nstate_dir = \"relative/dir\"",
     "t.toml:2:13: paths.state_dir: 'relative/dir' is not a usable directory (write an absolute path other "
     "than / without '.' or '..')"},
    {"[paths]\nruntime_dir = \"/\"",
     "t.toml:2:15: paths.runtime_dir: '/' is not a usable directory (write an absolute path other than / "
     "without '.' or '..')"},
    {"[ebpf]\ncgroup = \"/sys/fs/cgroup/../x\"",
     "t.toml:2:10: ebpf.cgroup: '/sys/fs/cgroup/../x' is not a cgroup path (write \"\" for the root, a directory "
     "under the cgroup v2 mount, or a path relative to it such as \"kubepods.slice\", without '.' or '..')"},
    {"[ebpf]\ncgroup = \"kubepods.slice/./x\"",
     "t.toml:2:10: ebpf.cgroup: 'kubepods.slice/./x' is not a cgroup path (write \"\" for the root, a directory "
     "under the cgroup v2 mount, or a path relative to it such as \"kubepods.slice\", without '.' or '..')"},
    {"[metrics]\nlisten = \"9469\"",
     "t.toml:2:10: metrics.listen: '9469': '9469' is not an IP address (write \"ip:port\" or \"[ipv6]:port\")"},
    // egress, forward
    {"[egress]\nlocal = \"no\"",
     "t.toml:2:9: egress.local: expected true or false, found a string (write local = true or local = false)"},
    {"[forward]\ninterfaces = \"cni0\"",
     "t.toml:2:14: forward.interfaces: expected an array of strings, found a string (write interfaces = "
     "[\"cni0\"])"},
    {"[forward]\ninterfaces = [\"cni0\", \"*\"]",
     "t.toml:2:23: forward.interfaces: '*' would take every forwarded packet for a pod's (name the pods' "
     "interfaces, e.g. \"cni0\" or \"cali*\", or list their CIDRs in sources)"},
    {"[forward]\ninterfaces = [\"eth 0\"]",
     "t.toml:2:15: forward.interfaces: 'eth 0' is not an interface name (use 1 to 15 letters, digits, '.', "
     "'_' or '-', with an optional trailing '*' for a prefix, e.g. \"cni0\" or \"cali*\")"},
    {"[forward]\ninterfaces = [\"ca*li\"]",
     "t.toml:2:15: forward.interfaces: 'ca*li' is not an interface name (use 1 to 15 letters, digits, '.', "
     "'_' or '-', with an optional trailing '*' for a prefix, e.g. \"cni0\" or \"cali*\")"},
    {"[forward]\ninterfaces = [\"abcdefghijklmnop\"]",
     "t.toml:2:15: forward.interfaces: 'abcdefghijklmnop' is not an interface name (use 1 to 15 letters, "
     "digits, '.', '_' or '-', with an optional trailing '*' for a prefix, e.g. \"cni0\" or \"cali*\")"},
    {"[forward]\nsources = [\"pods\"]",
     "t.toml:2:12: forward.sources: 'pods' is not a CIDR prefix: 'pods' is not an IPv4 or IPv6 address (write "
     "e.g. 192.0.2.0/24 or 2001:db8::/32)"},
    {"[forward]\ndns_redirect = true",
     "t.toml:2:16: forward: dns_redirect needs to know the pods' traffic (list their interfaces or sources in "
     "[forward])"},
    {"[forward]\ninterfaces = [\"cni0\"]\ndns_redirect = true",
     "t.toml:3:16: forward: the pods' DNS cannot be redirected to the proxy on '127.0.0.1:53' (set [dns] "
     "listen to an address of the node that the pods reach, e.g. the bridge's \"10.244.0.1:53\")"},
    {"[dns]\nlisten = \"[::]:53\"\n[forward]\nsources = [\"10.244.0.0/16\"]\ndns_redirect = true",
     "t.toml:5:16: forward: the pods' DNS cannot be redirected to the proxy on '[::]:53' (set [dns] listen to "
     "an address of the node that the pods reach, e.g. the bridge's \"10.244.0.1:53\")"},
    {"backend = \"ebpf\"\n[forward]\nsources = [\"10.244.0.0/16\"]",
     "t.toml:3:11: forward: the eBPF backend confines pods by their cgroup, not by forwarded traffic (set "
     "[ebpf] cgroup to the pods' subtree, e.g. \"/sys/fs/cgroup/kubepods.slice\", and remove [forward]; or "
     "use backend = \"nftables\")"},
    {"[egress]\nlocal = false",
     "t.toml:2:9: egress: local = false and [forward] names no pods: nothing would be filtered (list the pods' "
     "interfaces or sources in [forward], or set local = true)"},
    {"backend = \"ebpf\"\n[egress]\nlocal = false",
     "t.toml:3:9: egress: local = false, but with backend = \"ebpf\" and [ebpf] cgroup = \"\" every process of "
     "the node is filtered (set [ebpf] cgroup to the pods' subtree, e.g. \"/sys/fs/cgroup/kubepods.slice\", "
     "or local = true)"},
    // a cgroup refused by its own check is reported, not taken for the root
    {"backend = \"ebpf\"\n[egress]\nlocal = false\n[ebpf]\ncgroup = \"kubepods.slice/../x\"",
     "t.toml:5:10: ebpf.cgroup: 'kubepods.slice/../x' is not a cgroup path (write \"\" for the root, a directory "
     "under the cgroup v2 mount, or a path relative to it such as \"kubepods.slice\", without '.' or '..')"},
    // the first problem in the file wins, whatever toml++'s key order
    {"mode = \"x\"\ncloud = \"y\"", "t.toml:1:8: mode: 'x' is not valid (use enforce or audit)"},
    {"[paths]\nstate_dir = \"x\"\n[dns]\nlisen = 1",
     "t.toml:2:13: paths.state_dir: 'x' is not a usable directory (write an absolute path other than / "
     "without '.' or '..')"},
};

INSTANTIATE_TEST_SUITE_P(Table, ConfigError, ::testing::ValuesIn(kErrorCases));

// Errors whose text comes from net.h / name_pattern.h: the config adds the place and the key.
TEST(Config, ErrorsOfTheValueParsersCarryThePlace) {
  EXPECT_EQ(parse_err("[inbound]\nssh_from = [\"10.0.0.1/8\"]"),
            "t.toml:2:13: inbound.ssh_from: " + Prefix::parse("10.0.0.1/8", true).error().message);
  EXPECT_EQ(parse_err("[[allow]]\ncidr = \"198.51.100.0/33\""),
            "t.toml:2:8: allow.cidr: " + Prefix::parse("198.51.100.0/33", true).error().message);
  EXPECT_EQ(parse_err("[[allow]]\nfqdn = \"a.example.com\"\nports = [\"80\", \"90-80\"]"),
            "t.toml:3:16: allow.ports: " + parse_port_range("90-80").error().message);
  EXPECT_EQ(parse_err("[[allow]]\nfqdn = \"a.example.com\"\nports = [\"70000\"]"),
            "t.toml:3:10: allow.ports: " + parse_port_range("70000").error().message);
  EXPECT_EQ(parse_err("[[allow]]\nfqdn = \"bad name.example.com\""),
            "t.toml:2:8: allow.fqdn: " + NamePattern::parse("bad name.example.com").error().message);
  EXPECT_EQ(parse_err("[[allow]]\nfqdn = \"<storage>.blob.core.windows.net\""),
            "t.toml:2:8: allow.fqdn: " + NamePattern::parse("<storage>.blob.core.windows.net").error().message);
}

TEST(Config, TomlSyntaxErrorsGiveTomlsPosition) {
  for (const auto& [text, where] : std::vector<std::pair<std::string, std::string>>{
           {"region = ", "t.toml:1:"},
           {"region = \"westeurope\"\nregion = \"northeurope\"", "t.toml:2:"},
           {"[dns]\nlisten = \"127.0.0.1:53\"\n[dns]", "t.toml:3:"},
           {"\n\ncatalog = \"2021-10", "t.toml:3:"},
           {"a = [1,", "t.toml:1:"},
           {std::string("region = \"west\xff\"", 16), "t.toml:1:"},
       }) {
    const std::string msg = parse_err(text);
    EXPECT_EQ(msg.rfind(where, 0), 0u) << msg;
    const std::string tail = " (fix the TOML syntax)";
    EXPECT_TRUE(msg.size() > tail.size() && msg.compare(msg.size() - tail.size(), tail.size(), tail) == 0) << msg;
  }
}

TEST(Config, ConsequentialErrorsAreNotReported) {
  // The unknown key explains the missing destination; the bad cloud explains the region.
  EXPECT_EQ(parse_err("[[allow]]\nfdqn = \"a.example.com\""),
            "t.toml:2:1: unknown key 'fdqn' (did you mean 'fqdn'?)");
  EXPECT_EQ(parse_err("region = \"usgovvirginia\"\ncloud = \"usgof\""),
            "t.toml:2:9: cloud: 'usgof' is not valid (did you mean 'usgov'?)");
}

// ---- values -------------------------------------------------------------------------------------

TEST(Config, EnumNamesRoundTrip) {
  for (Cloud c : {Cloud::kPublic, Cloud::kUsGov, Cloud::kChina, Cloud::kAuto}) EXPECT_EQ(parse_cloud(to_string(c)), c);
  for (Backend b : {Backend::kNftables, Backend::kEbpf}) EXPECT_EQ(parse_backend(to_string(b)), b);
  for (Mode m : {Mode::kEnforce, Mode::kAudit}) EXPECT_EQ(parse_mode(to_string(m)), m);
  EXPECT_FALSE(parse_cloud("Public"));
  EXPECT_FALSE(parse_backend("nft"));
  EXPECT_FALSE(parse_mode(""));
}

TEST(Config, Durations) {
  const std::vector<std::pair<std::string, uint64_t>> good = {
      {"0s", 0}, {"60s", 60}, {"15m", 900}, {"24h", 86400}, {"1d", 86400}, {"1h30m", 5400}, {"2d12h", 216000}};
  for (const auto& [text, seconds] : good) {
    auto d = parse_duration(text);
    ASSERT_TRUE(d.ok()) << text << ": " << d.error().message;
    EXPECT_EQ(*d, seconds) << text;
  }
  for (std::string_view bad : {"", "60", "s", "1.5h", "1 h", "1H", "500ms", "-1s", "1y", "99999999999999999999d",
                               "1h30", "3650000d"}) {
    EXPECT_FALSE(parse_duration(bad).ok()) << bad;
  }
}

TEST(Config, SocketAddresses) {
  auto a = parse_socket_address("192.0.2.1:53");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->str(), "192.0.2.1:53");
  a = parse_socket_address("[2001:db8::1]:8053");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->addr.v6);
  EXPECT_EQ(a->port, 8053);
  EXPECT_EQ(a->str(), "[2001:db8::1]:8053");
  a = parse_socket_address("2001:db8::1", 53);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->str(), "[2001:db8::1]:53");
  a = parse_socket_address("192.0.2.1", 53);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->str(), "192.0.2.1:53");
  for (std::string_view bad : {"", "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "192.0.2.1:", "192.0.2.1:0",
                               "192.0.2.1:65536", "[192.0.2.1]:53", "[2001:db8::1]53", "host:53", ":53",
                               "192.0.2.1:5x"}) {
    EXPECT_FALSE(parse_socket_address(bad).ok()) << bad;
  }
}

TEST(Config, Suggest) {
  const std::vector<std::string> keys = {"region", "cloud", "catalog", "storage_accounts", "listen"};
  EXPECT_EQ(suggest("regoin", keys), "region");   // transposition
  EXPECT_EQ(suggest("REGION", keys), "region");   // case
  EXPECT_EQ(suggest("regio", keys), "region");    // deletion
  EXPECT_EQ(suggest("clowd", keys), "cloud");     // substitution
  EXPECT_EQ(suggest("storage", keys), "storage_accounts");  // truncated
  EXPECT_EQ(suggest("lisen", keys), "listen");
  EXPECT_EQ(suggest("x", keys), "");
  EXPECT_EQ(suggest("backend", keys), "");
  EXPECT_EQ(suggest("", keys), "");
  EXPECT_EQ(suggest("region", {}), "");
}

// ---- regions ----------------------------------------------------------------------------------------

TEST(Config, KnownRegions) {
  const auto& pub = known_regions(Cloud::kPublic);
  EXPECT_EQ(pub.size(), 67u);
  EXPECT_TRUE(std::is_sorted(pub.begin(), pub.end()));
  for (const char* r : {"westeurope", "francecentral", "germanywestcentral", "norwayeast", "chilecentral",
                        "brazilsoutheast", "switzerlandnorth"}) {
    EXPECT_NE(std::find(pub.begin(), pub.end(), r), pub.end()) << r;
  }
  // Internal codes, AzureCloud-only and staging regions are not ARM names.
  for (const char* r : {"centralfrance", "germanywc", "norwaye", "brazilne", "northeurope2", "usstagee", "eastusstg"}) {
    EXPECT_EQ(std::find(pub.begin(), pub.end(), r), pub.end()) << r;
  }
  EXPECT_EQ(known_regions(Cloud::kUsGov),
            (std::vector<std::string>{"usdodcentral", "usdodeast", "usgovarizona", "usgovtexas", "usgovvirginia"}));
  EXPECT_EQ(known_regions(Cloud::kChina), (std::vector<std::string>{"chinaeast", "chinaeast2", "chinaeast3",
                                                                    "chinanorth", "chinanorth2", "chinanorth3"}));
  EXPECT_EQ(known_regions(Cloud::kAuto).size(), 67u + 5u + 6u);
}

TEST(Config, PublicRegionsMatchTheServiceTagsFile) {
  const std::string path = std::string(AMLFW_SHARED_DATA) + "/servicetags/ServiceTags_Public_20251028.json";
  std::ifstream in(path);
  if (!in) AMLFW_SKIP_OR_FAIL_IN_CI("no " + path);
  const auto doc = nlohmann::json::parse(in);
  std::vector<std::string> from_file;
  for (const auto& v : doc.at("values")) {
    const std::string name = v.at("name").get<std::string>();
    const std::string base = "AzureMachineLearning.";
    if (name.rfind(base, 0) != 0) continue;
    std::string region = name.substr(base.size());
    std::transform(region.begin(), region.end(), region.begin(), [](unsigned char c) { return std::tolower(c); });
    if (region.size() > 3 && region.compare(region.size() - 3, 3, "stg") == 0) continue;  // staging
    from_file.push_back(region);
  }
  std::sort(from_file.begin(), from_file.end());
  EXPECT_EQ(from_file, known_regions(Cloud::kPublic));
}

// ---- files ----------------------------------------------------------------------------------------

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/amlfw-config-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(ConfigFile, MissingFileGivesTheEmbeddedDefault) {
  auto c = load_config(dir_ + "/amlfw.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->is_default);
  EXPECT_EQ(c->path, "<embedded default>");
  expect_same(*c, parse_ok(""));
  // A missing directory on the way is "missing" too.
  auto d = load_config(dir_ + "/no/such/dir/amlfw.toml");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->is_default);
}

TEST_F(ConfigFile, ExistingFileIsParsedWithItsPathInMessages) {
  const std::string path = write("amlfw.toml", "region = \"northeurope\"\n");
  auto c = load_config(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->is_default);
  EXPECT_EQ(c->path, path);
  EXPECT_EQ(c->region, "northeurope");

  const std::string bad = write("bad.toml", "\n\nregoin = \"northeurope\"\n");
  auto e = load_config(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Exit::kUsage);
  EXPECT_EQ(e.error().message, bad + ":3:1: unknown key 'regoin' (did you mean 'region'?)");
}

TEST_F(ConfigFile, UnreadableFileIsAnErrorNamingIt) {
  auto e = load_config(dir_);  // a directory
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Exit::kUsage);
  EXPECT_EQ(e.error().message,
            dir_ + ": cannot read the configuration: Is a directory (give a readable amlfw TOML file with --config)");

  const std::string path = write("secret.toml", "");
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  if (geteuid() != 0) {  // root reads it anyway
    auto p = load_config(path);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.error().message, path + ": cannot read the configuration: Permission denied (give a readable "
                                        "amlfw TOML file with --config)");
  }
}

TEST_F(ConfigFile, OversizedFileIsRefused) {
  const std::string path = write("big.toml", "# " + std::string(size_t{1} << 20, 'x') + "\n");
  auto e = load_config(path);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message,
            path + ": the configuration is larger than 1 MiB (give a readable amlfw TOML file with --config)");
}

// The fuzzer's seed corpus, replayed in the normal build: every input parses or gives one
// line of exit 2 naming the file; the valid seeds parse.
TEST(Config, FuzzSeedCorpusReplays) {
  const std::filesystem::path dir = std::filesystem::path(AMLFW_FIXTURES) / ".." / "fuzz" / "corpus" / "config";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t seeds = 0;
  size_t parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++seeds;
    auto c = parse_config(text, "seed.toml");
    if (c.ok()) {
      ++parsed;
      EXPECT_EQ(c->features.size(), kFeatureDefaults.size());
    } else {
      EXPECT_EQ(c.error().code, Exit::kUsage) << entry.path();
      EXPECT_EQ(c.error().message.rfind("seed.toml:", 0), 0u) << c.error().message;
      EXPECT_EQ(c.error().message.find_first_of("\r\n"), std::string::npos) << c.error().message;
    }
  }
  EXPECT_GE(seeds, 10u);
  EXPECT_GE(parsed, 4u);  // default, empty, full, inline
}

}  // namespace
}  // namespace amlfw
