// SPDX-License-Identifier: MIT
// Azure sources: IMDS instance metadata and tokens, the ARM serviceTags API (paging,
// change numbers, 401, 403, 429 + Retry-After, timeouts, garbage, foreign nextLinks), and
// cloud/region = "auto", against a scripted HTTP server on loopback.
#include "daemon/azure.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "daemon/fd.h"
#include "daemon/http.h"
#include "daemon/inputs.h"
#include "daemon/tag_source.h"
#include "policy/service_tags.h"

namespace amlfw {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// ---- a scripted HTTP/1.1 server on 127.0.0.1 (one connection at a time, Connection: close)

struct HttpRequest {
  std::string method, target;                 // target: path and query
  std::map<std::string, std::string> headers;  // lower-case names
  std::string path() const { return target.substr(0, target.find('?')); }
};
struct HttpReply {
  int status = 200;
  std::string body;
  std::vector<std::string> headers;
  bool hang = false;  // read the request, never answer (until the client gives up)
};

class MockHttp {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;
  explicit MockHttp(Handler h) : handler_(std::move(h)) {
    fd_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(::listen(fd_.get(), 16), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~MockHttp() {
    stop_ = true;
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lk(mu_);
    return log_;
  }
  size_t count(const std::string& path_prefix) const {
    size_t n = 0;
    for (const auto& r : requests()) n += r.path().rfind(path_prefix, 0) == 0;
    return n;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      Fd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) continue;
      std::string in;
      char buf[4096];
      const auto until = Clock::now() + milliseconds(2000);
      while (in.find("\r\n\r\n") == std::string::npos && Clock::now() < until && !stop_) {
        pollfd q{c.get(), POLLIN, 0};
        if (::poll(&q, 1, 50) <= 0) continue;
        ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      HttpRequest req;
      auto line_end = in.find("\r\n");
      if (line_end == std::string::npos) continue;
      std::string line = in.substr(0, line_end);
      auto sp1 = line.find(' '), sp2 = line.rfind(' ');
      req.method = line.substr(0, sp1);
      req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      size_t pos = line_end + 2;
      while (true) {
        auto e = in.find("\r\n", pos);
        if (e == std::string::npos || e == pos) break;
        std::string h = in.substr(pos, e - pos);
        auto colon = h.find(':');
        if (colon != std::string::npos) {
          std::string name = h.substr(0, colon), value = h.substr(colon + 1);
          for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          while (!value.empty() && value.front() == ' ') value.erase(0, 1);
          req.headers[name] = value;
        }
        pos = e + 2;
      }
      HttpReply rep;
      {
        std::lock_guard<std::mutex> lk(mu_);
        log_.push_back(req);
      }
      rep = handler_(req);
      if (rep.hang) {
        // Hold the connection until the client closes it or the test ends.
        while (!stop_) {
          pollfd q{c.get(), POLLIN, 0};
          if (::poll(&q, 1, 50) > 0 && ::recv(c.get(), buf, sizeof buf, 0) <= 0) break;
        }
        continue;
      }
      std::string out = "HTTP/1.1 " + std::to_string(rep.status) + " X\r\nContent-Type: application/json\r\n";
      for (const auto& h : rep.headers) out += h + "\r\n";
      out += "Content-Length: " + std::to_string(rep.body.size()) + "\r\nConnection: close\r\n\r\n" + rep.body;
      size_t off = 0;
      while (off < out.size()) {
        ssize_t n = ::send(c.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
    }
  }

  Handler handler_;
  Fd fd_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<HttpRequest> log_;
  std::thread thread_;
};

// ---- data ---------------------------------------------------------------------------------

const char* kSub = "0a1b2c3d-0000-4000-8000-00000000abcd";

std::string instance_json(const std::string& env = "AzurePublicCloud", const std::string& loc = "westeurope") {
  return R"({"compute":{"azEnvironment":")" + env + R"(","location":")" + loc + R"(","subscriptionId":")" + kSub +
         R"(","vmId":"x"},"network":{}})";
}

std::string token_json(const std::string& tok) {
  return R"({"access_token":")" + tok + R"(","expires_on":")" + std::to_string(std::time(nullptr) + 3600) +
         R"(","resource":"https://management.azure.com/","token_type":"Bearer"})";
}

