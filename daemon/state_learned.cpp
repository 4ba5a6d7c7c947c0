// SPDX-License-Identifier: MIT
// The learned-address table of the daemon, regrouping saved addresses under a policy, and
// the restore of a saved state (`amlfw restore`). The file format is in state.cpp.
#include <algorithm>
#include <chrono>

#include "daemon/state.h"

namespace amlfw {

// ---- LearnedTable ------------------------------------------------------------------------

size_t LearnedTable::record(const std::string& name, const std::vector<std::string>& groups,
                            const std::vector<LearnedAddr>& addrs, int64_t now) {
  size_t dropped = 0;
  bool pruned = false;
  for (const auto& a : addrs) {
    const int64_t exp = now + static_cast<int64_t>(a.timeout_s);
    auto it = table_.find(a.addr);
    if (it == table_.end()) {
      if (table_.size() >= max_ && !pruned) {
        prune(now);
        pruned = true;
      }
      if (table_.size() >= max_) {
        ++dropped;
        continue;
      }
      it = table_.emplace(a.addr, std::vector<Source>{}).first;
    }
    auto& srcs = it->second;
    auto s = std::find_if(srcs.begin(), srcs.end(), [&](const Source& x) { return x.name == name; });
    if (s != srcs.end()) {
      s->groups = groups;
      s->expires_at = std::max(s->expires_at, exp);
      continue;
    }
    if (srcs.size() >= kMaxNamesPerAddr) {
      auto soonest = std::min_element(srcs.begin(), srcs.end(),
                                      [](const Source& x, const Source& y) { return x.expires_at < y.expires_at; });
      *soonest = Source{name, groups, exp};
      continue;
    }
    srcs.push_back(Source{name, groups, exp});
  }
  return dropped;
}

size_t LearnedTable::prune(int64_t now) {
  size_t gone = 0;
  for (auto it = table_.begin(); it != table_.end();) {
    auto& srcs = it->second;
    srcs.erase(std::remove_if(srcs.begin(), srcs.end(), [now](const Source& s) { return s.expires_at <= now; }),
               srcs.end());
    if (srcs.empty()) {
      it = table_.erase(it);
      ++gone;
    } else {
      ++it;
    }
  }
  return gone;
}

const std::vector<LearnedTable::Source>* LearnedTable::find(const IpAddr& a) const {
  auto it = table_.find(a);
  return it == table_.end() ? nullptr : &it->second;
}

std::vector<LearnedRecord> LearnedTable::records(int64_t now) const {
  std::vector<LearnedRecord> out;
  out.reserve(table_.size());
  for (const auto& [addr, srcs] : table_)
    for (const auto& s : srcs)
      if (s.expires_at > now) out.push_back(LearnedRecord{addr, s.name, s.expires_at});
  return out;
}

std::vector<LearnBatch> learn_batches(const Policy& p, const std::vector<LearnedRecord>& records, int64_t now,
                                      const LearnLimits& lim) {
  std::map<std::vector<std::string>, LearnBatch> by_groups;
  std::map<std::string, std::vector<std::string>> groups_cache;
  const int64_t cap = static_cast<int64_t>(lim.max_ttl_s + lim.grace_s);
  for (const auto& rec : records) {
    if (rec.expires_at <= now) continue;
    if (!lim.allow_private && is_special_use(rec.addr)) continue;
    auto g = groups_cache.find(rec.name);
    if (g == groups_cache.end()) g = groups_cache.emplace(rec.name, groups_for_name(p, rec.name)).first;
    if (g->second.empty()) continue;
    const auto left = static_cast<uint32_t>(std::clamp<int64_t>(rec.expires_at - now, 1, std::max<int64_t>(cap, 1)));
    LearnBatch& b = by_groups[g->second];
    b.groups = g->second;
    auto dup = std::find_if(b.addrs.begin(), b.addrs.end(), [&](const LearnedAddr& x) { return x.addr == rec.addr; });
    if (dup != b.addrs.end()) {
      dup->timeout_s = std::max(dup->timeout_s, left);
      continue;
    }
    b.addrs.push_back(LearnedAddr{rec.addr, left});
    b.names.push_back(rec.name);
  }
  std::vector<LearnBatch> out;
  out.reserve(by_groups.size());
  for (auto& [_, b] : by_groups) out.push_back(std::move(b));
  return out;
}

// ---- boot --------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Reads and compiles the saved policy: the first half of a restore.
Result<CompiledState> load_for_restore(const std::string& state_dir, RestoreReport* rep) {
  rep->state_dir = state_dir;
  auto t0 = Clock::now();
  auto st = load_policy_state(state_dir);
  if (!st.ok()) return st.error();
  if (!*st)
    return runtime_error("restore: no saved policy in " + state_dir + " (" + std::string(kPolicyStateFile) +
                         " is written by amlfw apply and amlfw run after each successful apply)");
  rep->state = std::move(**st);
  rep->load_ms = ms_since(t0);
  t0 = Clock::now();
  auto compiled = compile_state(rep->state);
  if (!compiled.ok()) return std::move(compiled).error().context("restore");
  rep->compile_ms = ms_since(t0);
  return compiled;
}

// Programs the compiled policy, then the saved learned addresses: the second half.
Status enforce_restored(const CompiledState& c, Enforcer& e, int64_t now, RestoreReport* rep) {
  auto t0 = Clock::now();
  const auto groups = group_rules(c.policy);
  rep->rules = c.policy.rules.size();
  for (const auto& g : groups)
    if (g.enforced && (g.direction == Direction::kEgress || c.policy.inbound_enforce))
      rep->prefixes += g.prefixes.v4().size() + g.prefixes.v6().size();
  rep->compile_ms += ms_since(t0);

  t0 = Clock::now();
  Status s = e.apply(c.policy, groups);
  if (!s.ok()) return std::move(s).error().context("restore: apply");
  rep->apply_ms = ms_since(t0);

  t0 = Clock::now();
  auto learned = load_learned_state(rep->state_dir);
  if (!learned.ok()) {
    rep->learned_problem = learned.error().message;
  } else if (*learned) {
    const auto lim = LearnLimits::from(c.config.dns);
    for (const auto& rec : (*learned)->entries)
      if (rec.expires_at <= now) ++rep->learned_expired;
    for (const auto& b : learn_batches(c.policy, (*learned)->entries, now, lim)) {
      Status ls = e.learn(b.groups, b.addrs);
      if (!ls.ok()) {
        rep->learned_problem = "learn: " + ls.error().message;
        continue;
      }
      rep->learned += b.addrs.size();
    }
  }
  rep->learn_ms = ms_since(t0);
  return {};
}

}  // namespace

Result<RestoreReport> restore_state(const std::string& state_dir, Enforcer& e, int64_t now) {
  RestoreReport rep;
  auto c = load_for_restore(state_dir, &rep);
  if (!c.ok()) return c.error();
  AMLFW_TRY(enforce_restored(*c, e, now, &rep));
  return rep;
}

Result<RestoreReport> restore_state(const std::string& state_dir, const BackendFactory& open, int64_t now) {
  RestoreReport rep;
  auto c = load_for_restore(state_dir, &rep);
  if (!c.ok()) return c.error();
  auto e = open(c->config);
  if (!e.ok()) return std::move(e).error().context("restore");
  AMLFW_TRY(enforce_restored(*c, **e, now, &rep));
  return rep;
}

}  // namespace amlfw
