// SPDX-License-Identifier: MIT
// The built-in catalog: both revisions parse, every row of every cloud says what the
// documents say (the tables below are restated from azureml-endpoints.md §2 and
// azureml-endpoints-2026-03.md, not generated from the data), conditions evaluate, and
// every kind of bad catalog gives its one-line message with line:col.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "policy/catalog.h"
#include "policy/name_pattern.h"

namespace amlfw {
namespace {

// ---- the documents, restated ------------------------------------------------------------------

constexpr const char* Y = "+";  // for a service-tag row: the row applies in this cloud

struct Want {
  const char* id;
  const char* direction;
  const char* proto;
  const char* ports;  // as written in the data, comma-separated ("*" is 1-65535)
  const char* when;
  const char* tag;    // service tag, or nullptr for a host row
  const char* pub;    // hosts (space-separated) or Y; nullptr: not in this cloud
  const char* gov;
  const char* cn;
};

const std::vector<Want> kWant2021 = {
    // §2.1 inbound
    {"IN1", "ingress", "tcp", "29876-29877", "inbound && (compute_instance || compute_cluster)",
     "BatchNodeManagement.region", Y, Y, Y},
    {"IN2", "ingress", "tcp", "44224", "inbound && compute_instance", "AzureMachineLearning", Y, Y, Y},
    // §2.2 network rules
    {"NR1", "egress", "tcp", "1-65535", "true", "AzureActiveDirectory", Y, Y, Y},
    {"NR2", "egress", "tcp", "443", "true", "AzureMachineLearning", Y, Y, Y},
    {"NR3", "egress", "tcp", "443", "true", "AzureResourceManager", Y, Y, Y},
    {"NR4", "egress", "tcp", "443", "compute_instance || compute_cluster", "Storage.region", Y, Y, Y},
    {"NR5", "egress", "tcp", "443", "true", "AzureFrontDoor.FrontEnd", Y, Y, nullptr},
    {"NR6", "egress", "tcp", "443", "custom_images", "ContainerRegistry.region", Y, Y, Y},
    {"NR7", "egress", "tcp", "443", "user_managed_dependencies", "MicrosoftContainerRegistry.region", Y, Y, Y},
    {"NR8", "egress", "tcp", "443", "hbi_workspace", "KeyVault.region", Y, Y, Y},
    // §2.3 application rules (http, https), with the Python, R, VS Code and diagnostics sections
    {"AR1", "egress", "tcp", "80,443", "compute_instance || compute_cluster", nullptr, "graph.windows.net",
     "graph.windows.net", "graph.chinacloudapi.cn"},
    {"AR2", "egress", "tcp", "80,443", "python", nullptr, "anaconda.com *.anaconda.com", "anaconda.com *.anaconda.com",
     "anaconda.com *.anaconda.com"},
    {"AR3", "egress", "tcp", "80,443", "python", nullptr, "*.anaconda.org", "*.anaconda.org", "*.anaconda.org"},
    {"AR4", "egress", "tcp", "80,443", "python", nullptr, "pypi.org", "pypi.org", "pypi.org"},
    {"AR4b", "egress", "tcp", "80,443", "python && pythonhosted", nullptr, "*.pythonhosted.org", "*.pythonhosted.org",
     "*.pythonhosted.org"},
    {"AR5", "egress", "tcp", "80,443", "r", nullptr, "cloud.r-project.org", "cloud.r-project.org",
     "cloud.r-project.org"},
    {"AR6", "egress", "tcp", "80,443", "python", nullptr, "*pytorch.org", "*pytorch.org", "*pytorch.org"},
    {"AR7", "egress", "tcp", "80,443", "python", nullptr, "*.tensorflow.org", "*.tensorflow.org", "*.tensorflow.org"},
    {"AR8", "egress", "tcp", "80,443", "vscode", nullptr, "update.code.visualstudio.com *.vo.msecnd.net",
     "update.code.visualstudio.com *.vo.msecnd.net", "update.code.visualstudio.com *.vo.msecnd.net"},
    {"AR9", "egress", "tcp", "80,443", "vscode", nullptr, "raw.githubusercontent.com", "raw.githubusercontent.com",
     "raw.githubusercontent.com"},
    {"AR10", "egress", "tcp", "80,443", "support_diagnostics", nullptr, "dc.applicationinsights.azure.com", nullptr,
     nullptr},
    {"AR11", "egress", "tcp", "80,443", "support_diagnostics", nullptr, "dc.applicationinsights.microsoft.com",
     nullptr, nullptr},
    {"AR12", "egress", "tcp", "80,443", "support_diagnostics", nullptr, "dc.services.visualstudio.com", nullptr,
     nullptr},
    // §2.9 AKS
    {"AK1", "egress", "tcp", "443", "aks", nullptr, "mcr.microsoft.com", "mcr.microsoft.com", "mcr.microsoft.com"},
    // §2.4 general Azure hosts (MH1 China: erratum, the seed prints ".chinacloudapi.cn")
    {"MH1", "egress", "tcp", "443", "true", nullptr, "login.microsoftonline.com", "login.microsoftonline.us",
     "login.chinacloudapi.cn"},
    {"MH2", "egress", "tcp", "443", "true", nullptr, "management.azure.com", "management.azure.us",
     "management.azure.cn"},
    {"MH3", "egress", "tcp", "443", "true", nullptr, "management.azure.com", "management.usgovcloudapi.net",
     "management.chinacloudapi.cn"},
    // §2.5 Azure Machine Learning hosts
    {"AH1", "egress", "tcp", "443", "true", nullptr, "ml.azure.com", "ml.azure.us", "studio.ml.azure.cn"},
    {"AH2", "egress", "tcp", "443", "true", nullptr, "*.azureml.ms", "*.ml.azure.us", "*.ml.azure.cn"},
    {"AH3", "egress", "tcp", "443", "true", nullptr, "*.notebooks.azure.net", "*.notebooks.usgovcloudapi.net",
     "*.notebooks.chinacloudapi.cn"},
    {"AH4", "egress", "tcp", "443", "true", nullptr, "<storage>.file.core.windows.net",
     "<storage>.file.core.usgovcloudapi.net", "<storage>.file.core.chinacloudapi.cn"},
    {"AH5", "egress", "tcp", "443", "true", nullptr, "<storage>.dfs.core.windows.net",
     "<storage>.dfs.core.usgovcloudapi.net", "<storage>.dfs.core.chinacloudapi.cn"},
    {"AH6", "egress", "tcp", "443", "true", nullptr, "<storage>.blob.core.windows.net",
     "<storage>.blob.core.usgovcloudapi.net", "<storage>.blob.core.chinacloudapi.cn"},
    {"AH7", "egress", "tcp", "443", "true", nullptr, "graph.microsoft.com", "graph.microsoft.us",
     "graph.chinacloudapi.cn"},
    {"AH8", "egress", "tcp", "443", "true", nullptr, "*.aznbcontent.net", nullptr, nullptr},
    // §2.6 compute hosts (CH4 China: erratum, the seed prints "*blob.core.chinacloudapi.cn")
    {"CH1", "egress", "tcp", "443", "compute_instance || compute_cluster", nullptr, "graph.windows.net",
     "graph.windows.net", "graph.chinacloudapi.cn"},
    {"CH2", "egress", "tcp", "443", "compute_instance", nullptr, "*.instances.azureml.net", "*.instances.azureml.us",
     "*.instances.azureml.cn"},
    {"CH3", "egress", "tcp", "443,8787,18881", "compute_instance", nullptr, "*.instances.azureml.ms", nullptr,
     nullptr},
    {"CH4", "egress", "tcp", "443", "compute_instance || compute_cluster", nullptr,
     "*.blob.core.windows.net *.table.core.windows.net *.queue.core.windows.net",
     "*.blob.core.usgovcloudapi.net *.table.core.usgovcloudapi.net *.queue.core.usgovcloudapi.net",
     "*.blob.core.chinacloudapi.cn *.table.core.chinacloudapi.cn *.queue.core.chinacloudapi.cn"},
    {"CH5", "egress", "tcp", "443", "hbi_workspace", nullptr, "*.vault.azure.net", "*.vault.usgovcloudapi.net",
     "*.vault.azure.cn"},
    // §2.7 Docker images
    {"DI1", "egress", "tcp", "443", "user_managed_dependencies", nullptr, "mcr.microsoft.com", "mcr.microsoft.com",
     "mcr.microsoft.com"},
    {"DI2", "egress", "tcp", "443", "true", nullptr, "viennaglobal.azurecr.io", "viennaglobal.azurecr.io",
     "viennaglobal.azurecr.io"},
    {"DI3", "egress", "tcp", "443", "custom_images", nullptr, "<acr>.azurecr.io", "<acr>.azurecr.us",
     "<acr>.azurecr.cn"},
    // §2.10 Azure Arc-enabled Kubernetes
    {"AX1", "egress", "tcp", "443", "arc_extension", nullptr, "*.data.mcr.microsoft.com", "*.data.mcr.microsoft.com",
     "*.data.mcr.microsoft.com"},
    {"AX2", "egress", "tcp", "443", "arc_extension", nullptr, "quay.io *.quay.io", "quay.io *.quay.io",
     "quay.io *.quay.io"},
    {"AX3", "egress", "tcp", "443", "arc_extension", nullptr, "gcr.io", "gcr.io", "gcr.io"},
    {"AX4", "egress", "tcp", "443", "arc_extension", nullptr, "storage.googleapis.com", "storage.googleapis.com",
     "storage.googleapis.com"},
    {"AX5", "egress", "tcp", "443", "arc_extension", nullptr, "registry-1.docker.io production.cloudflare.docker.com",
     "registry-1.docker.io production.cloudflare.docker.com", "registry-1.docker.io production.cloudflare.docker.com"},
    {"AX6", "egress", "tcp", "443", "arc_extension", nullptr, "auth.docker.io", "auth.docker.io", "auth.docker.io"},
    {"AX7", "egress", "tcp", "443", "arc_extension", nullptr,
     "*.kusto.windows.net *.table.core.windows.net *.queue.core.windows.net", nullptr, nullptr},
    {"AT1", "egress", "tcp", "443", "arc_training", nullptr, "pypi.org", "pypi.org", "pypi.org"},
    {"AT2", "egress", "tcp", "80", "arc_training", nullptr, "archive.ubuntu.com security.ubuntu.com ppa.launchpad.net",
     "archive.ubuntu.com security.ubuntu.com ppa.launchpad.net",
     "archive.ubuntu.com security.ubuntu.com ppa.launchpad.net"},
    {"ATI1", "egress", "tcp", "443", "arc_training || arc_inference", nullptr, "*.azurecr.io", nullptr, nullptr},
    {"ATI2", "egress", "tcp", "443", "arc_training || arc_inference", nullptr, "*.blob.core.windows.net", nullptr,
     nullptr},
    {"ATI3", "egress", "tcp", "443", "arc_training || arc_inference", nullptr,
     "*.workspace.<region>.api.azureml.ms <region>.experiments.azureml.net <region>.api.azureml.ms", nullptr, nullptr},
};

const std::vector<Want> kWant2026 = {
    // Basic configuration
    {"IN2", "ingress", "tcp", "44224", "inbound && (compute_instance || compute_cluster)", "AzureMachineLearning", Y,
     Y, Y},
    {"NR1", "egress", "tcp", "80,443", "true", "AzureActiveDirectory", Y, Y, Y},
    {"NR2", "egress", "tcp", "443,8787,18881", "true", "AzureMachineLearning", Y, Y, Y},
    {"NR2b", "egress", "udp", "5831", "compute_instance || compute_cluster", "AzureMachineLearning", Y, Y, Y},
    {"NR9", "egress", "any", "443", "compute_instance || compute_cluster", "BatchNodeManagement.region", Y, Y, Y},
    {"NR3", "egress", "tcp", "443", "true", "AzureResourceManager", Y, Y, Y},
    {"NR4", "egress", "tcp", "443", "compute_instance || compute_cluster", "Storage.region", Y, Y, Y},
    {"NR5", "egress", "tcp", "443", "true", "AzureFrontDoor.FrontEnd", Y, Y, nullptr},
    {"NR7", "egress", "tcp", "443", "true", "MicrosoftContainerRegistry", Y, Y, Y},
    {"NR10", "egress", "tcp", "443", "true", "Frontdoor.FirstParty", Y, Y, Y},
    {"NR11", "egress", "tcp", "443", "support_diagnostics", "AzureMonitor", Y, Y, Y},
    // Scenarios: hbi_workspace, RStudio
    {"NR8", "egress", "tcp", "443", "hbi_workspace", "KeyVault.region", Y, Y, Y},
    {"RS1", "egress", "tcp", "443", "r", nullptr, "ghcr.io pkg-containers.githubusercontent.com",
     "ghcr.io pkg-containers.githubusercontent.com", "ghcr.io pkg-containers.githubusercontent.com"},
    {"AR5", "egress", "tcp", "80,443", "r", nullptr, "cloud.r-project.org", "cloud.r-project.org",
     "cloud.r-project.org"},
    // Python hosts (include of 06/2023)
    {"AR2", "egress", "tcp", "80,443", "python", nullptr, "anaconda.com *.anaconda.com", "anaconda.com *.anaconda.com",
     "anaconda.com *.anaconda.com"},
    {"AR3", "egress", "tcp", "80,443", "python", nullptr, "*.anaconda.org", "*.anaconda.org", "*.anaconda.org"},
    {"AR4", "egress", "tcp", "80,443", "python", nullptr, "pypi.org", "pypi.org", "pypi.org"},
    {"AR4b", "egress", "tcp", "80,443", "python && pythonhosted", nullptr, "*.pythonhosted.org", "*.pythonhosted.org",
     "*.pythonhosted.org"},
    {"AR6", "egress", "tcp", "80,443", "python", nullptr, "pytorch.org *.pytorch.org", "pytorch.org *.pytorch.org",
     "pytorch.org *.pytorch.org"},
    {"AR7", "egress", "tcp", "80,443", "python", nullptr, "*.tensorflow.org", "*.tensorflow.org", "*.tensorflow.org"},
    // Kubernetes compute
    {"AX7", "egress", "tcp", "443", "arc_extension || arc_training || arc_inference", nullptr,
     "*.kusto.windows.net *.table.core.windows.net *.queue.core.windows.net", nullptr, nullptr},
    {"ATI1", "egress", "tcp", "443", "arc_training || arc_inference", nullptr,
     "<acr>.azurecr.io <acr>.<region>.data.azurecr.io", nullptr, nullptr},
    {"ATI2", "egress", "tcp", "443", "arc_training || arc_inference", nullptr, "<storage>.blob.core.windows.net",
     nullptr, nullptr},
    {"ATI3", "egress", "tcp", "443", "arc_training || arc_inference", nullptr,
     "<workspace-id>.workspace.<region>.api.azureml.ms <region>.experiments.azureml.net <region>.api.azureml.ms",
     nullptr, nullptr},
    {"AT1", "egress", "tcp", "443", "arc_training", nullptr, "pypi.org", "pypi.org", "pypi.org"},
    {"AT2", "egress", "tcp", "80", "arc_training", nullptr, "archive.ubuntu.com security.ubuntu.com ppa.launchpad.net",
     "archive.ubuntu.com security.ubuntu.com ppa.launchpad.net",
     "archive.ubuntu.com security.ubuntu.com ppa.launchpad.net"},
    // VS Code
    {"VS1", "egress", "tcp", "443", "vscode", nullptr,
     "*.vscode.dev *.vscode-unpkg.net *.vscode-cdn.net *.vscodeexperiments.azureedge.net default.exp-tas.com",
     "*.vscode.dev *.vscode-unpkg.net *.vscode-cdn.net *.vscodeexperiments.azureedge.net default.exp-tas.com",
     "*.vscode.dev *.vscode-unpkg.net *.vscode-cdn.net *.vscodeexperiments.azureedge.net default.exp-tas.com"},
    {"VS2", "egress", "tcp", "443", "vscode", nullptr, "code.visualstudio.com", "code.visualstudio.com",
     "code.visualstudio.com"},
    {"AR8", "egress", "tcp", "80,443", "vscode", nullptr, "update.code.visualstudio.com *.vo.msecnd.net",
     "update.code.visualstudio.com *.vo.msecnd.net", "update.code.visualstudio.com *.vo.msecnd.net"},
    {"VS3", "egress", "tcp", "443", "vscode", nullptr,
     "marketplace.visualstudio.com vscode.blob.core.windows.net *.gallerycdn.vsassets.io",
     "marketplace.visualstudio.com vscode.blob.core.windows.net *.gallerycdn.vsassets.io",
     "marketplace.visualstudio.com vscode.blob.core.windows.net *.gallerycdn.vsassets.io"},
    {"AR9", "egress", "tcp", "443", "vscode", nullptr, "github.com", "github.com", "github.com"},
    {"VS4", "egress", "tcp", "443", "vscode", nullptr, "vscode.download.prss.microsoft.com",
     "vscode.download.prss.microsoft.com", "vscode.download.prss.microsoft.com"},
    {"VS5", "egress", "tcp", "8704-8710", "vscode", nullptr, "*.instances.azureml.ms", "*.instances.azureml.ms",
     "*.instances.azureml.ms"},
    // General Azure hosts
    {"MH1", "egress", "tcp", "80,443", "true", nullptr, "login.microsoftonline.com", "login.microsoftonline.us",
     "login.chinacloudapi.cn"},
    {"MH2", "egress", "tcp", "443", "true", nullptr, "management.azure.com", "management.azure.us",
     "management.azure.cn"},
    {"MH3", "egress", "tcp", "443", "true", nullptr, "management.azure.com", "management.usgovcloudapi.net",
     "management.chinacloudapi.cn"},
    // Azure Machine Learning hosts
    {"AH1", "egress", "tcp", "443", "true", nullptr, "ml.azure.com", "ml.azure.us", "studio.ml.azure.cn"},
    {"AH2", "egress", "tcp", "443", "true", nullptr, "*.azureml.ms *.azureml.net", "*.ml.azure.us",
     "*.ml.azure.cn *.azureml.cn"},
    {"AH9", "egress", "tcp", "443", "true", nullptr, "*.modelmanagement.azureml.net", "*.modelmanagement.azureml.us",
     "*.modelmanagement.ml.azure.cn"},
    {"AH3", "egress", "tcp", "443", "true", nullptr, "*.notebooks.azure.net", "*.notebooks.usgovcloudapi.net",
     "*.notebooks.chinacloudapi.cn"},
    {"AH4", "egress", "tcp", "443,445", "true", nullptr, "<storage>.file.core.windows.net",
     "<storage>.file.core.usgovcloudapi.net", "<storage>.file.core.chinacloudapi.cn"},
    {"AH5", "egress", "tcp", "443", "true", nullptr, "<storage>.dfs.core.windows.net",
     "<storage>.dfs.core.usgovcloudapi.net", "<storage>.dfs.core.chinacloudapi.cn"},
    {"AH6", "egress", "tcp", "443", "true", nullptr, "<storage>.blob.core.windows.net",
     "<storage>.blob.core.usgovcloudapi.net", "<storage>.blob.core.chinacloudapi.cn"},
    {"AH7", "egress", "tcp", "443", "true", nullptr, "graph.microsoft.com", "graph.microsoft.us",
     "graph.chinacloudapi.cn"},
    {"AH8", "egress", "tcp", "443", "true", nullptr, "*.aznbcontent.net", "*.aznbcontent.net", "*.aznbcontent.net"},
    {"AH10", "egress", "tcp", "443", "true", nullptr, "automlresources-prod.azureedge.net aka.ms", nullptr, nullptr},
    // Compute instance and cluster hosts
    {"CH1", "egress", "tcp", "443", "compute_instance || compute_cluster", nullptr, "graph.windows.net",
     "graph.windows.net", "graph.chinacloudapi.cn"},
    {"CH2", "egress", "tcp", "443", "compute_instance", nullptr, "*.instances.azureml.net", "*.instances.azureml.us",
     "*.instances.azureml.cn"},
    {"CH3", "egress", "tcp", "443,8787,18881", "compute_instance", nullptr, "*.instances.azureml.ms",
     "*.instances.azureml.ms", "*.instances.azureml.ms"},
    {"CH6", "egress", "udp", "5831", "compute_instance || compute_cluster", nullptr,
     "<region>.tundra.azureml.ms *.tundra.<region>.api.azureml.ms", "<region>.tundra.azureml.us",
     "<region>.tundra.azureml.cn"},
    {"CH7", "egress", "any", "443", "compute_instance || compute_cluster", nullptr,
     "*.<region>.batch.azure.com *.<region>.service.batch.azure.com", nullptr, nullptr},
    {"CH4", "egress", "tcp", "443", "compute_instance || compute_cluster", nullptr,
     "*.blob.core.windows.net *.table.core.windows.net *.queue.core.windows.net",
     "*.blob.core.usgovcloudapi.net *.table.core.usgovcloudapi.net *.queue.core.usgovcloudapi.net",
     "*.blob.core.chinacloudapi.cn *.table.core.chinacloudapi.cn *.queue.core.chinacloudapi.cn"},
    {"CH5", "egress", "tcp", "443", "hbi_workspace", nullptr, "*.vault.azure.net", "*.vault.usgovcloudapi.net",
     "*.vault.azure.cn"},
    // Docker images
    {"DI1", "egress", "tcp", "443", "true", nullptr, "mcr.microsoft.com *.data.mcr.microsoft.com",
     "mcr.microsoft.com *.data.mcr.microsoft.com", "mcr.microsoft.com *.data.mcr.microsoft.com"},
    {"DI3", "egress", "tcp", "443", "custom_images", nullptr, "<acr>.azurecr.io", "<acr>.azurecr.us",
     "<acr>.azurecr.cn"},
    // Monitoring
    {"AR10", "egress", "tcp", "80,443", "support_diagnostics", nullptr, "dc.applicationinsights.azure.com", nullptr,
     nullptr},
    {"AR11", "egress", "tcp", "80,443", "support_diagnostics", nullptr, "dc.applicationinsights.microsoft.com",
     nullptr, nullptr},
    {"AR12", "egress", "tcp", "80,443", "support_diagnostics", nullptr, "dc.services.visualstudio.com", nullptr,
     nullptr},
    {"MO1", "egress", "tcp", "443", "support_diagnostics", nullptr, "*.in.applicationinsights.azure.com", nullptr,
     nullptr},
};

// ---- helpers ---------------------------------------------------------------------------------

const Catalog& builtin(const std::string& rev) {
  auto c = builtin_catalog(rev);
  if (!c.ok()) ADD_FAILURE() << c.error().message;
  static const Catalog kEmpty;
  return c.ok() ? **c : kEmpty;
}

std::string port_list(const std::vector<PortRange>& ports) {
  std::string out;
  for (const auto& p : ports) out += (out.empty() ? "" : ",") + p.str();
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

const char* want_for(const Want& w, Cloud c) {
  return c == Cloud::kPublic ? w.pub : c == Cloud::kUsGov ? w.gov : w.cn;
}

bool in_cloud(const CatalogRow& r, Cloud c) {
  return std::find(r.clouds.begin(), r.clouds.end(), c) != r.clouds.end();
}

void check_revision(const std::string& rev, const std::vector<Want>& want) {
  const Catalog& cat = builtin(rev);
  ASSERT_EQ(cat.revision, rev);
  ASSERT_EQ(cat.rows.size(), want.size()) << "rows in " << rev;
  for (Cloud cloud : {Cloud::kPublic, Cloud::kUsGov, Cloud::kChina}) {
    SCOPED_TRACE(rev + " cloud " + std::string(to_string(cloud)));
    std::map<std::string, const CatalogRow*> have;
    for (const auto& r : cat.rows)
      if (in_cloud(r, cloud)) have[r.id] = &r;
    std::set<std::string> expected;
    for (const auto& w : want) {
      const char* dest = want_for(w, cloud);
      if (dest == nullptr) continue;
      expected.insert(w.id);
      auto it = have.find(w.id);
      if (it == have.end()) {
        ADD_FAILURE() << w.id << " is missing";
        continue;
      }
      const CatalogRow& r = *it->second;
      SCOPED_TRACE(std::string("row ") + w.id);
      EXPECT_EQ(to_string(r.direction), w.direction);
      EXPECT_EQ(to_string(r.proto), w.proto);
      EXPECT_EQ(port_list(r.ports), w.ports);
      EXPECT_EQ(r.when.text(), w.when);
      if (w.tag != nullptr) {
        EXPECT_EQ(r.service_tag, w.tag);
        EXPECT_TRUE(r.hosts.empty());
      } else {
        EXPECT_TRUE(r.service_tag.empty());
        auto h = r.hosts.find(cloud);
        ASSERT_NE(h, r.hosts.end());
        EXPECT_EQ(join(h->second), dest);
      }
      EXPECT_FALSE(r.section.empty());
      EXPECT_FALSE(r.source.empty());
      EXPECT_FALSE(r.why.empty());
    }
    for (const auto& [id, row] : have) EXPECT_TRUE(expected.count(id)) << id << " is not in the documents";
  }
}

const CatalogRow* find_row(const Catalog& c, const std::string& id) {
  for (const auto& r : c.rows)
    if (r.id == id) return &r;
  return nullptr;
}

std::map<std::string, bool> all_features(bool on) {
  std::map<std::string, bool> m;
  for (const auto& [name, def] : kFeatureDefaults) m[name] = on;
  return m;
}

std::set<std::string> active(const Catalog& c, const std::map<std::string, bool>& f) {
  std::set<std::string> out;
  for (const auto& r : c.rows)
    if (r.when.eval(f)) out.insert(r.id);
  return out;
}

// ---- the embedded revisions ------------------------------------------------------------------

TEST(Catalog, BothRevisionsAreEmbeddedAndParse) {
  EXPECT_EQ(catalog_revisions(), (std::vector<std::string>{"2021-10", "2026-03"}));
  for (const auto& rev : catalog_revisions()) {
    auto c = builtin_catalog(rev);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ((*c)->revision, rev);
    EXPECT_FALSE((*c)->title.empty());
    EXPECT_FALSE((*c)->sources.empty());
    auto again = builtin_catalog(rev);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*c, *again) << "parsed once, then cached";
  }
}

TEST(Catalog, UnknownRevisionIsAUsageError) {
  auto c = builtin_catalog("2021-11");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Exit::kUsage);
  EXPECT_EQ(c.error().message, "unknown catalog revision '2021-11' (did you mean '2021-10'?)");
  c = builtin_catalog("latest");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "unknown catalog revision 'latest' (revisions are 2021-10, 2026-03)");
}

