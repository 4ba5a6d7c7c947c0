// SPDX-License-Identifier: MIT
// The name servers of a resolv.conf(5) file.
//
// Only `nameserver ADDRESS` lines count; other keywords (search, domain, options, sortlist)
// are ignored, as are comments ('#' or ';' up to the end of the line) and blank lines.
// ADDRESS is IPv4 or IPv6. An address with a zone id ("fe80::1%eth0") is skipped with a
// warning: amlfw's addresses carry no scope, and a link-local server without its interface
// cannot be reached. Unparsable entries are skipped with a warning too (glibc skips them
// silently); duplicates are dropped, order is kept. No nameserver at all is not an error
// here: the caller decides (glibc would fall back to 127.0.0.1).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/net.h"
#include "policy/result.h"

namespace amlfw {

struct ResolvConf {
  std::vector<IpAddr> nameservers;
  std::vector<std::string> warnings;  // one line each: "ORIGIN:LINE: ... (fix)"
};

// `origin` names the text in warnings (usually the path).
ResolvConf parse_resolv_conf(std::string_view text, std::string_view origin = "resolv.conf");
// Reads and parses `path`; an error when it cannot be read.
Result<ResolvConf> read_resolv_conf(const std::string& path = "/etc/resolv.conf");

}  // namespace amlfw
