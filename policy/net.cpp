// SPDX-License-Identifier: MIT
#include "policy/net.h"
#include "policy/text.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>

namespace amlfw {
namespace {

constexpr u128 kAll6 = ~u128{0};

inline bool is_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Hex digit values, -1 for anything else: a table keeps the hot loop free of branches.
constexpr std::array<int8_t, 256> kHex = [] {
  std::array<int8_t, 256> t{};
  for (size_t c = 0; c < 256; ++c) t[c] = -1;
  for (size_t c = 0; c < 10; ++c) t['0' + c] = static_cast<int8_t>(c);
  for (size_t c = 0; c < 6; ++c) {
    t['a' + c] = static_cast<int8_t>(10 + c);
    t['A' + c] = static_cast<int8_t>(10 + c);
  }
  return t;
}();

inline int hex_value(char c) { return kHex[static_cast<unsigned char>(c)]; }

// Strict dotted quad: exactly 4 decimal octets 0..255, no leading zeros ("01" is octal to
// some tools), nothing else. Hand-written (with parse_v6) because the service-tags file
// holds ~93k prefixes and this path must neither allocate nor call into libc.
bool parse_v4(std::string_view s, uint32_t* out) {
  const char* p = s.data();
  const char* const end = p + s.size();
  uint32_t value = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (p == end || *p != '.') return false;
      ++p;
    }
    if (p == end || !is_digit(*p)) return false;
    unsigned n = static_cast<unsigned>(*p++ - '0');
    if (p != end && is_digit(*p)) {
      if (n == 0) return false;  // leading zero
      n = n * 10 + static_cast<unsigned>(*p++ - '0');
      if (p != end && is_digit(*p)) {
        n = n * 10 + static_cast<unsigned>(*p++ - '0');
        if (n > 255) return false;
      }
    }
    value = (value << 8) | n;
  }
  if (p != end) return false;
  *out = value;
  return true;
}

// RFC 4291 section 2.2 text: 8 groups of 1-4 hex digits, one "::" standing for one or more
// zero groups, an optional dotted quad in the last 32 bits. Accepts exactly what glibc's
// inet_pton(AF_INET6) accepts (a unit test compares them); no brackets, no zone.
bool parse_v6(std::string_view s, u128* out) {
  if (s.size() < 2 || s.size() > 45) return false;
  uint16_t groups[8];
  int n = 0;
  int gap = -1;  // index in groups where "::" stands
  size_t i = 0;
  if (s[0] == ':') {
    if (s[1] != ':') return false;
    gap = 0;
    i = 2;
  }
  while (i < s.size()) {
    if (n == 8) return false;
    const size_t start = i;
    unsigned v = 0;
    int h;
    while (i < s.size() && i - start < 4 && (h = hex_value(s[i])) >= 0) {
      v = (v << 4) | static_cast<unsigned>(h);
      ++i;
    }
    if (i < s.size() && s[i] == '.') {
      // Embedded IPv4 address: the rest of the text, in the last two groups.
      uint32_t v4 = 0;
      if (n > 6 || !parse_v4(s.substr(start), &v4)) return false;
      groups[n++] = static_cast<uint16_t>(v4 >> 16);
      groups[n++] = static_cast<uint16_t>(v4 & 0xffff);
      i = s.size();
      break;
    }
    if (i == start) return false;  // empty group
    groups[n++] = static_cast<uint16_t>(v);
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (gap >= 0) return false;  // a second "::"
      gap = n;
      ++i;
    } else if (i == s.size()) {
      return false;  // a trailing single ':'
    }
  }
  if (gap < 0 ? n != 8 : n > 7) return false;
  u128 v = 0;
  if (gap < 0) {
    for (int k = 0; k < 8; ++k) v = (v << 16) | groups[k];
  } else {
    const int zeros = 8 - n;
    for (int k = 0; k < gap; ++k) v = (v << 16) | groups[k];
    for (int k = 0; k < zeros; ++k) v <<= 16;  // one shift of 128 would be undefined
    for (int k = gap; k < n; ++k) v = (v << 16) | groups[k];
  }
  *out = v;
  return true;
}

// Decimal 0..max with no sign, no leading zeros, at most 3 digits.
bool parse_len(std::string_view s, unsigned max, unsigned* out) {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  unsigned n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n > max) return false;
  *out = n;
  return true;
}

