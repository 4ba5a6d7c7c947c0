// SPDX-License-Identifier: MIT
#include "policy/service_tags.h"
#include "tests/unit/ci_skip.h"

#include <gtest/gtest.h>

#include <regex>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

namespace amlfw {
namespace {

const std::string kDir = std::string(AMLFW_FIXTURES) + "/servicetags/";
const std::string kRealFile = std::string(AMLFW_SHARED_DATA) +
                              "/servicetags/ServiceTags_Public_20251028.json";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ServiceTags load_ok(const std::string& name) {
  auto r = load_service_tags_file(kDir + name);
  EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ServiceTags{};
}

std::string load_error(const std::string& name) {
  auto r = load_service_tags_file(kDir + name);
  EXPECT_FALSE(r.ok()) << name << " parsed";
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Exit::kData) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
  return r.error().message;
}

std::string parse_error(std::string_view json) {
  auto r = parse_service_tags(json, "t.json");
  EXPECT_FALSE(r.ok()) << json;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Exit::kData) << r.error().message;
  // "t.json: ..." or, for a syntax error, "t.json:LINE:COL: ...".
  EXPECT_TRUE(std::regex_search(r.error().message, std::regex("^t\\.json(:[0-9]+:[0-9]+)?: ")))
      << r.error().message;
  return r.error().message;
}

std::vector<std::string> strs(const PrefixSet& s) {
  std::vector<std::string> out;
  for (const auto& p : s.to_prefixes()) out.push_back(p.str());
  return out;
}

IpAddr ip(std::string_view s) { return IpAddr::parse(s).value(); }

void expect_small(const ServiceTags& st) {
  EXPECT_EQ(st.change_number, 42u);
  EXPECT_EQ(st.cloud, "Public");
  ASSERT_EQ(st.tags.size(), 4u);
  EXPECT_EQ(st.total_prefixes(), 8u + 2u + 1u + 0u);

  const ServiceTag* aml = st.find("AzureMachineLearning");
  ASSERT_NE(aml, nullptr);
  EXPECT_EQ(aml->name, "AzureMachineLearning");
  EXPECT_EQ(aml->region, "");
  EXPECT_EQ(aml->change_number, 7u);
  EXPECT_EQ(aml->prefix_count, 8u);
  EXPECT_TRUE(aml->prefixes.normalized());
  // Adjacent /25s merge, the nested /28 disappears, the two IPv6 /33 halves join.
  EXPECT_EQ(strs(aml->prefixes),
            (std::vector<std::string>{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.7/32",
                                      "2001:db8::/32"}));
  EXPECT_TRUE(aml->prefixes.contains(ip("2001:db8:1::1")));
  EXPECT_FALSE(aml->prefixes.contains(ip("203.0.113.8")));

  const ServiceTag* storage = st.find("storage.westeurope");
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->name, "Storage.WestEurope");
  EXPECT_EQ(storage->region, "westeurope");
  EXPECT_EQ(storage->change_number, 39u);
  EXPECT_EQ(strs(storage->prefixes),
            (std::vector<std::string>{"198.51.100.0/26", "2001:db8:100::/48"}));

  const ServiceTag* afd = st.find("AzureFrontDoor.FrontEnd");
  ASSERT_NE(afd, nullptr);
  EXPECT_EQ(afd->name, "AzureFrontDoor.Frontend");

  const ServiceTag* empty = st.find("AZURECLOUD.WESTEUROPE");
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE(empty->prefixes.empty());

  EXPECT_EQ(st.find("Storage"), nullptr);
  EXPECT_EQ(st.find("Storage.WestEurope2"), nullptr);
  EXPECT_EQ(st.find(""), nullptr);
}

TEST(ServiceTags, ParsesSmallLfFile) { expect_small(load_ok("small.json")); }

