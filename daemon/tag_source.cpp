// SPDX-License-Identifier: MIT
#include "daemon/tag_source.h"

#include "daemon/azure.h"
#include "daemon/http.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


namespace amlfw {

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
  HttpGet req;
  req.url = source_;
  req.what = "service tags " + source_;
  req.timeout = std::chrono::seconds(timeout_s_);
  req.max_body = kMaxBody;
  req.follow_redirects = true;
  if (!etag_.empty()) req.headers.push_back("If-None-Match: " + etag_);
  if (!last_modified_.empty()) req.headers.push_back("If-Modified-Since: " + last_modified_);
  auto r = http_get(req);
  if (!r.ok()) return r.error();
  TagFetch f;
  f.origin = source_;
  if (r->status == 304) {
    f.not_modified = true;
    return f;
  }
  if (r->status != 200)
    return runtime_error(req.what + ": HTTP " + std::to_string(r->status) + " (keeping the last good data)");
  etag_ = std::move(r->etag);
  last_modified_ = std::move(r->last_modified);
  f.body = std::move(r->body);
  return f;
}

}  // namespace amlfw