u128 mask6(unsigned len) { return len == 0 ? 0 : kAll6 << (128 - len); }
uint32_t mask4(unsigned len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }

template <class R, class T>
void merge_sorted(std::vector<R>* v, T max) {
  if (!std::is_sorted(v->begin(), v->end())) std::sort(v->begin(), v->end());
  size_t w = 0;
  for (size_t r = 0; r < v->size(); ++r) {
    const R cur = (*v)[r];
    if (w > 0) {
      R& last = (*v)[w - 1];
      // Overlapping or adjacent: last.hi + 1 >= cur.lo, without overflowing at max.
      if (last.hi == max || cur.lo <= last.hi + 1) {
        if (cur.hi > last.hi) last.hi = cur.hi;
        continue;
      }
    }
    (*v)[w++] = cur;
  }
  v->resize(w);
}

template <class R>
bool range_contains(const std::vector<R>& v, decltype(R{}.lo) x) {
  // First range whose lo is > x; the candidate is the one before it.
  auto it = std::upper_bound(v.begin(), v.end(), x,
                             [](auto value, const R& r) { return value < r.lo; });
  if (it == v.begin()) return false;
  --it;
  return x <= it->hi;
}

// Number of trailing zero bits of a 128-bit value (128 for 0).
unsigned ctz128(u128 v) {
  if (v == 0) return 128;
  uint64_t low = static_cast<uint64_t>(v);
  if (low != 0) return static_cast<unsigned>(__builtin_ctzll(low));
  return 64 + static_cast<unsigned>(__builtin_ctzll(static_cast<uint64_t>(v >> 64)));
}

// Floor of log2 of a non-zero 128-bit value.
unsigned log2_128(u128 v) {
  uint64_t high = static_cast<uint64_t>(v >> 64);
  if (high != 0) return 127 - static_cast<unsigned>(__builtin_clzll(high));
  return 63 - static_cast<unsigned>(__builtin_clzll(static_cast<uint64_t>(v)));
}

// Minimal CIDR cover of [lo, hi] in a space of `bits` bits (32 or 128), values in u128.
void cover(u128 lo, u128 hi, unsigned bits, bool v6, std::vector<Prefix>* out) {
  const u128 top = bits == 128 ? kAll6 : (u128{1} << bits) - 1;
  for (;;) {
    unsigned k = std::min(ctz128(lo), bits);
    u128 span = hi - lo;  // size - 1
    if (span != top) {
      unsigned fit = log2_128(span + 1);
      k = std::min(k, fit);
    }
    IpAddr a = v6 ? IpAddr::v6addr(lo) : IpAddr::v4addr(static_cast<uint32_t>(lo));
    out->push_back(Prefix{a, static_cast<uint8_t>(bits - k)});
    if (k == bits) return;  // the whole space
    u128 last = lo + ((u128{1} << k) - 1);
    if (last >= hi) return;
    lo = last + 1;
  }
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(std::string_view s) {
  uint32_t v4 = 0;
  if (parse_v4(s, &v4)) return IpAddr::v4addr(v4);
  if (s.find(':') == std::string_view::npos) return std::nullopt;
  u128 v6 = 0;
  if (parse_v6(s, &v6)) return IpAddr::v6addr(v6);
  return std::nullopt;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  uint8_t bytes[16];
  to_bytes(bytes);
  if (inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, buf, sizeof buf) == nullptr) return "?";
  return buf;
}

