// SPDX-License-Identifier: MIT
#include "daemon/azure.h"

#include "daemon/http.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlfw {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Json = nlohmann::json;

constexpr size_t kMaxBody = 64u << 20;
constexpr milliseconds kImdsTimeout{5000};

// `what` names the request in errors ("Azure IMDS token"). No redirects: a token must not
// follow one. IMDS is asked directly, never through a proxy.
Result<HttpResponse> get(const std::string& url, std::vector<std::string> headers, milliseconds timeout, bool direct,
                         const std::string& what) {
  HttpGet req;
  req.url = url;
  req.headers = std::move(headers);
  req.timeout = std::max(timeout, milliseconds(1));
  req.connect_timeout = milliseconds(10000);
  req.max_body = kMaxBody;
  req.direct = direct;
  req.what = what;
  return http_get(req);
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& ch : o) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return o;
}

// A server's text in one of our messages: one line, printable, bounded.
std::string clean(std::string_view s, size_t max = 200) {
  std::string o;
  for (char ch : s) {
    if (o.size() >= max) {
      o += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(ch);
    o += (u < 0x20 || u == 0x7f) ? ' ' : ch;
  }
  return o;
}

int64_t unix_seconds() { return static_cast<int64_t>(std::time(nullptr)); }

milliseconds remaining(Clock::time_point deadline) {
  return std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
}

std::string env_or(const char* name, std::string_view fallback) {
  const char* v = std::getenv(name);
  std::string s = v != nullptr && *v != '\0' ? std::string(v) : std::string(fallback);
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// "scheme://host[:port]" of a URL, "" when it has none.
std::string origin_of(std::string_view url) {
  auto p = url.find("://");
  if (p == std::string_view::npos) return {};
  auto end = url.find('/', p + 3);
  return lower(url.substr(0, end));
}

// changeNumber: an integer in the file, a string of digits in the API.
std::optional<uint64_t> change_number_of(const Json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return static_cast<uint64_t>(j.get<int64_t>());
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    return std::stoull(s);
  }
  return std::nullopt;
}

// ARM's error body: {"error": {"code": "...", "message": "..."}}; IMDS's: {"error": "...",
// "error_description": "..."}.
std::string error_text(const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return body.empty() ? "" : ": " + clean(body, 120);
  auto e = j.find("error");
  if (e == j.end()) return "";
  if (e->is_object()) {
    std::string code = e->value("code", ""), msg = e->value("message", "");
    return ": " + clean(code + (code.empty() || msg.empty() ? "" : ": ") + msg);
  }
  if (e->is_string()) {
    std::string d = j.value("error_description", "");
    return ": " + clean(e->get<std::string>() + (d.empty() ? "" : ": " + d));
  }
  return "";
}

bool valid_location(std::string_view s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}
bool valid_subscription(std::string_view s) {
  return s.size() == 36 && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == '-'; });
}

std::string arm_base(Cloud c) {
  switch (c) {
    case Cloud::kUsGov: return "https://management.usgovcloudapi.net";
    case Cloud::kChina: return "https://management.chinacloudapi.cn";
    default: return "https://management.azure.com";
  }
}

std::mutex g_meta_mu;
std::map<std::string, InstanceMetadata> g_meta_cache;  // IMDS endpoint -> metadata

}  // namespace

AzureEndpoints azure_endpoints(Cloud c) {
  AzureEndpoints e;
  e.imds = env_or("AMLFW_IMDS_ENDPOINT", kImdsDefault);
  e.arm = env_or("AMLFW_ARM_ENDPOINT", arm_base(c));
  e.arm_resource = arm_base(c) + "/";
  return e;
}

std::optional<Cloud> cloud_of_az_environment(std::string_view env) {
  const std::string e = lower(env);
  if (e == "azurepubliccloud") return Cloud::kPublic;
  if (e == "azureusgovernmentcloud" || e == "azureusgovernment") return Cloud::kUsGov;
  if (e == "azurechinacloud") return Cloud::kChina;
  return std::nullopt;
}

