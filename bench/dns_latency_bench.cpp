// SPDX-License-Identifier: MIT
// One DNS query at a time over UDP, each timed: the latency half of bench/dns_bench.sh
// (dnsperf measures throughput well, single-query latency less so).
//
//   dns_latency_bench SERVER PORT QUERY_FILE SECONDS
//
// QUERY_FILE has dnsperf's format ("name TYPE" a line, TYPE A or AAAA), read once in order.
// Prints "p50_us p99_us answered lost" (lost: no answer within 1 s).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/dns_wire.h"

int main(int argc, char** argv) {
  if (argc == 1) {  // bench/run.sh runs every *_bench without arguments
    std::printf("dns_latency_bench: a helper of bench/dns_bench.sh (usage: %s SERVER PORT QUERY_FILE SECONDS)\n",
                argv[0]);
    return 0;
  }
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s SERVER PORT QUERY_FILE SECONDS\n", argv[0]);
    return 2;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(argv[2])));
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    std::fprintf(stderr, "%s: bad IPv4 server address (write 127.0.0.1)\n", argv[1]);
    return 2;
  }
  std::ifstream in(argv[3]);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read\n", argv[3]);
    return 2;
  }
  std::vector<std::pair<std::string, uint16_t>> qs;
  std::string name, type;
  while (in >> name >> type) qs.emplace_back(name, type == "AAAA" ? amlfw::dns::kTypeAaaa : amlfw::dns::kTypeA);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(std::stoi(argv[4]));
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("socket");
    return 1;
  }
  std::vector<double> us;
  size_t lost = 0;
  uint16_t id = 1;
  std::vector<uint8_t> buf(65535);
  for (const auto& [n, t] : qs) {
    if (std::chrono::steady_clock::now() >= until) break;
    auto q = amlfw::dns::make_query(++id, n, t);
    const auto t0 = std::chrono::steady_clock::now();
    if (::send(fd, q.data(), q.size(), 0) < 0) return 1;
    bool got = false;
    for (;;) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) break;
      ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r >= 2 && amlfw::dns::read16(buf.data()) == id) {
        got = true;
        break;
      }
    }
    if (!got) {
      ++lost;
      continue;
    }
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  if (us.empty()) {
    std::printf("- - 0 %zu\n", lost);
    return 1;
  }
  std::sort(us.begin(), us.end());
  std::printf("%.0f %.0f %zu %zu\n", us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)], us.size(),
              lost);
  return 0;
}