void IpAddr::to_bytes(uint8_t* out) const {
  const int n = v6 ? 16 : 4;
  u128 v = value;
  for (int i = n - 1; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
}

IpAddr IpAddr::from_bytes(bool v6, const uint8_t* in) {
  const int n = v6 ? 16 : 4;
  u128 v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | in[i];
  return IpAddr{v6, v};
}

Result<Prefix> Prefix::parse(std::string_view s, bool allow_bare) {
  const size_t slash = s.find('/');
  const std::string_view addr_text = s.substr(0, slash);
  Prefix p;
  uint32_t v4 = 0;
  u128 v6 = 0;
  if (parse_v4(addr_text, &v4)) {
    p.addr = IpAddr::v4addr(v4);
  } else if (addr_text.find(':') != std::string_view::npos && parse_v6(addr_text, &v6)) {
    p.addr = IpAddr::v6addr(v6);
  } else {
    return usage_error(quote(s) + " is not a CIDR prefix: " + quote(addr_text) +
                       " is not an IPv4 or IPv6 address (write e.g. 192.0.2.0/24 or 2001:db8::/32)");
  }
  const unsigned max = p.addr.v6 ? 128 : 32;
  if (slash == std::string_view::npos) {
    if (!allow_bare) {
      return usage_error(quote(s) + " has no prefix length (write " + std::string(addr_text) +
                         "/" + std::to_string(max) + " for a single address)");
    }
    p.len = static_cast<uint8_t>(max);
    return p;
  }
  unsigned len = 0;
  if (!parse_len(s.substr(slash + 1), max, &len)) {
    return usage_error(quote(s) + " has a bad prefix length " + quote(s.substr(slash + 1)) +
                       " (use 0.." + std::to_string(max) + ")");
  }
  p.len = static_cast<uint8_t>(len);
  const bool host_bits =
      p.addr.v6 ? (p.addr.value & ~mask6(len)) != 0 : (v4 & ~mask4(len)) != 0;
  if (host_bits) {
    Prefix fixed = p;
    fixed.addr.value = p.addr.v6 ? (p.addr.value & mask6(len)) : (v4 & mask4(len));
    return usage_error(quote(s) + " has host bits set (did you mean " + fixed.str() + "?)");
  }
  return p;
}

std::string Prefix::str() const { return addr.str() + "/" + std::to_string(len); }

void PrefixSet::add(const Prefix& p) {
  if (p.addr.v6) {
    const unsigned len = std::min<unsigned>(p.len, 128);
    const u128 m = mask6(len);
    const u128 lo = p.addr.value & m;
    v6_.push_back(Range6{lo, lo | ~m});
  } else {
    const unsigned len = std::min<unsigned>(p.len, 32);
    const uint32_t m = mask4(len);
    const uint32_t lo = p.addr.v4value() & m;
    v4_.push_back(Range4{lo, lo | ~m});
  }
  normalized_ = false;
}

void PrefixSet::merge(const PrefixSet& other) {
  v4_.insert(v4_.end(), other.v4_.begin(), other.v4_.end());
  v6_.insert(v6_.end(), other.v6_.begin(), other.v6_.end());
  normalized_ = false;
  normalize();
}

void PrefixSet::normalize() {
  if (normalized_) return;
  merge_sorted(&v4_, ~uint32_t{0});
  merge_sorted(&v6_, kAll6);
  normalized_ = true;
}

bool PrefixSet::contains(const IpAddr& a) const {
  if (a.v6) return range_contains(v6_, a.value);
  return range_contains(v4_, a.v4value());
}

std::vector<Prefix> PrefixSet::to_prefixes() const {
  std::vector<Prefix> out;
  out.reserve(v4_.size() + v6_.size());
  for (const Range4& r : v4_) cover(r.lo, r.hi, 32, false, &out);
  for (const Range6& r : v6_) cover(r.lo, r.hi, 128, true, &out);
  return out;
}

RangeDiff diff_ranges(const PrefixSet& from, const PrefixSet& to) {
  RangeDiff d;
  std::set_difference(to.v4().begin(), to.v4().end(), from.v4().begin(), from.v4().end(),
                      std::back_inserter(d.add4));
  std::set_difference(from.v4().begin(), from.v4().end(), to.v4().begin(), to.v4().end(),
                      std::back_inserter(d.del4));
  std::set_difference(to.v6().begin(), to.v6().end(), from.v6().begin(), from.v6().end(),
                      std::back_inserter(d.add6));
  std::set_difference(from.v6().begin(), from.v6().end(), to.v6().begin(), to.v6().end(),
                      std::back_inserter(d.del6));
  return d;
}

std::string_view to_string(Proto p) {
  switch (p) {
    case Proto::kTcp: return "tcp";
    case Proto::kUdp: return "udp";
    case Proto::kAny: return "any";
  }
  return "?";
}

std::optional<Proto> parse_proto(std::string_view s) {
  if (s == "tcp") return Proto::kTcp;
  if (s == "udp") return Proto::kUdp;
  if (s == "any") return Proto::kAny;
  return std::nullopt;
}

std::string PortRange::str() const {
  if (lo == hi) return std::to_string(lo);
  return std::to_string(lo) + "-" + std::to_string(hi);
}

namespace {

// One port number: decimal digits only, 1..65535. Error text names the problem.
Result<uint16_t> parse_port(std::string_view s, std::string_view whole) {
  if (s.empty()) {
    return usage_error("port range " + quote(whole) +
                       " has an empty port (write N, N-M or *)");
  }
  unsigned long n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return usage_error(quote(whole) + " is not a port or port range (write N, N-M or *)");
    }
    if (n <= 65535) n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n == 0 || n > 65535) {
    const std::string in = s == whole ? "" : " in " + quote(whole);
    return usage_error("port " + quote(s) + in + " is out of range (ports are 1-65535)");
  }
  return static_cast<uint16_t>(n);
}

}  // namespace

