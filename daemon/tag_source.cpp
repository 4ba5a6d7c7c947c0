// SPDX-License-Identifier: MIT
#include "daemon/tag_source.h"

#include "daemon/azure.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <mutex>

namespace amlfw {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Sink {
  std::string body;
  std::string etag, last_modified;
  bool too_big = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  if (s->body.size() + size * n > TagSource::kMaxBody) {
    s->too_big = true;
    return 0;
  }
  s->body.append(data, size * n);
  return size * n;
}

std::string header_value(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() + 1) return {};
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return {};
  if (line[name.size()] != ':') return {};
  auto v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  return std::string(v);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  std::string_view line(data, size * n);
  if (auto v = header_value(line, "etag"); !v.empty()) s->etag = v;
  if (auto v = header_value(line, "last-modified"); !v.empty()) s->last_modified = v;
  return size * n;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

Result<std::string> read_file(const std::string& path, size_t max_size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error(path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return sys_error(path, e);
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    return runtime_error(path + ": file is larger than " + std::to_string(max_size >> 20) + " MiB");
  }
  std::string out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (true) {
    if (got == out.size()) out.resize(out.size() + 65536);
    ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return sys_error(path, e);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
    if (got > max_size) {
      ::close(fd);
      return runtime_error(path + ": file is larger than " + std::to_string(max_size >> 20) + " MiB");
    }
  }
  ::close(fd);
  out.resize(got);
  return out;
}

Result<TagFetch> TagSource::fetch() {
  if (is_azure()) return fetch_azure();
  return is_url() ? fetch_url() : fetch_file();
}

Result<TagFetch> TagSource::fetch_azure() { return fetch_azure_service_tags(azure_, azure_state_, timeout_s_); }

Result<TagFetch> TagSource::fetch_file() {
  struct stat st {};
  if (::stat(source_.c_str(), &st) != 0) return sys_error("service tags " + source_);
  const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  TagFetch f;
  f.origin = source_;
  if (mtime == mtime_ns_ && st.st_size == size_ && st.st_ino == ino_) {
    f.not_modified = true;
    return f;
  }
  auto body = read_file(source_, kMaxBody);
  if (!body.ok()) return std::move(body).error().context("service tags");
  f.body = std::move(*body);
  mtime_ns_ = mtime;
  size_ = st.st_size;
  ino_ = st.st_ino;
  return f;
}

Result<TagFetch> TagSource::fetch_url() {
  global_init();
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  if (!c) return runtime_error("service tags " + source_ + ": curl_easy_init failed");
  Sink sink;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& h) { headers.reset(curl_slist_append(headers.release(), h.c_str())); };
  if (!etag_.empty()) add_header("If-None-Match: " + etag_);
  if (!last_modified_.empty()) add_header("If-Modified-Since: " + last_modified_);
  curl_easy_setopt(c.get(), CURLOPT_URL, source_.c_str());
  curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(c.get(), CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(c.get(), CURLOPT_TIMEOUT, timeout_s_);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 15L);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxBody));
  curl_easy_setopt(c.get(), CURLOPT_USERAGENT, "amlfw/" AMLFW_VERSION);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &sink);
  if (headers) curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
  CURLcode rc = curl_easy_perform(c.get());
  if (sink.too_big) return data_error("service tags " + source_ + ": body larger than 64 MiB, refused");
  if (rc != CURLE_OK) return runtime_error("service tags " + source_ + ": " + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  TagFetch f;
  f.origin = source_;
  if (status == 304) {
    f.not_modified = true;
    return f;
  }
  if (status != 200)
    return runtime_error("service tags " + source_ + ": HTTP " + std::to_string(status) + " (keeping the last good data)");
  etag_ = sink.etag;
  last_modified_ = sink.last_modified;
  f.body = std::move(sink.body);
  return f;
}

}  // namespace amlfw
