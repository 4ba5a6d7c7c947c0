// SPDX-License-Identifier: MIT
#include "policy/name_pattern.h"
#include "policy/text.h"

#include <algorithm>

namespace amlfw {
namespace {

constexpr size_t kMaxName = 253;
constexpr size_t kMaxLabel = 63;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool name_char(char c) {
  c = lower(c);
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string_view strip_dot(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return s;
}

// Checks a name without its trailing dot: non-empty, <= 253, labels 1..63 of [A-Za-z0-9-_].
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxName) return false;
  size_t label = 0;
  for (char c : s) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!name_char(c) || ++label > kMaxLabel) return false;
  }
  return label != 0;
}

bool iequals(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower_b[i]) return false;
  }
  return true;
}

// "name" is strictly below "base": it ends with "." + base and has at least one label before.
bool is_below(std::string_view name, std::string_view base) {
  if (name.size() < base.size() + 2) return false;
  const size_t cut = name.size() - base.size();
  return name[cut - 1] == '.' && iequals(name.substr(cut), base);
}

}  // namespace

bool normalize_dns_name(std::string_view in, std::string* out) {
  std::string_view s = strip_dot(in);
  if (!valid_name(s)) return false;
  out->resize(s.size());
  std::transform(s.begin(), s.end(), out->begin(), lower);
  return true;
}

Result<NamePattern> NamePattern::parse(std::string_view text) {
  const std::string where = "host-name pattern " + quote(text);
  if (text.find_first_of("<>{}") != std::string_view::npos) {
    return usage_error(where + " still holds template text (fill it from the config, e.g. " +
                       "storage_accounts or container_registries)");
  }
  NamePattern p;
  std::string_view base = text;
  if (!base.empty() && base[0] == '*') {
    base.remove_prefix(1);
    if (!base.empty() && base[0] == '.') {
      base.remove_prefix(1);
      p.kind_ = Kind::kSubdomains;
    } else {
      p.kind_ = Kind::kApexAndSubdomains;
    }
    if (strip_dot(base).empty()) {
      return usage_error(where + " matches every name (write a domain after the '*', " +
                         "e.g. *.example.com)");
    }
  }
  if (base.find('*') != std::string_view::npos) {
    return usage_error(where + ": '*' is allowed only as the first character " +
                       "(write *.example.com or *example.com)");
  }
  if (base.size() > kMaxName + 1 || strip_dot(base).size() > kMaxName) {
    return usage_error(where + " is longer than 253 characters");
  }
  std::string_view b = strip_dot(base);
  size_t label = 0;
  size_t labels = 1;
  for (size_t i = 0; i < b.size(); ++i) {
    const char c = b[i];
    if (c == '.') {
      if (label == 0) return usage_error(where + " has an empty label (remove the extra '.')");
      label = 0;
      ++labels;
      continue;
    }
    if (!name_char(c)) {
      return usage_error(where + " has the character " + quote(std::string_view(&b[i], 1)) +
                         " (host names use letters, digits, '-', '_' and '.')");
    }
    if (++label > kMaxLabel) {
      return usage_error(where + " has a label longer than 63 characters");
    }
  }
  if (label == 0) return usage_error(where + " has an empty label (remove the extra '.')");
  if (p.kind_ != Kind::kExact && labels < 2) {
    return usage_error(where + " is a wildcard over a whole top-level domain, which is too " +
                       "broad (name at least two labels, e.g. *.example.com)");
  }
  if (!normalize_dns_name(b, &p.base_)) {
    return usage_error(where + " is not a valid host name");  // unreachable after the checks
  }
  return p;
}

bool NamePattern::matches(std::string_view name) const {
  name = strip_dot(name);
  if (!valid_name(name)) return false;
  switch (kind_) {
    case Kind::kExact: return iequals(name, base_);
    case Kind::kSubdomains: return is_below(name, base_);
    case Kind::kApexAndSubdomains: return iequals(name, base_) || is_below(name, base_);
  }
  return false;
}

std::string NamePattern::str() const {
  switch (kind_) {
    case Kind::kExact: return base_;
    case Kind::kSubdomains: return "*." + base_;
    case Kind::kApexAndSubdomains: return "*" + base_;
  }
  return base_;
}

}  // namespace amlfw
