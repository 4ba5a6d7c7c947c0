// SPDX-License-Identifier: MIT
// Service Tags JSON with simdjson's DOM API. Facts this parser relies on and the traps it
// handles are in shared/docs/servicetags-format.md: CRLF weeks, overlapping and adjacent
// prefixes (merged here), networkFeatures null, unknown keys, string changeNumbers in the
// ARM API answer, files of 4 MiB and more.
#include "policy/service_tags.h"
#include "policy/text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <simdjson.h>

namespace amlfw {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// A file this large is not a service-tags file (the public one is about 4 MB).
constexpr size_t kMaxFileBytes = size_t{512} << 20;

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

const char* type_name(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "?";
}

// Builds the one-line errors: "<origin>: values[3] (Name): properties.region: <what>".
class Where {
 public:
  explicit Where(std::string_view origin) : origin_(origin) {}
  void at_value(size_t i, std::string_view name) {
    value_ = "values[" + std::to_string(i) + "]";
    if (!name.empty()) value_ += " (" + printable(name) + ")";
  }
  Error error(std::string_view field, const std::string& what) const {
    std::string m = origin_;
    if (!value_.empty()) m += ": " + value_;
    if (!field.empty()) m += ": " + std::string(field);
    return data_error(m + ": " + what);
  }

 private:
  std::string origin_;
  std::string value_;
};

Result<element> field(const element& obj, std::string_view key, element_type want,
                      const Where& where, std::string_view path) {
  element e;
  if (obj.at_key(key).get(e) != simdjson::SUCCESS) {
    return where.error(path, "is missing (not a service-tags file, or a changed format)");
  }
  if (e.type() != want) {
    return where.error(path, std::string("is ") + type_name(e.type()) + ", expected " +
                                 type_name(want));
  }
  return e;
}

// changeNumber: an integer in the file, a string of digits in the ARM API answer.
Result<uint64_t> change_number(const element& obj, const Where& where, std::string_view path) {
  element e;
  if (obj.at_key("changeNumber").get(e) != simdjson::SUCCESS) {
    return where.error(path, "is missing (not a service-tags file, or a changed format)");
  }
  uint64_t n = 0;
  if (e.type() == element_type::INT64 || e.type() == element_type::UINT64) {
    if (e.get_uint64().get(n) != simdjson::SUCCESS) {
      return where.error(path, "is negative, expected a counter >= 0");
    }
    return n;
  }
  if (e.type() == element_type::STRING) {
    std::string_view s = e.get_string().value_unsafe();
    bool ok = !s.empty() && s.size() <= 19;
    for (char c : s) ok = ok && c >= '0' && c <= '9';
    if (ok) {
      for (char c : s) n = n * 10 + static_cast<uint64_t>(c - '0');
      return n;
    }
    return where.error(path, "'" + printable(s) + "' is not a counter (expected digits)");
  }
  return where.error(path, std::string("is ") + type_name(e.type()) + ", expected an integer");
}

// For an element whose type was checked to be ARRAY. (Iterating over
// `e.get_array().value_unsafe()` directly would iterate over a destroyed temporary.)
simdjson::dom::array as_array(const element& e) {
  simdjson::dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) return {};
  return a;
}

// Where a syntax error is, as "line:col" (1-based), found with a SAX pass that builds nothing.
// Only on the error path: simdjson reports what is wrong but not where.
std::string syntax_error_position(std::string_view text) {
  struct Sax : nlohmann::json_sax<nlohmann::json> {
    size_t byte = 0;
    bool failed = false;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
      byte = position;
      failed = true;
      return false;
    }
  } sax;
  nlohmann::json::sax_parse(text.begin(), text.end(), &sax, nlohmann::json::input_format_t::json, false);
  if (!sax.failed) return {};
  size_t line = 1, col = 1;
  const size_t end = std::min(sax.byte > 0 ? sax.byte - 1 : 0, text.size());
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

Error json_error(std::string_view origin, simdjson::error_code err, std::string_view text) {
  std::string o(origin);
  if (err != simdjson::EMPTY) {
    const auto pos = syntax_error_position(text);
    if (!pos.empty()) o += ":" + pos;
  }
  switch (err) {
    case simdjson::EMPTY:
      return data_error(o + ": the file is empty (download it again)");
    case simdjson::TAPE_ERROR:
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
    case simdjson::UNCLOSED_STRING:
      return data_error(o + ": invalid JSON: " + simdjson::error_message(err) +
                        " (truncated or corrupt file? download it again)");
    default:
      return data_error(o + ": invalid JSON: " + simdjson::error_message(err) +
                        " (download the file again)");
  }
}

