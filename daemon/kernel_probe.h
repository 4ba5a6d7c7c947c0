// SPDX-License-Identifier: MIT
// What the running kernel offers amlfw: probes, never version checks.
#pragma once

#include <string>
#include <vector>

namespace amlfw {

struct KernelFeature {
  std::string name;
  bool present = false;
  std::string detail;  // path found, or why absent
};

std::vector<KernelFeature> probe_kernel();

}  // namespace amlfw
