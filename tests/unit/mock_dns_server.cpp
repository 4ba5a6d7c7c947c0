// SPDX-License-Identifier: MIT
#include "tests/unit/mock_dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace amlfw::test {
namespace {

constexpr size_t kHeader = 12;
constexpr uint16_t kTypeOpt = 41;

std::string normalize(std::string_view name) {
  std::string s(name);
  if (!s.empty() && s.back() == '.') s.pop_back();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void put32(std::vector<uint8_t>& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v));
}
uint16_t get16(const std::vector<uint8_t>& b, size_t at) {
  return static_cast<uint16_t>((b[at] << 8) | b[at + 1]);
}

// The question of a query: name (lowercase), type, class, and where it ends.
// std::nullopt for anything malformed (length-checked at every read).
struct Parsed {
  DnsQuestion q;
  size_t question_end = 0;
  size_t udp_limit = 512;
};
std::optional<Parsed> parse_query(const std::vector<uint8_t>& m) {
  if (m.size() < kHeader) return std::nullopt;
  if (m[2] & 0x80) return std::nullopt;  // a response, not a query
  if (get16(m, 4) != 1) return std::nullopt;
  Parsed p;
  p.q.id = get16(m, 0);
  size_t at = kHeader;
  std::string name;
  for (;;) {
    if (at >= m.size()) return std::nullopt;
    uint8_t len = m[at++];
    if (len == 0) break;
    if (len > 63 || at + len > m.size()) return std::nullopt;  // no compression in queries
    if (!name.empty()) name += '.';
    name.append(reinterpret_cast<const char*>(&m[at]), len);
    at += len;
    if (name.size() > 253) return std::nullopt;
  }
  if (at + 4 > m.size()) return std::nullopt;
  p.q.name = normalize(name);
  p.q.type = get16(m, at);
  at += 4;
  p.question_end = at;
  // EDNS: an OPT record right after the question (queries carry no answers).
  if (get16(m, 6) == 0 && get16(m, 8) == 0 && get16(m, 10) >= 1 && at + 11 <= m.size() && m[at] == 0 &&
      get16(m, at + 1) == kTypeOpt) {
    p.udp_limit = std::max<size_t>(512, get16(m, at + 3));
  }
  return p;
}

bool send_all(int fd, const uint8_t* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 1000) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool send_tcp(int fd, const std::vector<uint8_t>& msg) {
  std::vector<uint8_t> framed;
  put16(framed, static_cast<uint16_t>(msg.size()));
  framed.insert(framed.end(), msg.begin(), msg.end());
  return send_all(fd, framed.data(), framed.size());
}

}  // namespace

// ---- wire helpers ------------------------------------------------------------------------

std::vector<uint8_t> MockDnsServer::encode_name(std::string_view name) {
  std::vector<uint8_t> out;
  std::string n(name);
  if (!n.empty() && n.back() == '.') n.pop_back();
  size_t start = 0;
  while (start < n.size()) {
    size_t dot = n.find('.', start);
    if (dot == std::string::npos) dot = n.size();
    size_t len = std::min<size_t>(dot - start, 63);
    out.push_back(static_cast<uint8_t>(len));
    out.insert(out.end(), n.begin() + static_cast<long>(start), n.begin() + static_cast<long>(start + len));
    start = dot + 1;
  }
  out.push_back(0);
  return out;
}

std::vector<uint8_t> MockDnsServer::make_response(const std::vector<uint8_t>& query, Rcode rcode,
                                                  const std::vector<MockRecord>& answers, bool truncated) {
  std::vector<uint8_t> out;
  auto parsed = parse_query(query);
  uint16_t id = query.size() >= 2 ? get16(query, 0) : 0;
  uint8_t rd = query.size() >= 3 ? (query[2] & 0x01) : 0;
  put16(out, id);
  out.push_back(static_cast<uint8_t>(0x80 | rd | (truncated ? 0x02 : 0)));  // QR, opcode 0, TC, RD
  out.push_back(static_cast<uint8_t>(0x80 | static_cast<uint8_t>(rcode)));  // RA, rcode
  put16(out, parsed ? 1 : 0);
  put16(out, static_cast<uint16_t>(truncated ? 0 : answers.size()));
  put16(out, 0);
  put16(out, 0);
  if (parsed) out.insert(out.end(), query.begin() + kHeader, query.begin() + static_cast<long>(parsed->question_end));
  if (truncated) return out;
  for (const auto& rr : answers) {
    auto owner = encode_name(rr.name);
    out.insert(out.end(), owner.begin(), owner.end());
    put16(out, rr.type);
    put16(out, 1);  // IN
    put32(out, rr.ttl);
    put16(out, static_cast<uint16_t>(rr.rdata.size()));
    out.insert(out.end(), rr.rdata.begin(), rr.rdata.end());
  }
  return out;
}

