// SPDX-License-Identifier: MIT
#include "daemon/daemon.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "daemon/azure.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "policy/tag_update.h"

namespace amlfw {
namespace {

using std::chrono::seconds;

std::vector<std::pair<IpAddr, uint32_t>> answers_of(const Resolution& r) {
  std::vector<std::pair<IpAddr, uint32_t>> out;
  out.reserve(r.addrs.size());
  for (const auto& a : r.addrs) out.emplace_back(a.addr, a.ttl);
  return out;
}

std::set<std::string> exact_names(const Policy& p) {
  std::set<std::string> out;
  for (const auto& r : p.rules)
    if (r.kind == DestKind::kFqdn && r.direction == Direction::kEgress && r.pattern.kind() == NamePattern::Kind::kExact)
      out.insert(r.pattern.base());
  return out;
}

std::string summary(const Policy& p, uint64_t generation) {
  size_t tags = 0, names = 0, ranges = 0;
  for (const auto& r : p.rules) {
    if (r.kind == DestKind::kFqdn) ++names;
    else ++tags;
    ranges += r.prefixes.v4().size() + r.prefixes.v6().size();
  }
  return std::string(p.mode == Mode::kAudit ? "auditing " : "enforcing ") + std::to_string(p.rules.size()) +
         " rules (" + std::to_string(tags) + " address rules, " + std::to_string(ranges) + " ranges; " +
         std::to_string(names) + " name rules), generation " + std::to_string(generation) +
         (p.service_tags_cloud.empty() ? "" : ", service tags #" + std::to_string(p.service_tags_change));
}

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::create(const DaemonOptions& opts, std::unique_ptr<Enforcer> enforcer) {
  return std::unique_ptr<Daemon>(new Daemon(opts, std::move(enforcer)));
}

Daemon::~Daemon() {
  stop_fetch();
  if (fetch_event_fd_ >= 0) ::close(fetch_event_fd_);
}

Result<ServiceTags> Daemon::fetch_and_parse(TagSource& src, bool* not_modified) {
  auto f = src.fetch();
  if (!f.ok()) return f.error();
  *not_modified = f->not_modified;
  if (f->not_modified) return data_error("not modified");
  return parse_tags_for(config_, f->body, f->origin);
}

Status Daemon::load_initial() {
  auto cfg = load_config(opts_.config_path);
  if (!cfg.ok()) return cfg.error();
  config_ = std::move(*cfg);
  if (config_.is_default) LOG_NOTICE("%s not found: using the embedded default configuration", opts_.config_path.c_str());
  auto ups = dns_upstreams(config_);
  if (!ups.ok()) return ups.error();
  upstreams_ = std::move(*ups);
  // cloud/region = "auto", azure-api's subscription: Azure IMDS (daemon/azure.h).
  Status az = resolve_azure_auto(config_);
  tag_source_ = make_tag_source(config_);
  if (!az.ok()) return loop_ ? start_from_state(az.error()) : az.error();
  bool nm = false;
  auto tags = fetch_and_parse(*tag_source_, &nm);
  if (!tags.ok()) return loop_ ? start_from_state(std::move(tags).error()) : std::move(tags).error();
  tags_ = std::move(*tags);
  auto pol = compile_policy(config_, &*tags_, upstreams_, tag_source_->source());
  if (!pol.ok()) return pol.error();
  return program(*pol, "start");
}

Status Daemon::program(const Policy& p, const char* why) {
  auto groups = group_rules(p);
  Status s = enforcer_->apply(p, groups);
  if (!s.ok()) {
    ++counters_.apply_errors;
    return std::move(s).error().context(std::string("apply (") + why + ")");
  }
  // The generation counts applied changes: a reload or refresh that changes nothing in the
  // kernel (same groups, same elements, same base settings) keeps it.
  const bool changed = generation_ == 0 || !diff_groups(group_rules(policy_), groups).empty() ||
                       p.mode != policy_.mode || p.inbound_enforce != policy_.inbound_enforce ||
                       p.platform_azure != policy_.platform_azure || p.dns_redirect != policy_.dns_redirect ||
                       p.dns_upstreams != policy_.dns_upstreams || p.dns_upstream_port != policy_.dns_upstream_port ||
                       p.egress_local != policy_.egress_local || p.forward_interfaces != policy_.forward_interfaces ||
                       p.forward_sources != policy_.forward_sources ||
                       p.forward_dns_redirect != policy_.forward_dns_redirect ||
                       ((p.dns_redirect || p.forward_dns_redirect) && p.dns_listen != policy_.dns_listen);
  note_programmed(p);
  policy_ = p;
  if (changed) ++generation_;
  LOG_INFO("%s: %s%s", why, summary(policy_, generation_).c_str(), changed ? "" : " (no change)");
  save_policy_state();
  return {};
}

void Daemon::learn(const std::string& name, const std::vector<std::pair<IpAddr, uint32_t>>& answers) {
  auto groups = groups_for_name(policy_, name);
  if (groups.empty() || answers.empty()) return;
  auto plan = plan_learning(answers, LearnLimits::from(config_.dns));
  counters_.learn_refused_special += plan.refused_special;
  counters_.learn_over_name_limit += plan.over_limit;
  if (plan.refused_special > 0)
    LOG_WARN("%s: %zu special-use address(es) in the answer not learned (dns.allow_private = false)", name.c_str(),
             plan.refused_special);
  if (plan.over_limit > 0)
    LOG_WARN("%s: %zu address(es) over dns.max_addresses_per_name not learned", name.c_str(), plan.over_limit);
  if (plan.addrs.empty()) return;
  Status s = enforcer_->learn(groups, plan.addrs);
  if (!s.ok()) {
    ++counters_.learn_errors;
    LOG_ERR("learn %s: %s", name.c_str(), s.error().message.c_str());
    return;
  }
  record_learned(name, groups, plan.addrs);
}

Status Daemon::apply_once() {
  AMLFW_TRY(load_initial());
  restore_learned();
  struct SaveLearned {
    Daemon* d;
    ~SaveLearned() { d->save_learned_state(); }
  } save_learned{this};
  auto names = exact_names(policy_);
  if (names.empty()) return {};
  if (upstreams_.addrs.empty()) {
    LOG_WARN("no DNS upstream (dns.upstreams empty and no usable nameserver in /etc/resolv.conf): %zu exact names not resolved",
             names.size());
    return {};
  }
  std::vector<std::string> list(names.begin(), names.end());
  auto res = resolve_all(list, upstreams_.servers(), std::chrono::seconds(10));
  if (!res.ok()) return std::move(res).error().context("resolve");
  size_t ok = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& r = (*res)[i];
    if (!r.ok()) {
      LOG_WARN("resolve %s: %s", list[i].c_str(), r.error().message.c_str());
      continue;
    }
    ++ok;
    learn(list[i], answers_of(*r));
  }
  LOG_INFO("resolved %zu of %zu exact names", ok, list.size());
  return {};
}

// ---- the daemon loop --------------------------------------------------------------------

void Daemon::notify_status() {
  (void)notifier_.status(summary(policy_, generation_));
}

void Daemon::sync_names() {
  auto want = exact_names(policy_);
  for (auto it = names_.begin(); it != names_.end();) {
    if (want.count(it->first) == 0) {
      loop_->remove_timer(it->second.timer);
      it = names_.erase(it);
    } else {
      learn(it->first, it->second.last);  // groups may have changed: teach them too
      ++it;
    }
  }
  if (!resolver_) return;
  for (const auto& n : want) {
    if (names_.count(n)) continue;
    NameState& st = names_[n];
    st.timer = loop_->add_timer([this, n] { resolve_name(n); });
    resolve_name(n);
  }
}

void Daemon::resolve_name(const std::string& name) {
  auto it = names_.find(name);
  if (it == names_.end() || it->second.in_flight || !resolver_) return;
  it->second.in_flight = true;
  resolver_->resolve(name, [this, name](Result<Resolution> r) { on_resolved(name, std::move(r)); });
}

void Daemon::on_resolved(const std::string& name, Result<Resolution> r) {
  auto it = names_.find(name);
  if (it == names_.end()) return;  // dropped by a reload meanwhile
  NameState& st = it->second;
  st.in_flight = false;
  const auto lim = LearnLimits::from(config_.dns);
  uint64_t next_s = lim.min_ttl_s;
  if (r.ok() && (!r->addrs.empty() || r->complete)) {
    st.failures = 0;
    st.last = answers_of(*r);
    learn(name, st.last);
    if (!r->addrs.empty()) next_s = std::clamp<uint64_t>(r->min_ttl(), lim.min_ttl_s, lim.max_ttl_s);
  } else {
    ++st.failures;
    ++counters_.resolve_failures;
    const std::string why = r.ok() ? r->partial_error : r.error().message;
    LOG_WARN("resolve %s: %s; keeping %zu known address(es)", name.c_str(), why.c_str(), st.last.size());
    // Keep the old addresses alive while the upstream fails.
    std::vector<std::pair<IpAddr, uint32_t>> keep = st.last;
    for (auto& k : keep) k.second = static_cast<uint32_t>(lim.min_ttl_s);
    learn(name, keep);
    next_s = std::min<uint64_t>(lim.min_ttl_s, 5u << std::min(st.failures, 4u));
  }
  loop_->arm_timer(st.timer, seconds(next_s));
}

void Daemon::stop_fetch() {
  if (!fetch_thread_.joinable()) return;
  http_cancel(true);  // a hanging server ends the transfer within about a second
  fetch_thread_.join();
  http_cancel(false);
}

void Daemon::schedule_refresh() {
  if (refresh_timer_ == 0) refresh_timer_ = loop_->add_timer([this] { refresh_tags(false); });
  const auto every = seconds(std::max<uint64_t>(config_.service_tags.refresh_s, 1));
  loop_->arm_timer(refresh_timer_, every, every);
}

void Daemon::refresh_tags(bool force) {
  if (fetch_running_) return;
  if (force) tag_source_->forget();
  if (!tag_source_->is_remote()) {
    on_tags_fetched(tag_source_->fetch(), force);
    return;
  }
  fetch_running_ = true;
  fetch_force_ = force;
  TagSource* src = tag_source_.get();
  fetch_thread_ = std::thread([this, src] {
    fetch_result_.emplace(src->fetch());
    uint64_t one = 1;
    ssize_t w = ::write(fetch_event_fd_, &one, sizeof one);
    (void)w;
  });
}

void Daemon::on_tags_fetched(Result<TagFetch> f, bool force) {
  if (!f.ok()) {
    ++counters_.tag_fetch_errors;
    LOG_WARN("service tags refresh: %s; keeping the last good data", f.error().message.c_str());
    if (auto ra = tag_source_->retry_after_s(); ra && loop_ && refresh_timer_ != 0) {  // HTTP 429: as asked
      const auto every = seconds(std::max<uint64_t>(config_.service_tags.refresh_s, 1));
      loop_->arm_timer(refresh_timer_, std::min<seconds>(seconds(std::max<uint64_t>(*ra, 60)), every), every);
    }
    return;
  }
  if (f->not_modified) {
    LOG_DEBUG("service tags %s: not modified", f->origin.c_str());
    return;
  }
  auto tags = parse_tags_for(config_, f->body, f->origin);
  if (!tags.ok()) {
    ++counters_.tag_updates_refused;
    LOG_ERR("service tags refresh refused: %s; keeping the last good data", tags.error().message.c_str());
    tag_source_->forget();
    return;
  }
  accept_tags(std::move(*tags), force);
}

void Daemon::accept_tags(ServiceTags tags, bool force) {
  if (tags_) {
    auto shrink = shrinking_tags(*tags_, tags, tags_used(policy_), config_.service_tags.max_shrink);
    if (!shrink.empty() && !force) {
      LOG_ERR("service tags update #%llu refused: %s (more than service_tags.max_shrink = %.0f%%); the running policy "
              "stays; send SIGUSR1 to accept it",
              static_cast<unsigned long long>(tags.change_number), describe_shrink(shrink).c_str(),
              config_.service_tags.max_shrink * 100);
      tag_source_->forget();
      return;
    }
  }
  auto pol = compile_policy(config_, &tags, upstreams_, tag_source_->source());
  if (!pol.ok()) {
    LOG_ERR("service tags update refused: %s; the running policy stays", pol.error().message.c_str());
    tag_source_->forget();
    return;
  }
  Status s = program(*pol, "service tags update");
  if (!s.ok()) {
    LOG_ERR("%s; the previous policy stays in force", s.error().message.c_str());
    tag_source_->forget();
    return;
  }
  tags_ = std::move(tags);
  sync_names();
  notify_status();
}

void Daemon::reload() {
  (void)notifier_.reloading("reloading configuration");
  reload_applied_ = false;
  auto finish = [this](const std::string& status) {
    reload_message_ = status;
    ++(reload_applied_ ? counters_.reloads : counters_.reloads_refused);
    (void)notifier_.ready(status);
  };
  auto cfg = load_config(opts_.config_path);
  if (cfg.ok()) {
    if (Status az = resolve_azure_auto(*cfg); !az.ok()) cfg = az.error();
  }
  if (!cfg.ok()) {
    LOG_ERR("reload refused: %s; the running policy stays", cfg.error().message.c_str());
    finish("reload refused: " + cfg.error().message);
    return;
  }
  auto ups = dns_upstreams(*cfg);
  if (!ups.ok()) {
    LOG_ERR("reload refused: %s; the running policy stays", ups.error().message.c_str());
    finish("reload refused: " + ups.error().message);
    return;
  }
  stop_fetch();  // the reload reads the tags again itself
  fetch_running_ = false;
  fetch_result_.reset();
  Config old = config_;
  config_ = *cfg;  // parse_tags_for and compile read config_
  std::optional<ServiceTags> new_tags;
  std::unique_ptr<TagSource> new_source;
  if (cfg->service_tags.source != tag_source_->source()) {
    new_source = make_tag_source(*cfg);
    bool nm = false;
    auto t = fetch_and_parse(*new_source, &nm);
    if (!t.ok()) {
      config_ = old;
      LOG_ERR("reload refused: %s; the running policy stays", t.error().message.c_str());
      finish("reload refused: " + t.error().message);
      return;
    }
    new_tags = std::move(*t);
  } else {
    // Same source: a reload also picks up a changed file or URL, under the same guards as a
    // scheduled refresh (a bad or shrinking file is refused; the config change still applies).
    configure_tag_source(*tag_source_, *cfg);  // azure-api: subscription or region may have changed
    bool nm = false;
    auto t = fetch_and_parse(*tag_source_, &nm);
    if (!t.ok() && !nm) {
      LOG_ERR("reload: service tags refused: %s; keeping the last good data", t.error().message.c_str());
      tag_source_->forget();
    } else if (t.ok() && tags_) {
      auto shrink = shrinking_tags(*tags_, *t, tags_used(policy_), cfg->service_tags.max_shrink);
      if (!shrink.empty())
      {
        LOG_ERR("reload: service tags update #%llu refused: %s (more than service_tags.max_shrink = %.0f%%); "
                "send SIGUSR1 to accept it",
                static_cast<unsigned long long>(t->change_number), describe_shrink(shrink).c_str(),
                cfg->service_tags.max_shrink * 100);
        tag_source_->forget();
      } else
        new_tags = std::move(*t);
    }
  }
  const ServiceTags* use = new_tags ? &*new_tags : (tags_ ? &*tags_ : nullptr);
  auto pol = compile_policy(*cfg, use, *ups, new_source ? new_source->source() : tag_source_->source());
  Status s = pol.ok() ? program(*pol, "reload") : Status(pol.error());
  if (!s.ok()) {
    config_ = old;
    LOG_ERR("reload refused: %s; the running policy stays", s.error().message.c_str());
    finish("reload refused: " + s.error().message);
    return;
  }
  upstreams_ = std::move(*ups);
  if (new_source) tag_source_ = std::move(new_source);
  if (new_tags) tags_ = std::move(new_tags);
  if (resolver_ && !upstreams_.addrs.empty()) {
    Status ss = resolver_->set_servers(upstreams_.servers());
    if (!ss.ok()) LOG_ERR("reload: resolver: %s", ss.error().message.c_str());
  }
  sync_names();
  schedule_refresh();
  reload_dns();
  reload_applied_ = true;
  finish(summary(policy_, generation_));
}

Status Daemon::run() {
  auto loop = EventLoop::create();
  if (!loop.ok()) return loop.error();
  loop_ = std::move(*loop);
  notifier_ = SdNotifier::from_environment();
  AMLFW_TRY(loop_->add_signal(SIGTERM, [this](int) { loop_->stop(); }));
  AMLFW_TRY(loop_->add_signal(SIGINT, [this](int) { loop_->stop(); }));
  AMLFW_TRY(loop_->add_signal(SIGHUP, [this](int) { reload(); }));
  AMLFW_TRY(loop_->add_signal(SIGUSR1, [this](int) { refresh_tags(true); }));
  ::signal(SIGPIPE, SIG_IGN);

  fetch_event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fetch_event_fd_ < 0) return sys_error("eventfd");
  AMLFW_TRY(loop_->add_fd(fetch_event_fd_, kIoRead, [this](uint32_t) {
    uint64_t v;
    while (::read(fetch_event_fd_, &v, sizeof v) > 0) {
    }
    if (fetch_thread_.joinable()) fetch_thread_.join();
    fetch_running_ = false;
    if (fetch_result_) {
      auto r = std::move(*fetch_result_);
      fetch_result_.reset();
      on_tags_fetched(std::move(r), fetch_force_);
    }
  }));

