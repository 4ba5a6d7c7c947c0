// SPDX-License-Identifier: MIT
// One blocking HTTP GET through libcurl, bounded in time and size, for the service-tags URL
// source and the Azure sources (daemon/tag_source.cpp, daemon/azure.cpp). No logging.
//
// Every transfer in progress can be cancelled from another thread (http_cancel): the daemon
// does it when it stops or reloads, so a hanging server never holds up a shutdown for more
// than about a second (libcurl calls the progress callback at least once per second).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "policy/result.h"

namespace amlfw {

struct HttpGet {
  std::string url;
  std::vector<std::string> headers;   // "Name: value"
  std::chrono::milliseconds timeout{60000};
  std::chrono::milliseconds connect_timeout{15000};
  size_t max_body = 64u << 20;
  bool follow_redirects = false;      // https redirects only, at most 5
  bool direct = false;                // never through a proxy (Azure IMDS)
  std::string what;                   // names the request in errors ("service tags https://...")
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string etag, last_modified;            // validators for the next conditional GET
  std::optional<uint64_t> retry_after_s;      // HTTP 429/503 Retry-After
};

// Errors: Exit::kData for a body over max_body, Exit::kRuntime otherwise (network, timeout,
// cancelled); one line that starts with `what`.
Result<HttpResponse> http_get(const HttpGet& req);

// true: every transfer in progress, and every one started until http_cancel(false), fails
// at once with "cancelled". For a daemon that stops (or drops a fetch it no longer wants).
void http_cancel(bool on);
bool http_cancelled();

// Sleeps up to `d`, returning early (false) when transfers are cancelled.
bool http_sleep(std::chrono::milliseconds d);

}  // namespace amlfw
