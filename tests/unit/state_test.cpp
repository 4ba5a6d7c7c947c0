// SPDX-License-Identifier: MIT
// state_dir: the format (round trips, corrupt / truncated / foreign / newer files refused
// whole), atomic writes, the learned-address table, and restore_state with a recording
// enforcer (the real service-tags file and the embedded default configuration).
#include "daemon/state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <dirent.h>
#include <filesystem>
#include <fstream>

#include "daemon/tag_source.h"

namespace amlfw {
namespace {

const std::string kRealTags = std::string(AMLFW_SHARED_DATA) + "/servicetags/ServiceTags_Public_20251028.json";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/amlfw-state-test.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

// Records what a backend is asked to do.
class Recorder final : public Enforcer {
 public:
  std::string_view name() const override { return "recorder"; }
  Status apply(const Policy& p, const std::vector<PortGroup>& groups) override {
    ++applies;
    last_policy = p;
    last_groups = groups;
    return {};
  }
  Status learn(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) override {
    learns.emplace_back(groups, addrs);
    return {};
  }
  Status flush() override { return {}; }

  int applies = 0;
  Policy last_policy;
  std::vector<PortGroup> last_groups;
  std::vector<std::pair<std::vector<std::string>, std::vector<LearnedAddr>>> learns;
};

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

PolicyState sample_state() {
  PolicyState s;
  s.config_path = "/etc/amlfw/amlfw.toml";
  s.config_text = "region = \"westeurope\"\n# comment with \xc3\xa9 and \"quotes\"\n";
  s.saved_at = 1700000000;
  s.generation = 42;
  s.tags_origin = "https://example.test/ServiceTags_Public.json";
  s.tags_loaded_at = 1699990000;
  s.tags.cloud = "Public";
  s.tags.change_number = 375;
  ServiceTag a;
  a.name = "AzureMachineLearning";
  a.region = "";
  a.change_number = 12;
  a.prefix_count = 3;
  a.prefixes.add(*Prefix::parse("198.51.100.0/28"));
  a.prefixes.add(*Prefix::parse("203.0.113.0/24"));
  a.prefixes.add(*Prefix::parse("2001:db8:1::/48"));
  a.prefixes.normalize();
  ServiceTag b;
  b.name = "Storage.WestEurope";
  b.region = "westeurope";
  b.prefix_count = 1;
  b.prefixes.add(*Prefix::parse("0.0.0.0/0"));  // the top of the space: hi = 0xffffffff
  b.prefixes.add(*Prefix::parse("::/0"));
  b.prefixes.normalize();
  s.tags.tags = {a, b};
  s.tags.build_index();
  s.upstreams.addrs = {ip("192.0.2.53"), ip("2001:db8::53")};
  s.upstreams.port = 5353;
  s.cloud = "public";
  s.region = "westeurope";
  return s;
}

void expect_same(const PolicyState& a, const PolicyState& b) {
  EXPECT_EQ(a.config_path, b.config_path);
  EXPECT_EQ(a.config_is_default, b.config_is_default);
  EXPECT_EQ(a.config_text, b.config_text);
  EXPECT_EQ(a.saved_at, b.saved_at);
  EXPECT_EQ(a.generation, b.generation);
  EXPECT_EQ(a.tags_origin, b.tags_origin);
  EXPECT_EQ(a.tags_loaded_at, b.tags_loaded_at);
  EXPECT_EQ(a.tags.cloud, b.tags.cloud);
  EXPECT_EQ(a.tags.change_number, b.tags.change_number);
  ASSERT_EQ(a.tags.tags.size(), b.tags.tags.size());
  for (size_t i = 0; i < a.tags.tags.size(); ++i) {
    EXPECT_EQ(a.tags.tags[i].name, b.tags.tags[i].name);
    EXPECT_EQ(a.tags.tags[i].region, b.tags.tags[i].region);
    EXPECT_EQ(a.tags.tags[i].change_number, b.tags.tags[i].change_number);
    EXPECT_EQ(a.tags.tags[i].prefix_count, b.tags.tags[i].prefix_count);
    EXPECT_TRUE(a.tags.tags[i].prefixes == b.tags.tags[i].prefixes) << a.tags.tags[i].name;
  }
  EXPECT_EQ(a.upstreams.addrs, b.upstreams.addrs);
  EXPECT_EQ(a.upstreams.port, b.upstreams.port);
  EXPECT_EQ(a.cloud, b.cloud);
  EXPECT_EQ(a.region, b.region);
}

// Rewrites the header's CRC after a payload edit (offset 24, little endian), so that the
// decoder's own checks, not the checksum, have to catch the problem.
void fix_crc(std::string* bytes) {
  const uint32_t c = crc32c(std::string_view(*bytes).substr(32));
  for (int i = 0; i < 4; ++i) (*bytes)[24 + i] = static_cast<char>((c >> (8 * i)) & 0xff);
}

void expect_one_line_data_error(const Error& e, const std::string& want) {
  EXPECT_EQ(e.code, Exit::kData) << e.message;
  EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(want), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("ignored"), std::string::npos) << e.message;
}

// ---- format ------------------------------------------------------------------------------

TEST(State, Crc32cKnownVectors) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  // Incremental = whole (every split point, to cover the 8-byte slices and the tail).
  const std::string s = "The quick brown fox jumps over the lazy dog, twice: the quick brown fox.";
  for (size_t i = 0; i <= s.size(); ++i)
    EXPECT_EQ(crc32c(std::string_view(s).substr(i), crc32c(std::string_view(s).substr(0, i))), crc32c(s)) << i;
}

