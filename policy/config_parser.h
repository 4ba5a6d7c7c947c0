// SPDX-License-Identifier: MIT
// Internal to config.cpp and config_sections.cpp: the walker over a parsed TOML document
// that fills a Config and keeps the first problem in file order.
#pragma once

#include <toml++/toml.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/config.h"
#include "policy/text.h"

namespace amlfw::config_internal {

// "a string", "an integer" ... for messages.
std::string_view type_name(const toml::node& n);
// Messages of net.h / name_pattern.h are "what" or "what (fix)"; adds the fix when bare.
std::string with_fix(const std::string& msg, std::string_view fix);
std::string join(const std::vector<std::string>& v, std::string_view sep);
std::string to_lower(std::string_view s);
// The last component of a key path: "dns.min_ttl" -> "min_ttl".
std::string leaf(const std::string& path);
// "90s" -> "90s", 900 -> "15m", 86400 -> "1d".
std::string duration_text(uint64_t seconds);
// Absolute, no "." or ".." component, no control character.
bool is_clean_absolute_path(std::string_view s);
bool is_guid(std::string_view s);

class ConfigParser {
 public:
  explicit ConfigParser(std::string_view origin) : origin_(origin) {}

  // Fills the config from the document; the error is the earliest problem in the file.
  Result<Config> run(const toml::table& root);

 private:
  using Handler = std::function<void(const toml::node&, const std::string& path)>;
  struct Key {
    std::string_view name;
    Handler handle;
  };

  std::string place(const toml::source_region& r) const;
  void fail(const toml::source_region& r, std::string what);
  void fail(const toml::node& n, const std::string& path, const std::string& what) {
    fail(n.source(), path + ": " + what);
  }
  // Calls the handler of each key of table `n`; unknown keys are reported with a suggestion.
  // `header` is how the table is written ("[dns]"), for the message when `n` is not a table.
  void walk(const toml::node& n, const std::string& path, const std::vector<Key>& keys,
            std::string_view header);
  void unknown_key(const toml::key& k, const std::string& path, const std::vector<Key>& keys);

  // Typed readers: nullptr / nullopt after reporting the problem.
  const std::string* string_of(const toml::node& n, const std::string& path, std::string_view example);
  std::optional<bool> bool_of(const toml::node& n, const std::string& path);
  std::optional<uint64_t> uint_of(const toml::node& n, const std::string& path, uint64_t lo, uint64_t hi,
                                  uint64_t example);
  std::optional<uint64_t> duration_of(const toml::node& n, const std::string& path, uint64_t lo,
                                      uint64_t hi, std::string_view example);
  // Calls each(element, text) for every string of an array.
  void strings_of(const toml::node& n, const std::string& path, std::string_view example,
                  const std::function<void(const toml::node&, const std::string&)>& each);
  // One of `names`, mapped by `parse`.
  template <class T, class F>
  void enum_of(const toml::node& n, const std::string& path, const std::vector<std::string>& names,
               F parse, T* out);
  Handler bool_key(bool* out);
  Handler guid_key(std::string* out);
  Handler dir_key(std::string* out, bool may_be_empty);
  Handler listen_key(std::string* out, bool may_be_empty);

  // Sections (config_sections.cpp).
  void parse_catalog(const toml::node& n, const std::string& path);
  void parse_names(const toml::node& n, const std::string& path, std::vector<std::string>* out,
                   size_t lo, size_t hi, bool lower_only, std::string_view suffix, std::string_view example);
  void parse_features(const toml::node& n, const std::string& path);
  void parse_inbound(const toml::node& n, const std::string& path);
  void parse_egress(const toml::node& n, const std::string& path);
  void parse_forward(const toml::node& n, const std::string& path);
  void parse_service_tags(const toml::node& n, const std::string& path);
  void parse_dns(const toml::node& n, const std::string& path);
  void parse_allow(const toml::node& n, const std::string& path);
  void parse_allow_rule(const toml::node& n, const std::string& path);
  void parse_ports(const toml::node& n, const std::string& path, std::vector<PortRange>* out);
  void parse_metrics(const toml::node& n, const std::string& path);
  void parse_control(const toml::node& n, const std::string& path);
  void check_region();
  void check_ttls();
  void check_forward();

  std::string origin_;
  Config cfg_;
  // The earliest problem in file order: (line, column) and the message.
  std::optional<std::pair<std::pair<uint32_t, uint32_t>, std::string>> first_;
  size_t errors_ = 0;  // every problem found, reported or not
  const toml::node* cloud_node_ = nullptr;
  const toml::node* region_node_ = nullptr;
  const toml::node* min_ttl_node_ = nullptr;
  const toml::node* max_ttl_node_ = nullptr;
  const toml::node* backend_node_ = nullptr;
  const toml::node* listen_node_ = nullptr;        // dns.listen
  const toml::node* local_node_ = nullptr;         // egress.local
  const toml::node* cgroup_node_ = nullptr;        // ebpf.cgroup
  const toml::node* interfaces_node_ = nullptr;    // forward.interfaces
  const toml::node* sources_node_ = nullptr;       // forward.sources
  const toml::node* dns_redirect_node_ = nullptr;  // forward.dns_redirect
};

template <class T, class F>
void ConfigParser::enum_of(const toml::node& n, const std::string& path,
                           const std::vector<std::string>& names, F parse, T* out) {
  const std::string* s = string_of(n, path, "\"" + names.front() + "\"");
  if (s == nullptr) return;
  if (auto v = parse(*s)) {
    *out = *v;
    return;
  }
  const std::string close = suggest(*s, names);
  std::string choices = names.front();
  for (size_t i = 1; i < names.size(); ++i) choices += (i + 1 == names.size() ? " or " : ", ") + names[i];
  fail(n, path,
       quote(*s) + " is not valid (" + (close.empty() ? "use " + choices : "did you mean '" + close + "'?") + ")");
}

}  // namespace amlfw::config_internal