TEST(ServiceTags, CrlfFileGivesTheSameResult) {
  const std::string crlf = read_file(kDir + "small_crlf.json");
  ASSERT_NE(crlf.find("\r\n"), std::string::npos) << "fixture lost its CRLF line endings";
  expect_small(load_ok("small_crlf.json"));
}

TEST(ServiceTags, Utf8BomAccepted) {
  ASSERT_EQ(read_file(kDir + "bom.json").substr(0, 3), "\xef\xbb\xbf");
  expect_small(load_ok("bom.json"));
}

TEST(ServiceTags, ParseFromMemoryMatchesFile) {
  auto r = parse_service_tags(read_file(kDir + "small.json"), "mem");
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_small(*r);
  // Copies keep a working index.
  ServiceTags copy = *r;
  expect_small(copy);
}

TEST(ServiceTags, ArmApiAnswerAccepted) {
  ServiceTags st = load_ok("arm_api.json");
  EXPECT_EQ(st.change_number, 63u);  // a string in the API
  EXPECT_EQ(st.cloud, "Public");
  ASSERT_EQ(st.tags.size(), 1u);
  const ServiceTag* t = st.find("apimanagement.australiacentral");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->change_number, 2u);
  EXPECT_EQ(t->region, "australiacentral");
  EXPECT_EQ(strs(t->prefixes), (std::vector<std::string>{"192.0.2.68/31", "192.0.2.176/28"}));
}

TEST(ServiceTags, TruncatedFile) {
  std::string m = load_error("truncated.json");
  EXPECT_TRUE(std::regex_search(m, std::regex("truncated\\.json:[0-9]+:[0-9]+: invalid JSON"))) << m;
  EXPECT_NE(m.find("truncated"), std::string::npos) << m;
  // Every cut of a valid file is refused, never accepted as a smaller file, never a crash.
  const std::string whole = read_file(kDir + "small.json");
  const size_t last_brace = whole.rfind('}');
  ASSERT_NE(last_brace, std::string::npos);
  for (size_t n = 0; n <= last_brace; n += 7) {
    auto r = parse_service_tags(std::string_view(whole).substr(0, n), "cut");
    EXPECT_FALSE(r.ok()) << "accepted a file cut at byte " << n;
  }
}

TEST(ServiceTags, EmptyFile) {
  std::string m = load_error("empty.json");
  EXPECT_NE(m.find("empty.json: the file is empty"), std::string::npos) << m;
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
  EXPECT_NE(parse_error("   \r\n").find("empty"), std::string::npos);
}

TEST(ServiceTags, BadPrefixNamesValueAndField) {
  std::string m = load_error("bad_prefix.json");
  EXPECT_NE(m.find("bad_prefix.json: values[0] (AzureMachineLearning): "
                   "properties.addressPrefixes[4]: '203.0.113.7/24' has host bits set "
                   "(did you mean 203.0.113.0/24?)"),
            std::string::npos)
      << m;
}

TEST(ServiceTags, MissingFieldNamed) {
  std::string m = load_error("missing_field.json");
  EXPECT_NE(m.find("values[1] (Storage.WestEurope): properties.addressPrefixes: is missing"),
            std::string::npos)
      << m;
}

TEST(ServiceTags, WrongTypeNamed) {
  std::string m = load_error("wrong_type.json");
  EXPECT_NE(m.find("values[2] (AzureFrontDoor.Frontend): properties.region: is an integer, "
                   "expected a string"),
            std::string::npos)
      << m;
}

TEST(ServiceTags, DuplicateNamesIgnoringCase) {
  std::string m = load_error("duplicate_names.json");
  EXPECT_NE(m.find("values[3] (azuremachinelearning): name: repeats values[0] "
                   "(AzureMachineLearning)"),
            std::string::npos)
      << m;
}

TEST(ServiceTags, EmptyValues) {
  std::string m = load_error("empty_values.json");
  EXPECT_NE(m.find("empty_values.json: values: is empty"), std::string::npos) << m;
}