TEST(State, PolicyStateRoundTrip) {
  const PolicyState s = sample_state();
  const std::string bytes = encode_policy_state(s);
  EXPECT_EQ(bytes.substr(0, 8), std::string("AMLFWST\0", 8));
  auto d = decode_policy_state(bytes, "policy.state");
  ASSERT_TRUE(d.ok()) << d.error().message;
  expect_same(s, *d);
  EXPECT_NE(d->tags.find("azuremachinelearning"), nullptr);  // the index is rebuilt
  EXPECT_EQ(encode_policy_state(*d), bytes);                  // deterministic
}

TEST(State, EveryTruncationIsRefused) {
  const std::string bytes = encode_policy_state(sample_state());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto d = decode_policy_state(std::string_view(bytes).substr(0, n), "p");
    ASSERT_FALSE(d.ok()) << n;
    expect_one_line_data_error(d.error(), n < 32 && n >= 8 ? "truncated" : "");
  }
}

TEST(State, EveryFlippedByteIsRefused) {
  const std::string bytes = encode_policy_state(sample_state());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string b = bytes;
    b[i] = static_cast<char>(b[i] ^ 0x20);
    auto d = decode_policy_state(b, "p");
    EXPECT_FALSE(d.ok()) << "byte " << i;
  }
  std::string b = bytes;
  b[100] = static_cast<char>(b[100] ^ 1);
  auto d = decode_policy_state(b, "/var/lib/amlfw/policy.state");
  ASSERT_FALSE(d.ok());
  expect_one_line_data_error(d.error(), "checksum mismatch");
  EXPECT_EQ(d.error().message.rfind("/var/lib/amlfw/policy.state: ", 0), 0u) << d.error().message;
}

TEST(State, ForeignNewerAndWrongKindFilesAreRefused) {
  auto d = decode_policy_state("{\"changeNumber\": 1, \"values\": []}\n", "p");
  ASSERT_FALSE(d.ok());
  expect_one_line_data_error(d.error(), "not an amlfw state file");
  d = decode_policy_state("AMLF", "p");
  ASSERT_FALSE(d.ok());
  expect_one_line_data_error(d.error(), "truncated");

  std::string newer = encode_policy_state(sample_state());
  newer[8] = 2;  // version 2
  d = decode_policy_state(newer, "p");
  ASSERT_FALSE(d.ok());
  expect_one_line_data_error(d.error(), "version 2");

  const std::string learned = encode_learned_state(LearnedState{1, {}});
  d = decode_policy_state(learned, "p");
  ASSERT_FALSE(d.ok());
  expect_one_line_data_error(d.error(), "learned-addresses state file, expected policy");
  auto l = decode_learned_state(encode_policy_state(sample_state()), "l");
  ASSERT_FALSE(l.ok());
  expect_one_line_data_error(l.error(), "policy state file, expected learned-addresses");

  std::string trailing = encode_policy_state(sample_state()) + "x";
  d = decode_policy_state(trailing, "p");
  ASSERT_FALSE(d.ok());
  expect_one_line_data_error(d.error(), "trailing bytes");
}