TEST(Catalog, Revision2021MatchesTheSeedArticle) { check_revision("2021-10", kWant2021); }
TEST(Catalog, Revision2026MatchesTheNewestArticle) { check_revision("2026-03", kWant2026); }

TEST(Catalog, ErrataAreCorrectedAndSaid) {
  const Catalog& c = builtin("2021-10");
  const CatalogRow* mh1 = find_row(c, "MH1");
  ASSERT_NE(mh1, nullptr);
  EXPECT_NE(mh1->erratum.find("'.chinacloudapi.cn'"), std::string::npos) << mh1->erratum;
  const CatalogRow* ch4 = find_row(c, "CH4");
  ASSERT_NE(ch4, nullptr);
  EXPECT_NE(ch4->erratum.find("'*blob.core.chinacloudapi.cn'"), std::string::npos) << ch4->erratum;
  const CatalogRow* ar9 = find_row(c, "AR9");
  ASSERT_NE(ar9, nullptr);
  EXPECT_NE(ar9->note.find("not paths"), std::string::npos) << ar9->note;
  const CatalogRow* nr10 = find_row(builtin("2026-03"), "NR10");
  ASSERT_NE(nr10, nullptr);
  EXPECT_NE(nr10->erratum.find("AzureFrontDoor.FirstParty"), std::string::npos);
  // Only rows that correct the source carry an erratum.
  for (const auto& rev : catalog_revisions())
    for (const auto& r : builtin(rev).rows)
      if (r.id != "MH1" && r.id != "CH4" && r.id != "NR10") {
        EXPECT_TRUE(r.erratum.empty()) << rev << " " << r.id;
      }
}

