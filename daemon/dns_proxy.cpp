// SPDX-License-Identifier: MIT
#include "daemon/dns_proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/log.h"

namespace amlfw {
namespace {

constexpr int kUdpReadBatch = 64;       // datagrams read per wakeup before yielding
constexpr int kRcvBuf = 4 << 20;        // listener receive buffer (floods)
constexpr size_t kMaxTcpFrame = 65535;

socklen_t to_sockaddr(const SocketAddress& a, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof *ss);
  if (a.addr.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a.port);
    a.addr.to_bytes(s6->sin6_addr.s6_addr);
    return sizeof(sockaddr_in6);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(a.port);
  a.addr.to_bytes(reinterpret_cast<uint8_t*>(&s4->sin_addr.s_addr));
  return sizeof(sockaddr_in);
}

uint16_t port_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  const rlim_t want = std::min<rlim_t>(rl.rlim_max, 65536);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

Result<std::unique_ptr<DnsProxy>> DnsProxy::create(EventLoop& loop, DnsLearner& learner, DnsProxyOptions opts) {
  if (opts.listen.empty()) return usage_error("dns proxy: no listen address");
  std::unique_ptr<DnsProxy> p(new DnsProxy(loop, learner, std::move(opts)));
  p->buf_.resize(dns::kMaxUdpMessage);
  p->up_buf_.resize(dns::kMaxUdpMessage);
  raise_fd_limit();
  AMLFW_TRY(p->bind_all());
  return p;
}

DnsProxy::~DnsProxy() {
  *alive_ = false;
  for (auto& [seq, p] : pending_) {
    if (p.sock) loop_.remove_fd(p.sock.get());
  }
  if (deadline_timer_ != 0) loop_.remove_timer(deadline_timer_);
  for (auto& [id, c] : clients_) {
    loop_.remove_fd(c.fd.get());
    loop_.remove_timer(c.idle_timer);
  }
  for (auto& l : listeners_) {
    if (l.udp) loop_.remove_fd(l.udp.get());
    if (l.tcp) loop_.remove_fd(l.tcp.get());
  }
}

Status DnsProxy::bind_all() {
  for (const auto& a : opts_.listen) {
    const std::string where = "dns proxy: listen " + a.str();
    const int family = a.addr.v6 ? AF_INET6 : AF_INET;
    Listener l;
    l.v6 = a.addr.v6;
    SocketAddress got = a;
    // Port 0 (tests): UDP picks a free port and TCP takes the same one; when that one is
    // busy for TCP, try another.
    for (int attempt = 0;; ++attempt) {
      const int one = 1;
      sockaddr_storage ss{};
      socklen_t len = to_sockaddr(a, &ss);
      l.udp = Fd(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!l.udp) return sys_error(where + ": udp socket");
      (void)::setsockopt(l.udp.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (l.v6) (void)::setsockopt(l.udp.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      (void)::setsockopt(l.udp.get(), SOL_SOCKET, SO_RCVBUF, &kRcvBuf, sizeof kRcvBuf);
      if (::bind(l.udp.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
        return sys_error(where + "/udp (is another DNS server on it? change dns.listen)");
      got.port = port_of(l.udp.get());
      len = to_sockaddr(got, &ss);
      l.tcp = Fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!l.tcp) return sys_error(where + ": tcp socket");
      (void)::setsockopt(l.tcp.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (l.v6) (void)::setsockopt(l.tcp.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      if (::bind(l.tcp.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0) break;
      if (a.port != 0 || errno != EADDRINUSE || attempt >= 16)
        return sys_error(where + "/tcp (is another DNS server on it? change dns.listen)");
    }
    if (::listen(l.tcp.get(), 128) != 0) return sys_error(where + "/tcp: listen");
    const int ufd = l.udp.get(), tfd = l.tcp.get();
    AMLFW_TRY(loop_.add_fd(ufd, kIoRead, [this, ufd](uint32_t) { on_udp_readable(ufd); }));
    Status s = loop_.add_fd(tfd, kIoRead, [this, tfd](uint32_t) { on_tcp_accept(tfd); });
    if (!s.ok()) {
      loop_.remove_fd(ufd);
      return s;
    }
    bound_.push_back(got);
    listeners_.push_back(std::move(l));
  }
  return {};
}

void DnsProxy::set_upstreams(std::vector<SocketAddress> ups) {
  opts_.upstreams = std::move(ups);
  preferred_ = 0;
}

size_t DnsProxy::max_attempts() const {
  if (opts_.attempts > 0) return opts_.attempts;
  return std::max<size_t>(2, opts_.upstreams.size());
}

uint16_t DnsProxy::random16() {
  if (rnd_left_ < 2) {
    ssize_t n = ::getrandom(rnd_, sizeof rnd_, 0);
    if (n < 2) {
      // getrandom does not fail for small requests once the pool is initialized; keep going
      // with something unpredictable enough rather than stopping DNS.
      for (auto& b : rnd_) b = static_cast<uint8_t>(std::chrono::steady_clock::now().time_since_epoch().count() * 2654435761u >> 13);
      n = sizeof rnd_;
    }
    rnd_left_ = static_cast<size_t>(n);
  }
  rnd_left_ -= 2;
  return dns::read16(rnd_ + rnd_left_);
}

// ---- clients -------------------------------------------------------------------------------

void DnsProxy::on_udp_readable(int fd) {
  for (int i = 0; i < kUdpReadBatch; ++i) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    ssize_t n = ::recvfrom(fd, buf_.data(), buf_.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
    if (n < 0) return;  // EAGAIN, or an ICMP error of an earlier reply: nothing to do
    ++stats_.queries_udp;
    on_query(std::span<const uint8_t>(buf_.data(), static_cast<size_t>(n)), false, fd, &peer, plen, 0);
  }
}

void DnsProxy::on_tcp_accept(int lfd) {
  for (;;) {
    Fd fd(::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;
    if (clients_.size() >= opts_.max_tcp_clients) {
      ++stats_.tcp_refused;
      continue;  // closed: the bound holds
    }
    const uint64_t id = next_client_++;
    const int cfd = fd.get();
    Client c;
    c.id = id;
    c.fd = std::move(fd);
    c.interest = kIoRead;
    if (!loop_.add_fd(cfd, kIoRead, [this, id](uint32_t ev) { on_client_event(id, ev); }).ok()) continue;
    c.idle_timer = loop_.add_timer([this, id] {
      auto it = clients_.find(id);
      if (it == clients_.end()) return;
      if (it->second.inflight > 0) {
        loop_.arm_timer(it->second.idle_timer, opts_.tcp_idle);
        return;
      }
      ++stats_.tcp_idle_closed;
      close_client(id);
    });
    loop_.arm_timer(c.idle_timer, opts_.tcp_idle);
    client_by_fd_[cfd] = id;
    clients_.emplace(id, std::move(c));
  }
}

void DnsProxy::close_client(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  loop_.remove_fd(it->second.fd.get());
  loop_.remove_timer(it->second.idle_timer);
  client_by_fd_.erase(it->second.fd.get());
  clients_.erase(it);
}

void DnsProxy::on_client_event(uint64_t id, uint32_t events) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  if (events & kIoWrite) {
    client_write(c);
    it = clients_.find(id);
    if (it == clients_.end()) return;
  }
  if (events & kIoRead) {
    uint8_t tmp[16384];
    // Never hold more than one full frame beyond what is being processed.
    while (!c.eof && c.in.size() - c.in_off < 2 + kMaxTcpFrame + sizeof tmp) {
      ssize_t n = ::read(c.fd.get(), tmp, sizeof tmp);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        close_client(id);
        return;
      }
      if (n == 0) {
        c.eof = true;
        break;
      }
      c.in.insert(c.in.end(), tmp, tmp + n);
    }
    loop_.arm_timer(c.idle_timer, opts_.tcp_idle);
    client_process(id);
    return;
  }
  if (events & (kIoError | kIoHangup)) close_client(id);
}

void DnsProxy::client_process(uint64_t id) {
  for (;;) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (c.processing) return;
    const size_t have = c.in.size() - c.in_off;
    if (c.inflight >= opts_.max_tcp_inflight || have < 2) break;
    const size_t len = dns::read16(c.in.data() + c.in_off);
    if (have < 2 + len) break;
    std::vector<uint8_t> msg(c.in.begin() + static_cast<std::ptrdiff_t>(c.in_off + 2),
                             c.in.begin() + static_cast<std::ptrdiff_t>(c.in_off + 2 + len));
    c.in_off += 2 + len;
    c.processing = true;
    ++stats_.queries_tcp;
    on_query(msg, true, -1, nullptr, 0, id);
    auto again = clients_.find(id);
    if (again == clients_.end()) return;
    again->second.processing = false;
  }
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = it->second;
  if (c.in_off > 0 && c.in_off == c.in.size()) {
    c.in.clear();
    c.in_off = 0;
  } else if (c.in_off > 65536) {
    c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(c.in_off));
    c.in_off = 0;
  }
  if (c.eof && c.inflight == 0 && c.out_off == c.out.size()) {
    close_client(id);
    return;
  }
  client_update_interest(c);
}

void DnsProxy::client_update_interest(Client& c) {
  uint32_t want = 0;
  if (!c.eof && c.inflight < opts_.max_tcp_inflight && c.in.size() - c.in_off < 2 + kMaxTcpFrame) want |= kIoRead;
  if (c.out_off < c.out.size()) want |= kIoWrite;
  if (want != c.interest) {
    c.interest = want;
    (void)loop_.modify_fd(c.fd.get(), want);
  }
}

void DnsProxy::client_write(Client& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      close_client(c.id);
      return;
    }
    c.out_off += static_cast<size_t>(n);
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
    if (c.eof && c.inflight == 0 && c.in.size() - c.in_off < 2) {
      close_client(c.id);
      return;
    }
  }
  client_update_interest(c);
}

void DnsProxy::client_send(uint64_t id, std::span<const uint8_t> msg) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;  // gone meanwhile
  Client& c = it->second;
  if (c.out.size() - c.out_off + msg.size() + 2 > opts_.max_tcp_outbuf) {
    close_client(id);  // it does not read its answers
    return;
  }
  const uint8_t len[2] = {static_cast<uint8_t>(msg.size() >> 8), static_cast<uint8_t>(msg.size())};
  c.out.insert(c.out.end(), len, len + 2);
  c.out.insert(c.out.end(), msg.begin(), msg.end());
  client_write(c);
}

void DnsProxy::send_direct(bool tcp, int udp_fd, const sockaddr_storage* peer, socklen_t peer_len, uint64_t client,
                           std::span<const uint8_t> msg) {
  if (tcp) {
    client_send(client, msg);
    return;
  }
  (void)::sendto(udp_fd, msg.data(), msg.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(peer), peer_len);
}

void DnsProxy::reply(const Pending& p, std::span<const uint8_t> msg) {
  send_direct(p.tcp, p.udp_fd, &p.peer, p.peer_len, p.client, msg);
}

void DnsProxy::reply_error(const Pending& p, dns::Rcode rcode) {
  std::vector<uint8_t> q = p.query;
  dns::write16(q.data(), p.client_id);
  reply(p, dns::error_reply(q, &p.parsed, rcode));
}

// ---- queries ---------------------------------------------------------------------------------

void DnsProxy::on_query(std::span<const uint8_t> msg, bool tcp, int udp_fd, const sockaddr_storage* peer,
                        socklen_t peer_len, uint64_t client) {
  Pending p;
  switch (dns::parse_query(msg, &p.parsed)) {
    case dns::QueryStatus::kOk: break;
    case dns::QueryStatus::kShort:
    case dns::QueryStatus::kResponse:
      ++stats_.dropped;
      if (tcp) close_client(client);  // the stream cannot be trusted any more
      return;
    case dns::QueryStatus::kNotQuery:
      ++stats_.formerr;
      send_direct(tcp, udp_fd, peer, peer_len, client, dns::error_reply(msg, nullptr, dns::kNotImp));
      return;
    case dns::QueryStatus::kFormErr:
      ++stats_.formerr;
      send_direct(tcp, udp_fd, peer, peer_len, client, dns::error_reply(msg, nullptr, dns::kFormErr));
      return;
  }
  if (opts_.upstreams.empty()) {
    ++stats_.servfail_upstream;
    send_direct(tcp, udp_fd, peer, peer_len, client, dns::error_reply(msg, &p.parsed, dns::kServFail));
    return;
  }
  while (pending_.size() >= opts_.max_pending && !pending_.empty()) {
    ++stats_.pending_overflow;
    const uint64_t oldest = pending_.begin()->first;
    reply_error(pending_.begin()->second, dns::kServFail);
    finish(oldest);
  }
  const uint64_t seq = next_seq_++;
  p.seq = seq;
  p.tcp = tcp;
  p.udp_fd = udp_fd;
  if (peer != nullptr) {
    std::memcpy(&p.peer, peer, std::min<size_t>(peer_len, sizeof p.peer));
    p.peer_len = peer_len;
  }
  p.client = client;
  p.client_id = p.parsed.header.id;
  p.query.assign(msg.begin(), msg.end());
  p.upstream = preferred_ % opts_.upstreams.size();
  pending_.emplace(seq, std::move(p));
  if (tcp) {
    auto it = clients_.find(client);
    if (it != clients_.end()) ++it->second.inflight;
  }
  start_attempt(seq);
}

void DnsProxy::start_attempt(uint64_t seq) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  if (p.sock) {
    loop_.remove_fd(p.sock.get());
    p.sock.reset();
  }
  if (opts_.upstreams.empty()) {
    ++stats_.servfail_upstream;
    reply_error(p, dns::kServFail);
    finish(seq);
    return;
  }
  ++p.attempts;
  const SocketAddress& up = opts_.upstreams[p.upstream % opts_.upstreams.size()];
  p.up_id = random16();
  dns::write16(p.query.data(), p.up_id);
  p.in.clear();
  p.out_off = 0;
  p.connected = false;
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(up, &ss);
  Fd fd(::socket(up.addr.v6 ? AF_INET6 : AF_INET, (p.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    attempt_failed(seq, "socket");
    return;
  }
  if (opts_.so_mark != 0) (void)::setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &opts_.so_mark, sizeof opts_.so_mark);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    attempt_failed(seq, "connect");
    return;
  }
  if (!p.tcp && ::send(fd.get(), p.query.data(), p.query.size(), MSG_DONTWAIT) < 0) {
    attempt_failed(seq, "send");
    return;
  }
  const int raw = fd.get();
  if (!loop_.add_fd(raw, p.tcp ? (kIoRead | kIoWrite) : kIoRead, [this, seq](uint32_t ev) { on_upstream_event(seq, ev); })
           .ok()) {
    attempt_failed(seq, "epoll");
    return;
  }
  p.sock = std::move(fd);
  const auto at = EventLoop::now() + opts_.upstream_timeout;
  deadlines_.push_back(Deadline{at, seq, p.attempts});
  if (deadline_timer_ == 0) deadline_timer_ = loop_.add_timer([this] { on_deadlines(); });
  if (!loop_.timer_armed(deadline_timer_)) loop_.arm_timer(deadline_timer_, opts_.upstream_timeout);
}

