// SPDX-License-Identifier: MIT
// `amlfw explain`: parse a target and decide it against the compiled policy.
#include <algorithm>
#include <charconv>

#include "policy/policy.h"

namespace amlfw {
namespace {

bool proto_matches(Proto rule, Proto want) { return rule == Proto::kAny || rule == want; }

std::string describe(const Rule& r) {
  std::string s = r.id + " (" + r.why;
  if (!r.section.empty()) s += "; " + r.section;
  s += ")";
  return s;
}

Result<uint16_t> parse_port(std::string_view s, std::string_view whole) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v == 0 || v > 65535)
    return usage_error("explain: '" + std::string(whole) + "': port '" + std::string(s) +
                       "' is not a number in 1-65535");
  return static_cast<uint16_t>(v);
}

}  // namespace

Result<Target> parse_target(std::string_view s) {
  Target t;
  t.text = std::string(s);
  std::string_view body = s;
  if (auto slash = body.rfind('/'); slash != std::string_view::npos) {
    auto proto = body.substr(slash + 1);
    if (proto == "udp") t.proto = Proto::kUdp;
    else if (proto == "tcp") t.proto = Proto::kTcp;
    else
      return usage_error("explain: '" + std::string(s) + "': unknown protocol '" + std::string(proto) +
                         "' (use /tcp or /udp)");
    body = body.substr(0, slash);
  }
  if (body.empty()) return usage_error("explain: empty target (give IP, IP:PORT, [IPv6]:PORT, HOST or HOST:PORT)");
  if (body.front() == '[') {
    auto close = body.find(']');
    if (close == std::string_view::npos)
      return usage_error("explain: '" + std::string(s) + "': missing ']' after the IPv6 address");
    auto a = IpAddr::parse(body.substr(1, close - 1));
    if (!a || !a->v6) return usage_error("explain: '" + std::string(s) + "': not an IPv6 address in brackets");
    t.addr = a;
    auto rest = body.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return usage_error("explain: '" + std::string(s) + "': expected ':PORT' after ']'");
      auto p = parse_port(rest.substr(1), s);
      if (!p.ok()) return p.error();
      t.port = *p;
    }
    return t;
  }
  if (auto a = IpAddr::parse(body)) {  // bare IPv4 or IPv6
    t.addr = a;
    return t;
  }
  std::string_view host = body;
  if (auto colon = body.rfind(':'); colon != std::string_view::npos) {
    if (body.find(':') != colon)
      return usage_error("explain: '" + std::string(s) + "': an IPv6 address with a port needs brackets: [2001:db8::1]:443");
    auto p = parse_port(body.substr(colon + 1), s);
    if (!p.ok()) return p.error();
    t.port = *p;
    host = body.substr(0, colon);
    if (auto a = IpAddr::parse(host)) {
      t.addr = a;
      return t;
    }
  }
  std::string norm;
  if (!normalize_dns_name(host, &norm))
    return usage_error("explain: '" + std::string(s) + "': '" + std::string(host) + "' is neither an IP address nor a valid host name");
  t.host = norm;
  return t;
}

Verdict explain(const Policy& p, const Target& t) {
  Verdict v;
  const std::string port_txt = t.port ? proto_text(t.proto) + " " + std::to_string(*t.port) : proto_text(t.proto);
  auto port_ok = [&](const Rule& r) { return !t.port || ports_contain(r.ports, *t.port); };

  if (t.addr) {
    const IpAddr& a = *t.addr;
    // Base chain first, in the order the backends program it.
    if ((!a.v6 && (a.v4value() >> 24) == 127) || (a.v6 && a.value == 1)) {
      return {true, nullptr, "base-loopback", a.str() + " is loopback: always allowed"};
    }
    if (p.platform_azure && !a.v6) {
      const uint32_t wire = (168u << 24) | (63u << 16) | (129u << 8) | 16u;
      const uint32_t imds = (169u << 24) | (254u << 16) | (169u << 8) | 254u;
      const uint16_t port = t.port.value_or(0);
      if (a.v4value() == wire && (!t.port || port == 53 || (t.proto == Proto::kTcp && (port == 80 || port == 32526))))
        return {true, nullptr, "platform-wireserver",
                "168.63.129.16 is the Azure platform address (DNS 53, WireServer 80 and 32526): platform.azure = true"};
      if (a.v4value() == imds && t.proto == Proto::kTcp && (!t.port || port == 80))
        return {true, nullptr, "platform-imds", "169.254.169.254:80 is Azure IMDS: platform.azure = true"};
    }
    if (std::find(p.dns_upstreams.begin(), p.dns_upstreams.end(), a) != p.dns_upstreams.end() &&
        (!t.port || *t.port == p.dns_upstream_port))
      return {true, nullptr, "base-dns", a.str() + " is a configured DNS upstream: DNS to it is allowed"};

    const Rule* near = nullptr;
    for (const auto& r : p.rules) {
      if (r.direction != Direction::kEgress || r.kind == DestKind::kFqdn) continue;
      if (!r.prefixes.contains(a)) continue;
      if (proto_matches(r.proto, t.proto) && port_ok(r)) {
        v.allow = true;
        v.rule = &r;
        v.rule_id = r.id;
        v.why = a.str() + " is in " + (r.kind == DestKind::kServiceTag ? "service tag " : "") + r.dest + " and " +
                proto_text(r.proto) + " " + ports_text(r.ports) + " is allowed by " + describe(r);
        if (p.mode == Mode::kAudit) v.why += " [audit mode]";
        return v;
      }
      if (near == nullptr) near = &r;
    }
    v.why = "no rule allows " + a.str() + " " + port_txt;
    if (near != nullptr)
      v.why += "; it is in " + near->dest + " (" + near->id + ") but only " + proto_text(near->proto) + " " +
               ports_text(near->ports) + " is allowed there";
    else
      v.why += "; it is in no allowed service tag or CIDR (addresses learned from DNS are known only to the "
               "running daemon: ask it with amlfw explain while it runs)";
    if (p.mode == Mode::kAudit) v.why += " [audit mode: logged and counted, not blocked]";
    return v;
  }

  const Rule* near = nullptr;
  for (const auto* r : p.rules_for_name(t.host)) {
    if (proto_matches(r->proto, t.proto) && port_ok(*r)) {
      v.allow = true;
      v.rule = r;
      v.rule_id = r->id;
      v.why = t.host + " matches " + r->dest + ": its addresses, as answered through the DNS proxy, are allowed on " +
              proto_text(r->proto) + " " + ports_text(r->ports) + " by " + describe(*r);
      return v;
    }
    if (near == nullptr) near = r;
  }
  v.why = "no rule allows " + t.host + " " + port_txt;
  if (near != nullptr)
    v.why += "; it matches " + near->dest + " (" + near->id + ") but only " + proto_text(near->proto) + " " +
             ports_text(near->ports) + " is allowed there";
  else
    v.why += "; no allowed host pattern matches it";
  if (p.mode == Mode::kAudit) v.why += " [audit mode: logged and counted, not blocked]";
  return v;
}

}  // namespace amlfw
