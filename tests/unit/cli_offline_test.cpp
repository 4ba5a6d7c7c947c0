// SPDX-License-Identifier: MIT
// The offline commands of the amlfw binary (plan, explain --service-tags, catalog, version)
// as an operator runs them: output formats, one-line errors and the exit codes of SPEC.md
// (0 success, 2 usage or configuration, 3 bad input data). No privileges, no network: the
// service tags are a small file written here. The binary is the one built next to this test
// binary (BUILD/amlfw), or $AMLFW_BINARY.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/ci_skip.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class CliOffline : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* env = std::getenv("AMLFW_BINARY")) {
      bin_ = env;
    } else {
      std::error_code ec;
      bin_ = (fs::read_symlink("/proc/self/exe", ec).parent_path().parent_path() / "amlfw").string();
    }
    if (access(bin_.c_str(), X_OK) != 0) AMLFW_SKIP_OR_FAIL_IN_CI("no amlfw binary at " + bin_ + " (build the amlfw target)");
    char tmpl[] = "/tmp/amlfw-cli-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // What the default features need in westeurope, plus another region.
    tags_ = write("tags.json", tags_json("Public", true));
    config_ = write("amlfw.toml", "catalog = \"2021-10\"\nregion = \"westeurope\"\n[dns]\nupstreams = [\"192.0.2.53\"]\n");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static std::string tags_json(const std::string& cloud, bool with_aml) {
    struct T {
      const char* name;
      const char* region;
      const char* v4;
      const char* v6;
    };
    std::vector<T> ts = {{"AzureActiveDirectory", "", "192.0.2.0/28", "2001:db8:1::/48"},
                         {"AzureMachineLearning", "", "192.0.2.16/28", "2001:db8:2::/48"},
                         {"AzureResourceManager", "", "192.0.2.32/28", "2001:db8:3::/48"},
                         {"Storage.WestEurope", "westeurope", "198.51.100.0/26", "2001:db8:4::/48"},
                         {"Storage.EastUS", "eastus", "198.51.100.64/26", "2001:db8:5::/48"},
                         {"AzureFrontDoor.Frontend", "", "192.0.2.48/28", "2001:db8:6::/48"},
                         {"BatchNodeManagement.WestEurope", "westeurope", "192.0.2.64/28", "2001:db8:7::/48"}};
    std::string values;
    for (const auto& t : ts) {
      if (!with_aml && std::string(t.name) == "AzureMachineLearning") continue;
      values += std::string(values.empty() ? "" : ",\n") + R"({"name": ")" + t.name + R"(", "id": ")" + t.name +
                R"(", "properties": {"changeNumber": 1, "region": ")" + t.region + R"(", "addressPrefixes": [")" +
                t.v4 + R"(", ")" + t.v6 + R"("]}})";
    }
    return R"({"changeNumber": 12, "cloud": ")" + cloud + "\",\n\"values\": [\n" + values + "\n]}\n";
  }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  Outcome run(std::vector<std::string> args) {
    const std::string out = dir_ + "/stdout", err = dir_ + "/stderr";
    pid_t pid = fork();
    if (pid == 0) {
      int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
      std::vector<char*> argv;
      argv.push_back(bin_.data());
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin_.c_str(), argv.data());
      _exit(127);
    }
    Outcome r;
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) r.rc = WEXITSTATUS(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  // An error: exit `rc`, nothing on stdout, one line "amlfw: ..." on stderr.
  void expect_error(const Outcome& r, int rc, const std::string& starts, const std::string& has = "") {
    EXPECT_EQ(r.rc, rc) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("amlfw: " + starts, 0), 0u) << r.err;
    EXPECT_NE(r.err.find(has), std::string::npos) << r.err;
  }

  std::string bin_, dir_, tags_, config_;
};

