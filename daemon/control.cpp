// SPDX-License-Identifier: MIT
#include "daemon/control.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace amlfw {
namespace {

// The user's text inside an error: control characters replaced, long text cut.
std::string clean(std::string_view s, size_t max = 120) {
  std::string o;
  for (char c : s.substr(0, max)) o.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  if (s.size() > max) o += "...";
  return o;
}

Result<sockaddr_un> unix_address(const std::string& path, socklen_t* len) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun.sun_path)
    return usage_error("control socket path '" + clean(path) + "' is empty or longer than " +
                       std::to_string(sizeof sun.sun_path - 1) + " bytes (use a shorter paths.runtime_dir)");
  std::memcpy(sun.sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return sun;
}

}  // namespace

// ---- protocol ----------------------------------------------------------------------------

Result<ControlRequest> parse_control_request(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > kControlMaxRequest)
    return usage_error("request larger than " + std::to_string(kControlMaxRequest) + " bytes");
  if (line.find('\n') != std::string_view::npos) return usage_error("one request per line");
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return usage_error("request is not JSON (send one object per line, e.g. {\"cmd\":\"status\"})");
  if (!j.is_object()) return usage_error("request is not a JSON object (send e.g. {\"cmd\":\"status\"})");
  auto cmd = j.find("cmd");
  if (cmd == j.end() || !cmd->is_string())
    return usage_error("request has no \"cmd\" string (use status, explain or reload)");
  const std::string& name = cmd->get_ref<const std::string&>();
  ControlRequest r;
  if (name == "status") {
    r.cmd = ControlCmd::kStatus;
  } else if (name == "reload") {
    r.cmd = ControlCmd::kReload;
  } else if (name == "explain") {
    r.cmd = ControlCmd::kExplain;
    auto t = j.find("target");
    if (t == j.end() || !t->is_string() || t->get_ref<const std::string&>().empty())
      return usage_error("explain needs a \"target\" string (IP, IP:PORT, [IPv6]:PORT, HOST or HOST:PORT)");
    r.target = t->get<std::string>();
  } else {
    return usage_error("unknown cmd '" + clean(name) + "' (use status, explain or reload)");
  }
  for (const auto& [k, _] : j.items()) {
    if (k == "cmd" || (k == "target" && r.cmd == ControlCmd::kExplain)) continue;
    return usage_error("unknown key '" + clean(k) + "' in a " + name + " request");
  }
  return r;
}

std::string control_error_line(std::string_view message) {
  nlohmann::json j;
  j["ok"] = false;
  j["error"] = std::string(message);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string control_reply_line(nlohmann::json j) {
  if (!j.is_object()) {
    nlohmann::json o;
    o["ok"] = true;
    o["value"] = std::move(j);
    j = std::move(o);
  } else if (!j.contains("ok")) {
    j["ok"] = true;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string control_socket_path(const Config& c) {
  return c.paths.runtime_dir + "/" + std::string(kControlSocketName);
}

std::string control_socket_path_for(const std::string& config_path) {
  auto cfg = load_config(config_path);
  if (cfg.ok()) return control_socket_path(*cfg);
  Config dflt;
  std::string dir = dflt.paths.runtime_dir;
  try {
    const toml::table t = toml::parse_file(config_path);
    if (auto v = t["paths"]["runtime_dir"].value<std::string>(); v && !v->empty() && (*v)[0] == '/') dir = *v;
  } catch (const std::exception&) {
    // unparsable: the default runtime_dir
  }
  dflt.paths.runtime_dir = dir;
  return control_socket_path(dflt);
}

// ---- peers -------------------------------------------------------------------------------

Result<PeerCred> peer_credentials(int fd) {
  ucred uc{};
  socklen_t len = sizeof uc;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) return sys_error("SO_PEERCRED");
  PeerCred p;
  p.pid = uc.pid;
  p.uid = uc.uid;
  p.gid = uc.gid;
  std::vector<gid_t> groups(32);
  for (int attempt = 0; attempt < 4; ++attempt) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      p.groups = std::move(groups);
      return p;
    }
    if (errno != ERANGE) break;  // old kernel: primary group only
    groups.resize(std::max<size_t>(glen / sizeof(gid_t), groups.size() * 2));
  }
  return p;
}

bool peer_allowed(const PeerCred& p, std::optional<gid_t> group, uid_t self) {
  if (p.uid == 0 || p.uid == self) return true;
  if (!group) return false;
  return p.gid == *group || std::find(p.groups.begin(), p.groups.end(), *group) != p.groups.end();
}

Result<std::optional<gid_t>> lookup_group(const std::string& name) {
  if (name.empty()) return std::optional<gid_t>{};
  group gr{};
  group* out = nullptr;
  std::vector<char> buf(16384);
  int rc = 0;
  while ((rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &out)) == ERANGE && buf.size() < (1u << 22))
    buf.resize(buf.size() * 2);
  if (rc != 0) return sys_error("control.group '" + clean(name) + "': group lookup", rc);
  if (out == nullptr)
    return usage_error("control.group '" + clean(name) + "': no such group (create it with groupadd, or set group = \"\")");
  return std::optional<gid_t>(gr.gr_gid);
}