Result<PortRange> parse_port_range(std::string_view s) {
  if (s == "*") return PortRange{1, 65535};
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    auto p = parse_port(s, s);
    if (!p) return std::move(p).error();
    return PortRange{*p, *p};
  }
  auto lo = parse_port(s.substr(0, dash), s);
  if (!lo) return std::move(lo).error();
  auto hi = parse_port(s.substr(dash + 1), s);
  if (!hi) return std::move(hi).error();
  if (*lo > *hi) {
    return usage_error("port range " + quote(s) + " is reversed (write " + std::to_string(*hi) +
                       "-" + std::to_string(*lo) + ")");
  }
  return PortRange{*lo, *hi};
}

std::vector<PortRange> normalize_ports(std::vector<PortRange> ports) {
  std::sort(ports.begin(), ports.end());
  std::vector<PortRange> out;
  for (const PortRange& p : ports) {
    if (!out.empty() && (out.back().hi == 65535 || p.lo <= out.back().hi + 1)) {
      out.back().hi = std::max(out.back().hi, p.hi);
      continue;
    }
    out.push_back(p);
  }
  return out;
}

std::string ports_text(const std::vector<PortRange>& ports, std::string_view all) {
  std::string s;
  for (const auto& r : ports) {
    if (!s.empty()) s += ",";
    s += r.all() ? std::string(all) : r.str();
  }
  return s;
}

std::string proto_text(Proto p) {
  switch (p) {
    case Proto::kTcp: return "TCP";
    case Proto::kUdp: return "UDP";
    case Proto::kAny: return "TCP/UDP";
  }
  return "?";
}

bool ports_contain(const std::vector<PortRange>& ports, uint16_t port) {
  return std::any_of(ports.begin(), ports.end(),
                     [port](const PortRange& r) { return r.contains(port); });
}

bool is_special_use(const IpAddr& a) {
  struct Net4 {
    uint32_t net;
    unsigned len;
  };
  static constexpr Net4 kV4[] = {
      {0x00000000, 8},   // 0.0.0.0/8
      {0x0a000000, 8},   // 10.0.0.0/8
      {0x64400000, 10},  // 100.64.0.0/10
      {0x7f000000, 8},   // 127.0.0.0/8
      {0xa9fe0000, 16},  // 169.254.0.0/16
      {0xac100000, 12},  // 172.16.0.0/12
      {0xc0a80000, 16},  // 192.168.0.0/16
      {0xe0000000, 4},   // 224.0.0.0/4
      {0xf0000000, 4},   // 240.0.0.0/4
  };
  auto special4 = [](uint32_t v) {
    for (const Net4& n : kV4) {
      if ((v & mask4(n.len)) == n.net) return true;
    }
    return false;
  };
  if (!a.v6) return special4(a.v4value());

  const u128 v = a.value;
  if (v == 0 || v == 1) return true;  // ::/128, ::1/128
  const u128 hi16 = v >> 112;
  if ((hi16 & 0xfe00) == 0xfc00) return true;  // fc00::/7
  if ((hi16 & 0xffc0) == 0xfe80) return true;  // fe80::/10
  if ((hi16 & 0xff00) == 0xff00) return true;  // ff00::/8
  // IPv4-mapped ::ffff:0:0/96: judged by the embedded IPv4 address.
  if ((v >> 32) == u128{0xffff}) return special4(static_cast<uint32_t>(v));
  return false;
}

}  // namespace amlfw
