// SPDX-License-Identifier: MIT
// libFuzzer target: parse_catalog and Condition::parse on arbitrary bytes. Beyond "no crash,
// no sanitizer report", it checks the contract: an error is one line of Exit::kData naming
// the origin; a parsed catalog has unique ids, ports, clouds, and exactly one destination
// kind per row, with hosts for exactly the listed clouds.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "policy/catalog.h"

namespace {

bool one_line(const std::string& s) {
  return s.find('\n') == std::string::npos && s.find('\r') == std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto cond = amlfw::Condition::parse(text);
  if (!cond.ok()) {
    if (cond.error().code != amlfw::Exit::kData || !one_line(cond.error().message)) __builtin_trap();
  } else {
    std::map<std::string, bool> on, off;
    for (const auto& [name, def] : amlfw::kFeatureDefaults) {
      on[name] = true;
      off[name] = false;
    }
    (void)cond->eval(on);
    (void)cond->eval(off);
    auto again = amlfw::Condition::parse(cond->text());
    if (!again.ok() || again->eval(on) != cond->eval(on) || again->eval(off) != cond->eval(off)) __builtin_trap();
  }

  auto cat = amlfw::parse_catalog(text, "fuzz.toml");
  if (!cat.ok()) {
    const std::string& msg = cat.error().message;
    if (cat.error().code != amlfw::Exit::kData) __builtin_trap();
    if (msg.rfind("fuzz.toml:", 0) != 0 || !one_line(msg)) __builtin_trap();
    return 0;
  }
  std::set<std::string> ids;
  for (const auto& r : cat->rows) {
    if (!ids.insert(r.id).second) __builtin_trap();
    if (r.ports.empty() || r.clouds.empty() || r.why.empty()) __builtin_trap();
    if (r.service_tag.empty() == r.hosts.empty()) __builtin_trap();
    if (!r.hosts.empty() && r.hosts.size() != r.clouds.size()) __builtin_trap();
    for (const auto& [cloud, hosts] : r.hosts)
      if (hosts.empty()) __builtin_trap();
  }
  return 0;
}