TEST(Catalog, EveryHostIsAValidPatternOnceTemplatesAreFilled) {
  for (const auto& rev : catalog_revisions())
    for (const auto& r : builtin(rev).rows)
      for (const auto& [cloud, hosts] : r.hosts)
        for (std::string h : hosts) {
          for (const auto& [var, value] : std::vector<std::pair<std::string, std::string>>{
                   {"<storage>", "mystore"}, {"<region>", "westeurope"}, {"<acr>", "myacr"},
                   {"<workspace-id>", "0f1e2d3c-aaaa-bbbb-cccc-000000000000"}})
            for (auto p = h.find(var); p != std::string::npos; p = h.find(var)) h.replace(p, var.size(), value);
          auto pat = NamePattern::parse(h);
          EXPECT_TRUE(pat.ok()) << rev << " " << r.id << " " << h << ": " << pat.error().message;
          if (pat.ok()) {
            EXPECT_EQ(pat->str(), h) << "hosts are written in canonical form";
          }
        }
}

TEST(Catalog, DataTagNamesForTheArticlesNames) {
  EXPECT_EQ(data_tag_base("ContainerRegistry"), "AzureContainerRegistry");
  EXPECT_EQ(data_tag_base("KeyVault"), "AzureKeyVault");
  EXPECT_EQ(data_tag_base("Keyvault"), "AzureKeyVault") << "2026 spelling";
  EXPECT_EQ(data_tag_base("AzureFrontDoor.FrontEnd"), "AzureFrontDoor.Frontend");
  EXPECT_EQ(data_tag_base("Frontdoor.FirstParty"), "AzureFrontDoor.FirstParty");
  EXPECT_EQ(data_tag_base("Storage"), "Storage");
  EXPECT_EQ(data_tag_base("AzureMachineLearning"), "AzureMachineLearning");
  EXPECT_EQ(data_tag_base("MicrosoftContainerRegistry"), "MicrosoftContainerRegistry");
  EXPECT_EQ(to_string(Direction::kEgress), "egress");
  EXPECT_EQ(to_string(Direction::kIngress), "ingress");
}

