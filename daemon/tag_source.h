// SPDX-License-Identifier: MIT
// Fetches service-tags data from a file or an https:// URL (libcurl, conditional GET).
#pragma once

#include <cstdint>
#include <string>

#include "policy/result.h"

namespace amlfw {

struct TagFetch {
  bool not_modified = false;  // unchanged since the last fetch (ETag / Last-Modified / file stat)
  std::string body;
  std::string origin;         // path or URL
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
  }
  bool is_url() const { return source_.rfind("https://", 0) == 0 || source_.rfind("http://", 0) == 0; }
  // Largest body accepted (the public file is ~4 MiB; the limit stops a hostile server).
  static constexpr size_t kMaxBody = 64u << 20;

 private:
  Result<TagFetch> fetch_file();
  Result<TagFetch> fetch_url();

  std::string source_;
  long timeout_s_;
  std::string etag_, last_modified_;
  int64_t mtime_ns_ = -1;
  int64_t size_ = -1;
  uint64_t ino_ = 0;
};

// Whole-file read with a size bound; error names the path.
Result<std::string> read_file(const std::string& path, size_t max_size);

}  // namespace amlfw
