// SPDX-License-Identifier: MIT
#include "daemon/resolver.h"

#include <ares.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>

namespace amlfw {
namespace {

constexpr int kClassIn = 1;
constexpr int kTypeA = 1;
constexpr int kTypeAaaa = 28;
constexpr int kMaxAddrs = 1024;  // per query; a UDP or TCP answer cannot realistically hold more

bool library_ready() {
  static const int rc = ares_library_init(ARES_LIB_INIT_ALL);
  return rc == ARES_SUCCESS;
}

std::string describe(int status, int timeouts) {
  switch (status) {
    case ARES_ESERVFAIL: return "server failure (SERVFAIL)";
    case ARES_EREFUSED: return "query refused (REFUSED)";
    case ARES_ENOTIMP: return "not implemented by the server (NOTIMP)";
    case ARES_EFORMERR: return "server could not parse the query (FORMERR)";
    case ARES_ETIMEOUT: return "timed out after " + std::to_string(timeouts) + " tries";
    // c-ares 1.18 ends a query with ECONNREFUSED when every server was skipped: each
    // refused the connection or answered SERVFAIL, REFUSED or NOTIMP.
    case ARES_ECONNREFUSED: return "no usable answer from any server (SERVFAIL, REFUSED or connection refused)";
    case ARES_EBADRESP: return "malformed answer";
    case ARES_ECANCELLED: return "cancelled";
    case ARES_EBADNAME: return "not a valid host name";
    case ARES_ENOMEM: return "out of memory";
    default: return ares_strerror(status);
  }
}

bool valid_name(std::string_view n) {
  if (!n.empty() && n.back() == '.') n.remove_suffix(1);
  if (n.empty() || n.size() > 253) return false;
  size_t label = 0;
  for (char c : n) {
    auto u = static_cast<unsigned char>(c);
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (u <= 0x20 || u >= 0x7f) return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

void add_addr(Resolution& r, const IpAddr& a, int ttl) {
  uint32_t t = ttl < 0 ? 0u : static_cast<uint32_t>(ttl);
  for (auto& x : r.addrs) {
    if (x.addr == a) {
      x.ttl = std::min(x.ttl, t);
      return;
    }
  }
  r.addrs.push_back(ResolvedAddr{a, t});
}

}  // namespace

uint32_t Resolution::min_ttl() const {
  if (addrs.empty()) return 0;
  uint32_t m = addrs.front().ttl;
  for (const auto& a : addrs) m = std::min(m, a.ttl);
  return m;
}

Result<ServerAddr> parse_server(std::string_view s) {
  auto bad = [&](const std::string& why) {
    return usage_error("dns server '" + std::string(s) + "': " + why +
                       " (use IP, IP:PORT or [IPv6]:PORT, e.g. 192.0.2.53:53)");
  };
  std::string_view host = s, port;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("unexpected text after ']'");
      port = rest.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    size_t colon = s.find(':');
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (port.empty()) return bad("empty port");
  }
  if (host.find('%') != std::string_view::npos) return bad("zone ids are not supported");
  auto ip = IpAddr::parse(host);
  if (!ip) return bad("not an IP address");
  ServerAddr out{*ip, 53};
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) return bad("bad port");
    out.port = static_cast<uint16_t>(v);
  }
  return out;
}

// ---- Resolver --------------------------------------------------------------------------------

struct Resolver::Query {
  Resolver* self = nullptr;
  uint64_t name_id = 0;
  bool v6 = false;
};

Result<std::unique_ptr<Resolver>> Resolver::create(EventLoop& loop, const ResolverOptions& opts) {
  std::unique_ptr<Resolver> r(new Resolver(loop));
  AMLFW_TRY(r->init(opts));
  return r;
}