// ---- listening sockets -------------------------------------------------------------------

Result<Fd> listen_unix(const std::string& path, mode_t mode, std::optional<gid_t> group, bool* in_use) {
  if (in_use != nullptr) *in_use = false;
  socklen_t len = 0;
  auto sun = unix_address(path, &len);
  if (!sun.ok()) return sun.error();
  // mkdir -p of the parent (0755: the socket's own mode and group decide who connects).
  const std::string dir = path.substr(0, path.rfind('/'));
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/') continue;
    const std::string part = dir.substr(0, at);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("mkdir " + part);
  }

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return runtime_error(path + " exists and is not a socket (remove it)");
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!probe) return sys_error("socket");
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*sun), len) == 0) {
      if (in_use != nullptr) *in_use = true;
      return runtime_error(path + ": another amlfw daemon answers there (stop it first: one daemon per host)");
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return sys_error("remove the stale socket " + path);
  }

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket");
  const mode_t old = ::umask(0177);  // srw------- until chmod below
  const int rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*sun), len);
  const int err = errno;
  ::umask(old);
  if (rc != 0) return sys_error("bind " + path, err);
  if (group && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return sys_error("chown " + path, e);
  }
  if (::chmod(path.c_str(), mode) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return sys_error("chmod " + path, e);
  }
  if (::listen(fd.get(), 64) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return sys_error("listen " + path, e);
  }
  return fd;
}

Result<Fd> listen_tcp(const SocketAddress& a) {
  Fd fd(::socket(a.addr.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket");
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (a.addr.v6) {
    (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(a.port);
    a.addr.to_bytes(sin6.sin6_addr.s6_addr);
    rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
  } else {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(a.port);
    sin.sin_addr.s_addr = htonl(a.addr.v4value());
    rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
  }
  if (rc != 0) return sys_error("bind " + a.str());
  if (::listen(fd.get(), 16) != 0) return sys_error("listen " + a.str());
  return fd;
}

// ---- StreamServer ------------------------------------------------------------------------

size_t frame_line(std::string_view buf) {
  const auto nl = buf.find('\n');
  return nl == std::string_view::npos ? 0 : nl + 1;
}

size_t frame_http_head(std::string_view buf) {
  const auto a = buf.find("\r\n\r\n");
  const auto b = buf.find("\n\n");
  size_t end = 0;
  if (a != std::string_view::npos) end = a + 4;
  if (b != std::string_view::npos && (end == 0 || b + 2 < end)) end = b + 2;
  return end;
}

StreamServer::StreamServer(EventLoop& loop, Fd listener, Limits limits, Framer framer, Handler handler, Admit admit,
                           Canned canned)
    : loop_(loop),
      listener_(std::move(listener)),
      limits_(limits),
      framer_(std::move(framer)),
      handler_(std::move(handler)),
      admit_(std::move(admit)),
      canned_(std::move(canned)) {}

Result<std::unique_ptr<StreamServer>> StreamServer::create(EventLoop& loop, Fd listener, Limits limits, Framer framer,
                                                           Handler handler, Admit admit, Canned canned) {
  if (!listener) return runtime_error("stream server: no listening socket");
  std::unique_ptr<StreamServer> s(new StreamServer(loop, std::move(listener), limits, std::move(framer),
                                                   std::move(handler), std::move(admit), std::move(canned)));
  StreamServer* self = s.get();
  AMLFW_TRY(loop.add_fd(s->listener_.get(), kIoRead, [self](uint32_t) { self->on_accept(); }));
  return s;
}

StreamServer::~StreamServer() {
  for (auto& [fd, c] : clients_) {
    loop_.remove_fd(fd);
    if (c->timer != 0) loop_.remove_timer(c->timer);
  }
  clients_.clear();
  loop_.remove_fd(listener_.get());
  if (!unlink_path_.empty()) {
    struct stat st {};
    if (::lstat(unlink_path_.c_str(), &st) == 0 && st.st_ino == unlink_ino_ && st.st_dev == unlink_dev_)
      ::unlink(unlink_path_.c_str());
  }
}

void StreamServer::unlink_on_close(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  unlink_path_ = path;
  unlink_ino_ = st.st_ino;
  unlink_dev_ = st.st_dev;
}

void StreamServer::on_accept() {
  for (int i = 0; i < 64; ++i) {  // bounded per wake-up: other events get their turn
    Fd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN, or an error the next readiness will show again
    if (clients_.size() >= limits_.max_clients) {
      ++stats_.refused_busy;
      if (!canned_.busy.empty()) (void)!::send(fd.get(), canned_.busy.data(), canned_.busy.size(), MSG_NOSIGNAL);
      continue;  // closed by Fd
    }
    ++stats_.accepted;
    auto c = std::make_unique<Client>();
    const int raw = fd.get();
    c->fd = std::move(fd);
    auto cred = peer_credentials(raw);  // unix sockets; TCP peers have none
    if (cred.ok()) c->peer = *cred;
    if (admit_) {
      std::optional<Reply> refusal;
      if (!cred.ok()) refusal = Reply{control_error_line("peer credentials: " + cred.error().message), true};
      else refusal = admit_(c->peer);
      if (refusal) {
        ++stats_.refused_peer;
        c->out = std::move(refusal->data);
        c->closing = true;
      }
    }
    if (!loop_.add_fd(raw, kIoRead, [this, raw](uint32_t ev) { on_io(raw, ev); }).ok()) continue;
    c->timer = loop_.add_timer([this, raw] {
      ++stats_.timed_out;
      drop(raw);
    });
    loop_.arm_timer(c->timer, limits_.idle);
    Client& ref = *c;
    clients_.emplace(raw, std::move(c));
    if (ref.closing) flush(ref);
  }
}

void StreamServer::on_io(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  if ((events & kIoWrite) != 0) {
    flush(c);
    if (clients_.find(fd) == clients_.end()) return;
  }
  if ((events & (kIoRead | kIoHangup | kIoError)) != 0 && !c.closing) {
    char buf[4096];
    bool eof = false;
    // Read at most a request's worth (plus one chunk) before looking at it: a peer that
    // streams forever is cut at max_request, not buffered.
    while (c.in.size() <= limits_.max_request) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN && errno != EWOULDBLOCK) eof = true;
      break;
    }
    process(c);
    if (clients_.find(fd) == clients_.end()) return;
    if (eof) {
      c.closing = true;
      c.in.clear();
    }
    flush(c);
    return;
  }
  if ((events & (kIoHangup | kIoError)) != 0 && (events & kIoWrite) == 0) drop(fd);
}

void StreamServer::process(Client& c) {
  while (!c.closing) {
    const size_t n = framer_(c.in);
    if (n == 0 || n > limits_.max_request) {
      if (c.in.size() > limits_.max_request || n > limits_.max_request) {
        ++stats_.oversized;
        c.out += canned_.oversize;
        c.closing = true;
        c.in.clear();
      }
      return;
    }
    ++stats_.requests;
    Reply r = handler_(std::string_view(c.in).substr(0, n), c.peer);
    c.in.erase(0, n);
    c.out += r.data;
    if (r.close) c.closing = true;
    loop_.arm_timer(c.timer, limits_.idle);
    if (c.out.size() > limits_.max_backlog) {  // the peer does not read its replies
      c.out.clear();
      c.closing = true;
      c.in.clear();
    }
  }
}

void StreamServer::flush(Client& c) {
  const int fd = c.fd.get();
  while (!c.out.empty()) {
    const ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      (void)loop_.modify_fd(fd, c.closing ? kIoWrite : (kIoRead | kIoWrite));
      return;
    }
    drop(fd);  // EPIPE, ECONNRESET ...
    return;
  }
  if (c.closing) {
    drop(fd);
    return;
  }
  (void)loop_.modify_fd(fd, kIoRead);
}