TEST(State, InconsistentPayloadWithValidChecksumIsRefused) {
  // A count far larger than the file: refused before any allocation of that size.
  LearnedState ls{5, {{ip("192.0.2.7"), "pypi.org", 9}}};
  std::string b = encode_learned_state(ls);
  b[32 + 8] = '\xff';
  b[32 + 9] = '\xff';
  b[32 + 10] = '\xff';
  b[32 + 11] = '\x7f';
  fix_crc(&b);
  auto l = decode_learned_state(b, "l");
  ASSERT_FALSE(l.ok());
  expect_one_line_data_error(l.error(), "count");

  // An unknown address family.
  b = encode_learned_state(ls);
  b[32 + 12] = 5;
  fix_crc(&b);
  l = decode_learned_state(b, "l");
  ASSERT_FALSE(l.ok());
  expect_one_line_data_error(l.error(), "address family 5");

  // A range with lo > hi in a policy file.
  PolicyState s = sample_state();
  std::string p = encode_policy_state(s);
  const std::string lo = std::string("\x00\x64\x33\xc6", 4);  // 198.51.100.0 little endian
  const auto at = p.find(lo);
  ASSERT_NE(at, std::string::npos);
  p[at + 3] = '\xff';  // lo = 255.51.100.0 > hi
  fix_crc(&p);
  auto d = decode_policy_state(p, "p");
  ASSERT_FALSE(d.ok());
  expect_one_line_data_error(d.error(), "lo > hi");
}

TEST(State, LearnedStateRoundTrip) {
  LearnedState ls;
  ls.saved_at = 1700000000;
  ls.entries = {{ip("192.0.2.70"), "pypi.org", 1700000900},
                {ip("2001:db8:c0::70"), "pypi.org", 1700000960},
                {ip("203.0.113.5"), "files.pythonhosted.org", 1700001000}};
  auto d = decode_learned_state(encode_learned_state(ls), "l");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->saved_at, ls.saved_at);
  ASSERT_EQ(d->entries.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(d->entries[i].addr, ls.entries[i].addr);
    EXPECT_EQ(d->entries[i].name, ls.entries[i].name);
    EXPECT_EQ(d->entries[i].expires_at, ls.entries[i].expires_at);
  }
}

// ---- files -------------------------------------------------------------------------------

TEST(State, AtomicWriteCreatesReplacesAndLeavesNoTemporary) {
  TempDir t;
  const std::string dir = t.path() + "/state";  // created on demand
  ASSERT_TRUE(write_file_atomic(dir, "x.state", "first").ok());
  ASSERT_TRUE(write_file_atomic(dir, "x.state", "second, longer").ok());
  auto r = read_state_file(dir, "x.state");
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(**r, "second, longer");
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/x.state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    ++n;
    EXPECT_EQ(e.path().filename(), "x.state");
  }
  EXPECT_EQ(n, 1u);
}