void DnsProxy::on_deadlines() {
  const auto now = EventLoop::now();
  while (!deadlines_.empty() && deadlines_.front().at <= now) {
    const Deadline d = deadlines_.front();
    deadlines_.pop_front();
    auto it = pending_.find(d.seq);
    if (it != pending_.end() && it->second.attempts == d.attempt) attempt_failed(d.seq, "timed out");
  }
  if (!deadlines_.empty()) loop_.arm_timer(deadline_timer_, deadlines_.front().at - now);
}

void DnsProxy::attempt_failed(uint64_t seq, const char* why) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  LOG_DEBUG("dns proxy: %s: upstream %s: %s", p.parsed.question.text.c_str(),
            opts_.upstreams.empty() ? "-" : opts_.upstreams[p.upstream % opts_.upstreams.size()].str().c_str(), why);
  if (p.sock) {
    loop_.remove_fd(p.sock.get());
    p.sock.reset();
  }
  if (p.attempts >= max_attempts() || opts_.upstreams.empty()) {
    ++stats_.servfail_upstream;
    reply_error(p, dns::kServFail);
    finish(seq);
    return;
  }
  ++stats_.upstream_failovers;
  const size_t n = opts_.upstreams.size();
  if (preferred_ % n == p.upstream % n) preferred_ = (p.upstream + 1) % n;
  p.upstream = (p.upstream + 1) % n;
  start_attempt(seq);
}