void StreamServer::drop(int fd) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  loop_.remove_fd(fd);
  if (it->second->timer != 0) loop_.remove_timer(it->second->timer);
  clients_.erase(it);  // closes the descriptor
}

// ---- client ----------------------------------------------------------------------------------

Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                    std::chrono::milliseconds timeout) {
  socklen_t len = 0;
  auto sun = unix_address(socket_path, &len);
  if (!sun.ok()) return runtime_error(sun.error().message);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket");
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // also bounds connect()
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*sun), len) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR)
      return runtime_error("no amlfw daemon answers on " + socket_path + " (" + std::strerror(err) +
                           "; is amlfw run active? systemctl status amlfw)");
    if (err == EACCES || err == EPERM)
      return runtime_error(socket_path + ": permission denied (run as root, or as a member of the group set by "
                                         "[control] group)");
    if (err == EAGAIN || err == EINPROGRESS)
      return runtime_error(socket_path + ": the daemon did not accept the connection within " +
                           std::to_string(timeout.count() / 1000) + " s (busy, or starting up)");
    return sys_error("connect " + socket_path, err);
  }
  const std::string line = request.dump() + "\n";
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = ::send(fd.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE || errno == ECONNRESET) break;  // refused at once: its reply is already queued
      return sys_error("send to " + socket_path);
    }
    off += static_cast<size_t>(n);
  }
  std::string reply;
  constexpr size_t kMaxReply = size_t{64} << 20;
  char buf[16384];
  while (reply.find('\n') == std::string::npos) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return runtime_error(socket_path + ": the daemon did not answer within " +
                             std::to_string(timeout.count() / 1000) + " s (busy, or still starting up)");
      return sys_error("read from " + socket_path);
    }
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > kMaxReply) return runtime_error(socket_path + ": reply larger than 64 MiB");
  }
  if (reply.empty()) return runtime_error(socket_path + ": the daemon closed the connection without a reply");
  auto nl = reply.find('\n');
  if (nl != std::string::npos) reply.resize(nl);
  auto j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return runtime_error(socket_path + ": the reply is not a JSON object: '" + clean(reply, 80) + "'");
  return j;
}

}  // namespace amlfw