TEST(ServiceTags, MissingFileNamesPath) {
  auto r = load_service_tags_file(kDir + "does-not-exist.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Exit::kRuntime);
  EXPECT_NE(r.error().message.find("does-not-exist.json"), std::string::npos);
  EXPECT_NE(r.error().message.find("No such file"), std::string::npos) << r.error().message;
  auto d = load_service_tags_file(kDir);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("is a directory"), std::string::npos) << d.error().message;
}

// Inline documents for each structural rule.
constexpr std::string_view kHead = R"({"changeNumber": 1, "cloud": "Public", "values": [)";

std::string doc(std::string_view value) { return std::string(kHead) + std::string(value) + "]}"; }

std::string value_with(std::string_view props) {
  return R"({"name": "T", "id": "T", "properties": {)" + std::string(props) + "}}";
}

constexpr std::string_view kGoodProps =
    R"("changeNumber": 1, "region": "", "addressPrefixes": ["192.0.2.0/24"])";

TEST(ServiceTags, MinimalDocumentParses) {
  auto r = parse_service_tags(doc(value_with(kGoodProps)), "t.json");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->tags.at(0).prefix_count, 1u);
}

TEST(ServiceTags, StructuralErrors) {
  struct Case {
    std::string json;
    std::string expect;
  };
  const std::string good = value_with(kGoodProps);
  const Case cases[] = {
      {"[]", "the top level is an array"},
      {"42", "the top level is an integer"},
      {"{}", "changeNumber: is missing"},
      {R"({"changeNumber": -1, "cloud": "Public", "values": [)" + good + "]}",
       "changeNumber: is negative"},
      {R"({"changeNumber": 1.5, "cloud": "Public", "values": [)" + good + "]}",
       "changeNumber: is a number, expected an integer"},
      {R"({"changeNumber": "12a", "cloud": "Public", "values": [)" + good + "]}",
       "changeNumber: '12a' is not a counter"},
      {R"({"changeNumber": 1, "values": [)" + good + "]}", "cloud: is missing"},
      {R"({"changeNumber": 1, "cloud": null, "values": [)" + good + "]}",
       "cloud: is null, expected a string"},
      {R"({"changeNumber": 1, "cloud": "Public"})", "values: is missing"},
      {R"({"changeNumber": 1, "cloud": "Public", "values": {}})",
       "values: is an object, expected an array"},
      {doc("17"), "values[0]: is an integer, expected an object"},
      {doc(R"({"id": "T", "properties": {}})"), "values[0]: name: is missing"},
      {doc(R"({"name": "", "id": "", "properties": {}})"), "values[0]: name: is empty"},
      {doc(R"({"name": 5, "id": "T", "properties": {}})"), "values[0]: name: is an integer"},
      {doc(R"({"name": "T", "properties": {}})"), "values[0] (T): id: is missing"},
      {doc(R"({"name": "T", "id": "T"})"), "values[0] (T): properties: is missing"},
      {doc(R"({"name": "T", "id": "T", "properties": []})"),
       "values[0] (T): properties: is an array, expected an object"},
      {doc(value_with(R"("region": "", "addressPrefixes": [])")),
       "values[0] (T): properties.changeNumber: is missing"},
      {doc(value_with(R"("changeNumber": true, "region": "", "addressPrefixes": [])")),
       "properties.changeNumber: is a boolean, expected an integer"},
      {doc(value_with(R"("changeNumber": 1, "addressPrefixes": [])")),
       "values[0] (T): properties.region: is missing"},
      {doc(value_with(R"("changeNumber": 1, "region": "", "addressPrefixes": "192.0.2.0/24")")),
       "properties.addressPrefixes: is a string, expected an array"},
      {doc(value_with(R"("changeNumber": 1, "region": "", "addressPrefixes": ["192.0.2.0/24", 7])")),
       "properties.addressPrefixes[1]: is an integer, expected a CIDR string"},
      {doc(value_with(R"("changeNumber": 1, "region": "", "addressPrefixes": ["192.0.2.0"])")),
       "properties.addressPrefixes[0]: '192.0.2.0' has no prefix length"},
      {doc(value_with(R"("changeNumber": 1, "region": "", "addressPrefixes": ["10.0.0.1/33"])")),
       "properties.addressPrefixes[0]: '10.0.0.1/33' has a bad prefix length"},
      {doc(value_with(R"("changeNumber": 1, "region": "", "addressPrefixes": ["storage"])")),
       "properties.addressPrefixes[0]: 'storage' is not a CIDR prefix"},
      {doc(value_with(std::string(kGoodProps) + R"(, "networkFeatures": "API")")),
       "properties.networkFeatures: is a string, expected an array of strings or null"},
      {doc(value_with(std::string(kGoodProps) + R"(, "networkFeatures": ["API", 1])")),
       "properties.networkFeatures: holds an integer, expected strings"},
      {R"({"changeNumber": 1, "cloud": "Public", "values": [)" + good + "]",
       "invalid JSON"},
      {R"({"changeNumber": 1, "cloud": "Public", "values": [)" + good + "]} trailing",
       "invalid JSON"},
      {"{\"changeNumber\": 1, \"cloud\": \"Pub\xff\", \"values\": []}", "invalid JSON"},
  };
  for (const Case& c : cases) {
    std::string m = parse_error(c.json);
    EXPECT_NE(m.find(c.expect), std::string::npos) << "got: " << m << "\nwant: " << c.expect;
  }
}

