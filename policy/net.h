// SPDX-License-Identifier: MIT
// Addresses, prefixes, normalized prefix sets (as sorted disjoint ranges),
// protocols and port ranges. Pure values: no syscalls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.h"

namespace amlfw {

using u128 = unsigned __int128;

struct IpAddr {
  bool v6 = false;
  u128 value = 0;  // IPv4 in the low 32 bits, host order

  static IpAddr v4addr(uint32_t a) { return IpAddr{false, a}; }
  static IpAddr v6addr(u128 a) { return IpAddr{true, a}; }
  // Parses "192.0.2.1" or "2001:db8::1" (no brackets, no zone).
  static std::optional<IpAddr> parse(std::string_view s);
  std::string str() const;
  uint32_t v4value() const { return static_cast<uint32_t>(value); }
  // Network-order bytes: 4 for IPv4, 16 for IPv6.
  void to_bytes(uint8_t* out) const;
  static IpAddr from_bytes(bool v6, const uint8_t* in);

  friend bool operator==(const IpAddr&, const IpAddr&) = default;
  friend auto operator<=>(const IpAddr& a, const IpAddr& b) {
    if (a.v6 != b.v6) return a.v6 <=> b.v6;
    return a.value <=> b.value;
  }
};

struct Prefix {
  IpAddr addr;
  uint8_t len = 0;

  // Strict CIDR ("198.51.100.0/24"): host bits set is an error, a bare address is /32 or /128
  // only when allow_bare is true. Errors are Exit::kUsage, one line quoting the text and
  // naming the fix ("'10.1.2.3/8' has host bits set (did you mean 10.0.0.0/8?)"); callers
  // reading data files re-tag them (parse_service_tags gives Exit::kData).
  static Result<Prefix> parse(std::string_view s, bool allow_bare = false);
  std::string str() const;
  friend bool operator==(const Prefix&, const Prefix&) = default;
};

// Inclusive ranges.
struct Range4 {
  uint32_t lo = 0, hi = 0;
  friend bool operator==(const Range4&, const Range4&) = default;
  friend auto operator<=>(const Range4&, const Range4&) = default;
};
struct Range6 {
  u128 lo = 0, hi = 0;
  friend bool operator==(const Range6& a, const Range6& b) { return a.lo == b.lo && a.hi == b.hi; }
  friend bool operator<(const Range6& a, const Range6& b) {
    return a.lo < b.lo || (a.lo == b.lo && a.hi < b.hi);
  }
};

// A set of addresses kept as sorted, disjoint, non-adjacent ranges once normalized.
// add() appends; normalize() sorts and merges overlapping and adjacent ranges.
class PrefixSet {
 public:
  void add(const Prefix& p);
  void add(const IpAddr& a) { add(Prefix{a, static_cast<uint8_t>(a.v6 ? 128 : 32)}); }
  void add_range4(Range4 r) { v4_.push_back(r); normalized_ = false; }
  void add_range6(Range6 r) { v6_.push_back(r); normalized_ = false; }
  void merge(const PrefixSet& other);  // union; result is normalized
  void normalize();
  bool normalized() const { return normalized_; }

  bool contains(const IpAddr& a) const;  // requires normalized()
  bool empty() const { return v4_.empty() && v6_.empty(); }
  const std::vector<Range4>& v4() const { return v4_; }
  const std::vector<Range6>& v6() const { return v6_; }
  // Minimal CIDR cover of the ranges (for LPM tries and for display).
  std::vector<Prefix> to_prefixes() const;
  void clear() { v4_.clear(); v6_.clear(); normalized_ = true; }

  friend bool operator==(const PrefixSet& a, const PrefixSet& b) {
    return a.v4_ == b.v4_ && a.v6_ == b.v6_;
  }

 private:
  std::vector<Range4> v4_;
  std::vector<Range6> v6_;
  bool normalized_ = true;
};

// What to add and what to remove to turn one normalized set into another (both must be
// normalized):
// ranges present in exactly one of the two (compared as whole ranges).
struct RangeDiff {
  std::vector<Range4> add4, del4;
  std::vector<Range6> add6, del6;
  bool empty() const { return add4.empty() && del4.empty() && add6.empty() && del6.empty(); }
  size_t size() const { return add4.size() + del4.size() + add6.size() + del6.size(); }
};
RangeDiff diff_ranges(const PrefixSet& from, const PrefixSet& to);

enum class Proto : uint8_t { kTcp = 6, kUdp = 17, kAny = 0 };
std::string_view to_string(Proto p);
std::optional<Proto> parse_proto(std::string_view s);

struct PortRange {
  uint16_t lo = 1, hi = 65535;
  bool all() const { return lo == 1 && hi == 65535; }
  bool contains(uint16_t p) const { return p >= lo && p <= hi; }
  std::string str() const;  // "443" or "29876-29877"
  friend bool operator==(const PortRange&, const PortRange&) = default;
  friend auto operator<=>(const PortRange&, const PortRange&) = default;
};
// "443", "80-90", "*" (all ports). Error text names the problem; errors are Exit::kUsage.
Result<PortRange> parse_port_range(std::string_view s);
// Sorts and merges overlapping/adjacent ranges.
std::vector<PortRange> normalize_ports(std::vector<PortRange> ports);
bool ports_contain(const std::vector<PortRange>& ports, uint16_t port);
// For people: "443,8000-8010", `all` for a range of every port ("any port" in sentences,
// "*" in tables); "TCP", "UDP", "TCP/UDP".
std::string ports_text(const std::vector<PortRange>& ports, std::string_view all = "any port");
std::string proto_text(Proto p);

// Special-use ranges that DNS answers must not teach (SPEC guarantee 6, rebinding).
bool is_special_use(const IpAddr& a);

}  // namespace amlfw