TEST(State, FailedWriteKeepsTheOldFileAndRemovesTheTemporary) {
  TempDir t;
  // The target is a directory: rename() fails after the data was written and synced.
  ASSERT_EQ(::mkdir((t.path() + "/policy.state").c_str(), 0700), 0);
  Status s = write_file_atomic(t.path(), "policy.state", "new");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Exit::kRuntime);
  EXPECT_NE(s.error().message.find("rename"), std::string::npos) << s.error().message;
  EXPECT_EQ(t.entries(), std::vector<std::string>{"policy.state"});  // no .policy.state.XXXXXX left
  struct stat st {};
  ASSERT_EQ(::stat((t.path() + "/policy.state").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST(State, ReadMissingSymlinkAndDirectory) {
  TempDir t;
  auto r = read_state_file(t.path(), "policy.state");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  auto l = load_policy_state(t.path());
  ASSERT_TRUE(l.ok());
  EXPECT_FALSE(*l);

  ASSERT_EQ(::symlink("/etc/passwd", (t.path() + "/policy.state").c_str()), 0);
  r = read_state_file(t.path(), "policy.state");
  EXPECT_FALSE(r.ok());  // never followed
  ASSERT_EQ(::unlink((t.path() + "/policy.state").c_str()), 0);

  ASSERT_EQ(::mkdir((t.path() + "/policy.state").c_str(), 0700), 0);
  r = read_state_file(t.path(), "policy.state");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos);
}

TEST(State, LoadReportsACorruptFile) {
  TempDir t;
  std::string b = encode_policy_state(sample_state());
  b.resize(b.size() - 3);
  ASSERT_TRUE(write_file_atomic(t.path(), kPolicyStateFile, b).ok());
  auto l = load_policy_state(t.path());
  ASSERT_FALSE(l.ok());
  expect_one_line_data_error(l.error(), "truncated");
  EXPECT_NE(l.error().message.find(t.path() + "/policy.state"), std::string::npos);
}

// ---- the learned table -----------------------------------------------------------------

TEST(LearnedTable, RecordFindPruneAndBounds) {
  LearnedTable t(3);
  const int64_t now = 1000;
  EXPECT_EQ(t.record("pypi.org", {"e_tcp_443"}, {{ip("192.0.2.70"), 60}, {ip("192.0.2.71"), 120}}, now), 0u);
  EXPECT_EQ(t.size(), 2u);
  // The same address from another name: two sources; renewal keeps the later expiry.
  EXPECT_EQ(t.record("files.pythonhosted.org", {"e_tcp_443"}, {{ip("192.0.2.70"), 30}}, now), 0u);
  EXPECT_EQ(t.record("pypi.org", {"e_tcp_443"}, {{ip("192.0.2.70"), 10}}, now), 0u);
  const auto* s = t.find(ip("192.0.2.70"));
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].name, "pypi.org");
  EXPECT_EQ((*s)[0].expires_at, now + 60);
  EXPECT_EQ((*s)[1].expires_at, now + 30);
  EXPECT_EQ(t.find(ip("192.0.2.99")), nullptr);

  // Full: a new address does not fit (expired ones are pruned first).
  EXPECT_EQ(t.record("x.anaconda.com", {"e_tcp_80_443"}, {{ip("192.0.2.72"), 60}}, now), 0u);
  EXPECT_EQ(t.record("y.anaconda.com", {"e_tcp_80_443"}, {{ip("192.0.2.73"), 60}}, now), 1u);
  EXPECT_EQ(t.size(), 3u);
  // At now + 100, .70 (both names) and .72 expired: pruned to make room.
  EXPECT_EQ(t.record("y.anaconda.com", {"e_tcp_80_443"}, {{ip("192.0.2.73"), 60}}, now + 100), 0u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.find(ip("192.0.2.70")), nullptr);
  EXPECT_NE(t.find(ip("192.0.2.71")), nullptr);

  EXPECT_EQ(t.prune(now + 119), 0u);
  EXPECT_EQ(t.prune(now + 120), 1u);  // .71: expiry is exclusive
  EXPECT_EQ(t.prune(now + 400), 1u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(LearnedTable, NamesPerAddressAreBounded) {
  LearnedTable t;
  for (size_t i = 0; i < LearnedTable::kMaxNamesPerAddr + 3; ++i)
    t.record("n" + std::to_string(i) + ".example.com", {"g"}, {{ip("198.51.100.1"), static_cast<uint32_t>(100 + i)}}, 0);
  const auto* s = t.find(ip("198.51.100.1"));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->size(), LearnedTable::kMaxNamesPerAddr);
  // The ones expiring soonest were replaced.
  for (const auto& src : *s) EXPECT_GE(src.expires_at, 103);
  EXPECT_EQ(t.records(0).size(), LearnedTable::kMaxNamesPerAddr);
  EXPECT_EQ(t.records(105).size(), LearnedTable::kMaxNamesPerAddr - 3);
}

// ---- compile + restore with the real service tags ----------------------------------------

struct Compiled {
  Config cfg;
  Policy policy;
};