TEST(ServiceTags, NullAndAbsentNetworkFeaturesAccepted) {
  for (std::string_view extra : {"", R"(, "networkFeatures": null)",
                                 R"(, "networkFeatures": [])", R"(, "regionId": 0)"}) {
    auto r = parse_service_tags(doc(value_with(std::string(kGoodProps) + std::string(extra))),
                                "t.json");
    EXPECT_TRUE(r.ok()) << extra << ": " << r.error().message;
  }
}

TEST(ServiceTags, CloudNames) {
  EXPECT_EQ(service_tags_cloud_name(Cloud::kPublic), "Public");
  EXPECT_EQ(service_tags_cloud_name(Cloud::kUsGov), "AzureGovernment");
  EXPECT_EQ(service_tags_cloud_name(Cloud::kChina), "China");
}

TEST(ServiceTags, FindWithoutIndexFallsBackToScan) {
  ServiceTags st;
  st.tags.push_back(ServiceTag{"Storage.WestEurope", "westeurope", 1, 0, {}});
  ASSERT_NE(st.find("STORAGE.westeurope"), nullptr);
  st.build_index();
  ASSERT_NE(st.find("storage.WestEurope"), nullptr);
  st.tags.push_back(ServiceTag{"AzureCloud", "", 1, 0, {}});  // index now stale
  ASSERT_NE(st.find("azurecloud"), nullptr);
  st.build_index();
  st.tags[0].name = "Sql";  // stale again, same size: never a wrong answer
  EXPECT_EQ(st.find("storage.westeurope"), nullptr);
  st.build_index();
  ASSERT_NE(st.find("SQL"), nullptr);
  EXPECT_EQ(st.find("SQL")->name, "Sql");
}

// The fuzzer's seed corpus, replayed in the normal build: every input is either accepted
// with a consistent result or refused with one Exit::kData line.
TEST(ServiceTags, FuzzCorpusReplay) {
  const std::string dir = std::string(AMLFW_FIXTURES) + "/../fuzz/corpus/service_tags";
  size_t files = 0, accepted = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    auto r = parse_service_tags(read_file(entry.path().string()), entry.path().filename().string());
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Exit::kData) << entry.path();
      EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
      continue;
    }
    ++accepted;
    for (const ServiceTag& t : r->tags) {
      EXPECT_EQ(r->find(t.name), &t);
      EXPECT_TRUE(t.prefixes.normalized());
    }
  }
  EXPECT_GE(files, 5u);
  EXPECT_GE(accepted, 4u);  // small, small_crlf, arm_api, minimal
}