Result<InstanceMetadata> parse_instance_metadata(std::string_view json, std::string_view origin) {
  const std::string where(origin);
  Json j = Json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return data_error(where + ": not a JSON object (not Azure IMDS?)");
  auto c = j.find("compute");
  if (c == j.end() || !c->is_object()) return data_error(where + ": no \"compute\" object (not Azure IMDS?)");
  auto str = [&](const char* k) -> std::string {
    auto it = c->find(k);
    return it != c->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  InstanceMetadata m;
  m.az_environment = str("azEnvironment");
  m.location = lower(str("location"));
  m.subscription_id = lower(str("subscriptionId"));
  if (m.az_environment.empty()) return data_error(where + ": compute.azEnvironment is missing");
  auto cloud = cloud_of_az_environment(m.az_environment);
  if (!cloud)
    return data_error(where + ": compute.azEnvironment '" + clean(m.az_environment, 60) +
                      "' is not a cloud amlfw has a catalog for (set cloud explicitly: public, usgov or china)");
  m.cloud = *cloud;
  if (!valid_location(m.location))
    return data_error(where + ": compute.location '" + clean(m.location, 60) + "' is not a region name (set region explicitly)");
  if (!m.subscription_id.empty() && !valid_subscription(m.subscription_id))
    return data_error(where + ": compute.subscriptionId '" + clean(m.subscription_id, 60) + "' is not a GUID");
  return m;
}

Result<InstanceMetadata> fetch_instance_metadata(milliseconds timeout) {
  const AzureEndpoints ep = azure_endpoints(Cloud::kPublic);
  {
    std::lock_guard<std::mutex> lk(g_meta_mu);
    if (auto it = g_meta_cache.find(ep.imds); it != g_meta_cache.end()) return it->second;
  }
  const std::string url = ep.imds + "/metadata/instance?api-version=2021-02-01";
  const std::string what = "Azure IMDS " + ep.imds + "/metadata/instance";
  auto r = get(url, {"Metadata: true"}, std::min(timeout, kImdsTimeout), true, what);
  if (!r.ok()) return r.error();
  if (r->status != 200)
    return runtime_error(what + ": HTTP " + std::to_string(r->status) + error_text(r->body));
  auto m = parse_instance_metadata(r->body, what);
  if (!m.ok()) return m.error();
  std::lock_guard<std::mutex> lk(g_meta_mu);
  g_meta_cache[ep.imds] = *m;
  return m;
}

void clear_instance_metadata_cache() {
  std::lock_guard<std::mutex> lk(g_meta_mu);
  g_meta_cache.clear();
}

Result<AccessToken> parse_access_token(std::string_view json, int64_t now, std::string_view origin) {
  const std::string where(origin);
  Json j = Json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return data_error(where + ": not a JSON object");
  auto t = j.find("access_token");
  if (t == j.end() || !t->is_string() || t->get_ref<const std::string&>().empty())
    return data_error(where + ": no access_token in the answer");
  AccessToken a;
  a.token = t->get<std::string>();
  for (char ch : a.token)
    if (static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f)
      return data_error(where + ": the access_token holds characters a header cannot carry");
  a.expires_at = now + 300;  // neither expires_on nor expires_in: good for a few minutes
  if (auto e = j.find("expires_on"); e != j.end()) {
    if (auto v = change_number_of(*e)) a.expires_at = static_cast<int64_t>(*v);
  } else if (auto in = j.find("expires_in"); in != j.end()) {
    if (auto v = change_number_of(*in)) a.expires_at = now + static_cast<int64_t>(*v);
  }
  return a;
}

Result<AccessToken> fetch_access_token(const AzureEndpoints& ep, milliseconds timeout, std::string_view client_id) {
  // Percent-encoded as a query value (RFC 3986 unreserved characters stay).
  std::string resource;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : ep.arm_resource) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) != 0 || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      resource += ch;
    } else {
      resource += '%';
      resource += kHex[u >> 4];
      resource += kHex[u & 15];
    }
  }
  std::string url = ep.imds + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + resource;
  std::string what = "Azure IMDS " + ep.imds + " managed-identity token";
  if (!client_id.empty()) {  // a GUID (checked by the config parser): nothing to encode
    url += "&client_id=" + std::string(client_id);
    what += " (client_id " + std::string(client_id) + ")";
  }
  auto r = get(url, {"Metadata: true"}, std::min(timeout, kImdsTimeout), true, what);
  if (!r.ok()) return r.error();
  if (r->status != 200)
    return runtime_error(what + ": HTTP " + std::to_string(r->status) + error_text(r->body) +
                         (client_id.empty() ? " (service_tags.source = \"azure-api\" needs a managed identity on this machine with "
                                              "read access to the subscription; with several, set service_tags.client_id)"
                                            : " (check that service_tags.client_id names a user-assigned identity "
                                              "attached to this machine)"));
  return parse_access_token(r->body, unix_seconds(), what);
}

