// SPDX-License-Identifier: MIT
// libFuzzer target: parse_config on arbitrary bytes. Beyond "no crash, no sanitizer report",
// it checks the contract of the result: an error is one line of Exit::kUsage naming the
// origin; a success has every feature filled and values inside their documented bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = amlfw::parse_config(text, "fuzz.toml");
  if (!cfg.ok()) {
    const std::string& msg = cfg.error().message;
    if (cfg.error().code != amlfw::Exit::kUsage) __builtin_trap();
    if (msg.rfind("fuzz.toml:", 0) != 0) __builtin_trap();
    if (msg.find('\n') != std::string::npos || msg.find('\r') != std::string::npos) __builtin_trap();
    return 0;
  }
  const amlfw::Config& c = *cfg;
  if (c.features.size() != amlfw::kFeatureDefaults.size()) __builtin_trap();
  if (c.service_tags.max_shrink < 0.0 || c.service_tags.max_shrink > 1.0) __builtin_trap();
  if (c.dns.min_ttl_s > c.dns.max_ttl_s) __builtin_trap();
  if (c.dns.max_addresses_per_name == 0 || c.dns.max_learned == 0) __builtin_trap();
  for (const auto& rule : c.allow) {
    const int destinations = !rule.fqdn.empty() + !rule.cidr.empty() + !rule.service_tag.empty();
    if (destinations != 1 || rule.ports.empty()) __builtin_trap();
  }
  if (!amlfw::parse_socket_address(c.dns.listen).ok()) __builtin_trap();
  // [forward] / [egress]: names and CIDRs as documented, no contradiction left through.
  for (const auto& i : c.forward.interfaces) {
    const size_t n = i.size() - (!i.empty() && i.back() == '*');
    if (n == 0 || n > 15) __builtin_trap();
  }
  for (const auto& s : c.forward.sources) {
    if (!amlfw::Prefix::parse(s).ok()) __builtin_trap();
  }
  if (c.forward.dns_redirect && !c.forward.enabled()) __builtin_trap();
  if (c.backend == amlfw::Backend::kEbpf && (c.forward.enabled() || c.forward.dns_redirect)) __builtin_trap();
  if (c.backend == amlfw::Backend::kNftables && !c.egress.local && !c.forward.enabled()) __builtin_trap();
  return 0;
}
