// SPDX-License-Identifier: MIT
// `amlfw plan` end to end on the real service-tags file with every feature on.
//   plan_bench AMLFW_BINARY [N] [service-tags file]
// Runs the binary N times (default 11) as a child process, once with the default features and
// once with every feature on, and prints the median wall time and the median peak RSS
// (wait4's ru_maxrss), side by side with the goal of the issue (150 ms, 64 MiB).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Sample {
  double ms;
  long rss_kib;
};

Sample run_once(const std::vector<std::string>& argv) {
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    FILE* devnull = std::fopen("/dev/null", "w");
    dup2(fileno(devnull), 1);
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  wait4(pid, &status, 0, &ru);
  auto t1 = std::chrono::steady_clock::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "plan_bench: %s exited with %d\n", argv[0].c_str(), WEXITSTATUS(status));
    std::exit(1);
  }
  return {std::chrono::duration<double, std::milli>(t1 - t0).count(), ru.ru_maxrss};
}

template <class T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: plan_bench AMLFW_BINARY [N] [service-tags file]\n");
    return 2;
  }
  const std::string bin = argv[1];
  const int n = argc > 2 ? std::atoi(argv[2]) : 11;
  const std::string tags = argc > 3 ? argv[3] : AMLFW_SHARED_DATA "/servicetags/ServiceTags_Public_20251028.json";
  // Every feature on and every template filled, for each catalog revision.
  auto write_all = [](const std::string& path, const char* revision) {
    std::ofstream f(path);
    f << "catalog = \"" << revision << "\"\nstorage_accounts = [\"mystore\"]\ncontainer_registries = [\"myacr1\"]\n"
      << "workspace_id = \"0a1b2c3d-0000-4000-8000-00000000abcd\"\n[features]\n";
    for (const char* k : {"compute_instance", "compute_cluster", "custom_images", "user_managed_dependencies",
                          "hbi_workspace", "python", "r", "vscode", "support_diagnostics", "aks", "arc_extension",
                          "arc_training", "arc_inference", "inbound", "pythonhosted"})
      f << k << " = true\n";
  };
  const std::string all = "/tmp/amlfw-plan-bench-" + std::to_string(getpid()) + ".toml";
  const std::string all26 = "/tmp/amlfw-plan-bench-" + std::to_string(getpid()) + "-2026.toml";
  write_all(all, "2021-10");
  write_all(all26, "2026-03");
  const std::string none = "/nonexistent/amlfw.toml";  // the embedded default
  struct Case {
    const char* what;
    std::vector<std::string> argv;
  };
  std::vector<Case> cases = {
      {"plan, default features (table)", {bin, "plan", "--config", none, "--service-tags", tags}},
      {"plan, every feature (json)", {bin, "plan", "--config", all, "--service-tags", tags, "--format", "json"}},
      {"plan, every feature (nft)", {bin, "plan", "--config", all, "--service-tags", tags, "--format", "nft"}},
      {"plan, every feature, 2026-03 (json)",
       {bin, "plan", "--config", all26, "--service-tags", tags, "--format", "json"}},
      {"version (process start only)", {bin, "version"}},
  };
  std::printf("%-38s %10s %10s %12s %12s\n", "case", "median ms", "min ms", "RSS MiB", "vs goal");
  for (const auto& c : cases) {
    std::vector<double> ms;
    std::vector<long> rss;
    for (int i = 0; i < n; ++i) {
      auto s = run_once(c.argv);
      ms.push_back(s.ms);
      rss.push_back(s.rss_kib);
    }
    const double m = median(ms);
    const double r = median(rss) / 1024.0;
    std::printf("%-38s %10.1f %10.1f %12.1f %11.0f%%\n", c.what, m, *std::min_element(ms.begin(), ms.end()), r,
                100.0 * std::max(m / 150.0, r / 64.0));
  }
  std::printf("goal: parse + compile under 150 ms and peak RSS under 64 MiB (vs goal: the larger share used)\n");
  unlink(all.c_str());
  unlink(all26.c_str());
  return 0;
}
