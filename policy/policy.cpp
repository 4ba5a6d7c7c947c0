// SPDX-License-Identifier: MIT
#include "policy/policy.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <tuple>

namespace amlfw {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == lower(suffix);
}

std::string cloud_key(Cloud c) { return std::string(to_string(c)); }

// Replaces one template variable by each of `values`; returns the expansions.
std::vector<std::string> expand(const std::vector<std::string>& in, std::string_view var,
                                const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& s : in) {
    auto pos = s.find(var);
    if (pos == std::string::npos) {
      out.push_back(s);
      continue;
    }
    for (const auto& v : values) {
      std::string t = s;
      for (auto p = t.find(var); p != std::string::npos; p = t.find(var, p + v.size()))
        t.replace(p, var.size(), v);
      out.push_back(std::move(t));
    }
  }
  return out;
}

struct TagLookup {
  const ServiceTag* tag = nullptr;
  std::string wanted;  // the data name we looked for
};

TagLookup lookup_tag(const ServiceTags& tags, std::string_view article_name, const std::string& region) {
  std::string wanted;
  if (ends_with_ci(article_name, ".region")) {
    std::string base(article_name.substr(0, article_name.size() - 7));
    wanted = data_tag_base(base) + "." + region;
  } else {
    wanted = data_tag_base(article_name);
  }
  return TagLookup{tags.find(wanted), wanted};
}

Status add_tag_rule(const CompileInput& in, Rule r, std::string_view article_name, std::string_view where,
                    std::vector<Rule>* out) {
  if (in.tags == nullptr)
    return data_error(std::string(where) + ": needs service tag '" + std::string(article_name) +
                      "' but no service-tags data is loaded (set service_tags.source or pass --service-tags)");
  auto found = lookup_tag(*in.tags, article_name, in.config->region);
  if (found.tag == nullptr)
    return data_error(std::string(where) + ": service tag '" + found.wanted + "' is missing from " +
                      (in.tags->cloud.empty() ? std::string("the service-tags") : in.tags->cloud) +
                      " data (changeNumber " + std::to_string(in.tags->change_number) +
                      "); check region, or use a newer service-tags file");
  r.kind = DestKind::kServiceTag;
  r.dest = found.tag->name;
  r.prefixes = found.tag->prefixes;
  r.prefix_count = found.tag->prefix_count;
  out->push_back(std::move(r));
  return {};
}

}  // namespace

std::vector<const Rule*> Policy::rules_for_name(std::string_view name) const {
  std::vector<const Rule*> out;
  for (const auto& r : rules)
    if (r.kind == DestKind::kFqdn && r.direction == Direction::kEgress && r.pattern.matches(name))
      out.push_back(&r);
  return out;
}