bool needs_imds(const Config& cfg) {
  return cfg.cloud == Cloud::kAuto || cfg.region == "auto" ||
         (cfg.service_tags.source == "azure-api" && cfg.service_tags.subscription.empty());
}

Status resolve_azure_auto(Config& cfg, milliseconds timeout) {
  if (!needs_imds(cfg)) return {};
  std::string keys;
  if (cfg.cloud == Cloud::kAuto) keys = "cloud";
  if (cfg.region == "auto") keys += keys.empty() ? "region" : " and region";
  const bool sub = cfg.service_tags.source == "azure-api" && cfg.service_tags.subscription.empty();
  auto m = fetch_instance_metadata(timeout);
  if (!m.ok()) {
    const std::string fix = keys.empty() ? "set service_tags.subscription" : "set " + keys + " explicitly";
    return Error{m.error().code, cfg.path + ": " + (keys.empty() ? std::string("service_tags.subscription") : keys) +
                                     " = \"auto\" needs Azure IMDS: " + m.error().message + " (run on an Azure VM, or " +
                                     fix + ")"};
  }
  if (cfg.cloud == Cloud::kAuto) cfg.cloud = m->cloud;
  const auto& regions = known_regions(cfg.cloud);
  if (cfg.region == "auto") {
    if (std::find(regions.begin(), regions.end(), m->location) == regions.end())
      return data_error(cfg.path + ": region = \"auto\": Azure IMDS says location '" + m->location +
                        "', which is not a known region of the " + std::string(to_string(cfg.cloud)) +
                        " cloud (set region explicitly)");
    cfg.region = m->location;
  } else if (std::find(regions.begin(), regions.end(), cfg.region) == regions.end()) {
    return usage_error(cfg.path + ": region '" + cfg.region + "' is not a region of the " +
                       std::string(to_string(cfg.cloud)) + " cloud that Azure IMDS reports (" + m->az_environment +
                       "): fix region, or set cloud explicitly");
  }
  if (sub) {
    if (m->subscription_id.empty())
      return data_error(cfg.path + ": service_tags.subscription: Azure IMDS gives no compute.subscriptionId "
                                   "(set service_tags.subscription)");
    cfg.service_tags.subscription = m->subscription_id;
  }
  return {};
}

std::unique_ptr<TagSource> make_tag_source(const Config& cfg) {
  auto src = std::make_unique<TagSource>(cfg.service_tags.source);
  configure_tag_source(*src, cfg);
  return src;
}

void configure_tag_source(TagSource& src, const Config& cfg) {
  if (!src.is_azure()) return;
  src.set_azure(AzureTagOptions{cfg.cloud, cfg.region == "auto" ? std::string() : cfg.region,
                                cfg.service_tags.subscription, cfg.service_tags.client_id});
}

