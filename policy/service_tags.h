// SPDX-License-Identifier: MIT
// Microsoft's Service Tags JSON (ServiceTags_<Cloud>_<date>.json, or the ARM
// serviceTags API answer, which has the same "values" shape).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/config.h"
#include "policy/net.h"
#include "policy/result.h"

namespace amlfw {

struct ServiceTag {
  std::string name;          // canonical spelling from the data ("Storage.WestEurope")
  std::string region;        // properties.region ("" for global tags)
  uint64_t change_number = 0;
  size_t prefix_count = 0;   // as listed in the data (before merging)
  PrefixSet prefixes;        // normalized
};

struct ServiceTags {
  std::string cloud;         // "Public", "AzureGovernment", "China"
  uint64_t change_number = 0;
  std::vector<ServiceTag> tags;

  // Case-insensitive lookup by exact name. nullptr if absent. parse_service_tags builds the
  // index; call build_index() again after changing `tags` (without an index, find() scans).
  const ServiceTag* find(std::string_view name) const;
  void build_index();
  size_t total_prefixes() const;

 private:
  std::unordered_map<std::string, size_t> index_;  // lower-case name -> position
};

// Parses the JSON text. Errors are Exit::kData, one line naming origin and the element
// ("ServiceTags.json: values[12] (Storage.WestEurope): addressPrefixes[3]: '10.0.0.1/33' is not a CIDR").
// A truncated or malformed file is an error; unknown keys are ignored.
Result<ServiceTags> parse_service_tags(std::string_view json, std::string_view origin);

// The data's "cloud" value expected for a configured cloud ("Public" for kPublic ...).
std::string_view service_tags_cloud_name(Cloud c);

// The data's cloud must be the configured one (case-insensitive); kAuto accepts any.
// Error (Exit::kData): "origin: the data is for cloud 'X' but the config says cloud = "y" (...)".
Status check_service_tags_cloud(const ServiceTags& tags, Cloud c, std::string_view origin);

// Reads and parses a file.
Result<ServiceTags> load_service_tags_file(const std::string& path);

}  // namespace amlfw
