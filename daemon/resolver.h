// SPDX-License-Identifier: MIT
// Resolver: host names to addresses with c-ares 1.18, driven by the EventLoop.
//
// The 1.18 way: ARES_OPT_SOCK_STATE_CB registers each c-ares socket with the loop,
// ares_process_fd() runs on readiness, and one loop timer is armed from ares_timeout().
// A name is resolved with two queries (A and AAAA, ares_query: no search list, no
// /etc/hosts) whose answers are parsed with their TTLs (ares_parse_a_reply /
// ares_parse_aaaa_reply with addrttls; c-ares folds CNAME TTLs into them).
//
// Outcome of resolve(name):
//  - both queries answered (NOERROR with or without addresses, or NXDOMAIN): ok, every
//    address once with the smallest TTL seen for it; NXDOMAIN is ok with no address
//    (`nxdomain` set);
//  - one query failed (SERVFAIL, REFUSED, timeout, bad answer...) while the other brought
//    addresses: ok with those addresses and `complete == false`, `partial_error` says what
//    failed (a caller may add or renew these addresses but must not drop the others);
//  - otherwise: an error naming the name, the type and the reason.
// Callbacks always run from the event loop (never inside resolve() nor inside c-ares), so
// a callback may call resolve() again or destroy the Resolver.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/event_loop.h"
#include "policy/net.h"
#include "policy/render_nft.h"
#include "policy/result.h"

struct ares_channeldata;

namespace amlfw {

struct ResolvedAddr {
  IpAddr addr;
  uint32_t ttl = 0;  // seconds
  friend bool operator==(const ResolvedAddr&, const ResolvedAddr&) = default;
};

struct Resolution {
  std::string name;
  std::vector<ResolvedAddr> addrs;  // IPv4 first, each in answer order, no duplicates
  bool nxdomain = false;
  bool complete = true;       // false: one of A/AAAA failed, see partial_error
  std::string partial_error;  // one line
  // Smallest TTL among addrs (0 when there is none).
  uint32_t min_ttl() const;
};

using ResolveCallback = std::function<void(Result<Resolution>)>;

struct ResolverOptions {
  // "192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:5353". Required.
  std::vector<std::string> servers;
  std::chrono::milliseconds timeout{2000};  // first try; c-ares doubles it per round
  int tries = 2;                            // rounds over the server list
  bool rotate = false;                      // spread queries over servers
  bool use_tcp = false;                     // TCP only (ARES_FLAG_USEVC)
  // Names resolved at once (two queries each); more wait in a queue. Bounds the bursts a
  // server (and our socket buffer) sees: a few hundred answers at once overflow a default
  // 208 KiB UDP receive buffer and turn into timeouts.
  size_t max_in_flight = 64;
  // SO_MARK of every socket (0: none). The default exempts amlfw's own queries from the DNS
  // redirect (dns.redirect, nftables and eBPF) which would otherwise send them to the proxy,
  // or nowhere while the daemon is down (`amlfw apply`). Needs CAP_NET_ADMIN; without it the
  // sockets go unmarked.
  uint32_t so_mark = kDnsProxyMark;
};

// Parses one server entry (see ResolverOptions::servers); default port 53.
struct ServerAddr {
  IpAddr addr;
  uint16_t port = 53;
};
Result<ServerAddr> parse_server(std::string_view s);

class Resolver {
 public:
  // `loop` must outlive the Resolver.
  static Result<std::unique_ptr<Resolver>> create(EventLoop& loop, const ResolverOptions& opts);
  // Cancels what is pending without calling its callbacks.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Replaces the server list. While names are being resolved (c-ares 1.18 cannot change
  // servers then) the list is validated now and applied once the resolver is idle.
  Status set_servers(const std::vector<std::string>& servers);
  // Starts resolving `name` (A and AAAA); `cb` runs once, later, from the loop.
  void resolve(std::string_view name, ResolveCallback cb);
  // Names whose callback has not run yet.
  size_t pending() const { return names_.size() + ready_.size(); }
  // Fails every pending resolution with "cancelled" (callbacks run from the loop).
  void cancel_all();

 private:
  struct Query;  // one ares_query (A or AAAA)
  struct Name {
    std::string name;
    ResolveCallback cb;
    int outstanding = 2;
    Resolution res;
    std::string a_error, aaaa_error;
    bool a_addrs = false, aaaa_addrs = false;
    bool started = false;
  };
  struct Ready {
    ResolveCallback cb;
    Result<Resolution> result;
  };

  Resolver(EventLoop& loop) : loop_(loop) {}
  Status init(const ResolverOptions& opts);
  static void sock_state_cb(void* data, int fd, int readable, int writable);
  static int on_socket(int fd, int type, void* data);  // c-ares made a socket (not yet connected): SO_MARK it
  static void query_cb(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void on_answer(uint64_t name_id, bool v6, int status, int timeouts, const unsigned char* abuf, int alen);
  void finish(uint64_t name_id);
  void start(uint64_t name_id);
  void pump();  // outside c-ares callbacks: applies deferred servers, starts queued names
  void process(int read_fd, int write_fd);
  void update_timer();
  void deliver();

  EventLoop& loop_;
  ares_channeldata* channel_ = nullptr;
  EventLoop::TimerId ares_timer_ = 0;
  EventLoop::TimerId deliver_timer_ = 0;
  std::unordered_map<int, uint32_t> socks_;  // c-ares socket -> interest
  std::unordered_map<uint64_t, Name> names_;
  std::vector<Ready> ready_;
  uint64_t next_id_ = 1;
  size_t max_in_flight_ = 64;
  uint32_t so_mark_ = 0;
  size_t in_flight_ = 0;         // names with queries in c-ares
  std::deque<uint64_t> waiting_;  // names not started yet
  std::vector<std::string> deferred_servers_;  // set_servers() while queries were in flight
  bool destroying_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Blocking convenience for `amlfw apply`: resolves every name concurrently on a private
// loop, within `deadline` overall. The outer error is for setup (bad server, no memory);
// the vector has one entry per name, in order; names still unanswered at the deadline get
// an error.
Result<std::vector<Result<Resolution>>> resolve_all(const std::vector<std::string>& names,
                                                     const ResolverOptions& opts,
                                                     std::chrono::milliseconds deadline);
Result<std::vector<Result<Resolution>>> resolve_all(const std::vector<std::string>& names,
                                                     const std::vector<std::string>& servers,
                                                     std::chrono::milliseconds deadline);

}  // namespace amlfw
