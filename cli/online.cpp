// SPDX-License-Identifier: MIT
// Commands that touch the kernel or the running daemon: apply, run, flush, status, reload (check: cli/check.cpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/cli.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/ebpf_backend.h"
#include "daemon/nft_backend.h"

namespace amlfw::cli {
namespace {

// The backend a configuration names.
Result<std::unique_ptr<Enforcer>> open_backend(const Config& cfg) {
  if (cfg.backend == Backend::kEbpf) {
    EbpfOptions eo;
    eo.cgroup = cfg.ebpf.cgroup;  // "" = the cgroup v2 root
    auto be = EbpfBackend::create(eo);
    if (!be.ok()) return be.error();
    return std::unique_ptr<Enforcer>(std::move(*be));
  }
  auto nft = NftBackend::create();
  if (!nft.ok()) return nft.error();
  return std::unique_ptr<Enforcer>(std::move(*nft));
}

Result<std::unique_ptr<Enforcer>> open_backend(const std::string& config_path) {
  auto cfg = load_config(config_path);
  if (!cfg.ok()) return cfg.error();
  return open_backend(*cfg);
}

}  // namespace

Result<nlohmann::json> ask_daemon(const Options& o, const nlohmann::json& request, std::chrono::milliseconds timeout) {
  auto reply = control_call(control_socket_path_for(o.config), request, timeout);
  if (!reply.ok()) return reply.error();
  if (!reply->value("ok", false)) {
    const std::string e = reply->value("error", std::string("the daemon refused the request"));
    return runtime_error(e);
  }
  reply->erase("ok");
  return reply;
}

std::string status_table(const nlohmann::json& s) {
  auto num = [&](const nlohmann::json& j, const char* k) -> std::string {
    auto it = j.find(k);
    return it == j.end() || it->is_null() ? std::string("-") : it->dump();
  };
  auto str = [&](const nlohmann::json& j, const char* k) -> std::string {
    auto it = j.find(k);
    return it == j.end() || !it->is_string() ? std::string("-") : it->get<std::string>();
  };
  std::string out;
  out += "amlfw daemon    " + str(s, "mode") + " with " + str(s, "backend") + ", generation " + num(s, "generation") +
         (s.value("started_from_state", false) ? " (started from the saved state)" : "") + "\n";
  out += "config          " + str(s, "config") + " (catalog " + str(s, "catalog") + ", " + str(s, "cloud") + " " +
         str(s, "region") + ")\n";
  out += "rules           " + num(s, "rules") + " (" + num(s, "prefixes") + " address ranges)\n";
  out += "learned         " + num(s, "learned_addresses") + " addresses from DNS answers\n";
  const auto st = s.value("service_tags", nlohmann::json::object());
  out += "service tags    #" + num(st, "change_number") + " from " + str(st, "source") + ", loaded " +
         str(st, "loaded_at") + " (" + num(st, "age_s") + " s ago)\n";
  const auto rej = s.value("rejected", nlohmann::json());
  if (rej.is_object()) {
    std::string r;
    for (const auto& [chain, c] : rej.items())
      r += (r.empty() ? "" : ", ") + chain + " " + num(c, "packets") + " packets (" + str(c, "action") + ")";
    out += "denied          " + (r.empty() ? std::string("none counted") : r) + "\n";
  } else {
    out += "denied          counters unavailable: " + str(s, "counters_error") + "\n";
  }
  const auto acc = s.value("accepted", nlohmann::json::array());
  for (const auto& c : acc)
    out += "  accepted      " + str(c, "chain") + " " + str(c, "rules") + ": " + num(c, "packets") + " packets\n";
  const auto lr = s.value("last_reload", nlohmann::json());
  if (lr.is_object())
    out += std::string("last reload     ") + (lr.value("applied", false) ? "applied: " : "refused: ") +
           str(lr, "message") + "\n";
  return out;
}

int cmd_apply(const Options& o) {
  auto be = open_backend(o.config);
  if (!be.ok()) return fail(be.error());
  std::string where = "table inet amlfw";
  if (const auto* bpf = dynamic_cast<const EbpfBackend*>(be->get()); bpf != nullptr)
    where = "eBPF programs pinned in " + bpf->pin_dir();
  DaemonOptions d;
  d.config_path = o.config;
  d.force = o.force;
  auto daemon = Daemon::create(d, std::move(*be));
  if (!daemon.ok()) return fail(daemon.error());
  Status s = (*daemon)->apply_once();
  if (!s.ok()) return fail(s.error());
  std::cout << "amlfw: applied generation " << (*daemon)->generation() << ": " << (*daemon)->policy().rules.size()
            << " rules in " << where << "\n";
  return 0;
}

int cmd_run(const Options& o) {
  auto be = open_backend(o.config);
  if (!be.ok()) {  // systemd (Type=notify) gets the reason too
    (void)SdNotifier::from_environment().notify("STATUS=start failed: " + be.error().message +
                                                "\nERRNO=" + std::to_string(static_cast<int>(be.error().code)));
    return fail(be.error());
  }
  DaemonOptions d;
  d.config_path = o.config;
  d.force = o.force;
  auto daemon = Daemon::create(d, std::move(*be));
  if (!daemon.ok()) return fail(daemon.error());
  Status s = (*daemon)->run();
  if (!s.ok()) {
    LOG_ERR("%s", s.error().message.c_str());
    return static_cast<int>(s.error().code);
  }
  return 0;
}

int cmd_flush(const Options&) {
  // Both backends, whatever the configuration says: flush is for emergencies and uninstall.
  auto nft = NftBackend::create();
  if (!nft.ok()) return fail(nft.error());
  Status s = (*nft)->flush();
  if (!s.ok()) return fail(s.error());
  Status b = EbpfBackend::remove_pins();
  if (!b.ok()) return fail(b.error());
  std::cout << "amlfw: enforcement removed (table inet amlfw deleted, eBPF programs detached and unpinned)\n";
  return 0;
}

int cmd_status(const Options& o) {
  auto reply = ask_daemon(o, {{"cmd", "status"}}, std::chrono::seconds(10));
  if (!reply.ok()) return fail(std::move(reply).error().context("status"));
  if (o.format == "json") {
    std::cout << reply->dump(2) << "\n";
    return 0;
  }
  std::cout << status_table(*reply);
  return 0;
}

int cmd_reload(const Options& o) {
  // A reload may fetch service tags from a URL (up to a minute): wait for it.
  auto reply = ask_daemon(o, {{"cmd", "reload"}}, std::chrono::seconds(150));
  if (!reply.ok()) return fail(std::move(reply).error().context("reload"));
  const std::string msg = reply->value("message", "");
  if (reply->value("applied", false)) {
    std::cout << "amlfw: reloaded: " << msg << "\n";
    return 0;
  }
  std::fprintf(stderr, "amlfw: reload refused: %s\n", msg.c_str());
  return static_cast<int>(Exit::kUsage);
}

int cmd_restore(const Options& o) {
  std::string dir = Config{}.paths.state_dir;
  auto cfg = load_config(o.config);
  if (cfg.ok()) dir = cfg->paths.state_dir;
  else std::fprintf(stderr, "amlfw: warning: %s; restoring from %s\n", cfg.error().message.c_str(), dir.c_str());
  // The backend the saved configuration names.
  auto open = [](const Config& c) { return open_backend(c); };
  const auto t0 = std::chrono::steady_clock::now();
  auto rep = restore_state(dir, open, unix_now());
  if (!rep.ok()) return fail(rep.error());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!rep->learned_problem.empty()) std::fprintf(stderr, "amlfw: warning: %s\n", rep->learned_problem.c_str());
  std::printf("amlfw: restored generation %llu of %s (saved %llds ago): %zu rules, %zu ranges, %zu learned "
              "addresses (%zu expired) in %.1f ms (read %.1f, compile %.1f, apply %.1f, learn %.1f)\n",
              static_cast<unsigned long long>(rep->state.generation), dir.c_str(),
              static_cast<long long>(unix_now() - rep->state.saved_at), rep->rules, rep->prefixes, rep->learned,
              rep->learned_expired, ms, rep->load_ms, rep->compile_ms, rep->apply_ms, rep->learn_ms);
  return 0;
}

}  // namespace amlfw::cli
