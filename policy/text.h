// SPDX-License-Identifier: MIT
// Pieces of untrusted input inside messages. Every error amlfw prints is one printable line
// whatever the input held: these are the only places that turn input bytes into message text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace amlfw {

// 'text', control characters and DEL escaped as \xNN, cut after `max` bytes with "...".
std::string quote(std::string_view s, size_t max = 80);

// The text unquoted, every byte outside printable ASCII as '?', cut after `max` bytes.
std::string printable(std::string_view s, size_t max = 80);

// The message with every control character or DEL replaced by a space: one line.
std::string one_line(std::string msg);

}  // namespace amlfw
