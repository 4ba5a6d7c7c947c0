// SPDX-License-Identifier: MIT
// The daemon: one epoll loop that keeps the compiled policy current in the kernel.
// `apply` uses the same object for one pass without the loop.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/control.h"
#include "daemon/daemon_dns.h"
#include "daemon/ebpf_events.h"
#include "daemon/nflog.h"
#include "daemon/enforcer.h"
#include "daemon/event_loop.h"
#include "daemon/inputs.h"
#include "daemon/learn.h"
#include "daemon/metrics.h"
#include "daemon/resolver.h"
#include "daemon/sd_notify.h"
#include "daemon/state.h"
#include "daemon/tag_source.h"
#include "policy/config.h"
#include "policy/policy.h"

namespace amlfw {

struct DaemonOptions {
  std::string config_path = "/etc/amlfw/amlfw.toml";
  bool force = false;  // accept a shrinking service-tags update at start
};

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> create(const DaemonOptions& opts, std::unique_ptr<Enforcer> enforcer);
  ~Daemon();

  // `amlfw apply`: load, program the policy, resolve the exact names once, learn them.
  Status apply_once();
  // `amlfw run`: apply, then keep everything current until SIGTERM/SIGINT.
  Status run();

  const Policy& policy() const { return policy_; }
  uint64_t generation() const { return generation_; }

  // ---- operations (daemon_ops.cpp): control socket, state_dir, metrics ----------------
  nlohmann::json status_json();                     // `amlfw status --json`
  nlohmann::json explain_json(const Target& t);     // live: learned addresses included
  std::string metrics_text();                       // Prometheus text
  DaemonCounters& counters() { return counters_; }
  // A denied (audit: would-be-denied) destination seen by the backend's event source.
  void note_denied(const IpAddr& dst, uint16_t port, uint8_t proto);
  const LearnedTable& learned() const { return learned_; }

 private:
  Daemon(DaemonOptions opts, std::unique_ptr<Enforcer> enforcer) : opts_(std::move(opts)), enforcer_(std::move(enforcer)) {}

  Status load_initial();
  Status program(const Policy& p, const char* why);
  Result<ServiceTags> fetch_and_parse(TagSource& src, bool* not_modified);
  void sync_names();                // (re)creates the schedule of exact names from policy_
  void resolve_name(const std::string& name);
  void on_resolved(const std::string& name, Result<Resolution> r);
  void learn(const std::string& name, const std::vector<std::pair<IpAddr, uint32_t>>& answers);
  void reload();                    // SIGHUP
  void refresh_tags(bool force);    // timer, SIGUSR1 (forced)
  void on_tags_fetched(Result<TagFetch> f, bool force);
  // Cancels a fetch in progress (daemon/http.h) and waits for its thread.
  void stop_fetch();
  void accept_tags(ServiceTags tags, bool force);
  void schedule_refresh();
  void notify_status();
  // ---- the DNS proxy (daemon_dns.cpp) ----
  Status start_dns();               // run(): after the learned addresses are taught again
  void reload_dns();                // reload(): limits, upstreams, listen address
  void stop_dns();
  void open_dns_proxy();
  std::vector<std::string> dns_groups(std::string_view name);
  void dns_notice(const std::string& line);

  // ---- operations (daemon_ops.cpp) ----
  Status open_control();            // run(), first: binds the control socket (one daemon per host)
  Status start_operations();        // run(): serves control and metrics, learned-state timer
  void stop_operations();           // run(): saves the learned addresses, closes the sockets
  Status start_from_state(Error why);  // run(): the tag source failed at start: the last good state
  void restore_learned();           // the learned addresses of state_dir, taught again
  void record_learned(const std::string& name, const std::vector<std::string>& groups,
                      const std::vector<LearnedAddr>& addrs);
  void note_programmed(const Policy& p);  // program(): before policy_ = p
  void save_policy_state();
  void save_learned_state();
  StreamServer::Reply on_control(std::string_view line);

  DaemonOptions opts_;
  std::unique_ptr<Enforcer> enforcer_;
  Config config_;
  DnsUpstreams upstreams_;
  std::optional<ServiceTags> tags_;
  std::unique_ptr<TagSource> tag_source_;
  Policy policy_;
  uint64_t generation_ = 0;

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Resolver> resolver_;
  SdNotifier notifier_;
  EventLoop::TimerId refresh_timer_ = 0;
  EventLoop::TimerId watchdog_timer_ = 0;

  struct NameState {
    std::vector<std::pair<IpAddr, uint32_t>> last;  // last good answer
    EventLoop::TimerId timer = 0;
    bool in_flight = false;
    unsigned failures = 0;
  };
  std::map<std::string, NameState> names_;

  // A blocking fetch (https) runs on a worker thread; the result comes back through an eventfd.
  std::thread fetch_thread_;
  int fetch_event_fd_ = -1;
  std::optional<Result<TagFetch>> fetch_result_;
  bool fetch_force_ = false;
  bool fetch_running_ = false;

  // ---- operations (daemon_ops.cpp) ----
  DaemonCounters counters_;
  LearnedTable learned_;
  bool learned_dirty_ = false;
  EventLoop::TimerId learned_timer_ = 0;
  int64_t started_at_ = 0;          // unix seconds
  int64_t tags_loaded_at_ = 0;      // unix seconds: the service-tags data in force was loaded
  std::optional<int64_t> state_tags_loaded_at_;  // from state_dir, for the next note_programmed
  bool started_from_state_ = false;
  bool reload_applied_ = false;
  std::string reload_message_;
  Fd control_fd_;                   // bound by open_control(), served from start_operations()
  std::unique_ptr<StreamServer> control_;
  std::unique_ptr<StreamServer> metrics_;
  DeniedTable denied_;
  std::unique_ptr<EbpfEvents> ebpf_events_;  // backend = "ebpf": denied events
  std::unique_ptr<NflogReader> nflog_;       // backend = "nftables": denied packets (NFLOG group)
  std::chrono::steady_clock::time_point last_denied_log_{};

  std::unique_ptr<DnsRuntime> dns_;  // last: destroyed first, while loop_ lives
};

}  // namespace amlfw
