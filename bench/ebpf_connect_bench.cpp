// SPDX-License-Identifier: MIT
// TCP connect rate, for bench/ebpf_connect_bench.sh (which sets up the namespaces, the
// cgroup and the filters):
//   ebpf_connect_bench serve PORT [THREADS]          accept and close, forever
//   ebpf_connect_bench connect ADDR PORT SECONDS     connect + close (RST) in a loop; prints
//       `connect ok=N failed=N errno=NAME rate=R/s p50_us=X p99_us=Y`
// Each connection is a full handshake (connect() returns after SYN-ACK) closed with
// SO_LINGER 0, so no TIME_WAIT piles up on the client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

int serve(int port, int threads) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(static_cast<uint16_t>(port));
  a.sin6_addr = in6addr_any;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("ebpf_connect_bench: bind/listen");
    return 1;
  }
  std::printf("serving %d\n", port);
  std::fflush(stdout);
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([fd] {
      for (;;) {
        int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) ::close(c);
      }
    });
  }
  for (auto& t : ts) t.join();
  return 0;
}

int connect_loop(const char* addr, int port, double seconds) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int fam = AF_INET;
  if (std::strchr(addr, ':')) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1) return 2;
    len = sizeof *s6;
    fam = AF_INET6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, addr, &s4->sin_addr) != 1) return 2;
    len = sizeof *s4;
  }
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  std::vector<double> lat;
  lat.reserve(1 << 20);
  long ok = 0, failed = 0;
  int last_errno = 0;
  const linger lg{1, 0};
  while (Clock::now() < end) {
    int fd = ::socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      std::perror("ebpf_connect_bench: socket");
      return 1;
    }
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    const auto t0 = Clock::now();
    int r = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
    const auto t1 = Clock::now();
    if (r == 0) {
      ++ok;
    } else {
      ++failed;
      last_errno = errno;
    }
    lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    ::close(fd);
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) { return lat.empty() ? 0.0 : lat[static_cast<size_t>(q * (lat.size() - 1))]; };
  std::printf("connect ok=%ld failed=%ld errno=%s rate=%.0f/s p50_us=%.1f p99_us=%.1f\n", ok, failed,
              last_errno ? strerrorname_np(last_errno) : "-", static_cast<double>(ok + failed) / seconds, pct(0.5),
              pct(0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() >= 2 && a[0] == "serve") return serve(std::atoi(a[1].c_str()), a.size() > 2 ? std::atoi(a[2].c_str()) : 1);
  if (a.size() == 4 && a[0] == "connect") return connect_loop(a[1].c_str(), std::atoi(a[2].c_str()), std::atof(a[3].c_str()));
  std::fprintf(stderr, "usage: ebpf_connect_bench serve PORT [THREADS] | connect ADDR PORT SECONDS\n");
  return 2;
}
