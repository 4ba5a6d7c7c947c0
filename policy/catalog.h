// SPDX-License-Identifier: MIT
// The built-in catalog of Azure ML endpoints: data files (catalog/<revision>.toml)
// embedded at build time and parsed here.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "policy/config.h"
#include "policy/net.h"
#include "policy/result.h"

namespace amlfw {

enum class Direction : uint8_t { kEgress, kIngress };
std::string_view to_string(Direction d);

// A condition over [features] and the cloud: "true", "python && pythonhosted",
// "compute_instance || compute_cluster", "!hbi_workspace", parentheses allowed.
class Condition {
 public:
  static Result<Condition> parse(std::string_view text);
  // Unknown feature names are rejected at parse time against kFeatureDefaults.
  bool eval(const std::map<std::string, bool>& features) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> rpn_;  // postfix form: names, "!", "&&", "||", "true", "false"
};

struct CatalogRow {
  std::string id;          // "NR2", stable across releases
  std::string section;     // document section it comes from
  std::string source;      // document version key (S1, I3, S6 ...)
  Direction direction = Direction::kEgress;
  Proto proto = Proto::kTcp;
  std::vector<PortRange> ports;
  Condition when;          // features condition
  std::vector<Cloud> clouds;  // clouds where the row applies
  // Exactly one of service_tag or hosts:
  std::string service_tag;    // as the article names it ("Storage.region", "KeyVault.region")
  std::map<Cloud, std::vector<std::string>> hosts;  // per cloud; may hold <storage>, <region>, <acr>, <workspace-id>
  std::string why;
  std::string erratum;     // correction of the source text, if any
  std::string note;        // other remarks (URL paths reduced to hosts, ...)
};

struct Catalog {
  std::string revision;    // "2021-10"
  std::string title;
  std::string sources;
  std::vector<CatalogRow> rows;
};

// Parses a catalog data file. Errors are Exit::kData naming origin:line:col.
Result<Catalog> parse_catalog(std::string_view toml_text, std::string_view origin);

// The embedded revisions, oldest first ("2021-10", "2026-03").
std::vector<std::string> catalog_revisions();
// Parses the embedded revision (cached after the first call).
Result<const Catalog*> builtin_catalog(std::string_view revision);

// Article tag name -> service-tags data name ("ContainerRegistry" -> "AzureContainerRegistry").
// Regional suffix handling is the caller's: this maps the base only.
std::string data_tag_base(std::string_view article_base);

}  // namespace amlfw