Status Resolver::init(const ResolverOptions& opts) {
  if (!library_ready()) return runtime_error("dns resolver: c-ares library initialization failed");
  if (opts.tries < 1) return usage_error("dns resolver: tries must be at least 1");
  if (opts.timeout.count() < 1) return usage_error("dns resolver: timeout must be at least 1ms");
  if (opts.max_in_flight < 1) return usage_error("dns resolver: max_in_flight must be at least 1");
  max_in_flight_ = opts.max_in_flight;
  // Validate servers before creating anything.
  if (opts.servers.empty()) return usage_error("dns resolver: no DNS server given (set dns.upstreams)");
  for (const auto& s : opts.servers) AMLFW_TRY(parse_server(s));

  ares_options o{};
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_EDNSPSZ |
             (opts.rotate ? ARES_OPT_ROTATE : ARES_OPT_NOROTATE);
  o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS | (opts.use_tcp ? ARES_FLAG_USEVC : 0);
  o.timeout = static_cast<int>(std::min<int64_t>(opts.timeout.count(), 3600 * 1000));
  o.tries = opts.tries;
  o.ednspsz = 1232;  // the DNS flag day 2020 size: no IP fragmentation
  o.sock_state_cb = &Resolver::sock_state_cb;
  o.sock_state_cb_data = this;
  ares_channel ch = nullptr;
  int rc = ares_init_options(&ch, &o, mask);
  if (rc != ARES_SUCCESS) {
    if (ch) ares_destroy(ch);
    return runtime_error(std::string("dns resolver: ares_init_options: ") + ares_strerror(rc));
  }
  channel_ = ch;
  so_mark_ = opts.so_mark;
  // The configure callback runs before c-ares connects the socket (the plain socket callback
  // runs after): eBPF's connect4/6 decide at connect() and must already see the mark.
  if (so_mark_ != 0) ares_set_socket_configure_callback(channel_, &Resolver::on_socket, this);
  ares_timer_ = loop_.add_timer([this] { process(ARES_SOCKET_BAD, ARES_SOCKET_BAD); });
  deliver_timer_ = loop_.add_timer([this] { deliver(); });
  return set_servers(opts.servers);
}

int Resolver::on_socket(int fd, int /*type*/, void* data) {
  auto* self = static_cast<Resolver*>(data);
  (void)::setsockopt(fd, SOL_SOCKET, SO_MARK, &self->so_mark_, sizeof self->so_mark_);  // EPERM: unmarked
  return ARES_SUCCESS;
}

Resolver::~Resolver() {
  destroying_ = true;
  alive_.reset();
  if (channel_) ares_destroy(channel_);  // query callbacks see ARES_EDESTRUCTION; sockets leave the loop
  for (const auto& [fd, interest] : socks_) loop_.remove_fd(fd);
  if (ares_timer_) loop_.remove_timer(ares_timer_);
  if (deliver_timer_) loop_.remove_timer(deliver_timer_);
}

Status Resolver::set_servers(const std::vector<std::string>& servers) {
  if (servers.empty()) return usage_error("dns resolver: no DNS server given (set dns.upstreams)");
  std::vector<ares_addr_port_node> nodes(servers.size());
  for (size_t i = 0; i < servers.size(); ++i) {
    auto sa = parse_server(servers[i]);
    if (!sa) return std::move(sa).error();
    ares_addr_port_node& n = nodes[i];
    n.next = i + 1 < servers.size() ? &nodes[i + 1] : nullptr;
    uint8_t bytes[16];
    sa->addr.to_bytes(bytes);
    if (sa->addr.v6) {
      n.family = AF_INET6;
      std::memcpy(&n.addr.addr6, bytes, 16);
    } else {
      n.family = AF_INET;
      std::memcpy(&n.addr.addr4, bytes, 4);
    }
    n.udp_port = n.tcp_port = sa->port;
  }
  // c-ares 1.18 refuses (ARES_ENOTIMP) to change servers while queries are in flight:
  // keep the list and apply it when the channel is idle.
  if (in_flight_ > 0) {
    deferred_servers_ = servers;
    return {};
  }
  int rc = ares_set_servers_ports(channel_, nodes.data());
  if (rc != ARES_SUCCESS) return runtime_error(std::string("dns resolver: set servers: ") + ares_strerror(rc));
  deferred_servers_.clear();
  return {};
}

void Resolver::resolve(std::string_view name, ResolveCallback cb) {
  uint64_t id = next_id_++;
  Name& n = names_[id];
  n.name = std::string(name);
  n.cb = std::move(cb);
  n.res.name = n.name;
  if (!valid_name(name)) {
    n.outstanding = 0;
    n.a_error = n.aaaa_error = describe(ARES_EBADNAME, 0);
    finish(id);
    return;
  }
  waiting_.push_back(id);
  pump();
}

