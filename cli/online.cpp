// SPDX-License-Identifier: MIT
// Commands that touch the kernel or the running daemon: apply, run, flush, status, reload, check.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/cli.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/nft_backend.h"

namespace amlfw::cli {
namespace {

Result<std::unique_ptr<Enforcer>> open_backend(const std::string& config_path) {
  auto cfg = load_config(config_path);
  if (!cfg.ok()) return cfg.error();
  if (cfg->backend == Backend::kEbpf)
    return usage_error(cfg->path + ": backend = \"ebpf\" is not available in this build (use \"nftables\")");
  auto nft = NftBackend::create();
  if (!nft.ok()) return nft.error();
  return std::unique_ptr<Enforcer>(std::move(*nft));
}

}  // namespace

int cmd_apply(const Options& o) {
  auto be = open_backend(o.config);
  if (!be.ok()) return fail(be.error());
  DaemonOptions d;
  d.config_path = o.config;
  d.force = o.force;
  auto daemon = Daemon::create(d, std::move(*be));
  if (!daemon.ok()) return fail(daemon.error());
  Status s = (*daemon)->apply_once();
  if (!s.ok()) return fail(s.error());
  std::cout << "amlfw: applied generation " << (*daemon)->generation() << ": " << (*daemon)->policy().rules.size()
            << " rules in table inet amlfw\n";
  return 0;
}

int cmd_run(const Options& o) {
  auto be = open_backend(o.config);
  if (!be.ok()) return fail(be.error());
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
  auto nft = NftBackend::create();
  if (!nft.ok()) return fail(nft.error());
  Status s = (*nft)->flush();
  if (!s.ok()) return fail(s.error());
  std::cout << "amlfw: enforcement removed (table inet amlfw deleted)\n";
  return 0;
}

int cmd_status(const Options&) {
  return fail(runtime_error("status: the control socket is not available in this build"));
}

int cmd_reload(const Options&) {
  return fail(runtime_error("reload: the control socket is not available in this build; send SIGHUP to the daemon"));
}

int cmd_check(const Options&) {
  return fail(runtime_error("check: not available in this build"));
}

}  // namespace amlfw::cli
