// SPDX-License-Identifier: MIT
// nftables backend benchmark, in a network namespace of its own (unshare(CLONE_NEWNET)):
//   full load of 100k IPv4 + 10k IPv6 prefixes by NftBackend::apply (a new process state,
//   so it adopts an empty kernel: the daemon's boot path) against `nft -f` of the same
//   table as text (render_nft), and a 1% change (apply's diff) against `nft -f` of the same
//   element changes as text. Prints medians, ratios and the peak RSS.
// Usage: nft_bench [runs=5] [v4=100000] [v6=10000]   (root; nft in PATH for the comparison)
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/nft_backend.h"
#include "policy/render_nft.h"
#include "tests/tools/nft_synth.h"

using namespace amlfw;
using Clock = std::chrono::steady_clock;
constexpr double kNftChangeCapMs = 30000;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Runs `nft -f path`; returns wall ms, a negative value on failure, or cap_ms when it
// was still running at cap_ms (then it is killed).
double run_nft(const std::string& path, double cap_ms) {
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    execlp("nft", "nft", "-f", path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (ms_since(t0) > cap_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return cap_ms;
    }
    usleep(2000);
  }
  double ms = ms_since(t0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// The element changes of one set as nft text.
void diff_text(const std::string& set, const RangeDiff& d, bool v6, std::string* out) {
  auto list = [&](const char* verb, auto const& ranges, auto fmt) {
    if (ranges.empty()) return;
    *out += std::string(verb) + " element inet amlfw " + set + " { ";
    for (size_t i = 0; i < ranges.size(); ++i) *out += (i ? ", " : "") + fmt(ranges[i]);
    *out += " }\n";
  };
  if (v6) {
    list("delete", d.del6, nft_range6_text);
    list("add", d.add6, nft_range6_text);
  } else {
    list("delete", d.del4, nft_range4_text);
    list("add", d.add4, nft_range4_text);
  }
}

synth::Spec make_spec(uint32_t n4, uint32_t n6, uint64_t change_seed, uint32_t permille) {
  synth::Spec s;
  s.policy.dns_upstreams = {*IpAddr::parse("192.0.2.53")};
  PortGroup g;
  g.direction = Direction::kEgress;
  g.proto = Proto::kTcp;
  g.ports = {PortRange{443, 443}};
  g.name = port_group_name(g.direction, g.proto, g.ports);
  g.rule_ids = {"NR2"};
  g.has_names = true;
  synth::gen4(&g.prefixes, n4, 1, change_seed, permille);
  synth::gen6(&g.prefixes, n6, 2, change_seed, permille);
  g.prefixes.normalize();
  s.groups.push_back(std::move(g));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  const uint32_t n4 = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 100000;
  const uint32_t n6 = argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 10000;
  if (geteuid() != 0) {
    std::fprintf(stderr, "nft_bench: needs root (a network namespace of its own)\n");
    return 77;
  }
  if (unshare(CLONE_NEWNET) != 0) {
    std::perror("nft_bench: unshare(CLONE_NEWNET)");
    return 1;
  }
  const synth::Spec a = make_spec(n4, n6, 0, 0);
  const synth::Spec b = make_spec(n4, n6, 9, 10);  // 1% of the prefixes moved
  const RangeDiff d = diff_ranges(a.groups[0].prefixes, b.groups[0].prefixes);
  std::printf("nft_bench: %u IPv4 + %u IPv6 prefixes; 1%% change = %zu ranges changed\n", n4, n6, d.size());

  char dir[] = "/tmp/nft_bench.XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string full_nft = std::string(dir) + "/full.nft";
  const std::string diff_nft = std::string(dir) + "/diff.nft";
  write_file(full_nft, render_nft(a.policy, a.groups));
  std::string dt;
  diff_text(nft_prefix_set_name(a.groups[0].name, false), d, false, &dt);
  diff_text(nft_prefix_set_name(a.groups[0].name, true), d, true, &dt);
  write_file(diff_nft, dt);

  std::vector<double> t_full, t_change, t_nft_full, t_nft_change, t_change_user, t_change_sys, t_adopt;
  for (int i = 0; i < runs; ++i) {
    {
      auto be = NftBackend::create();
      if (!be) {
        std::fprintf(stderr, "nft_bench: %s\n", be.error().message.c_str());
        return 1;
      }
      Status st = (*be)->flush();
      auto t0 = Clock::now();
      st = (*be)->apply(a.policy, a.groups);
      t_full.push_back(ms_since(t0));
      if (!st.ok()) {
        std::fprintf(stderr, "nft_bench: %s\n", st.error().message.c_str());
        return 1;
      }
      rusage r0{}, r1{};
      getrusage(RUSAGE_SELF, &r0);
      t0 = Clock::now();
      st = (*be)->apply(b.policy, b.groups);
      t_change.push_back(ms_since(t0));
      getrusage(RUSAGE_SELF, &r1);
      auto tv_ms = [](const timeval& a, const timeval& b) {
        return (b.tv_sec - a.tv_sec) * 1000.0 + (b.tv_usec - a.tv_usec) / 1000.0;
      };
      t_change_user.push_back(tv_ms(r0.ru_utime, r1.ru_utime));
      t_change_sys.push_back(tv_ms(r0.ru_stime, r1.ru_stime));
      if (!st.ok() || (*be)->last_report().rules_rewritten) {
        std::fprintf(stderr, "nft_bench: change: %s\n", st.ok() ? "rules rewritten" : st.error().message.c_str());
        return 1;
      }
      {
        // A restart: a new process state adopts the loaded table.
        auto be2 = NftBackend::create();
        if (!be2) return 1;
        t0 = Clock::now();
        st = (*be2)->apply(b.policy, b.groups);
        t_adopt.push_back(ms_since(t0));
        if (!st.ok()) {
          std::fprintf(stderr, "nft_bench: adopt: %s\n", st.error().message.c_str());
          return 1;
        }
      }
      st = (*be)->flush();
    }
    double f = run_nft(full_nft, 600000);
    // nft 1.0.6 reads the whole interval set back and merges in userspace for each
    // `delete element`: minutes for this size. Measured once, capped.
    double c = i == 0 ? run_nft(diff_nft, kNftChangeCapMs) : t_nft_change.front();
    if (f < 0 || c < 0) {
      std::fprintf(stderr, "nft_bench: nft -f failed (is nft installed?)\n");
      return 1;
    }
    t_nft_full.push_back(f);
    t_nft_change.push_back(c);
    auto be = NftBackend::create();
    if (be) (void)(*be)->flush();
  }
  rusage self{}, kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  const double full = median(t_full), change = median(t_change);
  const double nft_full = median(t_nft_full), nft_change = median(t_nft_change);
  std::printf("full load:  amlfw %.1f ms   nft -f %.1f ms   ratio %.2f  (goal <= 0.50)\n", full, nft_full,
              full / nft_full);
  std::printf("1%% change:  amlfw %.1f ms   nft -f %s%.1f ms   ratio %.4f  (goal < 50 ms)\n", change,
              nft_change >= kNftChangeCapMs ? ">" : "", nft_change, change / nft_change);
  std::printf("            (1%% change: user %.1f ms, kernel %.1f ms)\n", median(t_change_user), median(t_change_sys));
  std::printf("restart:    amlfw %.1f ms (adopt the loaded table: one batch)\n", median(t_adopt));
  std::printf("peak RSS:   amlfw process %.1f MiB (goal < 32)   nft %.1f MiB\n", self.ru_maxrss / 1024.0,
              kids.ru_maxrss / 1024.0);
  std::printf("runs: %d (medians)\n", runs);
  std::remove(full_nft.c_str());
  std::remove(diff_nft.c_str());
  rmdir(dir);
  return 0;
}