Compiled compile_default(const std::string& extra_toml = "") {
  auto cfg = parse_config(std::string(embedded_default_config()) + extra_toml, "/etc/amlfw/amlfw.toml");
  EXPECT_TRUE(cfg.ok()) << cfg.error().message;
  auto body = read_file(kRealTags, TagSource::kMaxBody);
  EXPECT_TRUE(body.ok());
  auto tags = parse_tags_for(*cfg, *body, kRealTags);
  EXPECT_TRUE(tags.ok()) << tags.error().message;
  DnsUpstreams ups;
  ups.addrs = {ip("192.0.2.53")};
  auto pol = compile_policy(*cfg, &*tags, ups, kRealTags);
  EXPECT_TRUE(pol.ok()) << pol.error().message;
  return {*cfg, *pol};
}

TEST(State, SavedPolicyCompilesToTheSameGroupsWithoutTheTagsFile) {
  auto c = compile_default();
  const PolicyState s = policy_state_of(c.cfg, c.policy, 7, 1700000000, 1700000100);
  EXPECT_EQ(s.config_text, c.cfg.source_text);
  EXPECT_FALSE(s.tags.tags.empty());
  auto d = decode_policy_state(encode_policy_state(s), "p");
  ASSERT_TRUE(d.ok()) << d.error().message;
  auto r = compile_state(*d);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto before = group_rules(c.policy);
  const auto after = group_rules(r->policy);
  EXPECT_TRUE(diff_groups(before, after).empty());
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(before[i].name, after[i].name);
    EXPECT_TRUE(before[i].prefixes == after[i].prefixes) << before[i].name;
    EXPECT_EQ(before[i].rule_ids, after[i].rule_ids);
  }
  ASSERT_EQ(c.policy.rules.size(), r->policy.rules.size());
  for (size_t i = 0; i < c.policy.rules.size(); ++i) {
    EXPECT_EQ(c.policy.rules[i].id, r->policy.rules[i].id);
    EXPECT_EQ(c.policy.rules[i].dest, r->policy.rules[i].dest);
    EXPECT_EQ(c.policy.rules[i].prefix_count, r->policy.rules[i].prefix_count);
  }
  EXPECT_EQ(r->policy.dns_upstreams, c.policy.dns_upstreams);
  EXPECT_EQ(r->policy.service_tags_change, c.policy.service_tags_change);
  EXPECT_EQ(r->policy.service_tags_cloud, c.policy.service_tags_cloud);
  EXPECT_EQ(r->policy.mode, c.policy.mode);
}

