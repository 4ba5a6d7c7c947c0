// SPDX-License-Identifier: MIT
// Text and JSON views of the policy and the catalog (plan, catalog, explain).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "policy/catalog.h"
#include "policy/policy.h"

namespace amlfw {

nlohmann::json plan_json(const Policy& p);
std::string plan_table(const Policy& p);
nlohmann::json verdict_json(const Target& t, const Verdict& v);
// Filters: revision and cloud ("" = all clouds).
nlohmann::json catalog_json(const Catalog& c, const std::string& cloud);
std::string catalog_table(const Catalog& c, const std::string& cloud);

}  // namespace amlfw
