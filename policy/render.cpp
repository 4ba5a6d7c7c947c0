// SPDX-License-Identifier: MIT
#include "policy/render.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace amlfw {
namespace {

nlohmann::json ports_json(const std::vector<PortRange>& ports) {
  auto a = nlohmann::json::array();
  for (const auto& r : ports) a.push_back(r.str());
  return a;
}

std::string join_ports(const std::vector<PortRange>& ports) {
  std::string s;
  for (const auto& r : ports) s += (s.empty() ? "" : ",") + r.str();
  return s;
}

// What the policy applies to (the [egress], [forward] and [ebpf] settings), in words.
std::string scope_text(const Policy& p) {
  if (p.backend == Backend::kEbpf)
    return "processes of cgroup " + (p.ebpf_cgroup.empty() ? std::string("(the cgroup v2 root)") : p.ebpf_cgroup) +
           " and its descendants, in every network namespace";
  std::string s = p.egress_local ? "the node's own processes" : "not the node's own processes (egress.local = false)";
  if (p.forward_enabled()) {
    std::string from;
    for (const auto& i : p.forward_interfaces) from += (from.empty() ? "" : ", ") + i;
    for (const auto& x : p.forward_sources) from += (from.empty() ? "" : ", ") + x.str();
    s += "; traffic forwarded from " + from + " (pods)";
    if (p.forward_dns_redirect) s += ", whose DNS is redirected to the proxy";
  }
  return s;
}

std::string pad(std::string s, size_t w) {
  if (s.size() < w) s.append(w - s.size(), ' ');
  return s;
}

}  // namespace

nlohmann::json plan_json(const Policy& p) {
  nlohmann::json j;
  j["catalog"] = p.catalog;
  j["cloud"] = p.cloud;
  j["region"] = p.region;
  j["mode"] = std::string(to_string(p.mode));
  j["backend"] = std::string(to_string(p.backend));
  j["inbound_enforce"] = p.inbound_enforce;
  j["egress_local"] = p.egress_local;
  {
    nlohmann::json f;
    f["interfaces"] = p.forward_interfaces;
    auto src = nlohmann::json::array();
    for (const auto& x : p.forward_sources) src.push_back(x.str());
    f["sources"] = std::move(src);
    f["dns_redirect"] = p.forward_dns_redirect;
    j["forward"] = std::move(f);
  }
  j["applies_to"] = scope_text(p);
  if (!p.service_tags_cloud.empty())
    j["service_tags"] = {{"cloud", p.service_tags_cloud}, {"change_number", p.service_tags_change}};
  auto base = nlohmann::json::array();
  base.push_back({{"id", "base-loopback"}, {"what", "loopback"}});
  base.push_back({{"id", "base-established"}, {"what", "established and related connections"}});
  base.push_back({{"id", "base-dhcp"}, {"what", "DHCP and DHCPv6 client, ICMPv6 neighbour discovery"}});
  if (p.platform_azure) {
    base.push_back({{"id", "platform-wireserver"}, {"cidr", "168.63.129.16/32"}, {"tcp", {"53", "80", "32526"}}, {"udp", {"53"}}});
    base.push_back({{"id", "platform-imds"}, {"cidr", "169.254.169.254/32"}, {"tcp", {"80"}}});
  }
  auto ups = nlohmann::json::array();
  for (const auto& a : p.dns_upstreams) ups.push_back(a.str());
  base.push_back({{"id", "base-dns"}, {"upstreams", ups}, {"port", p.dns_upstream_port}, {"proxy", p.dns_listen}});
  j["base"] = base;

  auto rules = nlohmann::json::array();
  for (const auto& r : p.rules) {
    nlohmann::json o;
    o["id"] = r.id;
    o["direction"] = std::string(to_string(r.direction));
    o["proto"] = std::string(to_string(r.proto));
    o["ports"] = ports_json(r.ports);
    switch (r.kind) {
      case DestKind::kFqdn: o["fqdn"] = r.dest; break;
      case DestKind::kServiceTag:
        o["service_tag"] = r.dest;
        o["prefixes"] = r.prefix_count;
        o["merged_ranges"] = r.prefixes.v4().size() + r.prefixes.v6().size();
        break;
      case DestKind::kCidr: o["cidr"] = r.dest; break;
    }
    o["why"] = r.why;
    if (!r.section.empty()) o["section"] = r.section;
    if (!r.note.empty()) o["note"] = r.note;
    if (!r.enforced) o["enforced"] = false;
    rules.push_back(std::move(o));
  }
  j["rules"] = std::move(rules);
  auto skipped = nlohmann::json::array();
  for (const auto& s : p.skipped) skipped.push_back({{"id", s.id}, {"reason", s.reason}});
  j["skipped"] = std::move(skipped);
  return j;
}

