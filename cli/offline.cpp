// SPDX-License-Identifier: MIT
// Commands that need no privileges and no network: plan, explain (offline), catalog, version.
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/cli.h"
#include "daemon/inputs.h"
#include "daemon/kernel_probe.h"
#include "daemon/tag_source.h"
#include "policy/catalog.h"
#include "policy/render.h"
#include "policy/render_nft.h"

namespace amlfw::cli {

int fail(const Error& e) {
  std::fprintf(stderr, "amlfw: %s\n", e.message.c_str());
  return static_cast<int>(e.code);
}

Result<Loaded> load_and_compile(const Options& o, bool need_tags_file) {
  Loaded l;
  auto cfg = load_config(o.config);
  if (!cfg.ok()) return cfg.error();
  l.config = std::move(*cfg);
  const std::string src = o.service_tags.empty() ? l.config.service_tags.source : o.service_tags;
  if (is_remote_tag_source(src)) {
    if (need_tags_file)
      return usage_error("service_tags.source '" + src +
                         "' is fetched by the daemon; give a file with --service-tags F for this command");
  } else {
    auto body = read_file(src, TagSource::kMaxBody);
    if (!body.ok()) {
      auto e = std::move(body).error().context("service tags");
      if (o.service_tags.empty() && l.config.is_default)
        e.message += " (the embedded default configuration reads service tags from " + src +
                     ": download ServiceTags_Public_<date>.json there, or pass --service-tags F)";
      return e;
    }
    auto tags = parse_tags_for(l.config, *body, src);
    if (!tags.ok()) return tags.error();
    l.tags = std::move(*tags);
  }
  auto ups = dns_upstreams(l.config);
  if (!ups.ok()) return ups.error();
  auto pol = compile_policy(l.config, l.tags ? &*l.tags : nullptr, *ups, src);
  if (!pol.ok()) return pol.error();
  l.policy = std::move(*pol);
  return l;
}

int cmd_plan(const Options& o) {
  auto l = load_and_compile(o, true);
  if (!l.ok()) return fail(l.error());
  const bool dflt = l->config.is_default;
  if (o.format == "json") {
    auto j = plan_json(l->policy);
    if (dflt) j["config"] = "embedded default";
    else j["config"] = l->config.path;
    // stdout stays one JSON document (for jq and the like): the notice goes to stderr, and
    // "config" says "embedded default".
    if (dflt) std::cerr << "amlfw: " << o.config << " not found: using the embedded default configuration\n";
    std::cout << j.dump(2) << "\n";
  } else if (o.format == "nft") {
    if (dflt) std::cout << "# amlfw: " << o.config << " not found: using the embedded default configuration\n";
    std::cout << render_nft(l->policy, group_rules(l->policy));
  } else {
    if (dflt) std::cout << "amlfw: " << o.config << " not found: using the embedded default configuration\n";
    else std::cout << "config " << l->config.path << "\n";
    std::cout << plan_table(l->policy);
  }
  return 0;
}

int cmd_explain(const Options& o) {
  if (o.args.size() != 1)
    return fail(usage_error("explain needs one TARGET: IP, IP:PORT, [IPv6]:PORT, HOST or HOST:PORT, optionally /udp"));
  auto t = parse_target(o.args[0]);
  if (!t.ok()) return fail(t.error());
  // The running daemon first (live state: learned addresses); --service-tags F asks about
  // that data instead, offline.
  if (o.service_tags.empty()) {
    auto live = ask_daemon(o, {{"cmd", "explain"}, {"target", o.args[0]}}, std::chrono::seconds(10));
    if (live.ok()) {
      if (o.format == "json") {
        std::cout << live->dump() << "\n";
      } else {
        std::cout << live->value("verdict", "?") << " " << t->text;
        if (auto r = live->find("rule"); r != live->end() && r->is_string())
          std::cout << " (rule " << r->get<std::string>() << ")";
        std::cout << ": " << live->value("why", "") << " [running daemon]\n";
      }
      return 0;
    }
  }
  auto l = load_and_compile(o, true);
  if (!l.ok()) return fail(l.error());
  auto v = explain(l->policy, *t);
  if (o.format == "json") {
    std::cout << verdict_json(*t, v).dump() << "\n";
  } else {
    std::cout << (v.allow ? "allow" : "deny") << " " << t->text;
    if (!v.rule_id.empty()) std::cout << " (rule " << v.rule_id << ")";
    std::cout << ": " << v.why << "\n";
  }
  return 0;
}

int cmd_catalog(const Options& o) {
  std::string rev = o.revision;
  if (rev.empty()) {
    auto cfg = load_config(o.config);
    rev = cfg.ok() ? cfg->catalog : "2021-10";
  }
  if (!o.cloud.empty() && !parse_cloud(o.cloud))
    return fail(usage_error("--cloud '" + o.cloud + "' is not one of public, usgov, china"));
  auto cat = builtin_catalog(rev);
  if (!cat.ok()) return fail(cat.error());
  if (o.format == "json") std::cout << catalog_json(**cat, o.cloud).dump(2) << "\n";
  else std::cout << catalog_table(**cat, o.cloud);
  return 0;
}

int cmd_version(const Options& o) {
  struct utsname u {};
  uname(&u);
  const auto features = probe_kernel();
  if (o.format == "json") {
    nlohmann::json j;
    j["version"] = AMLFW_VERSION;
    j["catalog_revisions"] = catalog_revisions();
    j["kernel"] = std::string(u.release);
    for (const auto& f : features) j["kernel_features"][f.name] = {{"present", f.present}, {"detail", f.detail}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "amlfw " << AMLFW_VERSION << "\ncatalog revisions:";
  for (const auto& r : catalog_revisions()) std::cout << " " << r;
  std::cout << "\nkernel " << u.release << "\n";
  for (const auto& f : features)
    std::cout << "  " << (f.present ? "yes " : "no  ") << f.name << ": " << f.detail << "\n";
  return 0;
}

}  // namespace amlfw::cli