void Resolver::start(uint64_t id) {
  auto it = names_.find(id);
  if (it == names_.end()) return;
  it->second.started = true;
  ++in_flight_;
  std::string qname = it->second.name;  // the entry may go away inside a synchronous callback
  for (bool v6 : {false, true}) {
    auto* q = new Query{this, id, v6};
    // A synchronous failure calls query_cb right here, which frees q.
    ares_query(channel_, qname.c_str(), kClassIn, v6 ? kTypeAaaa : kTypeA, &Resolver::query_cb, q);
  }
}

void Resolver::pump() {
  if (destroying_) return;
  if (!deferred_servers_.empty() && in_flight_ == 0) {
    auto servers = std::move(deferred_servers_);
    deferred_servers_.clear();
    (void)set_servers(servers);  // validated when it was deferred
  }
  // New queries wait for a pending server change: they are meant for the new servers.
  while (deferred_servers_.empty() && in_flight_ < max_in_flight_ && !waiting_.empty()) {
    uint64_t id = waiting_.front();
    waiting_.pop_front();
    start(id);
  }
  update_timer();
}

void Resolver::cancel_all() {
  for (uint64_t id : waiting_) {
    auto it = names_.find(id);
    if (it == names_.end()) continue;
    it->second.outstanding = 0;
    it->second.a_error = it->second.aaaa_error = describe(ARES_ECANCELLED, 0);
    finish(id);
  }
  waiting_.clear();
  if (in_flight_ > 0) ares_cancel(channel_);
  pump();
}

void Resolver::sock_state_cb(void* data, int fd, int readable, int writable) {
  auto* self = static_cast<Resolver*>(data);
  uint32_t interest = (readable ? kIoRead : 0) | (writable ? kIoWrite : 0);
  if (interest == 0) {  // c-ares is closing the socket
    self->loop_.remove_fd(fd);
    self->socks_.erase(fd);
    return;
  }
  if (self->socks_.count(fd)) {
    (void)self->loop_.modify_fd(fd, interest);  // cannot fail for a registered fd
  } else {
    // On failure the query still ends through the ares timer (as a timeout).
    Status st = self->loop_.add_fd(fd, interest, [self, fd](uint32_t ev) {
      int r = (ev & (kIoRead | kIoError | kIoHangup)) ? fd : ARES_SOCKET_BAD;
      int w = (ev & kIoWrite) ? fd : ARES_SOCKET_BAD;
      self->process(r, w);
    });
    if (!st.ok()) return;
  }
  self->socks_[fd] = interest;
}

void Resolver::process(int read_fd, int write_fd) {
  ares_process_fd(channel_, read_fd, write_fd);
  pump();
}

void Resolver::update_timer() {
  if (destroying_) return;
  timeval tv{};
  if (ares_timeout(channel_, nullptr, &tv)) {
    auto d = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
    loop_.arm_timer(ares_timer_, d);
  } else {
    loop_.disarm_timer(ares_timer_);
  }
}

void Resolver::query_cb(void* arg, int status, int timeouts, unsigned char* abuf, int alen) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  if (status == ARES_EDESTRUCTION || q->self->destroying_) return;
  q->self->on_answer(q->name_id, q->v6, status, timeouts, abuf, alen);
}

void Resolver::on_answer(uint64_t name_id, bool v6, int status, int timeouts, const unsigned char* abuf,
                         int alen) {
  auto it = names_.find(name_id);
  if (it == names_.end()) return;
  Name& n = it->second;
  std::string& err = v6 ? n.aaaa_error : n.a_error;
  bool& got = v6 ? n.aaaa_addrs : n.a_addrs;
  if (status == ARES_SUCCESS) {
    int count = kMaxAddrs;
    int rc;
    if (v6) {
      std::vector<ares_addr6ttl> ttls(kMaxAddrs);
      rc = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls.data(), &count);
      if (rc == ARES_SUCCESS) {
        for (int i = 0; i < count; ++i)
          add_addr(n.res, IpAddr::from_bytes(true, ttls[i].ip6addr._S6_un._S6_u8), ttls[i].ttl);
      }
    } else {
      std::vector<ares_addrttl> ttls(kMaxAddrs);
      rc = ares_parse_a_reply(abuf, alen, nullptr, ttls.data(), &count);
      if (rc == ARES_SUCCESS) {
        for (int i = 0; i < count; ++i)
          add_addr(n.res, IpAddr::from_bytes(false, reinterpret_cast<const uint8_t*>(&ttls[i].ipaddr)), ttls[i].ttl);
      }
    }
    if (rc == ARES_SUCCESS) {
      got = count > 0;
    } else if (rc != ARES_ENODATA) {  // ENODATA: NOERROR without records of this type
      err = describe(rc == ARES_EBADRESP ? ARES_EBADRESP : rc, timeouts);
    }
  } else if (status == ARES_ENOTFOUND) {
    n.res.nxdomain = true;
  } else if (status != ARES_ENODATA) {
    err = describe(status, timeouts);
  }
  if (--n.outstanding == 0) finish(name_id);
}

