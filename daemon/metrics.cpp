// SPDX-License-Identifier: MIT
#include "daemon/metrics.h"

#include <algorithm>
#include <map>
#include <utility>

#include "daemon/ebpf_backend.h"
#include "daemon/ebpf_learned.h"
#include "daemon/nft_backend.h"

namespace amlfw {
namespace {

std::string escape_label(std::string_view s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    if (c == '\\') o += "\\\\";
    else if (c == '"') o += "\\\"";
    else if (c == '\n') o += "\\n";
    else o.push_back(c);
  }
  return o;
}

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels, int64_t v) {
    sample_text(name, labels, std::to_string(v));
  }
  void sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels, uint64_t v) {
    sample_text(name, labels, std::to_string(v));
  }
  void one(std::string_view name, std::string_view type, std::string_view help, uint64_t v) {
    family(name, type, help);
    sample(name, {}, v);
  }
  std::string take() { return std::move(out_); }

 private:
  void sample_text(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
                   const std::string& v) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, val] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape_label(val);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += v;
    out_ += '\n';
  }
  std::string out_;
};

}  // namespace

void DeniedTable::note(const IpAddr& dst, uint16_t port, uint8_t proto, int64_t now) {
  for (auto& e : table_) {
    if (e.dst == dst && e.port == port && e.proto == proto) {
      ++e.count;
      e.last_seen = now;
      return;
    }
  }
  if (max_ == 0) return;
  if (table_.size() >= max_) {
    auto oldest = std::min_element(table_.begin(), table_.end(),
                                   [](const Entry& a, const Entry& b) { return a.last_seen < b.last_seen; });
    table_.erase(oldest);
    ++evicted_;
  }
  table_.push_back(Entry{dst, port, proto, 1, now, now});
}

std::vector<DeniedTable::Entry> DeniedTable::entries() const {
  std::vector<Entry> out = table_;
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.count != b.count ? a.count > b.count : a.last_seen > b.last_seen;
  });
  return out;
}

Result<std::vector<RuleCounter>> read_rule_counters(Enforcer& e) {
  std::vector<RuleCounter> out;
  if (auto* bpf = dynamic_cast<EbpfBackend*>(&e)) {
    // Per hook (the "chain" of the eBPF backend): allowed, denied, would-be-denied. The
    // programs count decisions (connections, datagrams, packets), not bytes.
    auto c = bpf->counters();
    if (!c.ok()) return std::move(c).error().context("read counters");
    static constexpr std::pair<int, const char*> kHooks[] = {
        {AMLFW_HOOK_CONNECT4, "connect4"}, {AMLFW_HOOK_CONNECT6, "connect6"}, {AMLFW_HOOK_SENDMSG4, "sendmsg4"},
        {AMLFW_HOOK_SENDMSG6, "sendmsg6"}, {AMLFW_HOOK_EGRESS, "egress"},     {AMLFW_HOOK_INGRESS, "ingress"}};
    static constexpr std::pair<int, const char*> kStats[] = {
        {AMLFW_STAT_ALLOW, "allowed"}, {AMLFW_STAT_DENY, "deny"}, {AMLFW_STAT_AUDIT, "audit"}};
    for (const auto& [hook, hname] : kHooks)
      for (const auto& [stat, sname] : kStats) {
        const size_t i = ebpf_stat_index(hook, stat);
        if (i < c->size()) out.push_back(RuleCounter{hname, sname, (*c)[i], 0});
      }
    return out;
  }
  auto* nft = dynamic_cast<NftBackend*>(&e);
  if (nft == nullptr) return out;
  NftDumpOptions opts;
  opts.elements = false;
  opts.rules = true;
  auto dump = nft->read_back(opts);
  if (!dump.ok()) return std::move(dump).error().context("read counters");
  std::map<std::pair<std::string, std::string>, size_t> at;
  for (const auto& r : dump->rules) {
    if (!r.has_counter) continue;
    const std::string label = r.comment.empty() ? "unnamed" : r.comment;
    auto key = std::make_pair(r.chain, label);
    auto it = at.find(key);
    if (it == at.end()) {
      at.emplace(key, out.size());
      out.push_back(RuleCounter{r.chain, label, r.packets, r.bytes});
    } else {
      out[it->second].packets += r.packets;
      out[it->second].bytes += r.bytes;
    }
  }
  return out;
}

std::vector<RuleCounter> reject_counters(const std::vector<RuleCounter>& all) {
  std::vector<RuleCounter> out;
  for (const auto& c : all)
    if (c.label == "deny" || c.label == "audit") out.push_back(c);
  return out;
}