// ---- the real public file --------------------------------------------------------------

class RealFile : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st {};
    if (::stat(kRealFile.c_str(), &st) != 0) AMLFW_SKIP_OR_FAIL_IN_CI(std::string(kRealFile) + " not present");
  }
};

TEST_F(RealFile, MatchesTheDocumentedStatistics) {
  auto r = load_service_tags_file(kRealFile);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ServiceTags& st = *r;
  EXPECT_EQ(st.change_number, 375u);
  EXPECT_EQ(st.cloud, "Public");
  EXPECT_EQ(st.cloud, service_tags_cloud_name(Cloud::kPublic));
  EXPECT_EQ(st.tags.size(), 3039u);
  EXPECT_EQ(st.total_prefixes(), 93362u);
  EXPECT_EQ(st.tags.back().name, "AzureCloud");  // order of the data is kept

  const ServiceTag* aml = st.find("AzureMachineLearning");
  ASSERT_NE(aml, nullptr);
  EXPECT_EQ(aml->prefix_count, 336u);
  EXPECT_EQ(aml->change_number, 53u);

  const ServiceTag* we = st.find("Storage.WestEurope");
  ASSERT_NE(we, nullptr);
  EXPECT_EQ(we->prefix_count, 98u);
  EXPECT_EQ(we->region, "westeurope");
  EXPECT_EQ(st.find("storage.westeurope"), we);
  EXPECT_EQ(st.find("STORAGE.WESTEUROPE"), we);

  const ServiceTag* afd = st.find("AzureFrontDoor.FrontEnd");
  ASSERT_NE(afd, nullptr);
  EXPECT_EQ(afd->name, "AzureFrontDoor.Frontend");
  EXPECT_EQ(afd->prefix_count, 192u);

  EXPECT_EQ(st.find("ContainerRegistry"), nullptr);
  EXPECT_EQ(st.find("KeyVault"), nullptr);
  EXPECT_NE(st.find("AzureContainerRegistry"), nullptr);
  EXPECT_NE(st.find("AzureCloud.westeurope"), nullptr);

  // Regional prefixes lie inside the global tag's address space (doc section 5.4).
  const ServiceTag* storage = st.find("Storage");
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->prefix_count, 574u);
  for (const Prefix& p : we->prefixes.to_prefixes()) {
    EXPECT_TRUE(storage->prefixes.contains(p.addr)) << p.str();
  }
  // AzureCloud's 9,585 IPv4 prefixes collapse to 1,860 networks (doc section 4); ranges
  // are at most that many.
  const ServiceTag* cloud = st.find("AzureCloud");
  ASSERT_NE(cloud, nullptr);
  EXPECT_EQ(cloud->prefix_count, 13080u);
  EXPECT_LE(cloud->prefixes.v4().size(), 1860u);
  EXPECT_GT(cloud->prefixes.v4().size(), 100u);
  EXPECT_FALSE(cloud->prefixes.v6().empty());
}

TEST_F(RealFile, CrlfVersionParsesIdentically) {
  const std::string lf = read_file(kRealFile);
  std::string crlf;
  crlf.reserve(lf.size() + lf.size() / 20);
  for (char c : lf) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  auto a = parse_service_tags(lf, "lf");
  auto b = parse_service_tags(crlf, "crlf");
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_EQ(a->tags.size(), b->tags.size());
  for (size_t i = 0; i < a->tags.size(); ++i) {
    ASSERT_EQ(a->tags[i].name, b->tags[i].name);
    ASSERT_EQ(a->tags[i].prefixes, b->tags[i].prefixes) << a->tags[i].name;
  }
}

}  // namespace
}  // namespace amlfw
