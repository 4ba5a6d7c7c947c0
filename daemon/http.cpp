// SPDX-License-Identifier: MIT
#include "daemon/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

namespace amlfw {
namespace {

std::atomic<bool> g_cancel{false};

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  size_t max_body = 0;
  std::string body;
  std::string etag, last_modified;
  bool too_big = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  if (s->body.size() + size * n > s->max_body) {
    s->too_big = true;
    return 0;
  }
  s->body.append(data, size * n);
  return size * n;
}

// The value of header `name` (lower case) in one header line, "" when it is another header.
std::string header_value(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() + 1) return {};
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return {};
  if (line[name.size()] != ':') return {};
  auto v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  return std::string(v.substr(0, 512));
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  const std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect): its own validators
    s->etag.clear();
    s->last_modified.clear();
  }
  if (auto v = header_value(line, "etag"); !v.empty()) s->etag = v;
  if (auto v = header_value(line, "last-modified"); !v.empty()) s->last_modified = v;
  return size * n;
}

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return g_cancel.load(std::memory_order_relaxed) ? 1 : 0;
}

}  // namespace

void http_cancel(bool on) { g_cancel.store(on); }
bool http_cancelled() { return g_cancel.load(); }

bool http_sleep(std::chrono::milliseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (!http_cancelled()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(end - now, std::chrono::milliseconds(100)));
  }
  return false;
}

Result<HttpResponse> http_get(const HttpGet& req) {
  if (http_cancelled()) return runtime_error(req.what + ": cancelled");
  global_init();
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  if (!c) return runtime_error(req.what + ": curl_easy_init failed");
  std::unique_ptr<curl_slist, SlistDeleter> hl;
  for (const auto& h : req.headers) hl.reset(curl_slist_append(hl.release(), h.c_str()));
  Sink sink;
  sink.max_body = req.max_body;
  const long ms = std::max<long>(1, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c.get(), CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(c.get(), CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS,
                   std::min<long>(ms, std::max<long>(1, static_cast<long>(req.connect_timeout.count()))));
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(req.max_body));
  curl_easy_setopt(c.get(), CURLOPT_USERAGENT, "amlfw/" AMLFW_VERSION);
  curl_easy_setopt(c.get(), CURLOPT_ACCEPT_ENCODING, "");  // gzip when the server offers it
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(c.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c.get(), CURLOPT_NOPROGRESS, 0L);
  if (req.direct) curl_easy_setopt(c.get(), CURLOPT_NOPROXY, "*");
  if (hl) curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, hl.get());
  const CURLcode rc = curl_easy_perform(c.get());
  if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED)
    return data_error(req.what + ": answer larger than " + std::to_string(req.max_body >> 20) + " MiB, refused");
  if (rc == CURLE_ABORTED_BY_CALLBACK) return runtime_error(req.what + ": cancelled");
  if (rc != CURLE_OK) return runtime_error(req.what + ": " + curl_easy_strerror(rc));
  HttpResponse r;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
  curl_off_t ra = 0;
  if (curl_easy_getinfo(c.get(), CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
    r.retry_after_s = static_cast<uint64_t>(ra);
  r.body = std::move(sink.body);
  r.etag = std::move(sink.etag);
  r.last_modified = std::move(sink.last_modified);
  return r;
}

}  // namespace amlfw