Result<ServiceTag> parse_value(const element& v, size_t index, Where* where) {
  where->at_value(index, "");
  if (v.type() != element_type::OBJECT) {
    return where->error("", std::string("is ") + type_name(v.type()) + ", expected an object");
  }
  ServiceTag tag;
  auto name = field(v, "name", element_type::STRING, *where, "name");
  if (!name) return std::move(name).error();
  std::string_view name_text = name->get_string().value_unsafe();
  if (name_text.empty()) return where->error("name", "is empty");
  tag.name = std::string(name_text);
  where->at_value(index, tag.name);

  auto id = field(v, "id", element_type::STRING, *where, "id");
  if (!id) return std::move(id).error();
  auto props = field(v, "properties", element_type::OBJECT, *where, "properties");
  if (!props) return std::move(props).error();

  auto cn = change_number(*props, *where, "properties.changeNumber");
  if (!cn) return std::move(cn).error();
  tag.change_number = *cn;

  auto region = field(*props, "region", element_type::STRING, *where, "properties.region");
  if (!region) return std::move(region).error();
  tag.region = std::string(region->get_string().value_unsafe());

  // Optional, null in about half the values, absent before 2020-08 and in the ARM answer.
  element features;
  if (props->at_key("networkFeatures").get(features) == simdjson::SUCCESS &&
      features.type() != element_type::NULL_VALUE) {
    if (features.type() != element_type::ARRAY) {
      return where->error("properties.networkFeatures",
                          std::string("is ") + type_name(features.type()) +
                              ", expected an array of strings or null");
    }
    simdjson::dom::array tokens = as_array(features);
    for (element f : tokens) {
      if (f.type() != element_type::STRING) {
        return where->error("properties.networkFeatures",
                            std::string("holds ") + type_name(f.type()) + ", expected strings");
      }
    }
  }

  auto list = field(*props, "addressPrefixes", element_type::ARRAY, *where,
                    "properties.addressPrefixes");
  if (!list) return std::move(list).error();
  simdjson::dom::array prefixes = as_array(*list);
  size_t j = 0;
  for (element p : prefixes) {
    if (p.type() != element_type::STRING) {
      return where->error("properties.addressPrefixes[" + std::to_string(j) + "]",
                          std::string("is ") + type_name(p.type()) + ", expected a CIDR string");
    }
    auto prefix = Prefix::parse(p.get_string().value_unsafe());
    if (!prefix) {
      return where->error("properties.addressPrefixes[" + std::to_string(j) + "]",
                          prefix.error().message);
    }
    tag.prefixes.add(*prefix);
    ++j;
  }
  tag.prefix_count = j;
  tag.prefixes.normalize();
  return tag;
}