void Resolver::finish(uint64_t name_id) {
  auto it = names_.find(name_id);
  if (it == names_.end()) return;
  Name n = std::move(it->second);
  names_.erase(it);
  if (n.started) --in_flight_;
  std::stable_partition(n.res.addrs.begin(), n.res.addrs.end(), [](const ResolvedAddr& a) { return !a.addr.v6; });

  std::optional<Error> error;
  if (!n.a_error.empty() || !n.aaaa_error.empty()) {
    std::string what;
    if (!n.a_error.empty()) what = "A: " + n.a_error;
    if (!n.aaaa_error.empty()) what += (what.empty() ? "" : "; ") + std::string("AAAA: ") + n.aaaa_error;
    bool partial_ok = (n.a_error.empty() && n.a_addrs) || (n.aaaa_error.empty() && n.aaaa_addrs);
    if (partial_ok) {
      n.res.complete = false;
      n.res.partial_error = what;
    } else {
      error = runtime_error("resolve " + n.name + ": " + what);
    }
  }
  if (error) {
    ready_.push_back(Ready{std::move(n.cb), Result<Resolution>(std::move(*error))});
  } else {
    ready_.push_back(Ready{std::move(n.cb), Result<Resolution>(std::move(n.res))});
  }
  if (!destroying_) loop_.arm_timer(deliver_timer_, EventLoop::Duration::zero());
}

void Resolver::deliver() {
  std::vector<Ready> batch = std::move(ready_);
  ready_.clear();
  std::weak_ptr<bool> alive = alive_;
  for (auto& r : batch) {
    if (r.cb) r.cb(std::move(r.result));
    if (alive.expired()) return;  // the callback destroyed this Resolver
  }
}

// ---- resolve_all ---------------------------------------------------------------------------

Result<std::vector<Result<Resolution>>> resolve_all(const std::vector<std::string>& names,
                                                     const ResolverOptions& opts,
                                                     std::chrono::milliseconds deadline) {
  auto loop_r = EventLoop::create();
  if (!loop_r) return std::move(loop_r).error();
  auto loop = std::move(loop_r).value();
  auto res_r = Resolver::create(*loop, opts);
  if (!res_r) return std::move(res_r).error();
  auto resolver = std::move(res_r).value();

  std::vector<std::optional<Result<Resolution>>> out(names.size());
  size_t done = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    resolver->resolve(names[i], [&, i](Result<Resolution> r) {
      out[i].emplace(std::move(r));
      if (++done == names.size()) loop->stop();
    });
  }
  auto timer = loop->call_after(deadline, [&] { loop->stop(); });
  if (!names.empty()) {
    Status st = loop->run();
    if (!st) return std::move(st).error();
  }
  loop->remove_timer(timer);

  std::vector<Result<Resolution>> results;
  results.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    if (out[i]) {
      results.push_back(std::move(*out[i]));
    } else {
      results.push_back(runtime_error("resolve " + names[i] + ": no answer within " +
                                      std::to_string(deadline.count()) + "ms"));
    }
  }
  resolver.reset();  // before the loop
  return results;
}

Result<std::vector<Result<Resolution>>> resolve_all(const std::vector<std::string>& names,
                                                     const std::vector<std::string>& servers,
                                                     std::chrono::milliseconds deadline) {
  ResolverOptions opts;
  opts.servers = servers;
  return resolve_all(names, opts, deadline);
}

}  // namespace amlfw
