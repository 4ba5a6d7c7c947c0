// SPDX-License-Identifier: MIT
// `amlfw check`: probe every concrete required endpoint of the enforced policy (daemon/check.h).
//
// Which policy: --service-tags F compiles the configuration with that data; otherwise the
// last good policy of state_dir (what `apply` or the daemon enforces), else the
// configuration compiled with its service-tags file.
// Which resolver: the running daemon's DNS proxy when the daemon answers (the proxy learns
// the answer as it would for any client, so wildcard samples can be probed too), else the
// DNS upstreams the policy allows.
// Who judges a failure: the running daemon (live explain, learned addresses included), else
// explain() on the policy plus the learned addresses of state_dir.
#include <cstdio>
#include <iostream>

#include "cli/cli.h"
#include "daemon/check.h"
#include "daemon/inputs.h"
#include "daemon/state.h"
#include "policy/render.h"

namespace amlfw::cli {
namespace {

struct CheckPolicy {
  Policy policy;
  Config config;
  std::string source;  // for the report
};

Result<CheckPolicy> policy_for_check(const Options& o, const Config& cfg) {
  if (o.service_tags.empty()) {
    auto st = load_policy_state(cfg.paths.state_dir);
    if (st.ok() && *st) {
      auto c = compile_state(**st);
      if (c.ok())
        return CheckPolicy{std::move(c->policy), std::move(c->config),
                           "the enforced policy (" + cfg.paths.state_dir + ", generation " +
                               std::to_string((*st)->generation) + ")"};
      std::fprintf(stderr, "amlfw: warning: %s; checking the configuration instead\n", c.error().message.c_str());
    } else if (!st.ok()) {
      std::fprintf(stderr, "amlfw: warning: %s; checking the configuration instead\n", st.error().message.c_str());
    }
  }
  auto l = load_and_compile(o, true);
  if (!l.ok()) return l.error();
  return CheckPolicy{std::move(l->policy), std::move(l->config), "the configuration " + l->config.path};
}

// Offline judge: the compiled policy, then the addresses `apply`/the daemon learned.
CheckJudgement judge_offline(const Policy& p, const std::optional<LearnedState>& learned, const IpAddr& a,
                             uint16_t port, Proto proto, const std::string& host) {
  Target t;
  t.addr = a;
  t.port = port;
  t.proto = proto;
  t.text = a.str();
  Verdict v = explain(p, t);
  if (v.allow) return {true, v.rule_id, v.why};
  const int64_t now = unix_now();
  if (learned && !host.empty()) {
    for (const auto& rec : learned->entries) {
      if (rec.addr != a || rec.name != host || rec.expires_at <= now) continue;
      for (const Rule* r : p.rules_for_name(host))
        if ((r->proto == Proto::kAny || r->proto == proto) && ports_contain(r->ports, port))
          return {true, r->id,
                  a.str() + " was learned from the answer for " + host + " (" + std::to_string(rec.expires_at - now) +
                      " s left) and " + r->id + " allows port " + std::to_string(port)};
    }
  }
  if (!host.empty()) {
    Target h;
    h.host = host;
    h.port = port;
    h.proto = proto;
    Verdict hv = explain(p, h);
    if (hv.allow && is_special_use(a))
      return {false, "",
              host + " is allowed by " + hv.rule_id + " but " + a.str() +
                  " is a special-use address, which amlfw does not learn from DNS answers (DNS rebinding "
                  "protection; dns.allow_private = true learns them)"};
    if (hv.allow)
      return {false, "",
              host + " is allowed by " + hv.rule_id + " but amlfw has not learned " + a.str() +
                  " for it (a newer DNS answer than the daemon's, or the learned address expired: run amlfw apply "
                  "again or start the daemon)"};
    return {false, "", hv.why};
  }
  return {false, "", v.why};
}

}  // namespace

int cmd_check(const Options& o) {
  auto cfg = load_config(o.config);
  if (!cfg.ok()) return fail(cfg.error());
  const bool json = o.format == "json";

  auto live = ask_daemon(o, {{"cmd", "status"}}, std::chrono::seconds(2));
  auto cp = policy_for_check(o, *cfg);
  if (!cp.ok()) return fail(std::move(cp).error().context("check"));
  const Policy& pol = cp->policy;

  std::optional<LearnedState> learned;
  if (auto ls = load_learned_state(cfg->paths.state_dir); ls.ok() && *ls) learned = std::move(**ls);

  CheckPlanOptions po;
  po.probe_ranges = o.probe_tags;
  CheckOptions co;
  std::string resolver;
  auto proxy = parse_socket_address(cfg->dns.listen, 53);
  if (live.ok() && proxy.ok()) {
    // Through the proxy: answers are learned before they arrive, wildcard samples work.
    co.dns_servers = {proxy->str()};
    resolver = proxy->str() + " (the running daemon's DNS proxy)";
    po.wildcard_samples = true;
    if (learned)
      for (const auto& r : learned->entries) po.known_names.push_back(r.name);
  } else {
    DnsUpstreams ups;
    ups.addrs = pol.dns_upstreams;
    ups.port = pol.dns_upstream_port;
    co.dns_servers = ups.servers();
    for (const auto& s : co.dns_servers) resolver += (resolver.empty() ? "" : ", ") + s;
    resolver += live.ok() ? " (dns.upstreams)" : " (dns.upstreams; no daemon running, wildcards not probed)";
  }
  if (live.ok()) {
    co.judge = [&](const IpAddr& a, uint16_t port, Proto proto, const std::string& host) -> CheckJudgement {
      std::string target = (a.v6 ? "[" + a.str() + "]" : a.str()) + ":" + std::to_string(port) +
                           (proto == Proto::kUdp ? "/udp" : "");
      auto r = ask_daemon(o, {{"cmd", "explain"}, {"target", target}}, std::chrono::seconds(5));
      if (!r.ok()) return judge_offline(pol, learned, a, port, proto, host);
      CheckJudgement j;
      j.allow = r->value("verdict", "") == "allow";
      if (auto it = r->find("rule"); it != r->end() && it->is_string()) j.rule = it->get<std::string>();
      j.why = r->value("why", "");
      return j;
    };
  } else {
    co.judge = [&](const IpAddr& a, uint16_t port, Proto proto, const std::string& host) {
      return judge_offline(pol, learned, a, port, proto, host);
    };
  }

  auto targets = plan_check(pol, po);
  auto rep = run_check(targets, co);
  if (!rep.ok()) return fail(rep.error());

  if (json) {
    auto j = check_json(*rep);
    j["policy"] = cp->source;
    j["resolver"] = resolver;
    j["daemon"] = live.ok();
    j["mode"] = std::string(to_string(pol.mode));
    j["applies_to"] = plan_json(pol)["applies_to"];
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "checking " << cp->source << "; resolving through " << resolver << "\n";
    if (pol.mode == Mode::kAudit) std::cout << "mode = \"audit\": amlfw blocks nothing, failures are elsewhere\n";
    // The probes leave from this process: say when amlfw does not filter it (a Kubernetes
    // node that confines its pods only, docs/kubernetes.md).
    if (pol.backend == Backend::kNftables && !pol.egress_local)
      std::cout << "egress.local = false: amlfw does not filter this node's own processes; the probes show what "
                   "the network allows, the pods' traffic goes through the forward chain\n";
    if (pol.backend == Backend::kEbpf && !pol.ebpf_cgroup.empty())
      std::cout << "backend = \"ebpf\": only processes of " << pol.ebpf_cgroup
                << " are filtered; these probes are filtered only if amlfw check runs there\n";
    std::cout << "\n" << check_table(*rep);
    if (!rep->ok())
      std::cout << "amlfw: " << rep->failed << " required endpoint(s) unreachable"
                << " (blocked: amlfw refused it; refused/timeout/unreachable/dns-failure: elsewhere)\n";
  }
  return rep->ok() ? 0 : static_cast<int>(Exit::kUnreachable);
}

}  // namespace amlfw::cli
