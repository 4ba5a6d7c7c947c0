// SPDX-License-Identifier: MIT
// A test that cannot run here (no root, no IPv6 loopback, no ../shared data) skips on a
// developer's machine and fails under CI=true: CI runs as root on a full checkout, where a
// skip would hide a test that should have run.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace amlfw::testing {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

}  // namespace amlfw::testing

// Use in a test body or SetUp (it returns from the function).
#define AMLFW_SKIP_OR_FAIL_IN_CI(why)                                                 \
  do {                                                                                \
    if (::amlfw::testing::in_ci()) FAIL() << (why) << " (CI=true: a skip is a failure)"; \
    GTEST_SKIP() << (why);                                                            \
  } while (0)