// Which rows each feature turns on, alone, over the rows that always apply.
TEST(Catalog, EachFeatureTurnsOnItsRows) {
  const std::map<std::string, std::map<std::string, std::set<std::string>>> want = {
      {"2021-10",
       {{"", {"NR1", "NR2", "NR3", "NR5", "MH1", "MH2", "MH3", "AH1", "AH2", "AH3", "AH4", "AH5", "AH6", "AH7", "AH8",
              "DI2"}},
        {"compute_instance", {"NR4", "AR1", "CH1", "CH2", "CH3", "CH4"}},
        {"compute_cluster", {"NR4", "AR1", "CH1", "CH4"}},
        {"custom_images", {"NR6", "DI3"}},
        {"user_managed_dependencies", {"NR7", "DI1"}},
        {"hbi_workspace", {"NR8", "CH5"}},
        {"python", {"AR2", "AR3", "AR4", "AR6", "AR7"}},
        {"r", {"AR5"}},
        {"vscode", {"AR8", "AR9"}},
        {"support_diagnostics", {"AR10", "AR11", "AR12"}},
        {"aks", {"AK1"}},
        {"arc_extension", {"AX1", "AX2", "AX3", "AX4", "AX5", "AX6", "AX7"}},
        {"arc_training", {"AT1", "AT2", "ATI1", "ATI2", "ATI3"}},
        {"arc_inference", {"ATI1", "ATI2", "ATI3"}},
        {"inbound", {}},
        {"pythonhosted", {}}}},
      {"2026-03",
       {{"", {"NR1", "NR2", "NR3", "NR5", "NR7", "NR10", "MH1", "MH2", "MH3", "AH1", "AH2", "AH9", "AH3", "AH4", "AH5",
              "AH6", "AH7", "AH8", "AH10", "DI1"}},
        {"compute_instance", {"NR2b", "NR9", "NR4", "CH1", "CH2", "CH3", "CH6", "CH7", "CH4"}},
        {"compute_cluster", {"NR2b", "NR9", "NR4", "CH1", "CH6", "CH7", "CH4"}},
        {"custom_images", {"DI3"}},
        {"user_managed_dependencies", {}},
        {"hbi_workspace", {"NR8", "CH5"}},
        {"python", {"AR2", "AR3", "AR4", "AR6", "AR7"}},
        {"r", {"RS1", "AR5"}},
        {"vscode", {"VS1", "VS2", "AR8", "VS3", "AR9", "VS4", "VS5"}},
        {"support_diagnostics", {"NR11", "AR10", "AR11", "AR12", "MO1"}},
        {"aks", {}},
        {"arc_extension", {"AX7"}},
        {"arc_training", {"AX7", "ATI1", "ATI2", "ATI3", "AT1", "AT2"}},
        {"arc_inference", {"AX7", "ATI1", "ATI2", "ATI3"}},
        {"inbound", {}},
        {"pythonhosted", {}}}}};
  for (const auto& [rev, by_feature] : want) {
    const Catalog& c = builtin(rev);
    const std::set<std::string> base = active(c, all_features(false));
    EXPECT_EQ(base, by_feature.at("")) << rev << " with every feature off";
    for (const auto& [name, def] : kFeatureDefaults) {
      auto f = all_features(false);
      f[name] = true;
      std::set<std::string> added;
      for (const auto& id : active(c, f))
        if (!base.count(id)) added.insert(id);
      ASSERT_TRUE(by_feature.count(name)) << name;
      EXPECT_EQ(added, by_feature.at(name)) << rev << " with only " << name << " on";
    }
    // Pairs: pythonhosted needs python, inbound needs compute.
    auto f = all_features(false);
    f["python"] = f["pythonhosted"] = true;
    EXPECT_TRUE(active(c, f).count("AR4b")) << rev;
    f = all_features(false);
    f["inbound"] = f["compute_instance"] = true;
    EXPECT_TRUE(active(c, f).count("IN2")) << rev;
    EXPECT_EQ(active(c, f).count("IN1"), rev == "2021-10" ? 1u : 0u);
    EXPECT_EQ(active(c, all_features(true)).size(), c.rows.size()) << rev << ": every row is reachable";
  }
}