TEST(State, SavedStateWithABrokenConfigTextIsAnErrorNotAPolicy) {
  auto c = compile_default();
  PolicyState s = policy_state_of(c.cfg, c.policy, 1, 1, 1);
  s.config_text += "\nregoin = \"x\"\n";
  auto r = compile_state(s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("saved policy"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("regoin"), std::string::npos) << r.error().message;
}

TEST(State, LearnBatchesRegroupByTheLivePolicy) {
  auto c = compile_default();
  const int64_t now = 5000;
  const LearnLimits lim = LearnLimits::from(c.cfg.dns);
  std::vector<LearnedRecord> recs = {
      {ip("192.0.2.70"), "pypi.org", now + 600},
      {ip("2001:db8:c0::70"), "pypi.org", now + 600},
      {ip("192.0.2.131"), "files.pythonhosted.org", now + 100},
      {ip("192.0.2.131"), "pypi.org", now + 900},          // same address again: one element, longest life
      {ip("192.0.2.200"), "example.org", now + 600},       // no rule accepts it any more
      {ip("192.0.2.201"), "pypi.org", now - 1},            // expired
      {ip("10.0.0.5"), "pypi.org", now + 600},             // special use: never taught
      {ip("192.0.2.80"), "pytorch.org", now + 10000000},   // lifetime capped
  };
  auto batches = learn_batches(c.policy, recs, now, lim);
  const bool shared = groups_for_name(c.policy, "files.pythonhosted.org") == groups_for_name(c.policy, "pypi.org");
  size_t total = 0;
  for (const auto& b : batches) {
    EXPECT_EQ(b.groups, groups_for_name(c.policy, b.names.front()));
    EXPECT_EQ(b.addrs.size(), b.names.size());
    for (size_t i = 0; i < b.addrs.size(); ++i) {
      ++total;
      EXPECT_NE(b.addrs[i].addr, ip("192.0.2.200"));
      EXPECT_NE(b.addrs[i].addr, ip("192.0.2.201"));
      EXPECT_NE(b.addrs[i].addr, ip("10.0.0.5"));
      EXPECT_LE(b.addrs[i].timeout_s, lim.max_ttl_s + lim.grace_s);
      EXPECT_GE(b.addrs[i].timeout_s, 1u);
      if (b.addrs[i].addr == ip("192.0.2.131")) {  // alone in its group: 100 s; shared with pypi.org: 900 s
        EXPECT_EQ(b.addrs[i].timeout_s, b.names[i] == "files.pythonhosted.org" && !shared ? 100u : 900u);
      }
    }
  }
  EXPECT_EQ(total, shared ? 4u : 5u);
}

TEST(State, RestoreEnforcesTheSavedPolicyAndLearnedAddresses) {
  TempDir t;
  Recorder none;
  auto r = restore_state(t.path(), none, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Exit::kRuntime);
  EXPECT_NE(r.error().message.find("no saved policy in " + t.path()), std::string::npos) << r.error().message;
  EXPECT_EQ(none.applies, 0);

  auto c = compile_default();
  const int64_t now = unix_now();
  ASSERT_TRUE(write_file_atomic(t.path(), kPolicyStateFile,
                                encode_policy_state(policy_state_of(c.cfg, c.policy, 3, now - 60, now - 5)))
                  .ok());
  LearnedState ls;
  ls.saved_at = now - 5;
  for (int i = 0; i < 1000; ++i) {
    const std::string a = "2001:db8:aa::" + std::to_string(i);
    ls.entries.push_back({ip(a.c_str()), "h" + std::to_string(i) + ".anaconda.com", now + 600});
  }
  ls.entries.push_back({ip("192.0.2.70"), "pypi.org", now - 10});  // expired
  ASSERT_TRUE(write_file_atomic(t.path(), kLearnedNamesStateFile, encode_learned_state(ls)).ok());

  Recorder rec;
  const auto t0 = std::chrono::steady_clock::now();
  r = restore_state(t.path(), rec, now);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(rec.applies, 1);
  EXPECT_TRUE(diff_groups(group_rules(c.policy), rec.last_groups).empty());
  EXPECT_EQ(r->rules, c.policy.rules.size());
  EXPECT_EQ(r->learned, 1000u);
  EXPECT_EQ(r->learned_expired, 1u);
  EXPECT_TRUE(r->learned_problem.empty()) << r->learned_problem;
  EXPECT_EQ(r->state.generation, 3u);
  size_t taught = 0;
  for (const auto& [g, a] : rec.learns) {
    EXPECT_EQ(g, groups_for_name(c.policy, "x.anaconda.com"));
    taught += a.size();
  }
  EXPECT_EQ(taught, 1000u);
  std::printf("restore of the default policy (%zu ranges) + 1000 learned, recording backend: %.1f ms "
              "(read %.1f, compile %.1f, learn %.1f)\n",
              r->prefixes, ms, r->load_ms, r->compile_ms, r->learn_ms);

  // A corrupt learned file: the policy is still enforced, the problem reported.
  std::string bad = encode_learned_state(ls);
  bad[40] = static_cast<char>(bad[40] ^ 0x55);
  ASSERT_TRUE(write_file_atomic(t.path(), kLearnedNamesStateFile, bad).ok());
  Recorder rec2;
  r = restore_state(t.path(), rec2, now);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(rec2.applies, 1);
  EXPECT_TRUE(rec2.learns.empty());
  EXPECT_NE(r->learned_problem.find("checksum mismatch"), std::string::npos) << r->learned_problem;

  // A corrupt policy file: nothing is enforced from it.
  std::string badp = encode_policy_state(policy_state_of(c.cfg, c.policy, 3, now, now));
  badp[badp.size() / 2] = static_cast<char>(badp[badp.size() / 2] ^ 1);
  ASSERT_TRUE(write_file_atomic(t.path(), kPolicyStateFile, badp).ok());
  Recorder rec3;
  r = restore_state(t.path(), rec3, now);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Exit::kData);
  EXPECT_EQ(rec3.applies, 0);
}

}  // namespace
}  // namespace amlfw
