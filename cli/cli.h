// SPDX-License-Identifier: MIT
// Command-line front end: option parsing and the commands of SPEC.md.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/config.h"
#include "policy/policy.h"
#include "policy/result.h"
#include "policy/service_tags.h"

namespace amlfw::cli {

struct Options {
  std::string command;
  std::string config = "/etc/amlfw/amlfw.toml";
  std::string service_tags;   // --service-tags override
  std::string format = "table";
  bool json = false;
  bool force = false;
  bool probe_tags = false;  // check: one address of each service tag and CIDR rule too
  std::string revision;
  std::string cloud;
  std::vector<std::string> args;  // positional
};

// Everything `plan` needs: config, tags, compiled policy.
struct Loaded {
  Config config;
  std::optional<ServiceTags> tags;
  Policy policy;
};
// Loads config (or the embedded default), the service tags (file source only: URLs and
// azure-api are the daemon's), DNS upstreams (config, else /etc/resolv.conf) and compiles.
Result<Loaded> load_and_compile(const Options& o, bool need_tags_file);

int fail(const Error& e);  // prints "amlfw: <message>" and returns the exit code

int cmd_plan(const Options& o);
int cmd_explain(const Options& o);
int cmd_catalog(const Options& o);
int cmd_version(const Options& o);
int cmd_apply(const Options& o);
int cmd_flush(const Options& o);
int cmd_run(const Options& o);
int cmd_status(const Options& o);
int cmd_reload(const Options& o);
int cmd_check(const Options& o);
int cmd_restore(const Options& o);  // the last good state of state_dir, no network (boot)

// The running daemon's reply to one control request ("ok" removed), from the control socket
// of --config's paths.runtime_dir. Errors: unreachable, refused, or the daemon's own error.
Result<nlohmann::json> ask_daemon(const Options& o, const nlohmann::json& request, std::chrono::milliseconds timeout);
std::string status_table(const nlohmann::json& status);

}  // namespace amlfw::cli