// ---- conditions ------------------------------------------------------------------------------

bool eval(const std::string& text, const std::map<std::string, bool>& f) {
  auto c = Condition::parse(text);
  EXPECT_TRUE(c.ok()) << text << ": " << c.error().message;
  return c.ok() && c->eval(f);
}

TEST(Condition, EachFeatureOnAndOff) {
  ASSERT_EQ(kFeatureDefaults.size(), 15u);
  for (const auto& [name, def] : kFeatureDefaults) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(eval(name, {{name, true}}));
    EXPECT_FALSE(eval(name, {{name, false}}));
    EXPECT_FALSE(eval("!" + name, {{name, true}}));
    EXPECT_TRUE(eval("!" + name, {{name, false}}));
    EXPECT_EQ(eval(name, {}), def) << "a feature missing from the map takes its default";
  }
}

TEST(Condition, OperatorsPrecedenceAndParentheses) {
  const std::map<std::string, bool> f = {{"python", true}, {"r", false}, {"vscode", true}, {"aks", false}};
  EXPECT_TRUE(eval("true", f));
  EXPECT_FALSE(eval("false", f));
  EXPECT_TRUE(eval("python && vscode", f));
  EXPECT_FALSE(eval("python && r", f));
  EXPECT_TRUE(eval("r || vscode", f));
  EXPECT_FALSE(eval("r || aks", f));
  EXPECT_TRUE(eval("python || r && aks", f)) << "&& binds tighter than ||";
  EXPECT_FALSE(eval("(python || r) && aks", f));
  EXPECT_FALSE(eval("!python || r", f)) << "! binds tightest";
  EXPECT_TRUE(eval("!(python && r)", f));
  EXPECT_TRUE(eval("!!python", f));
  EXPECT_TRUE(eval("  ( ( python ) )  ", f));
  EXPECT_TRUE(eval("python&&vscode||r", f));
  EXPECT_TRUE(eval("r || aks || python", f));
  EXPECT_FALSE(eval("python && vscode && aks", f));
  auto c = Condition::parse("  python && pythonhosted ");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->text(), "python && pythonhosted");
  EXPECT_TRUE(Condition().eval({})) << "a default condition always applies";
}

