// SPDX-License-Identifier: MIT
// DnsProxy: amlfw's DNS forwarder (SPEC guarantee 6), on the daemon's EventLoop.
//
// Clients ask over UDP or TCP on dns.listen. Each question goes to an upstream from a new
// socket (a fresh random source port) with a fresh random id, over the client's transport;
// the answer must come from that upstream, with that id and that question. A timeout, a
// refused connection or a SERVFAIL/REFUSED/NOTIMP fails over to the next upstream; when
// every attempt failed the client gets SERVFAIL.
//
// When the question name matches an allowed pattern (DnsLearner::groups_for), the A/AAAA
// of the answer reachable through the CNAME chain go to the kernel (DnsLearner::learn,
// synchronous) before the answer is released; if that fails the client gets SERVFAIL.
// Every other answer is relayed unchanged but for the id. Malformed queries get FORMERR
// (or are dropped when not even a header); an upstream answer that cannot be read for an
// allowed name becomes SERVFAIL.
//
// Bounds: pending upstream queries (the oldest is answered SERVFAIL when full), TCP
// clients (more are refused at accept), their idle time, queries in flight per TCP client,
// bytes buffered for a TCP client.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/dns_learned.h"
#include "daemon/dns_wire.h"
#include "daemon/event_loop.h"
#include "daemon/fd.h"
#include "policy/config.h"
#include "policy/result.h"

namespace amlfw {

struct DnsProxyOptions {
  std::vector<SocketAddress> listen;           // UDP and TCP on each
  std::vector<SocketAddress> upstreams;        // tried in order from the last good one
  std::chrono::milliseconds upstream_timeout{1000};  // per attempt
  size_t attempts = 0;                         // 0: max(2, number of upstreams)
  size_t max_pending = 1024;                   // upstream queries in flight
  size_t max_tcp_clients = 128;
  std::chrono::milliseconds tcp_idle{10000};
  size_t max_tcp_inflight = 16;                // per TCP client; reading pauses beyond
  size_t max_tcp_outbuf = 256 * 1024;          // per TCP client; the client is dropped beyond
  uint32_t so_mark = 0;                        // SO_MARK of upstream sockets (0: none)
};

struct DnsProxyStats {
  uint64_t queries_udp = 0;
  uint64_t queries_tcp = 0;
  uint64_t answers = 0;            // relayed from an upstream
  uint64_t learned_answers = 0;    // of which taught the kernel first
  uint64_t servfail_upstream = 0;  // every upstream attempt failed
  uint64_t servfail_learn = 0;     // the kernel refused what the answer teaches
  uint64_t servfail_bad_answer = 0;  // an allowed name's answer could not be read
  uint64_t formerr = 0;
  uint64_t dropped = 0;            // not even a DNS header, or a response
  uint64_t pending_overflow = 0;   // oldest pending query answered SERVFAIL to make room
  uint64_t tcp_refused = 0;        // TCP clients over the bound
  uint64_t tcp_idle_closed = 0;
  uint64_t upstream_failovers = 0;
  uint64_t stray_answers = 0;      // wrong id or question (ignored)
};

class DnsProxy {
 public:
  // Binds every listen address (UDP + TCP). `loop` and `learner` must outlive the proxy.
  static Result<std::unique_ptr<DnsProxy>> create(EventLoop& loop, DnsLearner& learner, DnsProxyOptions opts);
  ~DnsProxy();
  DnsProxy(const DnsProxy&) = delete;
  DnsProxy& operator=(const DnsProxy&) = delete;

  // Replaces the upstreams (queries in flight finish with the old ones).
  void set_upstreams(std::vector<SocketAddress> ups);
  const DnsProxyOptions& options() const { return opts_; }
  // The bound addresses (port filled in when the option said 0).
  const std::vector<SocketAddress>& bound() const { return bound_; }
  const DnsProxyStats& stats() const { return stats_; }
  size_t pending() const { return pending_.size(); }
  size_t tcp_clients() const { return clients_.size(); }

