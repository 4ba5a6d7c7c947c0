// SPDX-License-Identifier: MIT
#include "daemon/inputs.h"

#include "daemon/resolv_conf.h"
#include "daemon/resolver.h"
#include "policy/catalog.h"

namespace amlfw {

std::vector<std::string> DnsUpstreams::servers() const {
  std::vector<std::string> out;
  for (const auto& a : addrs)
    out.push_back(a.v6 ? "[" + a.str() + "]:" + std::to_string(port) : a.str() + ":" + std::to_string(port));
  return out;
}

Result<DnsUpstreams> dns_upstreams(const Config& c) {
  DnsUpstreams out;
  for (const auto& u : c.dns.upstreams) {
    auto s = parse_server(u);
    if (!s.ok()) return usage_error(c.path + ": dns.upstreams: " + s.error().message);
    if (!out.addrs.empty() && s->port != out.port)
      return usage_error(c.path + ": dns.upstreams: every upstream must use the same port ('" + u + "')");
    out.addrs.push_back(s->addr);
    out.port = s->port;
  }
  if (out.addrs.empty()) {
    auto rc = read_resolv_conf("/etc/resolv.conf");
    if (rc.ok()) {
      auto proxy = parse_server(c.dns.listen);
      for (const auto& a : rc->nameservers)
        if (!(proxy.ok() && proxy->addr == a)) out.addrs.push_back(a);  // never forward to ourselves
    }
  }
  return out;
}

bool is_remote_tag_source(const std::string& s) {
  return s.rfind("https://", 0) == 0 || s.rfind("http://", 0) == 0 || s == "azure-api";
}

Result<ServiceTags> parse_tags_for(const Config& cfg, std::string_view body, const std::string& origin) {
  auto tags = parse_service_tags(body, origin);
  if (!tags.ok()) return tags.error();
  AMLFW_TRY(check_service_tags_cloud(*tags, cfg.cloud, origin));
  return tags;
}

Result<Policy> compile_policy(const Config& cfg, const ServiceTags* tags, const DnsUpstreams& ups,
                              const std::string& tags_origin) {
  auto cat = builtin_catalog(cfg.catalog);
  if (!cat.ok()) return cat.error();
  CompileInput in;
  in.config = &cfg;
  in.catalog = *cat;
  in.tags = tags;
  in.dns_upstreams = ups.addrs;
  auto pol = compile(in);
  if (!pol.ok()) return pol.error();
  pol->dns_upstream_port = ups.port;
  pol->service_tags_origin = tags_origin;
  return pol;
}

}  // namespace amlfw