void DnsProxy::on_upstream_event(uint64_t seq, uint32_t events) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  const int fd = p.sock.get();
  if (!p.tcp) {
    for (int i = 0; i < 8; ++i) {
      ssize_t n = ::recv(fd, up_buf_.data(), up_buf_.size(), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        attempt_failed(seq, errno == ECONNREFUSED ? "connection refused" : "receive error");
        return;
      }
      const size_t attempts = p.attempts;
      if (on_upstream_answer(seq, std::span<uint8_t>(up_buf_.data(), static_cast<size_t>(n)))) return;
      // ignored: still ours?
      auto again = pending_.find(seq);
      if (again == pending_.end() || again->second.attempts != attempts) return;
    }
    return;
  }
  // TCP: connect, write [len][query], read [len][answer].
  if (!p.connected) {
    if (!(events & (kIoWrite | kIoError | kIoHangup))) return;
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
      attempt_failed(seq, "connection refused");
      return;
    }
    p.connected = true;
  }
  const size_t total = 2 + p.query.size();
  if (p.out_off < total) {
    uint8_t len[2] = {static_cast<uint8_t>(p.query.size() >> 8), static_cast<uint8_t>(p.query.size())};
    iovec iov[2];
    int cnt = 0;
    if (p.out_off < 2) iov[cnt++] = {len + p.out_off, 2 - p.out_off};
    const size_t qoff = p.out_off < 2 ? 0 : p.out_off - 2;
    iov[cnt++] = {p.query.data() + qoff, p.query.size() - qoff};
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = static_cast<size_t>(cnt);
    ssize_t n = ::sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      attempt_failed(seq, "send");
      return;
    }
    p.out_off += static_cast<size_t>(n);
    if (p.out_off == total) (void)loop_.modify_fd(fd, kIoRead);
    return;
  }
  if (!(events & (kIoRead | kIoError | kIoHangup))) return;
  for (;;) {
    uint8_t tmp[16384];
    const size_t want = p.in.size() < 2 ? 2 - p.in.size() : 2 + dns::read16(p.in.data()) - p.in.size();
    if (want == 0) break;
    ssize_t n = ::read(fd, tmp, std::min(want, sizeof tmp));
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      attempt_failed(seq, "receive error");
      return;
    }
    if (n == 0) {
      attempt_failed(seq, "connection closed before the answer");
      return;
    }
    p.in.insert(p.in.end(), tmp, tmp + n);
  }
  std::vector<uint8_t> msg(p.in.begin() + 2, p.in.end());
  if (!on_upstream_answer(seq, msg)) attempt_failed(seq, "answer for another question");
}

