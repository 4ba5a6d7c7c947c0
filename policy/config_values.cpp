// SPDX-License-Identifier: MIT
// Value types of the configuration: the enums' names, durations, socket addresses,
// and the "did you mean" suggestion. No TOML here (see config.cpp).
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include "policy/config.h"
#include "policy/text.h"

namespace amlfw {

std::string_view to_string(Cloud c) {
  switch (c) {
    case Cloud::kPublic: return "public";
    case Cloud::kUsGov: return "usgov";
    case Cloud::kChina: return "china";
    case Cloud::kAuto: return "auto";
  }
  return "public";
}

std::optional<Cloud> parse_cloud(std::string_view s) {
  if (s == "public") return Cloud::kPublic;
  if (s == "usgov") return Cloud::kUsGov;
  if (s == "china") return Cloud::kChina;
  if (s == "auto") return Cloud::kAuto;
  return std::nullopt;
}

std::string_view to_string(Backend b) {
  switch (b) {
    case Backend::kNftables: return "nftables";
    case Backend::kEbpf: return "ebpf";
  }
  return "nftables";
}

std::optional<Backend> parse_backend(std::string_view s) {
  if (s == "nftables") return Backend::kNftables;
  if (s == "ebpf") return Backend::kEbpf;
  return std::nullopt;
}

std::string_view to_string(Mode m) {
  switch (m) {
    case Mode::kEnforce: return "enforce";
    case Mode::kAudit: return "audit";
  }
  return "enforce";
}

std::optional<Mode> parse_mode(std::string_view s) {
  if (s == "enforce") return Mode::kEnforce;
  if (s == "audit") return Mode::kAudit;
  return std::nullopt;
}

namespace {

constexpr std::string_view kDurationFix = "(write a number and a unit s, m, h or d, e.g. \"15m\" or \"1h30m\")";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses a decimal number without sign; false on empty input or overflow past `max`.
bool parse_uint(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace

Result<uint64_t> parse_duration(std::string_view s) {
  if (s.empty()) return usage_error(std::string("empty duration ") + std::string(kDurationFix));
  // A generous cap far above any sensible setting, so that sums cannot overflow.
  constexpr uint64_t kMax = uint64_t{100} * 365 * 86400;
  uint64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == start) {
      return usage_error("a duration starts with a number " + std::string(kDurationFix));
    }
    uint64_t n = 0;
    if (!parse_uint(s.substr(start, i - start), kMax, &n)) {
      return usage_error("duration too long " + std::string("(stay under 100 years)"));
    }
    const size_t ustart = i;
    while (i < s.size() && !is_digit(s[i])) ++i;
    const std::string_view unit = s.substr(ustart, i - ustart);
    uint64_t mult = 0;
    if (unit == "s") {
      mult = 1;
    } else if (unit == "m") {
      mult = 60;
    } else if (unit == "h") {
      mult = 3600;
    } else if (unit == "d") {
      mult = 86400;
    } else if (unit.empty()) {
      const std::string number(s.substr(start, i - start));  // digits only
      return usage_error("missing unit after " + number + " (write \"" + number + "s\" for seconds)");
    } else if (unit == "ms" || unit == "us" || unit == "ns") {
      return usage_error("durations are whole seconds (write \"1s\" or more)");
    } else {
      return usage_error("unknown unit " + quote(unit, 40) + " " + std::string(kDurationFix));
    }
    if (n > kMax / mult || total > kMax - n * mult) {
      return usage_error("duration too long (stay under 100 years)");
    }
    total += n * mult;
  }
  return total;
}

std::string SocketAddress::str() const {
  const std::string port_text = std::to_string(port);
  if (addr.v6) return "[" + addr.str() + "]:" + port_text;
  return addr.str() + ":" + port_text;
}

Result<SocketAddress> parse_socket_address(std::string_view s, uint16_t default_port) {
  const std::string fix = default_port != 0 ? "(write \"ip\", \"ip:port\" or \"[ipv6]:port\")"
                                            : "(write \"ip:port\" or \"[ipv6]:port\")";
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos) return usage_error("missing ']' " + fix);
    host = s.substr(1, close - 1);
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return usage_error("expected ':' and a port after ']' " + fix);
      port_text = rest.substr(1);
      has_port = true;
    }
    auto a = IpAddr::parse(host);
    if (!a || !a->v6) return usage_error(quote(host, 40) + " is not an IPv6 address " + fix);
  } else {
    const size_t colon = s.find(':');
    if (colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
      host = s.substr(0, colon);
      port_text = s.substr(colon + 1);
      has_port = true;
    } else {
      host = s;  // IPv4 without port, or a bare IPv6 address
    }
  }
  auto addr = IpAddr::parse(host);
  if (!addr) return usage_error(quote(host, 40) + " is not an IP address " + fix);
  SocketAddress out;
  out.addr = *addr;
  if (has_port) {
    uint64_t p = 0;
    if (!parse_uint(port_text, 65535, &p) || p == 0) {
      return usage_error(quote(port_text, 40) + " is not a port (use 1 to 65535)");
    }
    out.port = static_cast<uint16_t>(p);
  } else {
    if (default_port == 0) return usage_error("missing port " + fix);
    out.port = default_port;
  }
  return out;
}

namespace {

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions),
// case-insensitive.
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  const size_t m = b.size();
  std::vector<size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1])) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    prev2.swap(prev);
    prev.swap(cur);
  }
  return prev[m];
}

bool iprefix(std::string_view shorter, std::string_view longer) {
  if (shorter.size() > longer.size()) return false;
  for (size_t i = 0; i < shorter.size(); ++i) {
    if (lower(shorter[i]) != lower(longer[i])) return false;
  }
  return true;
}

}  // namespace

std::string suggest(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.empty() || word.size() > 256) return "";
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    if (c.size() > 256) continue;
    size_t d = edit_distance(word, c);
    // Up to one edit in three characters (at least one for words of two or more).
    size_t limit = std::max(word.size(), c.size()) / 3;
    if (limit == 0 && word.size() >= 2) limit = 1;
    bool close = d <= limit;
    // A truncated key ("storage" for "storage_accounts") is close too.
    if (!close && word.size() >= 4 && (iprefix(word, c) || iprefix(c, word))) {
      close = true;
      d = limit + 1;  // ranks after every real near-miss
    }
    if (close && d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

}  // namespace amlfw
