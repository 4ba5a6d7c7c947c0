// SPDX-License-Identifier: MIT
// Lower-case ARM region names per cloud, for validating `region` and suggesting a fix.
//
// Public: the regions of ServiceTags_Public_20251028.json (docs/servicetags-format.md,
// appendix A), named as ARM names them: the PascalCase suffix of the regional tags
// lower-cased (francecentral, not the internal code centralfrance; see §3.3). brazilne and
// northeurope2 exist only under AzureCloud and are left out, as are the staging
// pseudo-regions (EastUSSTG, SouthCentralUSSTG). tests/unit/config_test.cpp checks this list
// against the AzureMachineLearning.<Region> tags of the shared file.
#include <string>
#include <vector>

#include "policy/config.h"

namespace amlfw {

const std::vector<std::string>& known_regions(Cloud c) {
  static const std::vector<std::string> kPublic = {
      "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast", "austriaeast",
      "belgiumcentral", "brazilsouth", "brazilsoutheast", "canadacentral", "canadaeast",
      "centralindia", "centralus", "centraluseuap", "chilecentral", "eastasia", "eastus", "eastus2",
      "eastus2euap", "francecentral", "francesouth", "germanynorth", "germanywestcentral",
      "indonesiacentral", "israelcentral", "israelnorthwest", "italynorth", "japaneast",
      "japanwest", "jioindiacentral", "jioindiawest", "koreacentral", "koreasouth", "malaysiasouth",
      "malaysiawest", "mexicocentral", "newzealandnorth", "northcentralus", "northeurope",
      "norwayeast", "norwaywest", "polandcentral", "qatarcentral", "southafricanorth",
      "southafricawest", "southcentralus", "southcentralus2", "southeastasia", "southeastus",
      "southeastus3", "southindia", "spaincentral", "swedencentral", "swedensouth",
      "switzerlandnorth", "switzerlandwest", "taiwannorth", "taiwannorthwest", "uaecentral",
      "uaenorth", "uksouth", "ukwest", "westcentralus", "westeurope", "westindia", "westus",
      "westus2", "westus3",
  };
  static const std::vector<std::string> kUsGov = {
      "usdodcentral", "usdodeast", "usgovarizona", "usgovtexas", "usgovvirginia",
  };
  static const std::vector<std::string> kChina = {
      "chinaeast", "chinaeast2", "chinaeast3", "chinanorth", "chinanorth2", "chinanorth3",
  };
  // Every region of every cloud, for cloud = "auto".
  static const std::vector<std::string> kAll = [] {
    std::vector<std::string> all = kPublic;
    all.insert(all.end(), kUsGov.begin(), kUsGov.end());
    all.insert(all.end(), kChina.begin(), kChina.end());
    return all;
  }();
  switch (c) {
    case Cloud::kPublic: return kPublic;
    case Cloud::kUsGov: return kUsGov;
    case Cloud::kChina: return kChina;
    case Cloud::kAuto: return kAll;
  }
  return kPublic;
}

}  // namespace amlfw
