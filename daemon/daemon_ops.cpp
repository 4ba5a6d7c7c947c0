// SPDX-License-Identifier: MIT
// The daemon's operations side: the control socket (status, explain, reload), the state
// kept in state_dir (last good policy, learned addresses), the metrics listener.
// See docs/operations.md.
#include <unistd.h>

#include <ctime>

#include "daemon/daemon.h"
#include "daemon/nflog.h"
#include "daemon/nft_backend.h"
#include "policy/render_nft.h"
#include "daemon/ebpf_backend.h"
#include "daemon/log.h"
#include "policy/render.h"

namespace amlfw {
namespace {

using std::chrono::seconds;

constexpr auto kLearnedSaveEvery = seconds(5);
constexpr auto kStateRetryFirst = seconds(30);
// eBPF backend: expired learned addresses stay in the maps (the programs treat them as
// absent) until collected: when the daemon's own table has just dropped some, and at least
// this often (addresses learned by an earlier process, clock skew between the two tables).
constexpr auto kEbpfCollectEvery = seconds(30);

std::string iso_time(int64_t unix_s) {
  if (unix_s <= 0) return "";
  const time_t t = static_cast<time_t>(unix_s);
  tm tmv{};
  gmtime_r(&t, &tmv);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  return buf;
}

size_t range_count(const Policy& p) {
  size_t n = 0;
  for (const auto& r : p.rules) n += r.prefixes.v4().size() + r.prefixes.v6().size();
  return n;
}

}  // namespace

// ---- control socket ------------------------------------------------------------------------

Status Daemon::open_control() {
  started_at_ = unix_now();
  auto cfg = load_config(opts_.config_path);
  if (!cfg.ok()) return {};  // load_initial reports it
  auto group = lookup_group(cfg->control.group);
  if (!group.ok()) LOG_ERR("%s: the control socket is for root only", group.error().message.c_str());
  const std::string path = control_socket_path(*cfg);
  bool in_use = false;
  auto fd = listen_unix(path, 0660, group.ok() ? *group : std::nullopt, &in_use);
  if (!fd.ok()) {
    if (in_use) return std::move(fd).error();
    LOG_ERR("control socket: %s; amlfw status, explain and reload will not reach this daemon (SIGHUP still reloads)",
            fd.error().message.c_str());
    return {};
  }
  control_fd_ = std::move(*fd);
  return {};
}

Status Daemon::start_operations() {
  learned_.set_limit(config_.dns.max_learned);
  if (control_fd_) {
    const std::string path = control_socket_path(config_);
    std::optional<gid_t> gid;
    if (auto g = lookup_group(config_.control.group); g.ok()) gid = *g;
    const std::string group_name = config_.control.group;
    StreamServer::Limits lim;
    lim.max_clients = 16;
    lim.max_request = kControlMaxRequest;
    lim.idle = std::chrono::seconds(10);
    StreamServer::Canned canned;
    canned.oversize = control_error_line("request larger than " + std::to_string(kControlMaxRequest) +
                                         " bytes (one JSON object per line); connection closed");
    canned.busy = control_error_line("too many control connections; try again");
    const uid_t self = ::geteuid();
    auto admit = [gid, group_name, self](const PeerCred& p) -> std::optional<StreamServer::Reply> {
      if (peer_allowed(p, gid, self)) return std::nullopt;
      return StreamServer::Reply{
          control_error_line("permission denied: uid " + std::to_string(p.uid) + " is not root" +
                             (group_name.empty() ? std::string(" (set [control] group to let a group in)")
                                                 : " nor a member of group '" + group_name + "'")),
          true};
    };
    auto srv = StreamServer::create(
        *loop_, std::move(control_fd_), lim, frame_line,
        [this](std::string_view req, const PeerCred&) { return on_control(req); }, admit, canned);
    if (!srv.ok()) return std::move(srv).error().context("control socket");
    control_ = std::move(*srv);
    control_->unlink_on_close(path);
  }
  if (!config_.metrics.listen.empty()) {
    auto addr = parse_socket_address(config_.metrics.listen);
    auto fd = addr.ok() ? listen_tcp(*addr) : Result<Fd>(addr.error());
    if (!fd.ok()) {
      LOG_ERR("metrics: %s: %s; no metrics", config_.metrics.listen.c_str(), fd.error().message.c_str());
    } else {
      StreamServer::Limits lim;
      lim.max_clients = 8;
      lim.max_request = 8192;
      lim.idle = std::chrono::seconds(5);
      StreamServer::Canned canned;
      canned.oversize = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      canned.busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      auto srv = StreamServer::create(
          *loop_, std::move(*fd), lim, frame_http_head,
          [this](std::string_view head, const PeerCred&) {
            return StreamServer::Reply{http_metrics_response(head, metrics_text()), true};
          },
          nullptr, canned);
      if (!srv.ok()) return std::move(srv).error().context("metrics");
      metrics_ = std::move(*srv);
      LOG_INFO("metrics: http://%s/metrics", config_.metrics.listen.c_str());
    }
  }
  if (auto* bpf = dynamic_cast<EbpfBackend*>(enforcer_.get()); bpf != nullptr) {
    auto ev = EbpfEvents::open(bpf->pin_dir(), [this](const EbpfEvent& e) {
      if (e.direction == Direction::kEgress) note_denied(e.addr, e.port, e.proto);
    });
    if (!ev.ok()) {
      LOG_WARN("ebpf events: %s; status lists no denied destinations", ev.error().message.c_str());
    } else {
      ebpf_events_ = std::move(*ev);
      Status s = loop_->add_fd(ebpf_events_->fd(), kIoRead, [this](uint32_t) { (void)ebpf_events_->drain(); });
      if (!s.ok()) {
        LOG_WARN("ebpf events: %s", s.error().message.c_str());
        ebpf_events_.reset();
      }
    }
  }
  if (dynamic_cast<NftBackend*>(enforcer_.get()) != nullptr) {
    auto rd = NflogReader::open(kNftLogGroup);
    if (!rd.ok()) {
      LOG_WARN("%s; status lists no denied destinations", rd.error().message.c_str());
    } else {
      nflog_ = std::move(*rd);
      Status s = loop_->add_fd(nflog_->fd(), kIoRead, [this](uint32_t) {
        nflog_->drain([this](const NflogPacket& pkt) {
          if (!pkt.egress) return;
          note_denied(pkt.dst, pkt.port, pkt.proto);
          // One log line a second at most: the kernel already limits the packets to 10/s.
          const auto now = std::chrono::steady_clock::now();
          if (now - last_denied_log_ >= std::chrono::seconds(1)) {
            last_denied_log_ = now;
            LOG_NOTICE("%s %s%s%s port %u proto %u", policy_.mode == Mode::kAudit ? "would deny" : "denied",
                       pkt.dst.v6 ? "[" : "", pkt.dst.str().c_str(), pkt.dst.v6 ? "]" : "", pkt.port, pkt.proto);
          }
        });
      });
      if (!s.ok()) {
        LOG_WARN("nflog: %s", s.error().message.c_str());
        nflog_.reset();
      }
    }
  }
  learned_timer_ = loop_->add_timer([this, collect_at = EventLoop::now() + kEbpfCollectEvery]() mutable {
    const size_t pruned = learned_.prune(unix_now());
    if (pruned > 0) learned_dirty_ = true;
    if (learned_dirty_) save_learned_state();
    auto* bpf = dynamic_cast<EbpfBackend*>(enforcer_.get());
    if (bpf != nullptr && (pruned > 0 || EventLoop::now() >= collect_at)) {
      collect_at = EventLoop::now() + kEbpfCollectEvery;
      auto n = bpf->collect_garbage();
      if (!n.ok()) LOG_WARN("ebpf: collect expired learned addresses: %s", n.error().message.c_str());
      else if (*n > 0) LOG_DEBUG("ebpf: removed %zu expired learned addresses from the maps", *n);
    }
  });
  loop_->arm_timer(learned_timer_, kLearnedSaveEvery, kLearnedSaveEvery);
  if (started_from_state_ && refresh_timer_ != 0) {
    // The tag source failed at start: try it again soon, then at the configured period.
    const auto every = seconds(std::max<uint64_t>(config_.service_tags.refresh_s, 1));
    loop_->arm_timer(refresh_timer_, kStateRetryFirst, every);
  }
  return {};
}

void Daemon::stop_operations() {
  if (learned_timer_ != 0) loop_->remove_timer(learned_timer_);
  learned_timer_ = 0;
  save_learned_state();
  control_.reset();
  metrics_.reset();
  if (ebpf_events_) {
    loop_->remove_fd(ebpf_events_->fd());
    ebpf_events_.reset();
  }
  if (nflog_) {
    loop_->remove_fd(nflog_->fd());
    nflog_.reset();
  }
}

void Daemon::note_denied(const IpAddr& dst, uint16_t port, uint8_t proto) {
  denied_.note(dst, port, proto, unix_now());
}

StreamServer::Reply Daemon::on_control(std::string_view line) {
  auto req = parse_control_request(line);
  if (!req.ok()) return {control_error_line(req.error().message), false};
  switch (req->cmd) {
    case ControlCmd::kStatus:
      return {control_reply_line(status_json()), false};
    case ControlCmd::kExplain: {
      auto t = parse_target(req->target);
      if (!t.ok()) return {control_error_line(t.error().message), false};
      return {control_reply_line(explain_json(*t)), false};
    }
    case ControlCmd::kReload: {
      LOG_NOTICE("reload asked on the control socket");
      reload();
      nlohmann::json j;
      j["applied"] = reload_applied_;
      j["message"] = reload_message_;
      j["generation"] = generation_;
      return {control_reply_line(std::move(j)), false};
    }
  }
  return {control_error_line("unknown request"), false};
}

nlohmann::json Daemon::status_json() {
  const int64_t now = unix_now();
  if (learned_.prune(now) > 0) learned_dirty_ = true;
  nlohmann::json j;
  j["mode"] = std::string(to_string(policy_.mode));
  j["backend"] = std::string(enforcer_->name());
  j["generation"] = generation_;
  j["rules"] = policy_.rules.size();
  j["prefixes"] = range_count(policy_);
  j["learned_addresses"] = learned_.size();
  nlohmann::json st;
  st["source"] = tag_source_ ? tag_source_->source() : config_.service_tags.source;
  st["origin"] = policy_.service_tags_origin;
  st["cloud"] = policy_.service_tags_cloud;
  st["change_number"] = policy_.service_tags_change;
  st["loaded_at"] = tags_loaded_at_ > 0 ? nlohmann::json(iso_time(tags_loaded_at_)) : nlohmann::json(nullptr);
  st["age_s"] = tags_loaded_at_ > 0 ? nlohmann::json(now - tags_loaded_at_) : nlohmann::json(nullptr);
  j["service_tags"] = st;
  j["config"] = config_.path;
  j["catalog"] = policy_.catalog;
  j["cloud"] = policy_.cloud;
  j["region"] = policy_.region;
  j["started_at"] = iso_time(started_at_);
  j["started_from_state"] = started_from_state_;
  j["state_dir"] = config_.paths.state_dir;
  // Recent denied destinations, from the backend's events (eBPF ring buffer). nftables:
  // NFLOG is not collected yet, the list stays empty; the reject counters per chain below
  // say how many packets were refused.
  nlohmann::json denied = nlohmann::json::array();
  for (const auto& e : denied_.entries()) {
    nlohmann::json d;
    d["dst"] = e.dst.str();
    d["port"] = e.port;
    d["proto"] = e.proto == 6 ? std::string("tcp") : e.proto == 17 ? std::string("udp") : std::to_string(e.proto);
    const auto* srcs = learned_.find(e.dst);
    d["name"] = srcs != nullptr && !srcs->empty() ? nlohmann::json(srcs->front().name) : nlohmann::json(nullptr);
    d["count"] = e.count;
    d["last_seen"] = iso_time(e.last_seen);
    denied.push_back(std::move(d));
  }
  j["denied"] = denied;
  auto counters = read_rule_counters(*enforcer_);
  if (counters.ok()) {
    nlohmann::json rej = nlohmann::json::object();
    for (const auto& c : reject_counters(*counters)) {
      auto it = rej.find(c.chain);
      if (it == rej.end()) {
        rej[c.chain] = {{"packets", c.packets}, {"bytes", c.bytes}, {"action", c.label == "audit" ? "audit" : "reject"}};
        continue;
      }
      // The eBPF backend counts denials and would-be denials of one hook apart: one line,
      // both counts, the action of the mode in force.
      (*it)["packets"] = (*it)["packets"].get<uint64_t>() + c.packets;
      (*it)["bytes"] = (*it)["bytes"].get<uint64_t>() + c.bytes;
      (*it)["action"] = policy_.mode == Mode::kAudit ? "audit" : "reject";
    }
    j["rejected"] = rej;
    nlohmann::json acc = nlohmann::json::array();
    for (const auto& c : *counters)
      if (c.label != "deny" && c.label != "audit")
        acc.push_back({{"chain", c.chain}, {"rules", c.label}, {"packets", c.packets}, {"bytes", c.bytes}});
    j["accepted"] = acc;
  } else {
    j["rejected"] = nullptr;
    j["counters_error"] = counters.error().message;
  }
  const DaemonCounters& k = counters_;
  j["errors"] = {{"resolve", k.resolve_failures},       {"dns_upstream", k.dns_upstream_errors},
                 {"tag_fetch", k.tag_fetch_errors},     {"tag_update_refused", k.tag_updates_refused},
                 {"apply", k.apply_errors},             {"learn", k.learn_errors},
                 {"reload_refused", k.reloads_refused}, {"state_save", k.state_save_errors}};
  j["bounds_hit"] = {{"learn_special_use", k.learn_refused_special},
                     {"learn_per_name", k.learn_over_name_limit},
                     {"learned_table_full", k.learned_table_full}};
  if (!reload_message_.empty()) j["last_reload"] = {{"applied", reload_applied_}, {"message", reload_message_}};
  return j;
}

nlohmann::json Daemon::explain_json(const Target& t) {
  Verdict v = explain(policy_, t);
  if (!v.allow && t.addr) {
    const int64_t now = unix_now();
    std::string note;
    if (const auto* srcs = learned_.find(*t.addr)) {
      for (const auto& src : *srcs) {
        if (src.expires_at <= now) continue;
        for (const Rule* r : policy_.rules_for_name(src.name)) {
          if (r->proto != Proto::kAny && r->proto != t.proto) continue;
          if (t.port && !ports_contain(r->ports, *t.port)) continue;
          v.allow = true;
          v.rule = r;
          v.rule_id = r->id;
          v.why = t.addr->str() + " was learned from the DNS answer for " + src.name + " (for " +
                  std::to_string(src.expires_at - now) + " s more): " + src.name + " matches " + r->dest + " and " +
                  proto_text(r->proto) + " " + ports_text(r->ports) + " is allowed by " + r->id + " (" + r->why + ")";
          if (policy_.mode == Mode::kAudit) v.why += " [audit mode]";
          break;
        }
        if (v.allow) break;
        if (note.empty())
          note = "; it was learned from the DNS answer for " + src.name + ", whose rules do not allow " +
                 proto_text(t.proto) + (t.port ? " " + std::to_string(*t.port) : std::string());
      }
    }
    if (!v.allow) {
      // The offline answer points at the daemon for learned addresses: this is the daemon.
      const auto hint = v.why.find(" (addresses learned from DNS");
      if (hint != std::string::npos) {
        const auto close = v.why.find(')', hint);
        v.why.replace(hint, close == std::string::npos ? std::string::npos : close - hint + 1,
                      note.empty() ? " and no DNS answer taught it" : "");
      }
      v.why += note;
    }
  }
  nlohmann::json j = verdict_json(t, v);
  j["source"] = "daemon";
  j["generation"] = generation_;
  return j;
}

std::string Daemon::metrics_text() {
  const int64_t now = unix_now();
  if (learned_.prune(now) > 0) learned_dirty_ = true;
  MetricsInput m;
  m.generation = generation_;
  m.mode = std::string(to_string(policy_.mode));
  m.backend = std::string(enforcer_->name());
  m.rules = policy_.rules.size();
  m.prefixes = range_count(policy_);
  m.learned_addresses = learned_.size();
  m.service_tags_change = policy_.service_tags_change;
  m.service_tags_age_s = tags_loaded_at_ > 0 ? now - tags_loaded_at_ : -1;
  m.started_at = started_at_;
  m.counters = counters_;
  auto rc = read_rule_counters(*enforcer_);
  m.counters_ok = rc.ok();
  if (rc.ok()) m.rule_counters = std::move(*rc);
  if (control_) {
    const auto& s = control_->stats();
    m.control_clients = control_->clients();
    m.control_refused_peer = s.refused_peer;
    m.control_refused_busy = s.refused_busy;
    m.control_oversized = s.oversized;
    m.control_timed_out = s.timed_out;
  }
  if (metrics_) {
    m.metrics_clients = metrics_->clients();
    m.metrics_refused_busy = metrics_->stats().refused_busy;
  }
  return render_metrics(m);
}

// ---- state_dir ---------------------------------------------------------------------------

void Daemon::note_programmed(const Policy& p) {
  if (state_tags_loaded_at_) {
    tags_loaded_at_ = *state_tags_loaded_at_;
    state_tags_loaded_at_.reset();
    return;
  }
  if (tags_loaded_at_ == 0 || p.service_tags_change != policy_.service_tags_change ||
      p.service_tags_origin != policy_.service_tags_origin)
    tags_loaded_at_ = unix_now();
}

void Daemon::save_policy_state() {
  const auto st = policy_state_of(config_, policy_, generation_, tags_loaded_at_, unix_now());
  Status s = write_file_atomic(config_.paths.state_dir, kPolicyStateFile, encode_policy_state(st));
  if (!s.ok()) {
    ++counters_.state_save_errors;
    LOG_WARN("%s; the last good policy is not saved (boot restores an older one, if any)", s.error().message.c_str());
  }
}

void Daemon::save_learned_state() {
  LearnedState ls;
  ls.saved_at = unix_now();
  ls.entries = learned_.records(ls.saved_at);
  Status s = write_file_atomic(config_.paths.state_dir, kLearnedNamesStateFile, encode_learned_state(ls));
  if (!s.ok()) {
    ++counters_.state_save_errors;
    LOG_WARN("%s; learned addresses not saved", s.error().message.c_str());
    return;
  }
  learned_dirty_ = false;
}

void Daemon::record_learned(const std::string& name, const std::vector<std::string>& groups,
                            const std::vector<LearnedAddr>& addrs) {
  const size_t dropped = learned_.record(name, groups, addrs, unix_now());
  if (dropped > 0) {
    counters_.learned_table_full += dropped;
    LOG_WARN("%s: %zu learned address(es) not tracked: dns.max_learned = %u reached", name.c_str(), dropped,
             config_.dns.max_learned);
  }
  learned_dirty_ = true;
}

void Daemon::restore_learned() {
  learned_.set_limit(config_.dns.max_learned);
  auto ls = load_learned_state(config_.paths.state_dir);
  if (!ls.ok()) {
    LOG_WARN("%s", ls.error().message.c_str());
    return;
  }
  if (!*ls) return;
  const int64_t now = unix_now();
  size_t n = 0;
  for (const auto& b : learn_batches(policy_, (*ls)->entries, now, LearnLimits::from(config_.dns))) {
    Status s = enforcer_->learn(b.groups, b.addrs);
    if (!s.ok()) {
      ++counters_.learn_errors;
      LOG_WARN("saved learned addresses: %s", s.error().message.c_str());
      continue;
    }
    for (size_t i = 0; i < b.addrs.size(); ++i) learned_.record(b.names[i], b.groups, {b.addrs[i]}, now);
    n += b.addrs.size();
  }
  if (n > 0) LOG_INFO("%zu learned address(es) of the last run taught again", n);
}

Status Daemon::start_from_state(Error why) {
  auto loaded = load_policy_state(config_.paths.state_dir);
  if (!loaded.ok()) {
    LOG_ERR("%s", loaded.error().message.c_str());
    return why;
  }
  if (!*loaded) return why;
  PolicyState& s = **loaded;
  LOG_WARN("%s; starting from the last good state of %s (saved %s, generation %llu, service tags #%llu)",
           why.message.c_str(), config_.paths.state_dir.c_str(), iso_time(s.saved_at).c_str(),
           static_cast<unsigned long long>(s.generation), static_cast<unsigned long long>(s.tags.change_number));
  const bool has_tags = !s.tags.cloud.empty() || !s.tags.tags.empty();
  auto pol = compile_policy(config_, has_tags ? &s.tags : nullptr, upstreams_, s.tags_origin);
  if (!pol.ok()) {
    LOG_WARN("the configuration does not compile with the saved service tags (%s): enforcing the saved "
             "configuration as a whole until the tag source answers",
             pol.error().message.c_str());
    auto c = compile_state(s);
    if (!c.ok()) {
      LOG_ERR("%s", c.error().message.c_str());
      return why;
    }
    config_ = std::move(c->config);
    upstreams_ = s.upstreams;
    pol = std::move(c->policy);
  }
  tags_ = s.tags;
  state_tags_loaded_at_ = s.tags_loaded_at;
  started_from_state_ = true;
  return program(*pol, "start from the saved state");
}

}  // namespace amlfw