// One ARM page: tags with one prefix each, changeNumber as a string (as the API sends it).
std::string arm_page(uint64_t change, const std::vector<std::pair<std::string, std::string>>& tags,
                     const std::string& next = "") {
  std::string v;
  for (const auto& [name, cidr] : tags) {
    if (!v.empty()) v += ",";
    v += R"({"name":")" + name + R"(","id":")" + name + R"(","serviceTagChangeNumber":"3","properties":{"changeNumber":"3","region":"","state":"GA","systemService":"X","addressPrefixes":[")" +
         cidr + R"("]}})";
  }
  std::string s = R"({"name":"public","id":"/subscriptions/x/providers/Microsoft.Network/serviceTags/public","type":"Microsoft.Network/serviceTags","changeNumber":")" +
                  std::to_string(change) + R"(","cloud":"Public","values":[)" + v + "]";
  if (!next.empty()) s += R"(,"nextLink":")" + next + R"(")";
  return s + "}";
}

// ---- pure parsing -------------------------------------------------------------------------

TEST(AzureParse, InstanceMetadata) {
  auto m = parse_instance_metadata(instance_json(), "imds");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->cloud, Cloud::kPublic);
  EXPECT_EQ(m->location, "westeurope");
  EXPECT_EQ(m->subscription_id, kSub);
  auto gov = parse_instance_metadata(instance_json("AzureUSGovernmentCloud", "USGovVirginia"), "imds");
  ASSERT_TRUE(gov.ok());
  EXPECT_EQ(gov->cloud, Cloud::kUsGov);
  EXPECT_EQ(gov->location, "usgovvirginia");
  EXPECT_EQ(parse_instance_metadata(instance_json("AzureChinaCloud", "chinanorth3"), "imds")->cloud, Cloud::kChina);

  auto german = parse_instance_metadata(instance_json("AzureGermanCloud"), "imds");
  ASSERT_FALSE(german.ok());
  EXPECT_EQ(german.error().code, Exit::kData);
  EXPECT_NE(german.error().message.find("set cloud explicitly"), std::string::npos) << german.error().message;
  for (const char* bad : {"", "<html>", "[]", R"({"network":{}})", R"({"compute":{"location":"westeurope"}})",
                          R"({"compute":{"azEnvironment":"AzurePublicCloud","location":"west europe/../x"}})"}) {
    auto r = parse_instance_metadata(bad, "imds");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
}

TEST(AzureParse, AccessToken) {
  auto t = parse_access_token(R"({"access_token":"abc","expires_on":"1700000000"})", 100, "t");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "abc");
  EXPECT_EQ(t->expires_at, 1700000000);
  EXPECT_EQ(parse_access_token(R"({"access_token":"abc","expires_on":1700000001})", 100, "t")->expires_at, 1700000001);
  EXPECT_EQ(parse_access_token(R"({"access_token":"abc","expires_in":"60"})", 100, "t")->expires_at, 160);
  EXPECT_FALSE(parse_access_token(R"({"token_type":"Bearer"})", 0, "t").ok());
  EXPECT_FALSE(parse_access_token(R"({"access_token":""})", 0, "t").ok());
  EXPECT_FALSE(parse_access_token("{\"access_token\":\"a\\r\\nX-Evil: 1\"}", 0, "t").ok()) << "header injection";
  EXPECT_FALSE(parse_access_token("not json", 0, "t").ok());
}

// ---- against the mock ---------------------------------------------------------------------