// ---- lifecycle -------------------------------------------------------------------------------

Result<std::unique_ptr<MockDnsServer>> MockDnsServer::start(const std::string& bind_ip) {
  std::unique_ptr<MockDnsServer> s(new MockDnsServer());
  s->ip_ = bind_ip;
  sockaddr_storage ss{};
  socklen_t sslen = 0;
  in_addr a4{};
  in6_addr a6{};
  bool v6 = false;
  if (inet_pton(AF_INET, bind_ip.c_str(), &a4) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_addr = a4;
    sslen = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, bind_ip.c_str(), &a6) == 1) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = a6;
    sslen = sizeof(sockaddr_in6);
    v6 = true;
  } else {
    return runtime_error("mock dns: bad bind address '" + bind_ip + "' (use an IP literal)");
  }
  int family = v6 ? AF_INET6 : AF_INET;

  // A free UDP port that is also free for TCP (a few tries).
  for (int attempt = 0; attempt < 20 && !s->tcp_; ++attempt) {
    s->udp_.reset(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s->udp_) return sys_error("mock dns: socket(udp)");
    // Room for bursts of queries (tests send hundreds at once); FORCE needs root.
    int rcvbuf = 4 << 20;
    if (setsockopt(s->udp_.get(), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
      setsockopt(s->udp_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    auto addr = ss;
    if (::bind(s->udp_.get(), reinterpret_cast<sockaddr*>(&addr), sslen) != 0) return sys_error("mock dns: bind(udp)");
    socklen_t len = sslen;
    if (::getsockname(s->udp_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      return sys_error("mock dns: getsockname");
    uint16_t port = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    Fd tcp(::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!tcp) return sys_error("mock dns: socket(tcp)");
    int one = 1;
    setsockopt(tcp.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(tcp.get(), reinterpret_cast<sockaddr*>(&addr), sslen) == 0 && ::listen(tcp.get(), 64) == 0) {
      s->tcp_ = std::move(tcp);
      s->port_ = port;
    }
  }
  if (!s->tcp_) return runtime_error("mock dns: no port free for both UDP and TCP");
  s->wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->wake_) return sys_error("mock dns: eventfd");
  s->thread_ = std::thread([p = s.get()] { p->serve(); });
  return s;
}

MockDnsServer::~MockDnsServer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t n = ::write(wake_.get(), &one, sizeof one);
    (void)n;
    thread_.join();
  }
}

std::string MockDnsServer::endpoint() const {
  if (ip_.find(':') != std::string::npos) return "[" + ip_ + "]:" + std::to_string(port_);
  return ip_ + ":" + std::to_string(port_);
}

// ---- script ------------------------------------------------------------------------------------

bool MockDnsServer::add_a(std::string_view name, std::string_view ipv4, uint32_t ttl) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(ipv4).c_str(), &a) != 1) return false;
  const auto* b = reinterpret_cast<const uint8_t*>(&a);
  add_record(MockRecord{std::string(name), kTypeA, ttl, std::vector<uint8_t>(b, b + 4)});
  return true;
}

bool MockDnsServer::add_aaaa(std::string_view name, std::string_view ipv6, uint32_t ttl) {
  in6_addr a{};
  if (inet_pton(AF_INET6, std::string(ipv6).c_str(), &a) != 1) return false;
  const auto* b = reinterpret_cast<const uint8_t*>(&a);
  add_record(MockRecord{std::string(name), kTypeAaaa, ttl, std::vector<uint8_t>(b, b + 16)});
  return true;
}

bool MockDnsServer::add_cname(std::string_view name, std::string_view target, uint32_t ttl) {
  if (target.empty()) return false;
  add_record(MockRecord{std::string(name), kTypeCname, ttl, encode_name(target)});
  return true;
}

void MockDnsServer::add_record(MockRecord rr) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = normalize(rr.name);
  records_[key].push_back(std::move(rr));
}

