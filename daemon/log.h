// SPDX-License-Identifier: MIT
// Logging for the program (never for libraries): "<N>" priority prefixes on stderr, which
// journald reads as the priority. One line a message.
#pragma once

#include <cstdarg>
#include <cstdio>

namespace amlfw {

enum class LogLevel : int { kErr = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

void set_log_level(LogLevel max);
[[gnu::format(printf, 2, 3)]] void log(LogLevel level, const char* fmt, ...);

#define LOG_ERR(...) ::amlfw::log(::amlfw::LogLevel::kErr, __VA_ARGS__)
#define LOG_WARN(...) ::amlfw::log(::amlfw::LogLevel::kWarning, __VA_ARGS__)
#define LOG_NOTICE(...) ::amlfw::log(::amlfw::LogLevel::kNotice, __VA_ARGS__)
#define LOG_INFO(...) ::amlfw::log(::amlfw::LogLevel::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...) ::amlfw::log(::amlfw::LogLevel::kDebug, __VA_ARGS__)

}  // namespace amlfw