class AzureMock : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_instance_metadata_cache();
    server_ = std::make_unique<MockHttp>([this](const HttpRequest& r) { return route(r); });
    ::setenv("AMLFW_IMDS_ENDPOINT", server_->url().c_str(), 1);
    ::setenv("AMLFW_ARM_ENDPOINT", server_->url().c_str(), 1);
  }
  void TearDown() override {
    server_.reset();
    ::unsetenv("AMLFW_IMDS_ENDPOINT");
    ::unsetenv("AMLFW_ARM_ENDPOINT");
    clear_instance_metadata_cache();
  }
  HttpReply route(const HttpRequest& r) {
    std::lock_guard<std::mutex> lk(mu_);
    const std::string p = r.path();
    if (p == "/metadata/instance") {
      if (r.headers.count("metadata") == 0) return {400, R"({"error":"Bad request. Required metadata header not specified"})"};
      return instance_;
    }
    if (p == "/metadata/identity/oauth2/token") {
      if (r.headers.count("metadata") == 0) return {400, R"({"error":"bad_request"})"};
      ++tokens_issued_;
      if (!token_reply_.body.empty() || token_reply_.status != 200) return token_reply_;
      return {200, token_json("tok" + std::to_string(tokens_issued_))};
    }
    if (p.find("/serviceTags") != std::string::npos) {
      auto it = r.headers.find("authorization");
      const std::string auth = it == r.headers.end() ? "" : it->second;
      if (arm_) return arm_(r, auth);
      return {404, "{}"};
    }
    return {404, R"({"error":{"code":"NotFound","message":"no route"}})"};
  }
  void set_arm(std::function<HttpReply(const HttpRequest&, const std::string& auth)> f) {
    std::lock_guard<std::mutex> lk(mu_);
    arm_ = std::move(f);
  }
  // Two pages of tags: page 1 links to page 2 on the same origin.
  void two_pages(uint64_t change) {
    set_arm([this, change](const HttpRequest& r, const std::string&) -> HttpReply {
      if (r.target.find("page=2") != std::string::npos)
        return {200, arm_page(change, {{"Storage.WestEurope", "198.51.100.80/28"}, {"AzureActiveDirectory", "198.51.100.0/28"}})};
      return {200, arm_page(change, {{"AzureMachineLearning", "198.51.100.16/28"}, {"AzureResourceManager", "198.51.100.64/28"}},
                            server_->url() + "/subscriptions/" + kSub +
                                "/providers/Microsoft.Network/locations/westeurope/serviceTags?api-version=2023-09-01&page=2")};
    });
  }
  TagSource azure_source(long timeout_s = 10, AzureTagOptions o = {}) {
    TagSource s("azure-api", timeout_s);
    s.set_azure(std::move(o));
    return s;
  }

  std::unique_ptr<MockHttp> server_;
  std::mutex mu_;
  HttpReply instance_{200, instance_json()};
  HttpReply token_reply_;
  std::atomic<int> tokens_issued_{0};
  std::function<HttpReply(const HttpRequest&, const std::string&)> arm_;
};

TEST_F(AzureMock, HappyPathPagesChangeNumberAndTokenReuse) {
  two_pages(63);
  TagSource src = azure_source();
  ASSERT_TRUE(src.is_azure());
  ASSERT_TRUE(src.is_remote());
  auto f = src.fetch();
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->not_modified);
  EXPECT_NE(f->origin.find("subscription " + std::string(kSub)), std::string::npos) << f->origin;
  auto tags = parse_service_tags(f->body, f->origin);
  ASSERT_TRUE(tags.ok()) << tags.error().message;
  EXPECT_EQ(tags->change_number, 63u);
  EXPECT_EQ(tags->cloud, "Public");
  EXPECT_EQ(tags->tags.size(), 4u) << "both pages merged";
  ASSERT_NE(tags->find("Storage.WestEurope"), nullptr);
  EXPECT_TRUE(tags->find("AzureMachineLearning")->prefixes.contains(*IpAddr::parse("198.51.100.17")));

  // What was asked: IMDS with Metadata: true and the ARM audience; ARM with the token, the
  // subscription and location from IMDS, the API version.
  auto reqs = server_->requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].path(), "/metadata/instance");
  EXPECT_EQ(reqs[0].headers["metadata"], "true");
  EXPECT_EQ(reqs[1].path(), "/metadata/identity/oauth2/token");
  EXPECT_NE(reqs[1].target.find("api-version=2018-02-01"), std::string::npos);
  EXPECT_NE(reqs[1].target.find("resource=https%3A%2F%2Fmanagement.azure.com%2F"), std::string::npos) << reqs[1].target;
  EXPECT_EQ(reqs[2].target, "/subscriptions/" + std::string(kSub) +
                                "/providers/Microsoft.Network/locations/westeurope/serviceTags?api-version=2023-09-01");
  EXPECT_EQ(reqs[2].headers["authorization"], "Bearer tok1");
  EXPECT_EQ(reqs[2].headers.count("metadata"), 0u);
  EXPECT_NE(reqs[3].target.find("page=2"), std::string::npos);
  EXPECT_EQ(reqs[3].headers["authorization"], "Bearer tok1");

  // Same changeNumber: not modified after page 1; token and instance metadata reused.
  auto again = src.fetch();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->not_modified);
  EXPECT_EQ(server_->count("/subscriptions/"), 3u);
  EXPECT_EQ(server_->count("/metadata/identity"), 1u);
  EXPECT_EQ(server_->count("/metadata/instance"), 1u);

  // A new changeNumber: read in full.
  two_pages(64);
  auto newer = src.fetch();
  ASSERT_TRUE(newer.ok());
  EXPECT_FALSE(newer->not_modified);
  EXPECT_EQ(parse_service_tags(newer->body, "x")->change_number, 64u);
  // forget(): the same number is read again (after a refused update).
  src.forget();
  auto forced = src.fetch();
  ASSERT_TRUE(forced.ok());
  EXPECT_FALSE(forced->not_modified);
}