void MockDnsServer::set_rcode(std::string_view name, uint16_t type, Rcode rcode) {
  std::lock_guard<std::mutex> lock(mu_);
  behaviours_[{normalize(name), type}].rcode = rcode;
}
void MockDnsServer::set_drop(std::string_view name, uint16_t type, bool drop) {
  std::lock_guard<std::mutex> lock(mu_);
  behaviours_[{normalize(name), type}].drop = drop;
}
void MockDnsServer::set_delay(std::string_view name, uint16_t type, std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  behaviours_[{normalize(name), type}].delay = delay;
}
void MockDnsServer::set_truncate(std::string_view name, uint16_t type, bool truncate) {
  std::lock_guard<std::mutex> lock(mu_);
  behaviours_[{normalize(name), type}].truncate = truncate;
}
void MockDnsServer::set_handler(Handler h) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_ = std::move(h);
}
void MockDnsServer::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  records_.clear();
  behaviours_.clear();
  handler_ = nullptr;
  log_.clear();
}

// ---- observation -----------------------------------------------------------------------------

size_t MockDnsServer::query_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_.size();
}
size_t MockDnsServer::query_count(std::string_view name, uint16_t type) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string n = normalize(name);
  return static_cast<size_t>(std::count_if(log_.begin(), log_.end(), [&](const DnsQuestion& q) {
    return q.name == n && (type == kAnyType || q.type == type);
  }));
}
size_t MockDnsServer::tcp_query_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(std::count_if(log_.begin(), log_.end(), [](const DnsQuestion& q) { return q.tcp; }));
}
std::vector<DnsQuestion> MockDnsServer::queries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}
bool MockDnsServer::wait_for_queries(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return log_.size() >= n; });
}

// ---- serving ------------------------------------------------------------------------------------

MockDnsServer::Behaviour MockDnsServer::behaviour_locked(const std::string& name, uint16_t type) const {
  Behaviour b;
  if (auto it = behaviours_.find({name, kAnyType}); it != behaviours_.end()) b = it->second;
  if (auto it = behaviours_.find({name, type}); it != behaviours_.end()) {
    const Behaviour& t = it->second;
    if (t.rcode) b.rcode = t.rcode;
    b.drop = b.drop || t.drop;
    b.truncate = b.truncate || t.truncate;
    if (t.delay.count() > 0) b.delay = t.delay;
  }
  return b;
}

std::vector<uint8_t> MockDnsServer::answer(const std::vector<uint8_t>& query, bool tcp, size_t udp_limit,
                                           std::chrono::milliseconds* delay) {
  *delay = std::chrono::milliseconds(0);
  auto parsed = parse_query(query);
  if (!parsed) {
    if (query.size() < kHeader || (query[2] & 0x80)) return {};
    return make_response(query, Rcode::kFormErr, {});
  }
  DnsQuestion q = parsed->q;
  q.tcp = tcp;
  Handler handler;
  Behaviour b;
  std::vector<MockRecord> answers;
  Rcode rcode = Rcode::kNoError;
  {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(q);
    cv_.notify_all();
    handler = handler_;
    b = behaviour_locked(q.name, q.type);
    if (!handler) {
      std::string cur = q.name;
      for (int depth = 0; depth < 32; ++depth) {
        auto it = records_.find(cur);
        if (it == records_.end()) {
          rcode = Rcode::kNxDomain;  // of the last name in the chain (RFC 6604)
          break;
        }
        bool found = false;
        const MockRecord* cname = nullptr;
        for (const auto& rr : it->second) {
          if (rr.type == q.type) {
            MockRecord copy = rr;
            copy.name = cur;
            answers.push_back(std::move(copy));
            found = true;
          } else if (rr.type == kTypeCname && !cname) {
            cname = &rr;
          }
        }
        if (found || !cname || q.type == kTypeCname) break;
        MockRecord copy = *cname;
        copy.name = cur;
        answers.push_back(copy);
        // Decode the target (encoded by encode_name: plain labels).
        std::string target;
        for (size_t at = 0; at < cname->rdata.size() && cname->rdata[at] != 0;) {
          uint8_t len = cname->rdata[at++];
          if (at + len > cname->rdata.size()) break;
          if (!target.empty()) target += '.';
          target.append(reinterpret_cast<const char*>(&cname->rdata[at]), len);
          at += len;
        }
        cur = normalize(target);
      }
    }
  }
  if (handler) {
    if (auto custom = handler(q, query)) return *custom;
  }
  if (b.drop) return {};
  *delay = b.delay;
  if (b.rcode) return make_response(query, *b.rcode, {});
  if (b.truncate && !tcp) return make_response(query, rcode, answers, true);
  auto reply = make_response(query, rcode, answers);
  if (!tcp && reply.size() > udp_limit) return make_response(query, rcode, answers, true);
  return reply;
}

