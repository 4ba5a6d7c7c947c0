// SPDX-License-Identifier: MIT
// libFuzzer target for the service-tags parser, and (for short inputs) the prefix, port and
// host-name parsers. Never a crash; when a document is accepted, the result is consistent.
//   service_tags_fuzz tests/fuzz/corpus/service_tags
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/name_pattern.h"
#include "policy/net.h"
#include "policy/service_tags.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_set(const amlfw::PrefixSet& s) {
  check(s.normalized());
  for (size_t i = 1; i < s.v4().size(); ++i) check(s.v4()[i].lo > s.v4()[i - 1].hi + 1ull);
  for (size_t i = 1; i < s.v6().size(); ++i) check(s.v6()[i].lo - 1 > s.v6()[i - 1].hi);
  // to_prefixes() re-added gives the same set, and every range edge is a member.
  amlfw::PrefixSet again;
  for (const amlfw::Prefix& p : s.to_prefixes()) again.add(p);
  again.normalize();
  check(again == s);
  for (const auto& r : s.v4()) {
    check(s.contains(amlfw::IpAddr::v4addr(r.lo)) && s.contains(amlfw::IpAddr::v4addr(r.hi)));
  }
}

void fuzz_short(std::string_view text) {
  auto p = amlfw::Prefix::parse(text, true);
  if (p.ok()) {
    auto again = amlfw::Prefix::parse(p->str());
    check(again.ok() && *again == *p);  // canonical text parses back to the same prefix
  }
  auto a = amlfw::IpAddr::parse(text);
  if (a) check(amlfw::IpAddr::parse(a->str()) == a);
  auto ports = amlfw::parse_port_range(text);
  if (ports.ok()) check(ports->lo >= 1 && ports->lo <= ports->hi);
  auto pattern = amlfw::NamePattern::parse(text);
  if (pattern.ok()) {
    auto again = amlfw::NamePattern::parse(pattern->str());
    check(again.ok() && *again == *pattern);
    if (pattern->kind() != amlfw::NamePattern::Kind::kSubdomains) {
      check(pattern->matches(pattern->base()));
    } else {
      check(!pattern->matches(pattern->base()));
      if (pattern->base().size() + 2 <= 253) check(pattern->matches("x." + pattern->base()));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (size <= 300) fuzz_short(text);

  auto r = amlfw::parse_service_tags(text, "fuzz");
  if (!r.ok()) {
    check(r.error().code == amlfw::Exit::kData);
    check(r.error().message.find('\n') == std::string::npos);
    return 0;
  }
  check(!r->tags.empty());
  size_t total = 0;
  for (const amlfw::ServiceTag& t : r->tags) {
    check(!t.name.empty());
    check(r->find(t.name) == &t);  // names unique ignoring case, index complete
    check_set(t.prefixes);
    total += t.prefix_count;
  }
  check(total == r->total_prefixes());
  return 0;
}