TEST_F(AzureMock, ConfiguredSubscriptionAndLocationSkipInstanceMetadata) {
  two_pages(7);
  TagSource src = azure_source(10, AzureTagOptions{Cloud::kPublic, "northeurope", "11111111-2222-3333-4444-555555555555"});
  auto f = src.fetch();
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(server_->count("/metadata/instance"), 0u);
  EXPECT_NE(server_->requests()[1].target.find("/subscriptions/11111111-2222-3333-4444-555555555555/providers/"
                                               "Microsoft.Network/locations/northeurope/"),
            std::string::npos);
}

TEST_F(AzureMock, ExpiredTokenIsRenewedOnce) {
  set_arm([](const HttpRequest&, const std::string& auth) -> HttpReply {
    if (auth != "Bearer tok2") return {401, R"({"error":{"code":"ExpiredAuthenticationToken","message":"expired"}})"};
    return {200, arm_page(5, {{"AzureCloud", "203.0.113.0/24"}})};
  });
  TagSource src = azure_source();
  auto f = src.fetch();
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(tokens_issued_, 2);
}

TEST_F(AzureMock, UnauthorizedForbiddenAndNoIdentity) {
  set_arm([](const HttpRequest&, const std::string&) -> HttpReply {
    return {401, R"({"error":{"code":"InvalidAuthenticationToken","message":"The access token is invalid."}})"};
  });
  TagSource src = azure_source();
  auto f = src.fetch();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("HTTP 401: InvalidAuthenticationToken"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("managed identity"), std::string::npos);
  EXPECT_EQ(f.error().message.find("tok1"), std::string::npos) << "never a token in a message";
  EXPECT_EQ(f.error().message.find("tok2"), std::string::npos) << "never a token in a message";
  EXPECT_EQ(tokens_issued_, 2) << "one renewal, not a loop";

  set_arm([](const HttpRequest&, const std::string&) -> HttpReply {
    return {403, R"({"error":{"code":"AuthorizationFailed","message":"no read access"}})"};
  });
  f = src.fetch();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("HTTP 403: AuthorizationFailed: no read access"), std::string::npos);
  EXPECT_NE(f.error().message.find("Reader role on subscription " + std::string(kSub)), std::string::npos);

  {
    std::lock_guard<std::mutex> lk(mu_);
    token_reply_ = {400, R"({"error":"invalid_request","error_description":"Identity not found"})"};
  }
  TagSource fresh = azure_source();
  f = fresh.fetch();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("HTTP 400: invalid_request: Identity not found"), std::string::npos)
      << f.error().message;
  EXPECT_EQ(f.error().message.find('\n'), std::string::npos);
}