  AMLFW_TRY(open_control());
  Status st = load_initial();
  if (!st.ok()) {
    (void)notifier_.notify("STATUS=start failed: " + st.error().message + "\nERRNO=1");
    return st;
  }
  if (!upstreams_.addrs.empty()) {
    ResolverOptions ro;
    ro.servers = upstreams_.servers();
    auto res = Resolver::create(*loop_, ro);
    if (!res.ok()) return std::move(res).error().context("resolver");
    resolver_ = std::move(*res);
  } else {
    LOG_WARN("no DNS upstream: exact names are not resolved");
  }
  restore_learned();
  AMLFW_TRY(start_dns());
  sync_names();
  schedule_refresh();
  AMLFW_TRY(start_operations());
  if (auto wd = watchdog_interval()) {
    watchdog_timer_ = loop_->add_timer([this] { (void)notifier_.watchdog(); });
    loop_->arm_timer(watchdog_timer_, *wd / 2, *wd / 2);
  }
  (void)notifier_.ready(summary(policy_, generation_));
  st = loop_->run();
  stop_dns();
  stop_operations();
  (void)notifier_.stopping("stopping; enforcement stays in force");
  LOG_NOTICE("stopping: the policy stays in force (amlfw flush removes it)");
  stop_fetch();
  resolver_.reset();
  return st;
}

}  // namespace amlfw