Result<Policy> compile(const CompileInput& in) {
  const Config& cfg = *in.config;
  const Catalog& cat = *in.catalog;
  if (cfg.cloud == Cloud::kAuto)
    return usage_error(cfg.path + ": cloud = \"auto\" must be resolved from Azure IMDS before compiling "
                       "(run the daemon, or set cloud explicitly)");
  if (cfg.region == "auto")
    return usage_error(cfg.path + ": region = \"auto\" must be resolved from Azure IMDS before compiling "
                       "(run the daemon, or set region explicitly)");

  Policy p;
  p.catalog = cat.revision;
  p.cloud = cloud_key(cfg.cloud);
  p.region = cfg.region;
  p.mode = cfg.mode;
  p.backend = cfg.backend;
  p.inbound_enforce = cfg.inbound.enforce;
  p.platform_azure = cfg.platform.azure;
  p.dns_redirect = cfg.dns.redirect;
  p.dns_upstreams = in.dns_upstreams;
  p.dns_listen = cfg.dns.listen;
  p.egress_local = cfg.egress.local;
  p.forward_interfaces = cfg.forward.interfaces;
  std::sort(p.forward_interfaces.begin(), p.forward_interfaces.end());
  for (const auto& s : cfg.forward.sources) {
    auto pfx = Prefix::parse(s, true);
    if (!pfx) return usage_error(cfg.path + ": forward.sources: " + pfx.error().message);
    p.forward_sources.push_back(*pfx);
  }
  std::sort(p.forward_sources.begin(), p.forward_sources.end(), [](const Prefix& a, const Prefix& b) {
    return std::pair(a.addr, a.len) < std::pair(b.addr, b.len);
  });
  p.forward_sources.erase(std::unique(p.forward_sources.begin(), p.forward_sources.end()), p.forward_sources.end());
  p.forward_dns_redirect = cfg.forward.dns_redirect;
  p.ebpf_cgroup = cfg.ebpf.cgroup;

  if (in.tags != nullptr) {
    AMLFW_TRY(check_service_tags_cloud(*in.tags, cfg.cloud, "service tags"));
    p.service_tags_change = in.tags->change_number;
    p.service_tags_cloud = in.tags->cloud;
  }

  for (const auto& row : cat.rows) {
    const std::string where = "catalog " + cat.revision + " row " + row.id;
    if (std::find(row.clouds.begin(), row.clouds.end(), cfg.cloud) == row.clouds.end()) {
      p.skipped.push_back({row.id, "not required in cloud " + p.cloud});
      continue;
    }
    if (!row.when.eval(cfg.features)) {
      p.skipped.push_back({row.id, "condition '" + row.when.text() + "' is off"});
      continue;
    }
    Rule base;
    base.id = row.id;
    base.direction = row.direction;
    base.proto = row.proto;
    base.ports = normalize_ports(row.ports);
    base.why = row.why;
    base.section = row.section;
    base.note = row.note;
    base.enforced = row.direction == Direction::kEgress || cfg.inbound.enforce;

    if (!row.service_tag.empty()) {
      AMLFW_TRY(add_tag_rule(in, base, row.service_tag, where, &p.rules));
      continue;
    }
    auto it = row.hosts.find(cfg.cloud);
    if (it == row.hosts.end() || it->second.empty()) {
      p.skipped.push_back({row.id, "no host for cloud " + p.cloud});
      continue;
    }
    std::vector<std::string> hosts = it->second;
    struct Var {
      const char* name;
      std::vector<std::string> values;
      const char* key;
    };
    const std::vector<Var> vars = {
        {"<storage>", cfg.storage_accounts, "storage_accounts"},
        {"<acr>", cfg.container_registries, "container_registries"},
        {"<region>", {cfg.region}, "region"},
        {"<workspace-id>",
         cfg.workspace_id.empty() ? std::vector<std::string>{} : std::vector<std::string>{cfg.workspace_id},
         "workspace_id"}};
    for (const auto& v : vars) {
      const bool uses = std::any_of(hosts.begin(), hosts.end(),
                                    [&](const std::string& h) { return h.find(v.name) != std::string::npos; });
      if (!uses) continue;
      if (v.values.empty()) {
        std::vector<std::string> kept;
        for (auto& h : hosts)
          if (h.find(v.name) == std::string::npos) kept.push_back(h);
        for (auto& h : hosts)
          if (h.find(v.name) != std::string::npos)
            p.skipped.push_back({row.id, h + ": set " + std::string(v.key) + " to allow it"});
        hosts = std::move(kept);
      } else {
        hosts = expand(hosts, v.name, v.values);
      }
    }
    for (const auto& h : hosts) {
      auto pat = NamePattern::parse(h);
      if (!pat.ok()) return data_error(where + ": host '" + h + "': " + pat.error().message);
      Rule r = base;
      r.kind = DestKind::kFqdn;
      r.pattern = *pat;
      r.dest = pat->str();
      p.rules.push_back(std::move(r));
    }
  }

  // The operator's own rules.
  int n = 0;
  for (const auto& a : cfg.allow) {
    ++n;
    Rule r;
    r.id = "user-" + std::to_string(n);
    r.direction = a.direction == "ingress" ? Direction::kIngress : Direction::kEgress;
    r.proto = a.proto;
    r.ports = normalize_ports(a.ports.empty() ? std::vector<PortRange>{PortRange{}} : a.ports);
    r.why = a.why.empty() ? "operator rule " + (a.where.empty() ? cfg.path : a.where) : a.why;
    r.section = "[[allow]]";
    r.enforced = r.direction == Direction::kEgress || cfg.inbound.enforce;
    const std::string where = a.where.empty() ? cfg.path + ": [[allow]] #" + std::to_string(n) : a.where;
    if (!a.fqdn.empty()) {
      auto pat = NamePattern::parse(a.fqdn);
      if (!pat.ok()) return usage_error(where + ": fqdn '" + a.fqdn + "': " + pat.error().message);
      r.kind = DestKind::kFqdn;
      r.pattern = *pat;
      r.dest = pat->str();
      p.rules.push_back(std::move(r));
    } else if (!a.cidr.empty()) {
      auto pre = Prefix::parse(a.cidr, true);
      if (!pre.ok()) return usage_error(where + ": cidr: " + pre.error().message);
      r.kind = DestKind::kCidr;
      r.dest = pre->str();
      r.prefixes.add(*pre);
      r.prefixes.normalize();
      r.prefix_count = 1;
      p.rules.push_back(std::move(r));
    } else {
      Status s = add_tag_rule(in, r, a.service_tag, where, &p.rules);
      if (!s.ok()) return s.error();
      // A user tag name is exact; data_tag_base() aliasing still applies.
    }
  }

  // SSH from the configured sources (ingress, only meaningful with inbound.enforce).
  int s = 0;
  for (const auto& src : cfg.inbound.ssh_from) {
    auto pre = Prefix::parse(src, true);
    if (!pre.ok()) return usage_error(cfg.path + ": inbound.ssh_from: " + pre.error().message);
    Rule r;
    r.id = "ssh-" + std::to_string(++s);
    r.direction = Direction::kIngress;
    r.proto = Proto::kTcp;
    r.ports = {PortRange{22, 22}};
    r.kind = DestKind::kCidr;
    r.dest = pre->str();
    r.prefixes.add(*pre);
    r.prefixes.normalize();
    r.prefix_count = 1;
    r.why = "SSH from an operator network (inbound.ssh_from)";
    r.section = "[inbound]";
    r.enforced = cfg.inbound.enforce;
    p.rules.push_back(std::move(r));
  }
  return p;
}