TEST_F(AzureMock, UserAssignedIdentityByClientId) {
  two_pages(9);
  const std::string id_a = "aaaaaaaa-1111-2222-3333-444444444444";
  const std::string id_b = "bbbbbbbb-1111-2222-3333-444444444444";
  TagSource src = azure_source(10, AzureTagOptions{Cloud::kPublic, "westeurope", kSub, id_a});
  auto f = src.fetch();
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto token_targets = [this] {
    std::vector<std::string> out;
    for (const auto& r : server_->requests())
      if (r.path() == "/metadata/identity/oauth2/token") out.push_back(r.target);
    return out;
  };
  auto t = token_targets();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_NE(t[0].find("&client_id=" + id_a), std::string::npos) << t[0];
  // The same identity: the token is reused; another identity (a reload): a token of its own.
  src.set_azure(AzureTagOptions{Cloud::kPublic, "westeurope", kSub, id_a});
  ASSERT_TRUE(src.fetch().ok());
  EXPECT_EQ(token_targets().size(), 1u);
  src.set_azure(AzureTagOptions{Cloud::kPublic, "westeurope", kSub, id_b});
  ASSERT_TRUE(src.fetch().ok());
  t = token_targets();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_NE(t[1].find("&client_id=" + id_b), std::string::npos) << t[1];
  // Without client_id: no parameter (IMDS picks the machine's only identity).
  TagSource plain = azure_source(10, AzureTagOptions{Cloud::kPublic, "westeurope", kSub});
  ASSERT_TRUE(plain.fetch().ok());
  t = token_targets();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[2].find("client_id"), std::string::npos) << t[2];
  // An identity IMDS does not know: the error names the key to check.
  {
    std::lock_guard<std::mutex> lk(mu_);
    token_reply_ = {400, R"({"error":"invalid_request","error_description":"Identity not found"})"};
  }
  TagSource wrong = azure_source(10, AzureTagOptions{Cloud::kPublic, "westeurope", kSub, id_b});
  f = wrong.fetch();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("Identity not found"), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("client_id " + id_b), std::string::npos) << f.error().message;
  EXPECT_NE(f.error().message.find("check that service_tags.client_id"), std::string::npos) << f.error().message;
  EXPECT_EQ(f.error().message.find('\n'), std::string::npos);
}

TEST_F(AzureMock, ThrottledShortRetryAfterIsWaitedFor) {
  std::atomic<int> calls{0};
  set_arm([&calls](const HttpRequest&, const std::string&) -> HttpReply {
    if (calls++ == 0) return {429, R"({"error":{"code":"TooManyRequests"}})", {"Retry-After: 1"}};
    return {200, arm_page(9, {{"AzureCloud", "203.0.113.0/24"}})};
  });
  TagSource src = azure_source();
  const auto t0 = Clock::now();
  auto f = src.fetch();
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_GE(ms, 950) << "Retry-After: 1 was honoured";
  EXPECT_LT(ms, 3000);
  EXPECT_FALSE(src.retry_after_s());
}

TEST_F(AzureMock, ThrottledLongRetryAfterIsReported) {
  set_arm([](const HttpRequest&, const std::string&) -> HttpReply {
    return {429, R"({"error":{"code":"TooManyRequests","message":"slow down"}})", {"Retry-After: 3600"}};
  });
  TagSource src = azure_source();
  const auto t0 = Clock::now();
  auto f = src.fetch();
  ASSERT_FALSE(f.ok());
  EXPECT_LT(std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count(), 1000) << "no hour-long wait";
  EXPECT_NE(f.error().message.find("HTTP 429 (throttled, Retry-After 3600 s): TooManyRequests: slow down"),
            std::string::npos)
      << f.error().message;
  ASSERT_TRUE(src.retry_after_s());
  EXPECT_EQ(*src.retry_after_s(), 3600u);
}

TEST_F(AzureMock, TimeoutIsBounded) {
  set_arm([](const HttpRequest&, const std::string&) -> HttpReply { return {200, "", {}, true}; });
  TagSource src = azure_source(1);
  const auto t0 = Clock::now();
  auto f = src.fetch();
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("Timeout"), std::string::npos) << f.error().message;
  EXPECT_LT(ms, 2500);
}

