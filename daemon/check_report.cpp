// SPDX-License-Identifier: MIT
// `amlfw check` reports: the JSON answer and the table (daemon/check.h).
#include <algorithm>
#include <array>
#include <cstdio>

#include "daemon/check.h"

namespace amlfw {
namespace {

std::string addr_port(const IpAddr& a, uint16_t port) {
  return a.v6 ? "[" + a.str() + "]:" + std::to_string(port) : a.str() + ":" + std::to_string(port);
}

std::string rules_text(const std::vector<std::string>& ids) {
  std::string s;
  for (const auto& i : ids) s += (s.empty() ? "" : ",") + i;
  return s;
}

std::string endpoint_text(const CheckTarget& t) {
  if (!t.probe) {
    const std::string what = t.host.empty() ? t.pattern : t.host;
    return what + ":" + (t.rule_ports.empty() ? std::to_string(t.port) : ports_text(t.rule_ports, "*")) +
           (t.proto == Proto::kUdp ? "/udp" : "");
  }
  if (!t.host.empty()) return t.host + ":" + std::to_string(t.port);
  if (t.addr) return addr_port(*t.addr, t.port) + " (" + t.pattern + ")";
  return t.pattern + ":" + std::to_string(t.port);
}

}  // namespace

nlohmann::json check_json(const CheckReport& r) {
  nlohmann::json j;
  j["ok"] = r.ok();
  j["reachable"] = r.reachable;
  j["failed"] = r.failed;
  j["not_probed"] = r.not_probed;
  j["elapsed_ms"] = static_cast<int64_t>(r.elapsed_ms + 0.5);
  nlohmann::json eps = nlohmann::json::array();
  for (const auto& e : r.endpoints) {
    const CheckTarget& t = e.target;
    nlohmann::json x;
    x["rules"] = t.rule_ids;
    x["destination"] = t.pattern;
    x["kind"] = t.kind == DestKind::kFqdn ? "fqdn" : t.kind == DestKind::kServiceTag ? "service_tag" : "cidr";
    if (!t.host.empty()) x["host"] = t.host;
    if (t.addr) x["address"] = t.addr->str();
    x["port"] = t.port;
    x["proto"] = std::string(to_string(t.proto));
    x["status"] = std::string(to_string(e.status));
    x["required"] = true;
    x["detail"] = e.detail;
    if (!t.note.empty()) x["note"] = t.note;
    nlohmann::json as = nlohmann::json::array();
    for (const auto& a : e.addrs) {
      nlohmann::json y;
      y["address"] = a.addr.str();
      y["status"] = std::string(to_string(a.status));
      y["ms"] = static_cast<double>(static_cast<int64_t>(a.ms * 10 + 0.5)) / 10;
      if (!a.detail.empty()) y["error"] = a.detail;
      if (a.judgement) {
        y["amlfw"] = a.judgement->allow ? "allow" : "deny";
        y["rule"] = a.judgement->rule.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.judgement->rule);
        y["why"] = a.judgement->why;
      }
      as.push_back(std::move(y));
    }
    x["addresses"] = std::move(as);
    eps.push_back(std::move(x));
  }
  j["endpoints"] = std::move(eps);
  return j;
}

std::string check_table(const CheckReport& r) {
  std::vector<std::array<std::string, 4>> rows;
  rows.push_back({"STATUS", "RULES", "ENDPOINT", "DETAIL"});
  for (const auto& e : r.endpoints)
    rows.push_back({std::string(to_string(e.status)), rules_text(e.target.rule_ids), endpoint_text(e.target),
                    e.detail + (e.target.note.empty() || e.status == CheckStatus::kNotProbed ? "" : " [" + e.target.note + "]")});
  size_t w[3] = {0, 0, 0};
  for (const auto& row : rows)
    for (int c = 0; c < 3; ++c) w[c] = std::max(w[c], row[c].size());
  std::string out;
  for (const auto& row : rows) {
    for (int c = 0; c < 3; ++c) out += row[c] + std::string(w[c] - row[c].size() + 2, ' ');
    out += row[3] + "\n";
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "\n%zu reachable, %zu failed, %zu not probed (%.0f ms)\n", r.reachable, r.failed,
                r.not_probed, r.elapsed_ms);
  out += buf;
  return out;
}

}  // namespace amlfw