std::string render_metrics(const MetricsInput& m) {
  Exposition x;
  x.family("amlfw_info", "gauge", "Mode and backend of the running daemon (always 1).");
  x.sample("amlfw_info", {{"mode", m.mode}, {"backend", m.backend}}, uint64_t{1});
  x.one("amlfw_generation", "gauge", "Policy generation (increases at each applied change).", m.generation);
  x.family("amlfw_start_time_seconds", "gauge", "When the daemon started (unix time).");
  x.sample("amlfw_start_time_seconds", {}, m.started_at);
  x.one("amlfw_rules", "gauge", "Rules of the compiled policy.", m.rules);
  x.one("amlfw_prefixes", "gauge", "Address ranges programmed (after merging).", m.prefixes);
  x.one("amlfw_learned_addresses", "gauge", "Addresses learned from DNS answers and still valid.",
        m.learned_addresses);
  x.one("amlfw_service_tags_change_number", "gauge", "changeNumber of the service-tags data in force.",
        m.service_tags_change);
  x.family("amlfw_service_tags_age_seconds", "gauge", "Seconds since the service-tags data in force was loaded.");
  x.sample("amlfw_service_tags_age_seconds", {}, m.service_tags_age_s);

  x.one("amlfw_counters_read_ok", "gauge", "1 when the rule counters below could be read from the kernel.",
        m.counters_ok ? 1u : 0u);
  x.family("amlfw_rule_packets_total", "counter",
           "Packets accepted by the rules of a port group (label rules: the rule ids) or by a base rule.");
  for (const auto& c : m.rule_counters)
    if (c.label != "deny" && c.label != "audit")
      x.sample("amlfw_rule_packets_total", {{"chain", c.chain}, {"rules", c.label}}, c.packets);
  x.family("amlfw_rule_bytes_total", "counter", "Bytes accepted by the rules of a port group or by a base rule.");
  for (const auto& c : m.rule_counters)
    if (c.label != "deny" && c.label != "audit")
      x.sample("amlfw_rule_bytes_total", {{"chain", c.chain}, {"rules", c.label}}, c.bytes);
  x.family("amlfw_denied_packets_total", "counter",
           "Packets that reached the end of a chain: rejected (mode enforce) or counted (mode audit).");
  for (const auto& c : reject_counters(m.rule_counters))
    x.sample("amlfw_denied_packets_total", {{"chain", c.chain}, {"action", c.label == "audit" ? "audit" : "reject"}},
             c.packets);
  x.family("amlfw_denied_bytes_total", "counter", "Bytes that reached the end of a chain.");
  for (const auto& c : reject_counters(m.rule_counters))
    x.sample("amlfw_denied_bytes_total", {{"chain", c.chain}, {"action", c.label == "audit" ? "audit" : "reject"}},
             c.bytes);

  const DaemonCounters& k = m.counters;
  x.family("amlfw_errors_total", "counter", "Errors by kind.");
  const std::vector<std::pair<const char*, uint64_t>> errors = {
      {"resolve", k.resolve_failures},          {"dns_upstream", k.dns_upstream_errors},
      {"tag_fetch", k.tag_fetch_errors},        {"tag_update_refused", k.tag_updates_refused},
      {"apply", k.apply_errors},                {"learn", k.learn_errors},
      {"reload_refused", k.reloads_refused},    {"state_save", k.state_save_errors}};
  for (const auto& [kind, v] : errors) x.sample("amlfw_errors_total", {{"kind", kind}}, v);
  x.one("amlfw_reloads_total", "counter", "Reloads applied (SIGHUP or amlfw reload).", k.reloads);
  x.family("amlfw_bounds_hit_total", "counter", "Times a bound stopped something.");
  const std::vector<std::pair<const char*, uint64_t>> bounds = {
      {"learn_special_use", k.learn_refused_special},
      {"learn_per_name", k.learn_over_name_limit},
      {"learned_table_full", k.learned_table_full},
      {"control_clients", m.control_refused_busy},
      {"control_request_size", m.control_oversized},
      {"control_idle", m.control_timed_out},
      {"metrics_clients", m.metrics_refused_busy}};
  for (const auto& [bound, v] : bounds) x.sample("amlfw_bounds_hit_total", {{"bound", bound}}, v);
  x.one("amlfw_control_refused_peers_total", "counter", "Control connections refused by the peer credential check.",
        m.control_refused_peer);
  x.family("amlfw_connections", "gauge", "Open connections.");
  x.sample("amlfw_connections", {{"listener", "control"}}, m.control_clients);
  x.sample("amlfw_connections", {{"listener", "metrics"}}, m.metrics_clients);
  return x.take();
}

std::string http_metrics_response(std::string_view head, const std::string& body) {
  auto respond = [](std::string_view status, std::string_view type, const std::string& b, bool with_body) {
    std::string r = "HTTP/1.1 ";
    r += status;
    r += "\r\nContent-Type: ";
    r += type;
    r += "\r\nContent-Length: " + std::to_string(b.size()) + "\r\nConnection: close\r\n\r\n";
    if (with_body) r += b;
    return r;
  };
  const auto eol = head.find_first_of("\r\n");
  const std::string_view line = head.substr(0, eol);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? std::string_view::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0)
    return respond("400 Bad Request", "text/plain; charset=utf-8", "bad request\n", true);
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (method != "GET" && method != "HEAD")
    return respond("405 Method Not Allowed", "text/plain; charset=utf-8", "use GET /metrics\n", true);
  if (target != "/metrics") return respond("404 Not Found", "text/plain; charset=utf-8", "see /metrics\n", method == "GET");
  return respond("200 OK", "text/plain; version=0.0.4; charset=utf-8", body, method == "GET");
}

}  // namespace amlfw