TEST_F(AzureMock, GarbageIsRefused) {
  struct Case {
    std::string body;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"<html>gateway</html>", "is not JSON"},
      {R"({"changeNumber":"1","cloud":"Public"})", "no \"values\" array"},
      {R"({"changeNumber":"x1","cloud":"Public","values":[]})", "no valid changeNumber"},
      {R"({"changeNumber":"1","values":[]})", "no \"cloud\" string"},
      {R"({"changeNumber":"1","cloud":"Public","values":[1]})", "a value is not an object"},
      {R"({"changeNumber":"1","cloud":"Public","values":[],"nextLink":"https://evil.example/steal"})",
       "leaves " /* the ARM endpoint */},
      {R"({"changeNumber":"1","cloud":"Public","values":[],"nextLink":42})", "nextLink is not a string"},
  };
  for (const auto& c : cases) {
    set_arm([&c](const HttpRequest&, const std::string&) -> HttpReply { return {200, c.body}; });
    TagSource src = azure_source();
    auto f = src.fetch();
    ASSERT_FALSE(f.ok()) << c.body;
    EXPECT_EQ(f.error().code, Exit::kData) << c.body;
    EXPECT_NE(f.error().message.find(c.want), std::string::npos) << f.error().message;
    EXPECT_EQ(f.error().message.find('\n'), std::string::npos);
  }
  // A page that links to itself.
  set_arm([this](const HttpRequest&, const std::string&) -> HttpReply {
    return {200, arm_page(2, {{"AzureCloud", "203.0.113.0/24"}}, server_->url() + "/subscriptions/loop/serviceTags")};
  });
  TagSource src = azure_source();
  auto f = src.fetch();
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("repeats"), std::string::npos) << f.error().message;
  // A well-formed answer whose tags are wrong is refused by the service-tags parser.
  set_arm([](const HttpRequest&, const std::string&) -> HttpReply {
    return {200, arm_page(3, {{"AzureCloud", "10.0.0.1/33"}})};
  });
  TagSource src2 = azure_source();
  auto bad = src2.fetch();
  ASSERT_TRUE(bad.ok());
  auto parsed = parse_service_tags(bad->body, bad->origin);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, Exit::kData);
}

TEST_F(AzureMock, ResolveAuto) {
  Config c;
  c.path = "/etc/amlfw/amlfw.toml";
  c.cloud = Cloud::kAuto;
  c.region = "auto";
  c.service_tags.source = "azure-api";
  ASSERT_TRUE(needs_imds(c));
  Status s = resolve_azure_auto(c);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(c.cloud, Cloud::kPublic);
  EXPECT_EQ(c.region, "westeurope");
  EXPECT_EQ(c.service_tags.subscription, kSub);
  EXPECT_FALSE(needs_imds(c));
  auto src = make_tag_source(c);
  EXPECT_TRUE(src->is_azure());

  // Nothing to resolve: no request.
  const size_t before = server_->requests().size();
  Config plain;
  EXPECT_TRUE(resolve_azure_auto(plain).ok());
  EXPECT_EQ(server_->requests().size(), before);

  // US Government from IMDS; an explicit region of another cloud is refused.
  clear_instance_metadata_cache();
  {
    std::lock_guard<std::mutex> lk(mu_);
    instance_ = {200, instance_json("AzureUSGovernmentCloud", "usgovvirginia")};
  }
  Config gov;
  gov.cloud = Cloud::kAuto;
  gov.region = "auto";
  ASSERT_TRUE(resolve_azure_auto(gov).ok());
  EXPECT_EQ(gov.cloud, Cloud::kUsGov);
  EXPECT_EQ(gov.region, "usgovvirginia");
  Config mixed;
  mixed.path = "f.toml";
  mixed.cloud = Cloud::kAuto;
  mixed.region = "westeurope";
  auto m = resolve_azure_auto(mixed);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("'westeurope' is not a region of the usgov cloud"), std::string::npos)
      << m.error().message;

  // A location amlfw does not know.
  clear_instance_metadata_cache();
  {
    std::lock_guard<std::mutex> lk(mu_);
    instance_ = {200, instance_json("AzurePublicCloud", "marsnorth")};
  }
  Config mars;
  mars.path = "f.toml";
  mars.region = "auto";
  auto e = resolve_azure_auto(mars);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("location 'marsnorth'"), std::string::npos) << e.error().message;
}

TEST(AzureNoImds, UnreachableImdsNamesTheFix) {
  clear_instance_metadata_cache();
  // A port nobody listens on.
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  s.reset();
  ::setenv("AMLFW_IMDS_ENDPOINT", url.c_str(), 1);
  Config c;
  c.path = "/etc/amlfw/amlfw.toml";
  c.cloud = Cloud::kAuto;
  c.region = "auto";
  auto r = resolve_azure_auto(c, milliseconds(2000));
  ::unsetenv("AMLFW_IMDS_ENDPOINT");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/etc/amlfw/amlfw.toml: cloud and region = \"auto\" needs Azure IMDS"),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("set cloud and region explicitly"), std::string::npos);
  EXPECT_EQ(c.cloud, Cloud::kAuto) << "nothing changed";
}

