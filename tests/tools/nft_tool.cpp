// SPDX-License-Identifier: MIT
// nft_tool: a developer and test driver of the nftables backend (not installed).
//   nft_tool render SPEC                     print render_nft() of the spec
//   nft_tool apply SPEC [SPEC...]            apply each in turn in one process (the first adopts)
//   nft_tool learn SPEC GROUP SECONDS ADDR... apply SPEC, then learn the addresses
//   nft_tool dump                            print the table's sets and elements (read-back)
//   nft_tool flush                           remove the table
//   nft_tool add-element SET CIDR...         one raw batch adding interval elements with
//                                            NLM_F_EXCL (to see how a refusal is reported)
// Each apply/learn prints one line: `apply adopted=1 created=0 rewritten=1 nothing=0
// messages=N element_msgs=N elements=N rules=N bytes=N ms=F`. SPEC: see nft_synth.h.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "daemon/nft_backend.h"
#include "policy/render_nft.h"
#include "tests/tools/nft_synth.h"

using namespace amlfw;

namespace {

void print_report(const char* what, const NftApplyReport& r, double ms) {
  std::printf("%s adopted=%d created=%d rewritten=%d nothing=%d messages=%zu element_msgs=%zu elements=%zu rules=%zu "
              "anon_sets=%zu bytes=%zu ms=%.1f\n",
              what, r.adopted, r.table_created, r.rules_rewritten, r.nothing_to_do, r.batch.messages,
              r.batch.element_msgs, r.batch.elements, r.batch.rules, r.batch.anon_sets, r.batch.bytes, ms);
  std::fflush(stdout);
}

int fail(const Error& e) {
  std::fprintf(stderr, "nft_tool: %s\n", e.message.c_str());
  return static_cast<int>(e.code);
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int dump(NftBackend& be) {
  auto d = be.read_back({.elements = true, .rules = true});
  if (!d) return fail(d.error());
  if (!d->exists) {
    std::printf("no table\n");
    return 0;
  }
  for (const auto& c : d->chains) std::printf("chain %s hook=%u policy=%u\n", c.name.c_str(), c.hooknum, c.policy);
  for (const auto& s : d->sets) {
    std::printf("set %s flags=%u type=%u elements=%zu clean=%d\n", s.name.c_str(), s.flags, s.key_type, s.elements,
                s.clean);
    for (const auto& r : s.r4) std::printf("  %s\n", nft_range4_text(r).c_str());
    for (const auto& r : s.r6) std::printf("  %s\n", nft_range6_text(r).c_str());
    for (const auto& a : s.addrs) {
      std::printf("  %s timeout=%llu expires=%llu\n", a.addr.str().c_str(),
                  static_cast<unsigned long long>(a.timeout_ms), static_cast<unsigned long long>(a.expires_ms));
    }
  }
  for (const auto& r : d->rules) {
    if (r.has_counter) {
      std::printf("rule %s \"%s\" packets=%llu\n", r.chain.c_str(), r.comment.c_str(),
                  static_cast<unsigned long long>(r.packets));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fprintf(stderr, "usage: nft_tool render|apply|learn|dump|flush ...\n");
    return 2;
  }
  const std::string cmd = args[0];
  if (cmd == "render") {
    if (args.size() != 2) return 2;
    auto s = synth::load_spec(args[1]);
    if (!s) return fail(s.error());
    std::fputs(render_nft(s->policy, s->groups).c_str(), stdout);
    return 0;
  }
  auto be = NftBackend::create();
  if (!be) return fail(be.error());
  if (cmd == "dump") return dump(**be);
  if (cmd == "flush") {
    auto t0 = std::chrono::steady_clock::now();
    Status st = (*be)->flush();
    if (!st.ok()) return fail(st.error());
    print_report("flush", (*be)->last_report(), since(t0));
    return 0;
  }
  if (cmd == "apply") {
    for (size_t i = 1; i < args.size(); ++i) {
      auto s = synth::load_spec(args[i]);
      if (!s) return fail(s.error());
      auto t0 = std::chrono::steady_clock::now();
      Status st = (*be)->apply(s->policy, s->groups);
      if (!st.ok()) return fail(st.error());
      print_report("apply", (*be)->last_report(), since(t0));
    }
    return 0;
  }
  if (cmd == "learn") {
    if (args.size() < 5) return 2;
    auto s = synth::load_spec(args[1]);
    if (!s) return fail(s.error());
    Status st = (*be)->apply(s->policy, s->groups);
    if (!st.ok()) return fail(st.error());
    print_report("apply", (*be)->last_report(), 0);
    std::vector<LearnedAddr> addrs;
    for (size_t i = 4; i < args.size(); ++i) {
      auto a = IpAddr::parse(args[i]);
      if (!a) {
        std::fprintf(stderr, "nft_tool: bad address %s\n", args[i].c_str());
        return 2;
      }
      addrs.push_back({*a, static_cast<uint32_t>(std::stoul(args[3]))});
    }
    auto t0 = std::chrono::steady_clock::now();
    st = (*be)->learn({args[2]}, addrs);
    if (!st.ok()) return fail(st.error());
    print_report("learn", (*be)->last_report(), since(t0));
    return 0;
  }
  if (cmd == "add-element") {
    if (args.size() < 3) return 2;
    auto sock = NftSocket::open();
    if (!sock) return fail(sock.error());
    std::vector<Range4> r4;
    for (size_t i = 2; i < args.size(); ++i) {
      auto p = Prefix::parse(args[i], true);
      if (!p) return fail(p.error());
      PrefixSet ps;
      ps.add(*p);
      ps.normalize();
      r4.insert(r4.end(), ps.v4().begin(), ps.v4().end());
    }
    NftBatch b(sock->reserve_seq(0));
    b.interval_elems4(NftElemOp::kAdd, args[1], r4);
    b.finish();
    Status st = sock->send(b);
    if (!st.ok()) return fail(st.error());
    std::printf("added\n");
    return 0;
  }
  std::fprintf(stderr, "nft_tool: unknown command %s\n", cmd.c_str());
  return 2;
}
