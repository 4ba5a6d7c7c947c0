// SPDX-License-Identifier: MIT
// Fetches service-tags data from a file, an https:// URL (libcurl, conditional GET), or
// "azure-api": Azure Resource Manager's Service Tag Discovery API with a managed-identity
// token from Azure IMDS (daemon/azure.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "policy/config.h"
#include "policy/result.h"

namespace amlfw {

struct TagFetch {
  bool not_modified = false;  // unchanged since the last fetch (ETag / Last-Modified / file stat)
  std::string body;
  std::string origin;         // path or URL
};

// For source = "azure-api": what the configuration says. Cloud::kAuto, an empty or "auto"
// location and an empty subscription are taken from Azure IMDS at fetch time.
struct AzureTagOptions {
  Cloud cloud = Cloud::kAuto;
  std::string location;
  std::string subscription;
  std::string client_id;  // IMDS token of this user-assigned identity (empty: the machine's only one)
};
// What an azure-api source keeps between fetches (daemon/azure.cpp).
struct AzureTagState {
  uint64_t change_number = 0;       // of the last data returned (0: none): the API's own numbering
  std::string token;                // managed-identity access token for ARM (never logged)
  int64_t token_expires_at = 0;     // unix seconds
  std::optional<uint64_t> retry_after_s;  // the last fetch was throttled (HTTP 429): retry after this
};

class TagSource {
 public:
  explicit TagSource(std::string source, long timeout_s = 60) : source_(std::move(source)), timeout_s_(timeout_s) {}
  // Blocking; bounded by the timeout. Remembers validators for the next call.
  Result<TagFetch> fetch();
  const std::string& source() const { return source_; }
  // Drops the validators, so the next fetch reads the data again (after a refused update,
  // or when an operator forces a refresh).
  void forget() {
    etag_.clear();
    last_modified_.clear();
    mtime_ns_ = -1;
    size_ = -1;
    ino_ = 0;
    azure_state_.change_number = 0;
  }
  bool is_url() const { return source_.rfind("https://", 0) == 0 || source_.rfind("http://", 0) == 0; }
  bool is_azure() const { return source_ == "azure-api"; }
  // Fetched over the network (blocking for up to the timeout): run it off the event loop.
  bool is_remote() const { return is_url() || is_azure(); }
  // azure-api: the subscription, location and cloud to ask about (see AzureTagOptions).
  // Another identity (client_id) drops the token of the old one.
  void set_azure(AzureTagOptions o) {
    if (o.client_id != azure_.client_id) azure_state_.token.clear();
    azure_ = std::move(o);
  }
  // After a failed fetch: the server asked to wait this long (HTTP 429 Retry-After).
  std::optional<uint64_t> retry_after_s() const { return azure_state_.retry_after_s; }
  // Largest body accepted (the public file is ~4 MiB; the limit stops a hostile server).
  static constexpr size_t kMaxBody = 64u << 20;

 private:
  Result<TagFetch> fetch_file();
  Result<TagFetch> fetch_url();
  Result<TagFetch> fetch_azure();

  std::string source_;
  long timeout_s_;
  std::string etag_, last_modified_;
  int64_t mtime_ns_ = -1;
  int64_t size_ = -1;
  uint64_t ino_ = 0;
  AzureTagOptions azure_;
  AzureTagState azure_state_;
};

// Whole-file read with a size bound; error names the path.
Result<std::string> read_file(const std::string& path, size_t max_size);

}  // namespace amlfw