TEST(AzureEndpointsTest, DefaultsPerCloudAndTestOverrides) {
  ::unsetenv("AMLFW_IMDS_ENDPOINT");
  ::unsetenv("AMLFW_ARM_ENDPOINT");
  EXPECT_EQ(azure_endpoints(Cloud::kPublic).imds, "http://169.254.169.254");
  EXPECT_EQ(azure_endpoints(Cloud::kPublic).arm, "https://management.azure.com");
  EXPECT_EQ(azure_endpoints(Cloud::kUsGov).arm, "https://management.usgovcloudapi.net");
  EXPECT_EQ(azure_endpoints(Cloud::kChina).arm_resource, "https://management.chinacloudapi.cn/");
  ::setenv("AMLFW_ARM_ENDPOINT", "http://127.0.0.1:9/", 1);
  EXPECT_EQ(azure_endpoints(Cloud::kUsGov).arm, "http://127.0.0.1:9");
  EXPECT_EQ(azure_endpoints(Cloud::kUsGov).arm_resource, "https://management.usgovcloudapi.net/")
      << "the token's audience stays the real one";
  ::unsetenv("AMLFW_ARM_ENDPOINT");
}

// ---- the URL source through daemon/http.h ----------------------------------------------------

TEST(UrlSource, ConditionalGetThenNotModified) {
  MockHttp http([](const HttpRequest& r) {
    HttpReply rep;
    if (r.headers.count("if-none-match") != 0 && r.headers.at("if-none-match") == "\"v1\"") {
      rep.status = 304;
      return rep;
    }
    rep.body = "{\"changeNumber\":1}";
    rep.headers = {"ETag: \"v1\"", "Last-Modified: Tue, 01 Sep 2026 00:00:00 GMT"};
    return rep;
  });
  TagSource src(http.url() + "/tags.json", 5);
  auto f = src.fetch();
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->not_modified);
  EXPECT_EQ(f->body, "{\"changeNumber\":1}");
  f = src.fetch();
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(f->not_modified);
  const auto reqs = http.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1].headers.at("if-none-match"), "\"v1\"");
  EXPECT_EQ(reqs[1].headers.at("if-modified-since"), "Tue, 01 Sep 2026 00:00:00 GMT");
  src.forget();
  f = src.fetch();
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_FALSE(f->not_modified) << "forget() drops the validators";
}

TEST(UrlSource, HttpErrorKeepsTheLastGoodDataAndSaysSo) {
  MockHttp http([](const HttpRequest&) {
    HttpReply rep;
    rep.status = 503;
    return rep;
  });
  TagSource src(http.url() + "/tags.json", 5);
  auto f = src.fetch();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().message, "service tags " + http.url() + "/tags.json: HTTP 503 (keeping the last good data)");
}

// A server that takes the request and never answers must not hold up a stopping daemon for
// the fetch timeout (60 s by default): http_cancel ends the transfer within about a second.
TEST(UrlSource, CancelEndsAHangingFetchWithinASecond) {
  MockHttp http([](const HttpRequest&) {
    HttpReply rep;
    rep.hang = true;
    return rep;
  });
  TagSource src(http.url() + "/tags.json", 60);
  std::optional<Result<TagFetch>> got;
  std::thread t([&] { got.emplace(src.fetch()); });
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(got.has_value()) << "the server hangs: the fetch is still waiting";
  const auto cancelled_at = Clock::now();
  http_cancel(true);
  t.join();
  const auto took = Clock::now() - cancelled_at;
  http_cancel(false);
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().message, "service tags " + http.url() + "/tags.json: cancelled");
  EXPECT_LT(std::chrono::duration_cast<milliseconds>(took).count(), 2000);
  // Cancelled no more: the next fetch goes out again.
  MockHttp ok([](const HttpRequest&) {
    HttpReply rep;
    rep.body = "{}";
    return rep;
  });
  TagSource again(ok.url() + "/tags.json", 5);
  auto f = again.fetch();
  EXPECT_TRUE(f.ok()) << f.error().message;
}

}  // namespace
}  // namespace amlfw
