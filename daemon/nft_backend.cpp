// SPDX-License-Identifier: MIT
#include "daemon/nft_backend.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <set>

#include "daemon/nft_expr.h"

namespace amlfw {
namespace {

constexpr int kApplyAttempts = 3;
// A learned element this close to its expiry is re-added without a delete first: the
// delete could meet an element the kernel already removed (ENOENT).
constexpr auto kExpiryMargin = std::chrono::seconds(1);

PrefixSet one_family(const PrefixSet& ps, bool v6) {
  PrefixSet out;
  if (v6) {
    for (const auto& r : ps.v6()) out.add_range6(r);
  } else {
    for (const auto& r : ps.v4()) out.add_range4(r);
  }
  out.normalize();
  return out;
}

std::vector<std::string> rule_texts(const NftChainSpec& c) {
  std::vector<std::string> out;
  out.reserve(c.rules.size());
  for (const auto& r : c.rules) out.push_back(nft_rule_text(r));
  return out;
}

bool set_compatible(const NftSetDump& d, const NftSetSpec& want) {
  const uint32_t kinds = NFT_SET_INTERVAL | NFT_SET_TIMEOUT | NFT_SET_MAP | NFT_SET_OBJECT | NFT_SET_EVAL |
                         NFT_SET_CONCAT;
  uint32_t flags = 0;
  if (want.kind == NftSetKind::kPrefixes) flags = NFT_SET_INTERVAL;
  if (want.kind == NftSetKind::kLearned) flags = NFT_SET_TIMEOUT;
  return (d.flags & kinds) == flags && d.key_len == (want.v6 ? 16u : 4u) &&
         d.key_type == (want.v6 ? kNftTypeIpv6Addr : kNftTypeIpv4Addr);
}

}  // namespace

Result<std::unique_ptr<NftBackend>> NftBackend::create() {
  auto sock = NftSocket::open();
  if (!sock) return std::move(sock).error();
  return std::unique_ptr<NftBackend>(new NftBackend(std::move(*sock)));
}

Result<NftTableDump> NftBackend::read_back(const NftDumpOptions& opts) {
  auto d = sock_.dump(opts);
  if (!d) return d;
  for (auto& r : d->rules) r.chain = std::string(nft_hook_chain_of(r.chain));
  return d;
}

Status NftBackend::send(NftBatch& b, int* err, uint32_t* failed_seq) {
  b.finish();
  report_.batch = b.stats();
  return sock_.send(b, err, failed_seq);
}

Status NftBackend::apply(const Policy& p, const std::vector<PortGroup>& groups) {
  Status last;
  for (int attempt = 0; attempt < kApplyAttempts; ++attempt) {
    bool retry = false;
    last = apply_once(p, groups, &retry);
    if (last.ok()) return last;
    if (!retry) break;
  }
  return std::move(last).error().context("apply");
}

// One transaction turning what the kernel holds (read back on the first apply of the
// process, else the state we last applied) into `want`. Order inside the batch: flush or
// delete chains (freeing the sets their rules reference), delete sets, create sets, element
// changes (deletions first), then chains and their rules. The kernel applies it whole or not.
Status NftBackend::apply_once(const Policy& p, const std::vector<PortGroup>& groups, bool* retry) {
  report_ = {};
  const NftTableSpec want = nft_table_spec(p, groups);
  std::optional<uint32_t> genid;
  bool exists = true;
  State cur;
  std::set<std::string> replace_sets;   // adopted sets to delete and create again
  std::set<std::string> rewrite_sets;   // adopted interval sets: content unknown, flushed and refilled
  std::set<std::string> unknown_chains; // adopted chains: rules unknown, always rewritten
  std::set<std::string> bad_chains;     // adopted chains of the wrong kind: delete, create

  if (!synced_) {
    report_.adopted = true;
    // Prefix sets are not read back: flushing and refilling them inside the one batch costs
    // about a full load (0.3-0.8 s for 220k elements), while dumping them costs ~3 s (the
    // kernel's rbtree dump restarts its walk for every reply). Learned and DNS sets are read.
    auto d = sock_.dump({.elements = true, .interval_elements = false, .rules = false});
    if (!d) return std::move(d).error();
    genid = d->genid;
    exists = d->exists;
    const auto now = Clock::now();
    for (const auto& sd : d->sets) {
      SetState st;
      st.v6 = sd.v6;
      const NftSetSpec* w = nullptr;
      for (const auto& s : want.sets) {
        if (s.name == sd.name) w = &s;
      }
      if (w == nullptr || !set_compatible(sd, *w)) {
        replace_sets.insert(sd.name);  // deleted; created again when wanted
      } else {
        st.kind = w->kind;
        if (w->kind == NftSetKind::kPrefixes) {
          for (const auto& r : sd.r4) st.prefixes.add_range4(r);
          for (const auto& r : sd.r6) st.prefixes.add_range6(r);
          st.prefixes.normalize();
          if (!sd.clean) rewrite_sets.insert(sd.name);
        } else if (w->kind == NftSetKind::kPlain) {
          for (const auto& a : sd.addrs) st.addrs.push_back(a.addr);
        } else {
          for (const auto& a : sd.addrs) st.learned[a.addr] = now + std::chrono::milliseconds(a.expires_ms);
        }
      }
      cur.sets[sd.name] = std::move(st);
    }
    for (const auto& cd : d->chains) {
      ChainState cs;
      cs.regular = !cd.base;
      if (cd.base) {
        cs.hook = cd.hooknum;
        cs.type = cd.type;
      }
      cur.chains[cd.name] = cs;
      unknown_chains.insert(cd.name);
      // Kept (flushed) only when it is the chain we would create under that name: a regular
      // chain, or the same base chain (type, hook, priority).
      bool ok = false;
      for (const auto& c : want.chains) {
        if (c.name != cd.name) continue;
        if (c.regular) {
          ok = !cd.base;
        } else {
          ok = cd.base && cd.type == nft_chain_type(c) && cd.prio == nft_chain_priority(c) &&
               cd.hooknum == nft_chain_hook(c) &&
               cd.policy == static_cast<uint32_t>(nft_chain_policy_accept(c) ? NF_ACCEPT : NF_DROP);
        }
      }
      if (!ok) bad_chains.insert(cd.name);
    }
  } else {
    cur = state_;
  }

  // The state after this transaction.
  State next;
  for (const auto& c : want.chains) {
    ChainState cs{c.regular, 0, "", rule_texts(c)};
    if (!c.regular) {
      cs.hook = nft_chain_hook(c);
      cs.type = nft_chain_type(c);
    }
    next.chains[c.name] = std::move(cs);
  }
  // Per chain: kept as it is (same kind, rules known and unchanged), refilled (flushed and its
  // rules added again), or deleted (not wanted, or of the wrong kind: created again if wanted).
  auto same_kind = [&](const std::string& name, const ChainState& c) {
    auto it = next.chains.find(name);
    return it != next.chains.end() && !bad_chains.count(name) && it->second.same_kind(c);
  };
  std::set<std::string> keep_chain, fill_chain;  // kept with its rules / whose rules are added
  for (const auto& [name, c] : cur.chains) {
    if (same_kind(name, c) && !unknown_chains.count(name) && c.rule_texts == next.chains[name].rule_texts) {
      keep_chain.insert(name);
    }
  }
  for (const auto& c : want.chains) {
    if (!keep_chain.count(c.name)) fill_chain.insert(c.name);
  }

  NftBatch b(sock_.reserve_seq(0), genid);
  if (!exists) {
    b.add_table();
    report_.table_created = true;
  }
  // Flush every chain that changes first: that also drops the jumps (and the verdict maps)
  // into chains deleted below, and the references to sets deleted below.
  for (const auto& [name, c] : cur.chains) {
    if (!keep_chain.count(name)) b.flush_chain(name);
  }
  for (const auto& [name, c] : cur.chains) {
    if (!same_kind(name, c)) b.delete_chain(name);
  }
  for (const auto& entry : cur.sets) {
    const std::string& name = entry.first;
    bool wanted = std::any_of(want.sets.begin(), want.sets.end(), [&](const NftSetSpec& w) { return w.name == name; });
    if (!wanted || replace_sets.count(name)) b.delete_set(name);
  }
  for (const auto& w : want.sets) {
    SetState st;
    st.kind = w.kind;
    st.v6 = w.v6;
    if (w.kind == NftSetKind::kPrefixes) st.prefixes = one_family(*w.prefixes, w.v6);
    if (w.kind == NftSetKind::kPlain) st.addrs = w.addrs;

    auto it = cur.sets.find(w.name);
    const bool keep = it != cur.sets.end() && !replace_sets.count(w.name);
    if (!keep) {
      b.add_set(w);
      if (w.kind == NftSetKind::kPrefixes) {
        if (w.v6) {
          b.interval_elems6(NftElemOp::kAdd, w.name, st.prefixes.v6());
        } else {
          b.interval_elems4(NftElemOp::kAdd, w.name, st.prefixes.v4());
        }
      }
      if (w.kind == NftSetKind::kPlain && !st.addrs.empty()) b.addr_elems(NftElemOp::kAdd, w.name, st.addrs);
      next.sets[w.name] = std::move(st);
      continue;
    }
    const SetState& old = it->second;
    if (w.kind == NftSetKind::kPrefixes) {
      if (rewrite_sets.count(w.name)) {
        b.flush_set(w.name);
        if (w.v6) {
          b.interval_elems6(NftElemOp::kAdd, w.name, st.prefixes.v6());
        } else {
          b.interval_elems4(NftElemOp::kAdd, w.name, st.prefixes.v4());
        }
      } else {
        const RangeDiff d = diff_ranges(old.prefixes, st.prefixes);
        if (w.v6) {
          b.interval_elems6(NftElemOp::kDelete, w.name, d.del6);
          b.interval_elems6(NftElemOp::kAdd, w.name, d.add6);
        } else {
          b.interval_elems4(NftElemOp::kDelete, w.name, d.del4);
          b.interval_elems4(NftElemOp::kAdd, w.name, d.add4);
        }
      }
    } else if (w.kind == NftSetKind::kPlain) {
      std::vector<IpAddr> from = old.addrs, to = st.addrs, del, add;
      std::sort(from.begin(), from.end());
      std::sort(to.begin(), to.end());
      std::set_difference(from.begin(), from.end(), to.begin(), to.end(), std::back_inserter(del));
      std::set_difference(to.begin(), to.end(), from.begin(), from.end(), std::back_inserter(add));
      b.addr_elems(NftElemOp::kDelete, w.name, del);
      b.addr_elems(NftElemOp::kAdd, w.name, add);
    } else {
      st.learned = old.learned;  // learned addresses survive with their timeouts
    }
    next.sets[w.name] = std::move(st);
  }
  // Chains first (a rule may jump to any of them), then the rules of the changed ones. A
  // NEWCHAIN of an existing base chain also restores its policy (drop).
  for (const auto& c : want.chains) {
    if (fill_chain.count(c.name)) b.add_chain(c);
  }
  for (const auto& c : want.chains) {
    if (!fill_chain.count(c.name)) continue;
    report_.rules_rewritten = true;
    report_.chains_rewritten++;
    for (const auto& r : c.rules) b.add_rule(c.name, r);
  }
  for (const auto* g : nft_active_groups(p, groups)) {
    if (g->has_names) next.name_groups.push_back(g->name);
  }

  if (b.empty()) {
    report_.nothing_to_do = true;
    state_ = std::move(next);
    synced_ = true;
    applied_ = true;
    return {};
  }
  int err = 0;
  Status s = send(b, &err);
  if (!s.ok()) {
    // ERESTART: the ruleset changed between our read and our batch. Any other refusal in
    // the incremental path means the kernel differs from what we believe (someone edited
    // the table): read it again and reconcile, once.
    if (err == ERESTART || err == -1 || (synced_ && err != 0)) *retry = true;
    synced_ = false;
    return s;
  }
  state_ = std::move(next);
  synced_ = true;
  applied_ = true;
  return {};
}

Status NftBackend::learn(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) {
  // After a refused apply the kernel still holds the last applied table: learning goes on.
  if (!applied_) return runtime_error("learn: no policy is applied by this process (apply first)");
  for (const auto& g : groups) {
    if (std::find(state_.name_groups.begin(), state_.name_groups.end(), g) == state_.name_groups.end()) {
      return runtime_error("learn: group '" + g + "' has no learned-address sets (no enforced fqdn rule feeds it)");
    }
  }
  for (const auto& a : addrs) {
    if (a.timeout_s == 0) return runtime_error("learn: " + a.addr.str() + ": lifetime 0s (give a timeout)");
  }
  bool retry = false;
  Status s = learn_once(groups, addrs, &retry);
  if (!s.ok() && retry) s = learn_once(groups, addrs, &retry);
  if (!s.ok()) return std::move(s).error().context("learn");
  return s;
}

Status NftBackend::learn_once(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs,
                              bool* retry) {
  *retry = false;
  report_ = {};
  const auto now = Clock::now();
  // (set, timeout) -> addresses to add; (set, address) to delete first (renewal).
  std::map<std::pair<std::string, uint64_t>, std::vector<IpAddr>> adds;
  std::vector<std::pair<std::string, IpAddr>> dels;
  std::map<std::pair<std::string, IpAddr>, Clock::time_point> expiry;
  for (const auto& g : groups) {
    for (const auto& la : addrs) {
      const std::string set = nft_name_set_name(g, la.addr.v6);
      const uint64_t ms = uint64_t{la.timeout_s} * 1000;
      const auto until = now + std::chrono::milliseconds(ms);
      auto key = std::make_pair(set, la.addr);
      if (expiry.count(key)) continue;  // listed twice: the first lifetime wins
      auto& learned = state_.sets[set].learned;
      auto it = learned.find(la.addr);
      if (it != learned.end() && it->second >= until) continue;  // lives at least as long already
      if (it != learned.end() && it->second > now + kExpiryMargin) dels.push_back(key);
      adds[{set, ms}].push_back(la.addr);
      expiry[key] = until;
    }
  }
  if (adds.empty()) {
    report_.nothing_to_do = true;
    return {};
  }
  NftBatch b(sock_.reserve_seq(0));
  // One message per deletion: an ENOENT (the element expired meanwhile) names the address.
  std::map<uint32_t, std::pair<std::string, IpAddr>> del_seq;
  for (const auto& [set, a] : dels) {
    b.addr_elems(NftElemOp::kDelete, set, std::span<const IpAddr>(&a, 1));
    del_seq[b.last_seq()] = {set, a};
  }
  for (const auto& [key, list] : adds) b.addr_elems(NftElemOp::kAdd, key.first, list, key.second, false);
  int err = 0;
  uint32_t failed = 0;
  Status s = send(b, &err, &failed);
  if (!s.ok()) {
    auto it = del_seq.find(failed);
    if (err == ENOENT && it != del_seq.end()) {
      // It expired between our bookkeeping and the batch: forget it, the add alone will do.
      state_.sets[it->second.first].learned.erase(it->second.second);
      *retry = true;
    }
    if (err == -1) synced_ = false;  // outcome unknown: the next apply reads the kernel again
    return s;
  }
  for (const auto& [key, until] : expiry) state_.sets[key.first].learned[key.second] = until;
  // Forget what has expired, at most every few seconds: a walk over every learned address
  // on each learn() would make the DNS proxy's learning O(learned) per answer.
  if (now - last_prune_ >= kPruneEvery) {
    last_prune_ = now;
    for (auto& [name, st] : state_.sets) {
      std::erase_if(st.learned, [&](const auto& kv) { return kv.second <= now; });
    }
  }
  return {};
}

Status NftBackend::flush() {
  report_ = {};
  NftBatch b(sock_.reserve_seq(0));
  b.delete_table();
  int err = 0;
  Status s = send(b, &err);
  synced_ = false;
  applied_ = false;
  state_ = {};
  if (!s.ok() && err == ENOENT) return {};  // nothing to remove
  if (!s.ok()) return std::move(s).error().context("flush");
  return {};
}

}  // namespace amlfw
