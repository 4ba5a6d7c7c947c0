// SPDX-License-Identifier: MIT
// Everything a policy is compiled from: configuration, catalog, service tags, DNS upstreams.
// Shared by the offline commands and the daemon, so both compile the same policy.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/config.h"
#include "policy/policy.h"
#include "policy/service_tags.h"

namespace amlfw {

struct DnsUpstreams {
  std::vector<IpAddr> addrs;
  uint16_t port = 53;
  std::vector<std::string> servers() const;  // "ip:port" / "[ip]:port" for the resolver
};
// dns.upstreams, else the name servers of /etc/resolv.conf (those that are not the proxy).
Result<DnsUpstreams> dns_upstreams(const Config& c);

// True when the source is fetched over the network (https:// URL or "azure-api").
bool is_remote_tag_source(const std::string& source);

// Compiles `cfg` with the built-in catalog, `tags` and the upstreams.
Result<Policy> compile_policy(const Config& cfg, const ServiceTags* tags, const DnsUpstreams& ups,
                              const std::string& tags_origin);

// Parses service-tag data and checks it against the configured cloud.
Result<ServiceTags> parse_tags_for(const Config& cfg, std::string_view body, const std::string& origin);

}  // namespace amlfw