TEST_F(CliOffline, PlanJsonIsTheContract) {
  Outcome r = run({"plan", "--config", config_, "--service-tags", tags_, "--format", "json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);  // stdout is one JSON document
  EXPECT_EQ(j["catalog"], "2021-10");
  EXPECT_EQ(j["cloud"], "public");
  EXPECT_EQ(j["region"], "westeurope");
  std::map<std::string, std::string> tag_of;
  for (const auto& rule : j["rules"]) {
    ASSERT_TRUE(rule["id"].is_string()) << rule.dump();
    EXPECT_TRUE(rule["direction"] == "egress" || rule["direction"] == "ingress") << rule.dump();
    EXPECT_TRUE(rule["proto"] == "tcp" || rule["proto"] == "udp" || rule["proto"] == "any") << rule.dump();
    ASSERT_TRUE(rule["ports"].is_array() && !rule["ports"].empty()) << rule.dump();
    EXPECT_EQ(rule.contains("fqdn") + rule.contains("service_tag") + rule.contains("cidr"), 1) << rule.dump();
    if (rule.contains("service_tag")) {
      EXPECT_EQ(rule["prefixes"], 2) << rule.dump();
      tag_of[rule["id"].get<std::string>() + "/" + rule["direction"].get<std::string>()] = rule["service_tag"];
    }
  }
  EXPECT_EQ(tag_of["NR4/egress"], "Storage.WestEurope");
  EXPECT_EQ(tag_of["NR5/egress"], "AzureFrontDoor.Frontend");
  EXPECT_EQ(tag_of["IN1/ingress"], "BatchNodeManagement.WestEurope");
  EXPECT_EQ(tag_of["IN2/ingress"], "AzureMachineLearning");
  Outcome again = run({"plan", "--config", config_, "--service-tags", tags_, "--format", "json"});
  EXPECT_EQ(again.out, r.out) << "deterministic";
}

TEST_F(CliOffline, EmbeddedDefaultIsSaidOnTheFirstLineOfEveryFormat) {
  const std::string missing = dir_ + "/no/amlfw.toml";
  const std::string notice = "amlfw: " + missing + " not found: using the embedded default configuration";
  Outcome t = run({"plan", "--config", missing, "--service-tags", tags_});
  ASSERT_EQ(t.rc, 0) << t.err;
  EXPECT_EQ(first_line(t.out), notice);
  Outcome n = run({"plan", "--config", missing, "--service-tags", tags_, "--format", "nft"});
  ASSERT_EQ(n.rc, 0) << n.err;
  EXPECT_EQ(first_line(n.out), "# " + notice);
  EXPECT_NE(n.out.find("table inet amlfw {"), std::string::npos);
  Outcome j = run({"plan", "--config", missing, "--service-tags", tags_, "--format", "json"});
  ASSERT_EQ(j.rc, 0) << j.err;
  EXPECT_EQ(first_line(j.err), notice) << "json: the notice is stderr's first line";
  const auto doc = nlohmann::json::parse(j.out);  // and stdout stays JSON
  EXPECT_EQ(doc["config"], "embedded default");
  Outcome f = run({"plan", "--config", config_, "--service-tags", tags_});
  ASSERT_EQ(f.rc, 0) << f.err;
  EXPECT_EQ(first_line(f.out), "config " + config_);
}

TEST_F(CliOffline, PlanNftIsTheCompleteTable) {
  const std::string cfg = write("inbound.toml", slurp(config_) + "[inbound]\nenforce = true\n");
  Outcome r = run({"plan", "--config", cfg, "--service-tags", tags_, "--format", "nft"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("# ", 0), 0u) << "a comment line, then the table";
  EXPECT_NE(r.out.find("table inet amlfw {"), std::string::npos);
  // TCP 443: AzureMachineLearning, ARM, Front Door (adjacent /28s, one interval) and
  // Storage.WestEurope; AAD (all ports) has its own set.
  for (const char* want : {"elements = { 192.0.2.16-192.0.2.63, 198.51.100.0/26 }", "elements = { 192.0.2.0/28 }",
                           "2001:db8:2::-2001:db8:4:ffff:ffff:ffff:ffff:ffff", "set p4_i_tcp_29876-29877 {",
                           "elements = { 192.0.2.64/28 }", "comment \"IN1\"", "comment \"IN2\"",
                           "chain g_i_tcp_44224 {"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want;
  EXPECT_EQ(r.out.find("198.51.100.64"), std::string::npos) << "Storage.EastUS is another region";
}

TEST_F(CliOffline, ExplainOfflineFromTheCompiledPolicy) {
  auto explain = [&](const std::string& target) {
    Outcome r = run({"explain", target, "--config", config_, "--service-tags", tags_, "--json"});
    EXPECT_EQ(r.rc, 0) << r.err;
    return r.rc == 0 ? nlohmann::json::parse(r.out) : nlohmann::json{};
  };
  auto j = explain("192.0.2.20:443");
  EXPECT_EQ(j["verdict"], "allow");
  EXPECT_EQ(j["rule"], "NR2");
  EXPECT_EQ(j["target"], "192.0.2.20:443");
  EXPECT_TRUE(j["why"].is_string());
  EXPECT_EQ(explain("[2001:db8:4::1]:443")["rule"], "NR4");
  j = explain("198.51.100.70:443");
  EXPECT_EQ(j["verdict"], "deny");
  EXPECT_TRUE(j["rule"].is_null());
  EXPECT_EQ(explain("download.pytorch.org:443")["rule"], "AR6");
  EXPECT_EQ(explain("evilpytorch.org:443")["verdict"], "deny");
  EXPECT_EQ(explain("192.0.2.20:443/udp")["verdict"], "deny");
  Outcome text = run({"explain", "PyPI.org.:443", "--config", config_, "--service-tags", tags_});
  EXPECT_EQ(text.rc, 0);
  EXPECT_EQ(text.out.rfind("allow PyPI.org.:443 (rule AR4): pypi.org matches pypi.org", 0), 0u) << text.out;
  expect_error(run({"explain", "pypi.org:99999", "--config", config_, "--service-tags", tags_}), 2, "");
  expect_error(run({"explain", "--config", config_, "--service-tags", tags_}), 2, "explain needs one TARGET");
}

TEST_F(CliOffline, CatalogAndVersion) {
  Outcome c = run({"catalog", "--revision", "2026-03", "--cloud", "china", "--json"});
  ASSERT_EQ(c.rc, 0) << c.err;
  const std::string text = nlohmann::json::parse(c.out).dump();
  for (const char* want : {"NR2b", "VS5", "8704-8710", "5831", "BatchNodeManagement.region", "chinacloudapi.cn"})
    EXPECT_NE(text.find(want), std::string::npos) << want;
  Outcome t = run({"catalog", "--revision", "2021-10", "--cloud", "usgov"});
  ASSERT_EQ(t.rc, 0) << t.err;
  for (const char* want : {"IN1", "MH1", "login.microsoftonline.us", "hbi_workspace"})
    EXPECT_NE(t.out.find(want), std::string::npos) << want;
  expect_error(run({"catalog", "--revision", "2021-11"}), 2, "unknown catalog revision '2021-11'", "did you mean '2021-10'");
  expect_error(run({"catalog", "--cloud", "mars"}), 2, "--cloud 'mars'");
  Outcome v = run({"version", "--json"});
  ASSERT_EQ(v.rc, 0) << v.err;
  const auto vj = nlohmann::json::parse(v.out);
  EXPECT_EQ(vj["catalog_revisions"], (nlohmann::json{"2021-10", "2026-03"}));
  EXPECT_TRUE(vj["version"].is_string());
  EXPECT_TRUE(vj["kernel_features"].is_object());
  Outcome vt = run({"version"});
  EXPECT_EQ(vt.rc, 0);
  EXPECT_NE(vt.out.find("catalog revisions: 2021-10 2026-03"), std::string::npos) << vt.out;
}

TEST_F(CliOffline, ExitCodesAndOneLineErrors) {
  // 2: usage and configuration.
  expect_error(run({"frobnicate"}), 2, "unknown command 'frobnicate'");
  expect_error(run({"plan", "--frobnicate"}), 2, "unknown option '--frobnicate'");
  expect_error(run({"plan", "--format", "yaml"}), 2, "--format 'yaml'");
  const std::string bad = write("bad.toml", "catalog = \"2021-10\"\n\nregoin = \"westeurope\"\n");
  expect_error(run({"plan", "--config", bad, "--service-tags", tags_}), 2,
               bad + ":3:1: unknown key 'regoin' (did you mean 'region'?)");
  const std::string badval = write("badval.toml", "[features]\npython = \"yes\"\n");
  expect_error(run({"plan", "--config", badval, "--service-tags", tags_}), 2, badval + ":2:10: features.python");
  const std::string syntax = write("syntax.toml", "region = \n");
  expect_error(run({"plan", "--config", syntax, "--service-tags", tags_}), 2, syntax + ":1:", "fix the TOML syntax");
  // 3: bad data (service tags).
  const std::string full = slurp(tags_);
  const std::string truncated = write("truncated.json", full.substr(0, full.size() / 2));
  expect_error(run({"plan", "--config", config_, "--service-tags", truncated}), 3, truncated + ":");
  const std::string gov = write("gov.json", tags_json("AzureGovernment", true));
  expect_error(run({"plan", "--config", config_, "--service-tags", gov}), 3, "", "AzureGovernment");
  const std::string noaml = write("noaml.json", tags_json("Public", false));
  expect_error(run({"plan", "--config", config_, "--service-tags", noaml}), 3, "",
               "service tag 'AzureMachineLearning' is missing");
  const std::string badcidr = write("badcidr.json", [&] {
    std::string s = full;
    s.replace(s.find("192.0.2.16/28"), 13, "192.0.2.16/33");
    return s;
  }());
  expect_error(run({"plan", "--config", config_, "--service-tags", badcidr}), 3, badcidr, "AzureMachineLearning");
  // 1: I/O (a file that cannot be read).
  expect_error(run({"plan", "--config", config_, "--service-tags", dir_ + "/none.json"}), 1,
               "service tags: " + dir_ + "/none.json: No such file or directory");
}

}  // namespace
