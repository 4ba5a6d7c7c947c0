// SPDX-License-Identifier: MIT
// The cost of the output chain for the first packet of a connection, without the rest of
// TCP: sends the same TCP SYN (one 4-tuple) again and again through a raw socket, for
// bench/nft_dataplane.sh, which routes the destination to a dummy device (the packets are
// dropped by the driver). Conntrack keeps the one entry in SYN_SENT and marks every copy
// `ct state new`, so each packet walks the output chain the way a connection's SYN does,
// minus conntrack's allocation and TCP's work.
//   nft_syn_bench ADDR PORT SECONDS   prints `syn packets=N rate=R/s ns_per_packet=X`
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

uint16_t checksum(const void* data, size_t len, uint32_t sum) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(p[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: nft_syn_bench ADDR PORT SECONDS\n");
    return 2;
  }
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    std::fprintf(stderr, "nft_syn_bench: %s: not an IPv4 address\n", argv[1]);
    return 2;
  }
  const int port = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  if (port <= 0 || port > 65535 || seconds <= 0) {
    std::fprintf(stderr, "nft_syn_bench: give a port 1-65535 and a positive duration\n");
    return 2;
  }
  const int fd = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
  if (fd < 0) {
    std::perror("nft_syn_bench: raw socket (needs CAP_NET_RAW)");
    return 1;
  }
  // The source address the kernel will pick: learn it with a connected UDP socket.
  sockaddr_in src{};
  {
    const int u = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t len = sizeof(src);
    if (u < 0 || connect(u, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0 ||
        getsockname(u, reinterpret_cast<sockaddr*>(&src), &len) != 0) {
      std::perror("nft_syn_bench: no route to the destination");
      return 1;
    }
    close(u);
  }
  tcphdr th{};
  th.source = htons(40000);
  th.dest = htons(static_cast<uint16_t>(port));
  th.seq = htonl(1);
  th.doff = 5;
  th.syn = 1;
  th.window = htons(64240);
  struct {
    uint32_t src, dst;
    uint8_t zero, proto;
    uint16_t len;
  } pseudo{src.sin_addr.s_addr, dst.sin_addr.s_addr, 0, IPPROTO_TCP, htons(sizeof(th))};
  uint32_t sum = 0;
  const auto* ps = reinterpret_cast<const uint8_t*>(&pseudo);
  for (size_t i = 0; i < sizeof(pseudo); i += 2) sum += static_cast<uint32_t>(ps[i] << 8 | ps[i + 1]);
  th.check = htons(checksum(&th, sizeof(th), sum));

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const auto until = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  long sent = 0, failed = 0;
  int err = 0;
  for (;;) {
    for (int i = 0; i < 256; ++i) {
      if (sendto(fd, &th, sizeof(th), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == sizeof(th)) {
        ++sent;
      } else {
        ++failed;
        err = errno;
      }
    }
    if (Clock::now() >= until) break;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("syn packets=%ld failed=%ld%s%s rate=%.0f/s ns_per_packet=%.0f\n", sent, failed, err ? " errno=" : "",
              err ? std::strerror(err) : "", static_cast<double>(sent) / s, s * 1e9 / static_cast<double>(sent));
  close(fd);
  return sent > 0 ? 0 : 1;
}
