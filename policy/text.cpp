// SPDX-License-Identifier: MIT
#include "policy/text.h"

namespace amlfw {

namespace {

bool is_control(unsigned char u) { return u < 0x20 || u == 0x7f; }

}  // namespace

std::string quote(std::string_view s, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(s[i]);
    if (is_control(u)) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += s[i];
    }
  }
  return out + "'";
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

std::string one_line(std::string msg) {
  for (char& c : msg)
    if (is_control(static_cast<unsigned char>(c))) c = ' ';
  return msg;
}

}  // namespace amlfw
