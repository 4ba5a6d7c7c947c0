// SPDX-License-Identifier: MIT
// A small Result<T> (g++ 12 has no std::expected): a value or an Error that
// carries the exit code of the contract and a one-line message.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace amlfw {

// Exit codes of SPEC.md. The numeric values are the process exit status.
enum class Exit : int {
  kOk = 0,
  kRuntime = 1,      // kernel refused, daemon unreachable, I/O
  kUsage = 2,        // usage or configuration error
  kData = 3,         // bad input data (service tags, catalog)
  kUnreachable = 4,  // check found a required endpoint unreachable
};

struct Error {
  Exit code = Exit::kRuntime;
  std::string message;  // one line: "place: what is wrong (fix)"

  // Prefixes context: Error{...}.context("apply plan") -> "apply plan: <message>".
  Error context(const std::string& where) const& {
    return Error{code, where + ": " + message};
  }
  Error context(const std::string& where) && {
    message = where + ": " + message;
    return std::move(*this);
  }
};

inline Error runtime_error(std::string msg) { return Error{Exit::kRuntime, std::move(msg)}; }
inline Error usage_error(std::string msg) { return Error{Exit::kUsage, std::move(msg)}; }
inline Error data_error(std::string msg) { return Error{Exit::kData, std::move(msg)}; }
// errno-based error: "what: strerror(err)".
inline Error sys_error(const std::string& what, int err = errno) {
  return Error{Exit::kRuntime, what + ": " + std::strerror(err)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error err) : v_(std::in_place_index<1>, std::move(err)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error err) : err_(std::move(err)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace amlfw

// Propagate an error: AMLFW_TRY(r) returns r's error from the enclosing function.
#define AMLFW_TRY(expr)                            \
  do {                                             \
    auto&& amlfw_try_r_ = (expr);                  \
    if (!amlfw_try_r_.ok()) return std::move(amlfw_try_r_).error(); \
  } while (0)