// json[0, len) followed by at least SIMDJSON_PADDING readable bytes.
Result<ServiceTags> parse_padded(const char* json, size_t len, std::string_view origin) {
  if (len >= 3 && static_cast<unsigned char>(json[0]) == 0xef &&
      static_cast<unsigned char>(json[1]) == 0xbb && static_cast<unsigned char>(json[2]) == 0xbf) {
    json += 3;  // UTF-8 byte order mark
    len -= 3;
  }
  simdjson::dom::parser parser;
  element root;
  if (auto err = parser.parse(json, len, false).get(root); err != simdjson::SUCCESS) {
    return json_error(origin, err, std::string_view(json, len));
  }
  Where where(origin);
  if (root.type() != element_type::OBJECT) {
    return where.error("", std::string("the top level is ") + type_name(root.type()) +
                               ", expected an object (not a service-tags file)");
  }
  ServiceTags out;
  auto cn = change_number(root, where, "changeNumber");
  if (!cn) return std::move(cn).error();
  out.change_number = *cn;
  auto cloud = field(root, "cloud", element_type::STRING, where, "cloud");
  if (!cloud) return std::move(cloud).error();
  out.cloud = std::string(cloud->get_string().value_unsafe());
  auto values = field(root, "values", element_type::ARRAY, where, "values");
  if (!values) return std::move(values).error();

  simdjson::dom::array arr = as_array(*values);
  if (arr.size() == 0) return where.error("values", "is empty (no tags: download the file again)");
  out.tags.reserve(arr.size());
  size_t i = 0;
  for (element v : arr) {
    auto tag = parse_value(v, i, &where);
    if (!tag) return std::move(tag).error();
    out.tags.push_back(std::move(*tag));
    ++i;
  }

  // Names are unique ignoring case in every published file; a repeat means a broken file,
  // and a case-insensitive lookup would be ambiguous.
  std::unordered_map<std::string, size_t> seen;
  seen.reserve(out.tags.size());
  for (size_t k = 0; k < out.tags.size(); ++k) {
    auto [it, fresh] = seen.emplace(lower_ascii(out.tags[k].name), k);
    if (!fresh) {
      where.at_value(k, out.tags[k].name);
      return where.error("name", "repeats values[" + std::to_string(it->second) + "] (" +
                                     printable(out.tags[it->second].name) +
                                     "): tag names must be unique ignoring case");
    }
  }
  out.build_index();
  return out;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

const ServiceTag* ServiceTags::find(std::string_view name) const {
  const std::string key = lower_ascii(name);
  if (index_.size() == tags.size()) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    if (it->second < tags.size() && lower_ascii(tags[it->second].name) == key) {
      return &tags[it->second];
    }
  }
  // Not indexed (built by hand, or changed since build_index): scan.
  for (const ServiceTag& t : tags) {
    if (lower_ascii(t.name) == key) return &t;
  }
  return nullptr;
}

void ServiceTags::build_index() {
  index_.clear();
  index_.reserve(tags.size());
  for (size_t i = 0; i < tags.size(); ++i) index_.emplace(lower_ascii(tags[i].name), i);
}

size_t ServiceTags::total_prefixes() const {
  size_t n = 0;
  for (const ServiceTag& t : tags) n += t.prefix_count;
  return n;
}

Result<ServiceTags> parse_service_tags(std::string_view json, std::string_view origin) {
  simdjson::padded_string padded(json.data(), json.size());
  return parse_padded(padded.data(), padded.size(), origin);
}

std::string_view service_tags_cloud_name(Cloud c) {
  switch (c) {
    case Cloud::kPublic: return "Public";
    case Cloud::kUsGov: return "AzureGovernment";
    case Cloud::kChina: return "China";
    case Cloud::kAuto: return "";
  }
  return "";
}

Result<ServiceTags> load_service_tags_file(const std::string& path) {
  const std::string where = "service tags " + path;
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) {
    return runtime_error(where + ": cannot open: " + std::strerror(errno) +
                         " (check service_tags.source or --service-tags)");
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return sys_error(where + ": fstat");
  if (S_ISDIR(st.st_mode)) {
    return runtime_error(where + ": is a directory (give the path of the JSON file)");
  }
  std::string buf;
  if (S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
      return data_error(where + ": " + std::to_string(st.st_size) +
                        " bytes is too large for a service-tags file (limit 512 MiB)");
    }
    buf.reserve(static_cast<size_t>(st.st_size) + simdjson::SIMDJSON_PADDING);
  }
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(f.fd, chunk, sizeof chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(where + ": read");
    }
    if (n == 0) break;
    if (buf.size() + static_cast<size_t>(n) > kMaxFileBytes) {
      return data_error(where + ": more than 512 MiB, too large for a service-tags file");
    }
    buf.append(chunk, static_cast<size_t>(n));
  }
  const size_t len = buf.size();
  // Padding for simdjson without a second copy when the reservation was right.
  buf.resize(len + simdjson::SIMDJSON_PADDING, '\0');
  return parse_padded(buf.data(), len, path);
}

Status check_service_tags_cloud(const ServiceTags& tags, Cloud c, std::string_view origin) {
  if (c == Cloud::kAuto || tags.cloud.empty()) return {};
  const std::string_view want = service_tags_cloud_name(c);
  const bool same = tags.cloud.size() == want.size() &&
                    std::equal(want.begin(), want.end(), tags.cloud.begin(), [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
                    });
  if (same) return {};
  return data_error(std::string(origin) + ": the data is for cloud '" + tags.cloud + "' but the config says cloud = \"" +
                    std::string(to_string(c)) + "\" (use the " + std::string(want) + " service-tags file)");
}

}  // namespace amlfw
