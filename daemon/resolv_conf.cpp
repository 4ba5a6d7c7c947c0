// SPDX-License-Identifier: MIT
#include "daemon/resolv_conf.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "daemon/fd.h"

namespace amlfw {
namespace {

constexpr size_t kMaxFile = 1 << 20;  // resolv.conf is tiny; refuse to slurp a huge file

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Splits a line into whitespace-separated words, stopping at a comment.
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size() || line[i] == '#' || line[i] == ';') break;
    size_t start = i;
    while (i < line.size() && !is_space(line[i]) && line[i] != '#' && line[i] != ';') ++i;
    out.push_back(line.substr(start, i - start));
  }
  return out;
}

}  // namespace

ResolvConf parse_resolv_conf(std::string_view text, std::string_view origin) {
  ResolvConf rc;
  size_t lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++lineno;
    auto w = words(line);
    if (w.empty() || w[0] != "nameserver") {
      if (eol == text.size()) break;
      continue;
    }
    auto where = std::string(origin) + ":" + std::to_string(lineno) + ": ";
    if (w.size() < 2) {
      rc.warnings.push_back(where + "nameserver without an address, line ignored (add an IP address)");
    } else {
      std::string_view addr = w[1];
      if (addr.find('%') != std::string_view::npos) {
        rc.warnings.push_back(where + "nameserver '" + std::string(addr) +
                              "' has a zone id, which amlfw cannot use; skipped (use a global address)");
      } else if (auto ip = IpAddr::parse(addr)) {
        if (std::find(rc.nameservers.begin(), rc.nameservers.end(), *ip) == rc.nameservers.end())
          rc.nameservers.push_back(*ip);
      } else {
        rc.warnings.push_back(where + "nameserver '" + std::string(addr) +
                              "' is not an IP address; skipped (use an IPv4 or IPv6 literal)");
      }
    }
    if (eol == text.size()) break;
  }
  return rc;
}

Result<ResolvConf> read_resolv_conf(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return sys_error(path + ": cannot open");
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error(path + ": read");
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFile) return runtime_error(path + ": larger than 1 MiB, not a resolv.conf (check the path)");
  }
  return parse_resolv_conf(text, path);
}

}  // namespace amlfw