bool DnsProxy::on_upstream_answer(uint64_t seq, std::span<uint8_t> msg) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return true;
  Pending& p = it->second;
  const dns::Question& q = p.parsed.question;
  std::vector<std::string> groups;
  if (q.matchable) groups = learner_.groups_for(q.text);
  dns::Answer ans;
  switch (dns::parse_response(msg, p.up_id, q, !groups.empty(), &ans)) {
    case dns::ResponseStatus::kOk: break;
    case dns::ResponseStatus::kWrongQuestion:
      ++stats_.stray_answers;
      return false;
    case dns::ResponseStatus::kMalformed:
      if (!groups.empty()) ++stats_.servfail_bad_answer;
      attempt_failed(seq, "malformed answer");
      return true;
  }
  const uint8_t rcode = ans.header.rcode();
  if ((rcode == dns::kServFail || rcode == dns::kRefused || rcode == dns::kNotImp) && p.attempts < max_attempts()) {
    attempt_failed(seq, rcode == dns::kServFail ? "SERVFAIL" : rcode == dns::kRefused ? "REFUSED" : "NOTIMP");
    return true;
  }
  if (!groups.empty() && !ans.addrs.empty()) {
    Status s = learner_.learn(q.text, groups, ans.addrs);
    if (!s.ok()) {
      ++stats_.servfail_learn;
      LOG_ERR("dns proxy: %s: %s; the client gets SERVFAIL", q.text.c_str(), s.error().message.c_str());
      reply_error(p, dns::kServFail);
      finish(seq);
      return true;
    }
    ++stats_.learned_answers;
  }
  dns::write16(msg.data(), p.client_id);
  reply(p, msg);
  ++stats_.answers;
  if (!opts_.upstreams.empty()) preferred_ = p.upstream % opts_.upstreams.size();
  finish(seq);
  return true;
}

void DnsProxy::finish(uint64_t seq) {
  auto it = pending_.find(seq);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  if (p.sock) loop_.remove_fd(p.sock.get());
  const bool tcp = p.tcp;
  const uint64_t client = p.client;
  pending_.erase(it);
  if (!tcp) return;
  auto c = clients_.find(client);
  if (c == clients_.end()) return;
  if (c->second.inflight > 0) --c->second.inflight;
  client_process(client);
}

}  // namespace amlfw