std::string plan_table(const Policy& p) {
  std::ostringstream o;
  o << "catalog " << p.catalog << ", cloud " << p.cloud << ", region " << p.region << ", mode "
    << to_string(p.mode) << ", backend " << to_string(p.backend);
  if (!p.service_tags_cloud.empty())
    o << ", service tags " << p.service_tags_cloud << " #" << p.service_tags_change;
  o << "\nfiltered: " << scope_text(p);
  o << "\n\n";
  o << pad("ID", 10) << pad("DIR", 8) << pad("PROTO", 6) << pad("PORTS", 18) << "DESTINATION\n";
  for (const auto& r : p.rules) {
    std::string dest = r.dest;
    if (r.kind == DestKind::kServiceTag)
      dest += " (" + std::to_string(r.prefix_count) + " prefixes, " +
              std::to_string(r.prefixes.v4().size() + r.prefixes.v6().size()) + " ranges)";
    if (!r.enforced) dest += "  [not enforced: inbound.enforce = false]";
    o << pad(r.id, 10) << pad(std::string(to_string(r.direction)), 8) << pad(std::string(to_string(r.proto)), 6)
      << pad(join_ports(r.ports), 18) << dest << "\n";
  }
  o << "\nalways allowed: loopback, established/related, DHCP client";
  if (p.platform_azure) o << ", 168.63.129.16 (53, 80, 32526), 169.254.169.254:80";
  o << "; DNS only to";
  if (p.dns_upstreams.empty()) o << " (no upstream)";
  for (const auto& a : p.dns_upstreams) o << " " << a.str();
  o << " and the proxy " << p.dns_listen << "\n";
  o << "everything else: " << (p.mode == Mode::kAudit ? "logged and counted (audit mode)" : "rejected") << "\n";
  if (!p.skipped.empty()) {
    o << "\nnot included:\n";
    for (const auto& s : p.skipped) o << "  " << pad(s.id, 8) << s.reason << "\n";
  }
  return o.str();
}

nlohmann::json verdict_json(const Target& t, const Verdict& v) {
  nlohmann::json j;
  j["target"] = t.text;
  j["verdict"] = v.allow ? "allow" : "deny";
  j["rule"] = v.rule_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.rule_id);
  j["why"] = v.why;
  return j;
}

nlohmann::json catalog_json(const Catalog& c, const std::string& cloud) {
  nlohmann::json j;
  j["revision"] = c.revision;
  j["title"] = c.title;
  auto rows = nlohmann::json::array();
  for (const auto& r : c.rows) {
    nlohmann::json o;
    auto clouds = nlohmann::json::array();
    bool in_cloud = cloud.empty();
    for (auto cl : r.clouds) {
      clouds.push_back(std::string(to_string(cl)));
      if (to_string(cl) == cloud) in_cloud = true;
    }
    if (!in_cloud) continue;
    o["id"] = r.id;
    o["section"] = r.section;
    o["source"] = r.source;
    o["direction"] = std::string(to_string(r.direction));
    o["proto"] = std::string(to_string(r.proto));
    o["ports"] = ports_json(r.ports);
    o["when"] = r.when.text();
    o["clouds"] = clouds;
    if (!r.service_tag.empty()) o["service_tag"] = r.service_tag;
    if (!r.hosts.empty()) {
      nlohmann::json h;
      for (const auto& [cl, hs] : r.hosts)
        if (cloud.empty() || to_string(cl) == cloud) h[std::string(to_string(cl))] = hs;
      o["hosts"] = h;
    }
    o["why"] = r.why;
    if (!r.erratum.empty()) o["erratum"] = r.erratum;
    if (!r.note.empty()) o["note"] = r.note;
    rows.push_back(std::move(o));
  }
  j["rows"] = std::move(rows);
  return j;
}

std::string catalog_table(const Catalog& c, const std::string& cloud) {
  std::ostringstream o;
  o << "catalog " << c.revision << ": " << c.title << "\n\n";
  o << pad("ID", 7) << pad("DIR", 8) << pad("PROTO", 6) << pad("PORTS", 16) << pad("WHEN", 34) << "DESTINATION\n";
  for (const auto& r : c.rows) {
    std::vector<std::string> dests;
    if (!r.service_tag.empty()) dests.push_back("tag " + r.service_tag);
    for (const auto& [cl, hs] : r.hosts) {
      if (!cloud.empty() && to_string(cl) != cloud) continue;
      std::string line = cloud.empty() ? std::string(to_string(cl)) + ": " : "";
      for (size_t i = 0; i < hs.size(); ++i) line += (i ? ", " : "") + hs[i];
      dests.push_back(line);
    }
    bool in_cloud = cloud.empty();
    for (auto cl : r.clouds) in_cloud |= to_string(cl) == cloud;
    if (!in_cloud || dests.empty()) continue;
    for (size_t i = 0; i < dests.size(); ++i) {
      if (i == 0)
        o << pad(r.id, 7) << pad(std::string(to_string(r.direction)), 8) << pad(std::string(to_string(r.proto)), 6)
          << pad(join_ports(r.ports), 16) << pad(r.when.text(), 34) << dests[i] << "\n";
      else
        o << std::string(7 + 8 + 6 + 16 + 34, ' ') << dests[i] << "\n";
    }
  }
  return o.str();
}

}  // namespace amlfw
