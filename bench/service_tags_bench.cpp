// SPDX-License-Identifier: MIT
// Service-tags parse time and memory.
//   service_tags_bench [N] [file]
// Parses the real public file N times (default 15) and a synthetic 100k-prefix document
// generated in memory, and prints the median and minimum wall time and the peak RSS.
// Peak RSS is measured in a forked child that does one parse (wait4's ru_maxrss), minus an
// idle child forked at the same moment, so each row shows what that parse alone adds.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <simdjson.h>
#include <sstream>
#include <string>
#include <vector>

#include "policy/service_tags.h"

namespace {

using amlfw::Prefix;
using amlfw::ServiceTags;

struct Row {
  std::string what;
  double median_ms = 0;
  double min_ms = 0;
  long rss_kib = -1;  // peak RSS added by one run, -1 if not measured
  std::string note;
};

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Runs fn n times; returns {median, min} in ms. fn returns false on failure.
bool time_it(int n, const std::function<bool()>& fn, Row* row) {
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    double t0 = now_ms();
    if (!fn()) return false;
    t.push_back(now_ms() - t0);
  }
  std::sort(t.begin(), t.end());
  row->median_ms = t[t.size() / 2];
  row->min_ms = t.front();
  return true;
}

// Peak RSS (KiB) of a forked child that runs prepare() then, if given, run().
long child_peak_rss(const std::function<bool()>& prepare, const std::function<bool()>& run) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) _exit(prepare() && (!run || run()) ? 0 : 1);
  int status = 0;
  struct rusage ru {};
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return -1;
  }
  return ru.ru_maxrss;
}