TEST(Condition, ErrorsSayWhatAndWhere) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty condition (write \"true\" for a row that always applies)"},
      {"pyton", "condition 'pyton': unknown feature 'pyton' (did you mean 'python'?)"},
      {"gpu", "condition 'gpu': unknown feature 'gpu' (features are compute_instance, compute_cluster, custom_images, "
              "user_managed_dependencies, hbi_workspace, python, r, vscode, support_diagnostics, aks, arc_extension, "
              "arc_training, arc_inference, inbound, pythonhosted)"},
      {"python &&", "condition 'python &&': expected a feature, true, false, '!' or '(' at the end"},
      {"python & r", "condition 'python & r': unexpected '&' at column 8 (operators are &&, || and !, with "
                     "parentheses)"},
      {"python r", "condition 'python r': expected '&&' or '||' before 'r' at column 8"},
      {"(python", "condition '(python': missing ')' for the '(' at column 1"},
      {"python)", "condition 'python)': unmatched ')' at column 7"},
      {"(python r)", "condition '(python r)': expected ')' before 'r' at column 9"},
      {"&& r", "condition '&& r': expected a feature, true, false, '!' or '(' before '&&' at column 1"},
      {"python == r", "condition 'python == r': unexpected '=' at column 8 (operators are &&, || and !, with "
                      "parentheses)"},
      {"Python", "condition 'Python': unknown feature 'Python' (did you mean 'python'?)"},
  };
  for (const auto& [text, msg] : cases) {
    auto c = Condition::parse(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.error().code, Exit::kData);
    EXPECT_EQ(c.error().message, msg);
  }
  auto nl = Condition::parse("python\n&& r");
  ASSERT_FALSE(nl.ok());
  EXPECT_EQ(nl.error().message, "condition has a control character (write it on one line)");
  std::string deep(40, '(');
  deep += "python" + std::string(40, ')');
  auto c = Condition::parse(deep);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("nested deeper than 32 levels"), std::string::npos) << c.error().message;
  c = Condition::parse(std::string(40, '!') + "python");
  ASSERT_FALSE(c.ok()) << "'!' chains count as nesting too";
}

