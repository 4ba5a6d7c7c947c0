// SPDX-License-Identifier: MIT
// Azure sources: instance metadata and managed-identity tokens from Azure IMDS, and service
// tags from Azure Resource Manager's Service Tag Discovery API (libcurl, blocking, bounded).
//
//   IMDS instance   GET {imds}/metadata/instance?api-version=2021-02-01            Metadata: true
//                   -> compute.azEnvironment, compute.location, compute.subscriptionId
//   IMDS token      GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01
//                       &resource={arm resource}                                   Metadata: true
//   ARM serviceTags GET {arm}/subscriptions/{sub}/providers/Microsoft.Network/locations/{loc}
//                       /serviceTags?api-version=2023-09-01     Authorization: Bearer <token>
//                   pages followed through "nextLink" (same origin only: the token never
//                   leaves ARM), merged into one document in the downloadable file's shape.
//
// {imds} is http://169.254.169.254 and {arm} the cloud's ARM endpoint; AMLFW_IMDS_ENDPOINT
// and AMLFW_ARM_ENDPOINT replace them FOR TESTS ONLY (mock servers on loopback).
//
// Failures are errors and change nothing (the daemon keeps its last good data): timeouts,
// HTTP errors (401: one retry with a fresh token; 429: Retry-After honoured up to
// kMaxRetryWait within the fetch, else reported in AzureTagState::retry_after_s), and bodies
// that are not what they should be. Tokens are never logged. No logging here at all.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/tag_source.h"
#include "policy/config.h"
#include "policy/result.h"

namespace amlfw {

inline constexpr std::string_view kImdsDefault = "http://169.254.169.254";
inline constexpr std::string_view kArmApiVersion = "2023-09-01";
inline constexpr std::chrono::seconds kMaxRetryWait{10};  // longer Retry-After: the next refresh
inline constexpr size_t kMaxArmPages = 64;

// Base URLs (no trailing slash) for a cloud (kAuto: public), with the test-only overrides.
struct AzureEndpoints {
  std::string imds;
  std::string arm;
  std::string arm_resource;  // the token's audience, "https://management.azure.com/"
};
AzureEndpoints azure_endpoints(Cloud c);

struct InstanceMetadata {
  Cloud cloud = Cloud::kPublic;
  std::string az_environment;   // as IMDS said ("AzurePublicCloud")
  std::string location;         // lower case ("westeurope")
  std::string subscription_id;
};
// compute.azEnvironment -> Cloud (case-insensitive); nullopt for a cloud amlfw has no catalog for.
std::optional<Cloud> cloud_of_az_environment(std::string_view env);
// Parses IMDS's instance document. Errors are Exit::kData, one line.
Result<InstanceMetadata> parse_instance_metadata(std::string_view json, std::string_view origin);
// GET the instance document (cached per IMDS endpoint once it succeeded: it does not change
// while the machine runs).
Result<InstanceMetadata> fetch_instance_metadata(std::chrono::milliseconds timeout);
void clear_instance_metadata_cache();  // tests

struct AccessToken {
  std::string token;
  int64_t expires_at = 0;  // unix seconds
};
Result<AccessToken> parse_access_token(std::string_view json, int64_t now, std::string_view origin);
// client_id: a user-assigned managed identity's client ID (a GUID), for machines and node
// pools with several identities; empty: the one identity IMDS has.
Result<AccessToken> fetch_access_token(const AzureEndpoints& ep, std::chrono::milliseconds timeout,
                                       std::string_view client_id = {});

// cloud = "auto", region = "auto", and (for source = "azure-api") an empty subscription,
// filled in from IMDS. Nothing to fill: no request. Errors name the key and the fix.
Status resolve_azure_auto(Config& cfg, std::chrono::milliseconds timeout = std::chrono::seconds(10));
bool needs_imds(const Config& cfg);

// The source for `cfg` (a file, a URL, or azure-api with cfg's cloud, region, subscription).
std::unique_ptr<TagSource> make_tag_source(const Config& cfg);
// Points an existing azure-api source at cfg's cloud, region and subscription (a reload).
void configure_tag_source(TagSource& src, const Config& cfg);

// One fetch of every page (TagSource::fetch for "azure-api"), within timeout_s. not_modified
// when the API's changeNumber is the one of the data returned last time (state).
Result<TagFetch> fetch_azure_service_tags(const AzureTagOptions& o, AzureTagState& state, long timeout_s);

}  // namespace amlfw
