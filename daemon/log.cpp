// SPDX-License-Identifier: MIT
#include "daemon/log.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace amlfw {
namespace {
LogLevel g_max = LogLevel::kInfo;
}

void set_log_level(LogLevel max) { g_max = max; }

void log(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) > static_cast<int>(g_max)) return;
  char buf[2048];
  int n = std::snprintf(buf, sizeof buf, "<%d>amlfw: ", static_cast<int>(level));
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : std::min<size_t>(static_cast<size_t>(m), sizeof buf - n - 2));
  // One line: fold embedded newlines.
  for (size_t i = static_cast<size_t>(n); i < len; ++i)
    if (buf[i] == '\n') buf[i] = ' ';
  buf[len++] = '\n';
  ssize_t w = ::write(STDERR_FILENO, buf, len);
  (void)w;
}

}  // namespace amlfw