// ---- catalog errors --------------------------------------------------------------------------

// A valid one-row catalog; each key on its own line, in this order:
//   1 revision  2 title  3 sources  4 (blank)  5 [[row]]  6 id  7 section  8 source
//   9 direction  10 proto  11 ports  12 when  13 clouds  14 hosts.public  15 why
struct Doc {
  std::vector<std::pair<std::string, std::string>> top = {
      {"revision", "\"2099-01\""}, {"title", "\"t\""}, {"sources", "\"s\""}};
  std::vector<std::pair<std::string, std::string>> row = {
      {"id", "\"X1\""},        {"section", "\"s\""},      {"source", "\"S1\""},        {"direction", "\"egress\""},
      {"proto", "\"tcp\""},    {"ports", "[\"443\"]"},    {"when", "\"true\""},        {"clouds", "[\"public\"]"},
      {"hosts.public", "[\"example.com\"]"},              {"why", "\"w\""}};
  std::string extra;  // appended after the row

  Doc& set(const std::string& k, const std::string& v) {
    for (auto* list : {&top, &row})
      for (auto& [key, val] : *list)
        if (key == k) {
          val = v;
          return *this;
        }
    row.emplace_back(k, v);
    return *this;
  }
  Doc& rename(const std::string& k, const std::string& to) {
    for (auto* list : {&top, &row})
      for (auto& [key, val] : *list)
        if (key == k) key = to;
    return *this;
  }
  Doc& erase(const std::string& k) {
    for (auto* list : {&top, &row})
      list->erase(std::remove_if(list->begin(), list->end(), [&](const auto& p) { return p.first == k; }),
                  list->end());
    return *this;
  }
  std::string text() const {
    std::ostringstream o;
    for (const auto& [k, v] : top) o << k << " = " << v << "\n";
    o << "\n[[row]]\n";
    for (const auto& [k, v] : row) o << k << " = " << v << "\n";
    o << extra;
    return o.str();
  }
};

std::string error_of(const Doc& d) {
  auto c = parse_catalog(d.text(), "t.toml");
  if (c.ok()) return "(parsed)";
  EXPECT_EQ(c.error().code, Exit::kData);
  EXPECT_EQ(c.error().message.find('\n'), std::string::npos) << "one line";
  return c.error().message;
}