// What run() adds to the peak RSS of a process after prepare(), in KiB. Measured in fresh
// children forked before the parent holds any data, because a child starts with its
// parent's resident pages.
long added_rss(const std::function<bool()>& prepare, const std::function<bool()>& run) {
  const long before = child_peak_rss(prepare, nullptr);
  const long after = child_peak_rss(prepare, run);
  return before < 0 || after < 0 ? -1 : after - before;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// 1000 tags x 100 prefixes, 3/4 IPv4 and 1/4 IPv6, lengths like the real data, with
// overlaps and neighbours between tags; pretty-printed like Microsoft's file.
std::string synthetic(size_t tags, size_t per_tag, std::vector<std::string>* all) {
  std::mt19937_64 rng(42);
  std::string out = "{\n  \"changeNumber\": 1,\n  \"cloud\": \"Public\",\n  \"values\": [\n";
  char buf[96];
  for (size_t t = 0; t < tags; ++t) {
    std::string name = "Synthetic" + std::to_string(t / 70) + ".Region" + std::to_string(t % 70);
    out += "    {\n      \"name\": \"" + name + "\",\n      \"id\": \"" + name +
           "\",\n      \"properties\": {\n        \"changeNumber\": 3,\n        \"region\": \"r" +
           std::to_string(t % 70) +
           "\",\n        \"regionId\": 1,\n        \"platform\": \"Azure\",\n"
           "        \"systemService\": \"S\",\n        \"addressPrefixes\": [\n";
    for (size_t i = 0; i < per_tag; ++i) {
      if (i % 4 != 3) {
        unsigned len = 20 + static_cast<unsigned>(rng() % 13);
        uint32_t a = (static_cast<uint32_t>(rng()) & 0x0fffffffu) | 0x14000000u;  // 20.x-ish
        a &= len == 0 ? 0 : ~uint32_t{0} << (32 - len);
        snprintf(buf, sizeof buf, "%u.%u.%u.%u/%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
                 a & 255, len);
      } else {
        unsigned len = 48 + static_cast<unsigned>(rng() % 81);
        amlfw::IpAddr a = amlfw::IpAddr::v6addr((amlfw::u128{0x2603} << 112) |
                                                (amlfw::u128{rng()} << 48) | (rng() & 0xffff));
        a.value &= ~amlfw::u128{0} << (128 - len);
        snprintf(buf, sizeof buf, "%s/%u", a.str().c_str(), len);
      }
      all->push_back(buf);
      out += "          \"";
      out += buf;
      out += i + 1 < per_tag ? "\",\n" : "\"\n";
    }
    out += "        ],\n        \"networkFeatures\": null\n      }\n    }";
    out += t + 1 < tags ? ",\n" : "\n";
  }
  out += "  ]\n}";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::max(1, atoi(argv[1])) : 15;
  const std::string real_path =
      argc > 2 ? argv[2]
               : std::string(AMLFW_SHARED_DATA) + "/servicetags/ServiceTags_Public_20251028.json";
  const bool have_real = amlfw::load_service_tags_file(real_path).ok();
  if (!have_real) fprintf(stderr, "note: %s not loadable, real-file rows skipped\n", real_path.c_str());

  // Memory first, in children forked while this process is still small.
  std::string real;
  std::string synth;
  std::vector<std::string> strings;
  auto read_real = [&] { real = read_file(real_path); return !real.empty(); };
  auto make_synth = [&] { synth = synthetic(1000, 100, &strings); return true; };
  auto nothing = [] { return true; };
  auto load_real = [&] { return amlfw::load_service_tags_file(real_path).ok(); };
  auto parse_real = [&] { return amlfw::parse_service_tags(real, "bench").ok(); };
  auto dom_real = [&] {
    simdjson::padded_string padded(real);
    simdjson::dom::parser p;
    simdjson::dom::element e;
    return p.parse(padded).get(e) == simdjson::SUCCESS;
  };
  auto parse_synth = [&] {
    auto r = amlfw::parse_service_tags(synth, "synthetic");
    if (!r.ok()) fprintf(stderr, "%s\n", r.error().message.c_str());
    return r.ok() && r->total_prefixes() == 100000;
  };
  long rss_load = -1, rss_parse = -1, rss_dom = -1, rss_process = -1;
  if (have_real) {
    rss_load = added_rss(nothing, load_real);
    rss_parse = added_rss(read_real, parse_real);
    rss_dom = added_rss(read_real, dom_real);
    rss_process = child_peak_rss(load_real, nullptr);
  }
  const long rss_synth = added_rss(make_synth, parse_synth);

  std::vector<Row> rows;
  if (have_real) {
    read_real();
    char note[160];
    {
      auto first = amlfw::parse_service_tags(real, real_path);
      if (!first.ok()) {
        fprintf(stderr, "%s\n", first.error().message.c_str());
        return 1;
      }
      snprintf(note, sizeof note, "%.2f MB, %zu tags, %zu prefixes; process peak %.1f MiB",
               real.size() / 1e6, first->tags.size(), first->total_prefixes(),
               rss_process / 1024.0);
    }

    Row r{"real file: load_service_tags_file"};
    if (!time_it(n, load_real, &r)) return 1;
    r.rss_kib = rss_load;
    r.note = note;
    rows.push_back(r);

    Row m{"real file: parse_service_tags (in memory)"};
    if (!time_it(n, parse_real, &m)) return 1;
    m.rss_kib = rss_parse;
    rows.push_back(m);

    Row d{"real file: simdjson DOM parse only"};
    if (!time_it(n, dom_real, &d)) return 1;
    d.rss_kib = rss_dom;
    rows.push_back(d);

    // The prefix strings of the real file, in file order.
    std::vector<std::string> listed;
    simdjson::padded_string padded(real);
    simdjson::dom::parser p;
    simdjson::dom::element root;
    simdjson::dom::array values;
    if (p.parse(padded).get(root) == simdjson::SUCCESS &&
        root["values"].get(values) == simdjson::SUCCESS) {
      for (simdjson::dom::element v : values) {
        simdjson::dom::array list;
        if (v["properties"]["addressPrefixes"].get(list) != simdjson::SUCCESS) continue;
        for (simdjson::dom::element e : list) {
          std::string_view sv;
          if (e.get(sv) == simdjson::SUCCESS) listed.emplace_back(sv);
        }
      }
    }
    Row q{"real file: Prefix::parse x " + std::to_string(listed.size()) + " only"};
    auto prefixes = [&] {
      size_t ok = 0;
      for (const std::string& t : listed) ok += Prefix::parse(t).ok();
      return ok == listed.size();
    };
    if (!time_it(n, prefixes, &q)) return 1;
    rows.push_back(q);
  }

  make_synth();
  {
    char note[96];
    snprintf(note, sizeof note, "%.2f MB, 1000 tags, %zu prefixes", synth.size() / 1e6,
             strings.size());
    Row s{"synthetic: parse_service_tags"};
    if (!time_it(n, parse_synth, &s)) return 1;
    s.rss_kib = rss_synth;
    s.note = note;
    rows.push_back(s);

    Row p{"synthetic: Prefix::parse x 100k only"};
    auto prefixes = [&] {
      size_t ok = 0;
      for (const std::string& t : strings) ok += Prefix::parse(t).ok();
      return ok == strings.size();
    };
    if (!time_it(n, prefixes, &p)) return 1;
    rows.push_back(p);
  }

  printf("service-tags parse benchmark: %d runs each; peak MiB = peak RSS added by one run\n", n);
  printf("%-44s %10s %10s %10s  %s\n", "what", "median ms", "min ms", "peak MiB", "");
  for (const Row& r : rows) {
    char rss[32] = "-";
    if (r.rss_kib >= 0) snprintf(rss, sizeof rss, "%.1f", r.rss_kib / 1024.0);
    printf("%-44s %10.2f %10.2f %10s  %s\n", r.what.c_str(), r.median_ms, r.min_ms, rss,
           r.note.c_str());
  }
  return 0;
}
