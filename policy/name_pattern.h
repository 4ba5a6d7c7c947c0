// SPDX-License-Identifier: MIT
// Host-name patterns of the documents and SPEC guarantee 5:
//   "example.com"    exactly that name;
//   "*.example.com"  one or more labels under example.com, not example.com itself;
//   "*example.com"   example.com and its subdomains, never a look-alike (evilexample.com).
// Matching ignores case and a trailing dot.
#pragma once

#include <string>
#include <string_view>

#include "policy/result.h"

namespace amlfw {

class NamePattern {
 public:
  enum class Kind : uint8_t { kExact, kSubdomains, kApexAndSubdomains };

  // Validates and lower-cases; rejects '*' anywhere but leading, empty labels, labels > 63,
  // names > 253, characters outside [a-z0-9-_.], and template leftovers ("<storage>").
  // Also rejects "*" alone and wildcards over a single label ("*.com", "*com"): too broad.
  // Errors are Exit::kUsage, one line quoting the pattern.
  static Result<NamePattern> parse(std::string_view text);

  bool matches(std::string_view name) const;
  Kind kind() const { return kind_; }
  const std::string& base() const { return base_; }  // "example.com" (lower case)
  std::string str() const;                           // canonical text, as in the catalog

  friend bool operator==(const NamePattern&, const NamePattern&) = default;

 private:
  Kind kind_ = Kind::kExact;
  std::string base_;
};

// Lower-cases and strips one trailing dot; returns false if the name is not a valid DNS name.
bool normalize_dns_name(std::string_view in, std::string* out);

}  // namespace amlfw