TEST(CatalogErrors, TheBaseDocumentParses) {
  auto c = parse_catalog(Doc().text(), "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->rows.size(), 1u);
  EXPECT_EQ(c->rows[0].hosts.at(Cloud::kPublic), std::vector<std::string>{"example.com"});
  Doc d;
  d.erase("hosts.public").set("service_tag", "\"Storage.region\"").set("direction", "\"ingress\"");
  c = parse_catalog(d.text(), "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->rows[0].service_tag, "Storage.region");
  EXPECT_EQ(c->rows[0].direction, Direction::kIngress);
}

TEST(CatalogErrors, SyntaxAndDocumentShape) {
  Doc d;
  d.set("why", "\"unterminated");
  EXPECT_EQ(error_of(d).rfind("t.toml:15:", 0), 0u) << error_of(d);
  EXPECT_EQ(error_of(Doc().rename("revision", "revison")),
            "t.toml:1:1: unknown key 'revison' (did you mean 'revision'?)");
  EXPECT_EQ(error_of(Doc().set("revision", "\"2021\"")), "t.toml:1:12: revision '2021' is not of the form YYYY-MM");
  EXPECT_EQ(error_of(Doc().erase("title")), "t.toml:1:1: missing key 'title'");
  EXPECT_EQ(error_of(Doc().set("sources", "3")), "t.toml:3:11: 'sources' must be a string, not an integer");
  auto c = parse_catalog("revision = \"2099-01\"\ntitle = \"t\"\nsources = \"s\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "t.toml:1:1: no [[row]] table (a catalog lists at least one row)");
  c = parse_catalog("revision = \"2099-01\"\ntitle = \"t\"\nsources = \"s\"\n[row]\nid = \"X\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "t.toml:4:1: 'row' must be an array of tables: write [[row]]");
  // toml++ quotes the offending character, here a line feed: the message stays one line
  // (found by catalog_fuzz).
  c = parse_catalog("revision = \"2099-01\"\nsource = i\nrd", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message.rfind("t.toml:2:", 0), 0u) << c.error().message;
  EXPECT_EQ(c.error().message.find_first_of("\r\n"), std::string::npos) << c.error().message;
}

TEST(CatalogErrors, RowKeysAndTypes) {
  EXPECT_EQ(error_of(Doc().rename("ports", "port")), "t.toml:11:1: row 'X1': unknown key 'port' (did you mean 'ports'?)");
  EXPECT_EQ(error_of(Doc().erase("why")), "t.toml:5:1: row 'X1': missing key 'why'");
  EXPECT_EQ(error_of(Doc().erase("id")), "t.toml:5:1: row 1: missing key 'id'");
  EXPECT_EQ(error_of(Doc().set("id", "\"1X\"")),
            "t.toml:6:6: row 1: id '1X' must be a letter then letters, digits, '_' or '-' (at most 32)");
  EXPECT_EQ(error_of(Doc().set("ports", "443")),
            "t.toml:11:9: row 'X1': 'ports' must be an array of strings, not an integer");
  EXPECT_EQ(error_of(Doc().set("ports", "[443]")), "t.toml:11:10: row 'X1': ports[0] must be a string, not an integer");
  EXPECT_EQ(error_of(Doc().set("ports", "[]")), "t.toml:11:9: row 'X1': 'ports' is empty");
  EXPECT_EQ(error_of(Doc().set("section", "\"\"")), "t.toml:7:11: row 'X1': 'section' is empty");
  EXPECT_EQ(error_of(Doc().set("why", "\"a\\nb\"")), "t.toml:15:7: row 'X1': 'why' must be one line");
  EXPECT_EQ(error_of(Doc().set("note", "true")), "t.toml:16:8: row 'X1': 'note' must be a string, not a boolean");
}

TEST(CatalogErrors, BadValues) {
  EXPECT_EQ(error_of(Doc().set("direction", "\"out\"")),
            "t.toml:9:13: row 'X1': direction 'out' is not egress or ingress");
  EXPECT_EQ(error_of(Doc().set("proto", "\"icmp\"")), "t.toml:10:9: row 'X1': proto 'icmp' is not tcp, udp or any");
  const std::string bad_port = error_of(Doc().set("ports", "[\"443\", \"70000\"]"));
  EXPECT_EQ(bad_port.rfind("t.toml:11:17: row 'X1': ports[1]: ", 0), 0u) << bad_port;
  EXPECT_NE(bad_port.find("70000"), std::string::npos) << bad_port;
  EXPECT_EQ(error_of(Doc().set("ports", "[\"80-90\", \"85\"]")),
            "t.toml:11:19: row 'X1': ports[1] '85' overlaps ports[0] '80-90'");
  EXPECT_EQ(error_of(Doc().set("ports", "[\"*\", \"443\"]")),
            "t.toml:11:15: row 'X1': ports[1] '443' overlaps ports[0] '*'");
  EXPECT_EQ(error_of(Doc().set("when", "\"pyton\"")),
            "t.toml:12:8: row 'X1': when: condition 'pyton': unknown feature 'pyton' (did you mean 'python'?)");
  EXPECT_EQ(error_of(Doc().set("clouds", "[\"public\", \"azure\"]")),
            "t.toml:13:21: row 'X1': unknown cloud 'azure' (clouds are public, usgov, china)");
  EXPECT_EQ(error_of(Doc().set("clouds", "[\"public\", \"public\"]")),
            "t.toml:13:21: row 'X1': clouds[1] repeats 'public'");
  EXPECT_EQ(error_of(Doc().set("clouds", "[\"auto\"]")),
            "t.toml:13:11: row 'X1': unknown cloud 'auto' (clouds are public, usgov, china)");
}

TEST(CatalogErrors, DestinationRules) {
  EXPECT_EQ(error_of(Doc().set("service_tag", "\"Storage\"")),
            "t.toml:5:1: row 'X1': has both 'service_tag' and 'hosts' (a row is one service tag or a list of hosts: "
            "split it)");
  EXPECT_EQ(error_of(Doc().erase("hosts.public")), "t.toml:5:1: row 'X1': needs 'service_tag' or 'hosts'");
  EXPECT_EQ(error_of(Doc().erase("hosts.public").set("service_tag", "\"Storage region\"")),
            "t.toml:15:15: row 'X1': service tag 'Storage region' is not a tag name such as AzureMachineLearning or "
            "Storage.region");
  EXPECT_EQ(error_of(Doc().set("direction", "\"ingress\"")),
            "t.toml:14:1: row 'X1': an ingress row takes a 'service_tag', not 'hosts' (sources are address ranges)");
  EXPECT_EQ(error_of(Doc().rename("hosts.public", "hosts.mars")),
            "t.toml:14:7: row 'X1': hosts.mars: unknown cloud 'mars' (clouds are public, usgov, china)");
  EXPECT_EQ(error_of(Doc().set("hosts.china", "[\"example.cn\"]")),
            "t.toml:16:7: row 'X1': hosts.china is given but 'clouds' does not list 'china' (add it to clouds or remove "
            "the hosts)");
  EXPECT_EQ(error_of(Doc().set("clouds", "[\"public\", \"usgov\"]")),
            "t.toml:14:1: row 'X1': 'clouds' lists 'usgov' but hosts.usgov is missing (add the hosts or remove the "
            "cloud)");
  EXPECT_EQ(error_of(Doc().set("hosts.public", "\"example.com\"")),
            "t.toml:14:16: row 'X1': 'hosts.public' must be an array of strings, not a string");
  EXPECT_EQ(error_of(Doc().set("hosts", "[\"example.com\"]").erase("hosts.public")),
            "t.toml:15:9: row 'X1': 'hosts' must be a table of clouds (hosts.public = [...]), not an array");
}

TEST(CatalogErrors, HostNames) {
  auto host = [](const std::string& h) { return error_of(Doc().set("hosts.public", "[\"a.com\", \"" + h + "\"]")); };
  EXPECT_EQ(host("<bucket>.blob.core.windows.net"),
            "t.toml:14:26: row 'X1': hosts.public[1]: host '<bucket>.blob.core.windows.net': unknown template "
            "'<bucket>' (templates are <storage>, <region>, <acr>, <workspace-id>)");
  EXPECT_EQ(host("raw.githubusercontent.com/microsoft/*"),
            "t.toml:14:26: row 'X1': hosts.public[1]: host 'raw.githubusercontent.com/microsoft/*' has a path or a "
            "port: a host firewall matches host names only (keep the host and explain the path in 'note')");
  EXPECT_EQ(host("Example.com"), "t.toml:14:26: row 'X1': hosts.public[1]: host 'Example.com' must be lower case");
  EXPECT_EQ(host("a.com"), "t.toml:14:26: row 'X1': hosts.public[1] repeats 'a.com'");
  EXPECT_EQ(host("<storage.blob.core.windows.net"),
            "t.toml:14:26: row 'X1': hosts.public[1]: host '<storage.blob.core.windows.net' has an unclosed '<'");
  const std::string star = host("blob.*.windows.net");
  EXPECT_EQ(star.rfind("t.toml:14:26: row 'X1': hosts.public[1]: host 'blob.*.windows.net': ", 0), 0u) << star;
  const std::string dots = host("a..com");
  EXPECT_EQ(dots.rfind("t.toml:14:26: row 'X1': hosts.public[1]: host 'a..com': ", 0), 0u) << dots;
  EXPECT_EQ(host("<storage>.file.core.windows.net"), "(parsed)");
  EXPECT_EQ(host("*pytorch.org"), "(parsed)");
}

TEST(CatalogErrors, DuplicateIds) {
  Doc d;
  d.extra = "\n[[row]]\nid = \"X1\"\nsection = \"s\"\nsource = \"S1\"\ndirection = \"egress\"\nproto = \"tcp\"\n"
            "ports = [\"80\"]\nwhen = \"true\"\nclouds = [\"public\"]\nservice_tag = \"Storage\"\nwhy = \"w\"\n";
  EXPECT_EQ(error_of(d), "t.toml:18:6: row 'X1': duplicate id 'X1' (first at line 5)");
}

}  // namespace
}  // namespace amlfw