void MockDnsServer::on_udp() {
  for (;;) {
    std::vector<uint8_t> buf(65536);
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    ssize_t n = ::recvfrom(udp_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&peer), &plen);
    if (n < 0) return;  // EAGAIN
    buf.resize(static_cast<size_t>(n));
    auto parsed = parse_query(buf);
    std::chrono::milliseconds delay{};
    auto reply = answer(buf, false, parsed ? parsed->udp_limit : 512, &delay);
    if (reply.empty()) continue;
    if (delay.count() > 0) {
      Delayed d;
      d.due = std::chrono::steady_clock::now() + delay;
      d.peer.assign(reinterpret_cast<uint8_t*>(&peer), reinterpret_cast<uint8_t*>(&peer) + plen);
      d.msg = std::move(reply);
      delayed_.push_back(std::move(d));
      continue;
    }
    ::sendto(udp_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), plen);
  }
}

void MockDnsServer::on_tcp_accept() {
  for (;;) {
    int fd = ::accept4(tcp_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    Conn c;
    c.fd.reset(fd);
    c.id = next_conn_++;
    conns_.emplace(fd, std::move(c));
  }
}

bool MockDnsServer::on_tcp_readable(Conn& c) {
  uint8_t buf[4096];
  for (;;) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    c.in.insert(c.in.end(), buf, buf + n);
  }
  while (c.in.size() >= 2) {
    size_t len = (static_cast<size_t>(c.in[0]) << 8) | c.in[1];
    if (c.in.size() < 2 + len) break;
    std::vector<uint8_t> msg(c.in.begin() + 2, c.in.begin() + 2 + static_cast<long>(len));
    c.in.erase(c.in.begin(), c.in.begin() + 2 + static_cast<long>(len));
    std::chrono::milliseconds delay{};
    auto reply = answer(msg, true, 65535, &delay);
    if (reply.empty()) continue;
    if (delay.count() > 0) {
      Delayed d;
      d.due = std::chrono::steady_clock::now() + delay;
      d.tcp = true;
      d.conn = c.id;
      d.msg = std::move(reply);
      delayed_.push_back(std::move(d));
      continue;
    }
    if (!send_tcp(c.fd.get(), reply)) return false;
  }
  return true;
}

void MockDnsServer::serve() {
  for (;;) {
    std::vector<pollfd> pfds;
    pfds.push_back({wake_.get(), POLLIN, 0});
    pfds.push_back({udp_.get(), POLLIN, 0});
    pfds.push_back({tcp_.get(), POLLIN, 0});
    for (const auto& [fd, c] : conns_) pfds.push_back({fd, POLLIN, 0});

    int timeout = -1;
    auto now = std::chrono::steady_clock::now();
    for (const auto& d : delayed_) {
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(d.due - now).count();
      int t = ms < 0 ? 0 : static_cast<int>(ms);
      if (timeout < 0 || t < timeout) timeout = t;
    }
    int n = ::poll(pfds.data(), pfds.size(), timeout);
    if (n < 0 && errno != EINTR) return;
    if (n > 0) {
      if (pfds[0].revents) return;  // stop
      if (pfds[1].revents & POLLIN) on_udp();
      if (pfds[2].revents & POLLIN) on_tcp_accept();
      for (size_t i = 3; i < pfds.size(); ++i) {
        if (!pfds[i].revents) continue;
        auto it = conns_.find(pfds[i].fd);
        if (it == conns_.end()) continue;
        if (!on_tcp_readable(it->second)) conns_.erase(it);
      }
    }
    // Send what is due.
    now = std::chrono::steady_clock::now();
    std::vector<Delayed> keep;
    for (auto& d : delayed_) {
      if (d.due > now) {
        keep.push_back(std::move(d));
        continue;
      }
      if (!d.tcp) {
        ::sendto(udp_.get(), d.msg.data(), d.msg.size(), 0, reinterpret_cast<const sockaddr*>(d.peer.data()),
                 static_cast<socklen_t>(d.peer.size()));
        continue;
      }
      for (auto& [fd, c] : conns_) {
        if (c.id == d.conn) {
          send_tcp(fd, d.msg);
          break;
        }
      }
    }
    delayed_ = std::move(keep);
  }
}

}  // namespace amlfw::test
