// SPDX-License-Identifier: MIT
// amlfw: one binary, the commands of SPEC.md.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "cli/cli.h"

namespace {

constexpr const char* kUsage =
    "usage: amlfw COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  plan      compile the policy and print it (--format table|json|nft, --service-tags F)\n"
    "  apply     resolve once, program the kernel once, exit\n"
    "  run       the daemon (foreground; systemd Type=notify)\n"
    "  status    what the running daemon enforces now (--json)\n"
    "  reload    ask the running daemon to reload its configuration\n"
    "  explain   TARGET: IP, IP:PORT, [IPv6]:PORT, HOST, HOST:PORT, optionally /udp (--json)\n"
    "  check     probe every concrete required endpoint (--json, --probe-tags)\n"
    "  flush     remove every trace of enforcement\n"
    "  restore   enforce the last good state of state_dir, no network (boot)\n"
    "  catalog   list the built-in catalog (--revision R, --cloud C, --json)\n"
    "  version   version, catalog revisions, kernel features\n"
    "\n"
    "options: --config F (default /etc/amlfw/amlfw.toml; the embedded default if absent)\n";

bool take_value(int argc, char** argv, int* i, std::string_view flag, std::string* out) {
  std::string_view a = argv[*i];
  if (a == flag) {
    if (*i + 1 >= argc) return false;
    *out = argv[++*i];
    return true;
  }
  if (a.size() > flag.size() + 1 && a.substr(0, flag.size()) == flag && a[flag.size()] == '=') {
    *out = std::string(a.substr(flag.size() + 1));
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace amlfw::cli;
  Options o;
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help" || a == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--json") { o.json = true; continue; }
    if (a == "--force") { o.force = true; continue; }
    if (a == "--probe-tags") { o.probe_tags = true; continue; }
    const bool is_flag = a.size() > 1 && a[0] == '-' ;
    if (is_flag) {
      std::string_view name = a.substr(0, a.find('='));
      if (name == "--config" || name == "--service-tags" || name == "--format" || name == "--revision" ||
          name == "--cloud") {
        std::string* dst = name == "--config"         ? &o.config
                           : name == "--service-tags" ? &o.service_tags
                           : name == "--format"       ? &o.format
                           : name == "--revision"     ? &o.revision
                                                      : &o.cloud;
        if (!take_value(argc, argv, &i, name, dst)) {
          std::fprintf(stderr, "amlfw: %.*s needs a value (see amlfw --help)\n", static_cast<int>(name.size()),
                       name.data());
          return 2;
        }
        continue;
      }
      std::fprintf(stderr, "amlfw: unknown option '%s' (see amlfw --help)\n", argv[i]);
      return 2;
    }
    if (o.command.empty()) o.command = std::string(a);
    else o.args.emplace_back(a);
  }
  if (o.format != "table" && o.format != "json" && o.format != "nft") {
    std::fprintf(stderr, "amlfw: --format '%s' is not one of table, json, nft\n", o.format.c_str());
    return 2;
  }
  if (o.json) o.format = "json";

  const std::string& c = o.command;
  if (c == "plan") return cmd_plan(o);
  if (c == "explain") return cmd_explain(o);
  if (c == "catalog") return cmd_catalog(o);
  if (c == "version" || c == "--version") return cmd_version(o);
  if (c == "apply") return cmd_apply(o);
  if (c == "flush") return cmd_flush(o);
  if (c == "run") return cmd_run(o);
  if (c == "status") return cmd_status(o);
  if (c == "reload") return cmd_reload(o);
  if (c == "check") return cmd_check(o);
  if (c == "restore") return cmd_restore(o);
  std::fprintf(stderr, "amlfw: unknown command '%s' (see amlfw --help)\n", c.c_str());
  return 2;
}