// ---- groups ------------------------------------------------------------------------------

std::string port_group_name(Direction d, Proto p, const std::vector<PortRange>& ports) {
  std::string name = d == Direction::kEgress ? "e_" : "i_";
  name += to_string(p);
  for (const auto& r : ports) name += "_" + r.str();
  return name;
}

std::vector<PortGroup> group_rules(const Policy& p) {
  std::map<std::string, PortGroup> groups;
  for (const auto& r : p.rules) {
    if (r.kind == DestKind::kFqdn && r.direction == Direction::kIngress) continue;  // a source cannot be a name
    const auto name = port_group_name(r.direction, r.proto, r.ports);
    auto [it, inserted] = groups.try_emplace(name);
    PortGroup& g = it->second;
    if (inserted) {
      g.name = name;
      g.direction = r.direction;
      g.proto = r.proto;
      g.ports = r.ports;
      g.enforced = r.enforced;
    }
    if (std::find(g.rule_ids.begin(), g.rule_ids.end(), r.id) == g.rule_ids.end()) g.rule_ids.push_back(r.id);
    if (r.kind == DestKind::kFqdn) {
      g.has_names = true;
    } else {
      g.prefixes.merge(r.prefixes);
    }
  }
  std::vector<PortGroup> out;
  out.reserve(groups.size());
  for (auto& [_, g] : groups) {
    g.prefixes.normalize();
    out.push_back(std::move(g));
  }
  return out;
}

size_t PolicyDiff::element_changes() const {
  size_t n = 0;
  for (const auto* g : added) n += g->prefixes.v4().size() + g->prefixes.v6().size();
  for (const auto& c : changed) n += c.diff.size();
  return n;
}

PolicyDiff diff_groups(const std::vector<PortGroup>& from, const std::vector<PortGroup>& to) {
  PolicyDiff d;
  std::map<std::string, const PortGroup*> old;
  for (const auto& g : from) old[g.name] = &g;
  for (const auto& g : to) {
    auto it = old.find(g.name);
    if (it == old.end()) {
      d.added.push_back(&g);
      continue;
    }
    const PortGroup& o = *it->second;
    if (o.has_names != g.has_names || o.enforced != g.enforced || o.rule_ids != g.rule_ids) d.base_changed = true;
    auto rd = diff_ranges(o.prefixes, g.prefixes);
    if (!rd.empty()) d.changed.push_back({g.name, std::move(rd)});
    old.erase(it);
  }
  for (const auto& [name, _] : old) d.removed.push_back(name);
  return d;
}

}  // namespace amlfw