 private:
  struct Listener {
    Fd udp, tcp;
    bool v6 = false;
  };
  struct Client {  // a TCP client
    uint64_t id = 0;
    Fd fd;
    std::vector<uint8_t> in;
    size_t in_off = 0;
    std::vector<uint8_t> out;
    size_t out_off = 0;
    size_t inflight = 0;
    bool eof = false;
    bool processing = false;
    uint32_t interest = 0;
    EventLoop::TimerId idle_timer = 0;
  };
  struct Pending {
    uint64_t seq = 0;
    // the client
    bool tcp = false;
    int udp_fd = -1;              // listener socket the query came in on
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    uint64_t client = 0;          // TCP client id
    uint16_t client_id = 0;
    std::vector<uint8_t> query;   // as received (id rewritten per attempt)
    dns::Query parsed;
    // the upstream attempt
    size_t upstream = 0;
    size_t attempts = 0;
    uint16_t up_id = 0;
    Fd sock;
    bool connected = false;       // TCP: connect finished
    size_t out_off = 0;           // TCP: bytes of [len][query] written
    std::vector<uint8_t> in;      // TCP: answer bytes read
  };
  // Attempt deadlines, in the order the attempts started (all have the same timeout, so
  // the queue is sorted): one loop timer armed for the front, entries of finished queries
  // skipped when they come due. No timer call per query.
  struct Deadline {
    EventLoop::Clock::time_point at;
    uint64_t seq = 0;
    size_t attempt = 0;
  };

  DnsProxy(EventLoop& loop, DnsLearner& learner, DnsProxyOptions opts)
      : loop_(loop), learner_(learner), opts_(std::move(opts)) {}
  Status bind_all();
  void on_udp_readable(int fd);
  void on_tcp_accept(int fd);
  void on_client_event(uint64_t id, uint32_t events);
  void client_process(uint64_t id);
  void client_write(Client& c);
  void client_send(uint64_t id, std::span<const uint8_t> msg);
  void client_update_interest(Client& c);
  void close_client(uint64_t id);

  // A query from a client: UDP (fd, peer) or TCP (client id).
  void on_query(std::span<const uint8_t> msg, bool tcp, int udp_fd, const sockaddr_storage* peer, socklen_t peer_len,
                uint64_t client);
  void reply(const Pending& p, std::span<const uint8_t> msg);
  void reply_error(const Pending& p, dns::Rcode rcode);
  void start_attempt(uint64_t seq);
  void attempt_failed(uint64_t seq, const char* why);
  void on_upstream_event(uint64_t seq, uint32_t events);
  void on_deadlines();
  // False when the answer was ignored (not for this query) and the attempt goes on.
  bool on_upstream_answer(uint64_t seq, std::span<uint8_t> msg);
  void send_direct(bool tcp, int udp_fd, const sockaddr_storage* peer, socklen_t peer_len, uint64_t client,
                   std::span<const uint8_t> msg);
  size_t max_attempts() const;
  void finish(uint64_t seq);
  uint16_t random16();

  EventLoop& loop_;
  DnsLearner& learner_;
  DnsProxyOptions opts_;
  std::vector<SocketAddress> bound_;
  std::vector<Listener> listeners_;
  std::unordered_map<uint64_t, Client> clients_;
  std::unordered_map<int, uint64_t> client_by_fd_;
  uint64_t next_client_ = 1;
  std::map<uint64_t, Pending> pending_;  // by age
  std::deque<Deadline> deadlines_;
  EventLoop::TimerId deadline_timer_ = 0;
  uint64_t next_seq_ = 1;
  size_t preferred_ = 0;                 // the upstream that answered last
  std::vector<uint8_t> buf_;             // client datagrams
  std::vector<uint8_t> up_buf_;          // upstream datagrams
  uint8_t rnd_[256];
  size_t rnd_left_ = 0;
  DnsProxyStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace amlfw