Result<TagFetch> fetch_azure_service_tags(const AzureTagOptions& o, AzureTagState& state, long timeout_s) {
  const auto deadline = Clock::now() + std::chrono::seconds(std::max<long>(timeout_s, 1));
  state.retry_after_s.reset();
  Cloud cloud = o.cloud;
  std::string location = o.location == "auto" ? std::string() : lower(o.location);
  std::string sub = lower(o.subscription);
  if (cloud == Cloud::kAuto || location.empty() || sub.empty()) {
    auto m = fetch_instance_metadata(remaining(deadline));
    if (!m.ok()) return std::move(m).error().context("service tags azure-api");
    if (cloud == Cloud::kAuto) cloud = m->cloud;
    if (location.empty()) location = m->location;
    if (sub.empty()) sub = m->subscription_id;
  }
  if (!valid_subscription(sub))
    return usage_error("service tags azure-api: subscription '" + clean(sub, 60) +
                       "' is not a GUID (set service_tags.subscription)");
  if (!valid_location(location))
    return usage_error("service tags azure-api: location '" + clean(location, 60) + "' is not a region name (set region)");
  const AzureEndpoints ep = azure_endpoints(cloud);
  const std::string what = "service tags azure-api (" + ep.arm + ", subscription " + sub + ", location " + location + ")";
  const std::string arm_origin = origin_of(ep.arm);

  auto get_token = [&](bool fresh) -> Status {
    if (!fresh && !state.token.empty() && state.token_expires_at - 300 > unix_seconds()) return {};
    state.token.clear();
    auto t = fetch_access_token(ep, remaining(deadline), o.client_id);
    if (!t.ok()) return std::move(t).error().context("service tags azure-api");
    state.token = std::move(t->token);
    state.token_expires_at = t->expires_at;
    return {};
  };
  AMLFW_TRY(get_token(false));

  std::string url = ep.arm + "/subscriptions/" + sub + "/providers/Microsoft.Network/locations/" + location +
                    "/serviceTags?api-version=" + std::string(kArmApiVersion);
  Json merged;
  Json values = Json::array();
  std::map<std::string, bool> seen;
  uint64_t change = 0;
  std::vector<std::string> visited;
  for (size_t page = 1;; ++page) {
    if (page > kMaxArmPages)
      return data_error(what + ": more than " + std::to_string(kMaxArmPages) + " pages (nextLink loop?)");
    const std::string pw = what + ": page " + std::to_string(page);
    bool reauth = false;
    int throttled = 0;
    Result<HttpResponse> r = runtime_error("");
    while (true) {
      const auto left = remaining(deadline);
      if (left.count() <= 0) return runtime_error(pw + ": no complete answer within " + std::to_string(timeout_s) + " s");
      r = get(url, {"Authorization: Bearer " + state.token, "Accept: application/json"}, left, false, pw);
      if (!r.ok()) return r.error();
      if (r->status == 401 && !reauth) {  // an expired or revoked token: one fresh one
        reauth = true;
        AMLFW_TRY(get_token(true));
        continue;
      }
      if (r->status == 429) {
        const uint64_t wait = r->retry_after_s.value_or(0);
        const auto wait_d = std::chrono::seconds(std::max<uint64_t>(wait, 1));
        if (wait <= static_cast<uint64_t>(kMaxRetryWait.count()) && throttled < 2 && wait_d < remaining(deadline)) {
          ++throttled;
          if (!http_sleep(wait_d)) return runtime_error(pw + ": cancelled");
          continue;
        }
        state.retry_after_s = std::max<uint64_t>(wait, 1);
        return runtime_error(pw + ": HTTP 429 (throttled" +
                             (r->retry_after_s ? ", Retry-After " + std::to_string(wait) + " s" : std::string()) + ")" +
                             error_text(r->body));
      }
      break;
    }
    if (r->status != 200) {
      std::string hint;
      if (r->status == 401) hint = " (refused twice, with a fresh managed-identity token: check the machine's managed identity)";
      else if (r->status == 403) hint = " (give the machine's managed identity the Reader role on subscription " + sub + ")";
      else if (r->status == 404) hint = " (check service_tags.subscription and region)";
      return runtime_error(pw + ": HTTP " + std::to_string(r->status) + error_text(r->body) + hint);
    }
    Json j = Json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return data_error(pw + ": the answer is not JSON (" + clean(r->body, 60) + ")");
    auto vals = j.find("values");
    if (vals == j.end() || !vals->is_array()) return data_error(pw + ": no \"values\" array (not a serviceTags answer)");
    if (page == 1) {
      auto cn = j.find("changeNumber");
      auto cl = j.find("cloud");
      if (cn == j.end() || !change_number_of(*cn)) return data_error(pw + ": no valid changeNumber");
      if (cl == j.end() || !cl->is_string()) return data_error(pw + ": no \"cloud\" string");
      change = *change_number_of(*cn);
      if (state.change_number != 0 && change == state.change_number) {
        TagFetch f;
        f.not_modified = true;
        f.origin = what;
        return f;
      }
      merged["changeNumber"] = change;
      merged["cloud"] = *cl;
    }
    for (auto& v : *vals) {
      if (!v.is_object()) return data_error(pw + ": a value is not an object");
      auto n = v.find("name");
      if (n == v.end() || !n->is_string()) return data_error(pw + ": a value has no name");
      if (seen.emplace(lower(n->get_ref<const std::string&>()), true).second) values.push_back(std::move(v));
    }
    auto next = j.find("nextLink");
    if (next == j.end() || next->is_null() || (next->is_string() && next->get_ref<const std::string&>().empty())) break;
    if (!next->is_string()) return data_error(pw + ": nextLink is not a string");
    const std::string nl = next->get<std::string>();
    if (origin_of(nl) != arm_origin || nl.size() <= arm_origin.size() || nl[arm_origin.size()] != '/')
      return data_error(pw + ": nextLink '" + clean(nl, 80) + "' leaves " + ep.arm + " (refused: the token stays with ARM)");
    if (std::find(visited.begin(), visited.end(), nl) != visited.end())
      return data_error(pw + ": nextLink repeats an earlier page");
    visited.push_back(nl);
    url = nl;
  }
  merged["values"] = std::move(values);
  state.change_number = change;
  TagFetch f;
  f.origin = what;
  f.body = merged.dump();
  return f;
}

}  // namespace amlfw
