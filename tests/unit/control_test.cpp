// SPDX-License-Identifier: MIT
// The control socket: request parsing, the bounded StreamServer on a real EventLoop and a
// real unix socket (oversized and malformed requests, too many clients, idle peers), the
// peer credential check with a forked child that drops to uid 65534, the listener's
// one-daemon-per-host rule, and the [control] / [metrics] configuration keys.
#include "daemon/control.h"

#include "daemon/metrics.h"
#include "daemon/state.h"
#include "tests/unit/ci_skip.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace amlfw {
namespace {

using namespace std::chrono_literals;

// ---- protocol ----------------------------------------------------------------------------

TEST(ControlProtocol, ParsesTheThreeRequests) {
  auto r = parse_control_request("{\"cmd\":\"status\"}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->cmd, ControlCmd::kStatus);
  r = parse_control_request("{\"cmd\":\"reload\"}\r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->cmd, ControlCmd::kReload);
  r = parse_control_request(" { \"target\" : \"[2001:db8::1]:443/udp\", \"cmd\" : \"explain\" } ");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->cmd, ControlCmd::kExplain);
  EXPECT_EQ(r->target, "[2001:db8::1]:443/udp");
}

TEST(ControlProtocol, RefusesBadRequestsWithOneLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not JSON"},
      {"status", "not JSON"},
      {"{\"cmd\":\"status\"", "not JSON"},
      {"[\"status\"]", "not a JSON object"},
      {"\"status\"", "not a JSON object"},
      {"{}", "no \"cmd\""},
      {"{\"cmd\":7}", "no \"cmd\""},
      {"{\"cmd\":\"stauts\"}", "unknown cmd 'stauts'"},
      {"{\"cmd\":\"flush\"}", "unknown cmd 'flush'"},
      {"{\"cmd\":\"explain\"}", "explain needs a \"target\""},
      {"{\"cmd\":\"explain\",\"target\":\"\"}", "explain needs a \"target\""},
      {"{\"cmd\":\"explain\",\"target\":443}", "explain needs a \"target\""},
      {"{\"cmd\":\"status\",\"verbose\":true}", "unknown key 'verbose'"},
      {"{\"cmd\":\"status\"}\n{\"cmd\":\"status\"}", "one request per line"},
      {"{\"cmd\":\"bad\\u0001\\u0000name\"}", "unknown cmd 'bad??name'"},
      {"{\"cmd\":\"bad\x01name\"}", "not JSON"},
      {std::string(5000, ' ') + "{\"cmd\":\"status\"}", "larger than 4096"},
      {std::string(3000, '[') + std::string(3000, ']'), "larger than 4096"},
      {std::string(2000, '[') + std::string(2000, ']'), "not a JSON object"},
  };
  for (const auto& [line, want] : cases) {
    auto r = parse_control_request(line);
    ASSERT_FALSE(r.ok()) << line.substr(0, 60);
    EXPECT_EQ(r.error().code, Exit::kUsage);
    EXPECT_NE(r.error().message.find(want), std::string::npos) << line.substr(0, 60) << " -> " << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
    // The reply built from it is one line of JSON.
    const std::string reply = control_error_line(r.error().message);
    ASSERT_EQ(reply.back(), '\n');
    EXPECT_EQ(reply.find('\n'), reply.size() - 1);
    auto j = nlohmann::json::parse(reply);
    EXPECT_EQ(j["ok"], false);
  }
}

TEST(ControlProtocol, ReplyLines) {
  auto j = nlohmann::json::parse(control_reply_line({{"mode", "enforce"}, {"why", "a\nb"}}));
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["why"], "a\nb");
  EXPECT_EQ(nlohmann::json::parse(control_reply_line({{"ok", false}}))["ok"], false);
  // Invalid UTF-8 in a message never breaks the line.
  const std::string line = control_error_line("bad \xff\xfe bytes");
  EXPECT_TRUE(nlohmann::json::accept(line));
}

TEST(ControlProtocol, Framing) {
  EXPECT_EQ(frame_line("abc"), 0u);
  EXPECT_EQ(frame_line("abc\ndef\n"), 4u);
  EXPECT_EQ(frame_http_head("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0u);
  EXPECT_EQ(frame_http_head("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nbody"), 34u);
  EXPECT_EQ(frame_http_head("GET / HTTP/1.0\n\n"), 16u);
}

// ---- peers -------------------------------------------------------------------------------

TEST(ControlPeers, WhoMayTalk) {
  PeerCred root;
  root.uid = 0;
  EXPECT_TRUE(peer_allowed(root, std::nullopt, 0));
  PeerCred nobody;
  nobody.uid = 65534;
  nobody.gid = 65534;
  EXPECT_FALSE(peer_allowed(nobody, std::nullopt, 0));
  EXPECT_FALSE(peer_allowed(nobody, gid_t{4242}, 0));
  EXPECT_TRUE(peer_allowed(nobody, std::nullopt, 65534));  // the daemon's own uid
  PeerCred member = nobody;
  member.groups = {100, 4242};
  EXPECT_TRUE(peer_allowed(member, gid_t{4242}, 0));
  PeerCred primary = nobody;
  primary.gid = 4242;
  EXPECT_TRUE(peer_allowed(primary, gid_t{4242}, 0));
}

TEST(ControlPeers, GroupLookup) {
  auto none = lookup_group("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  auto root = lookup_group("root");
  ASSERT_TRUE(root.ok()) << root.error().message;
  ASSERT_TRUE(*root);
  EXPECT_EQ(**root, 0u);
  auto missing = lookup_group("amlfw-no-such-group");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no such group"), std::string::npos) << missing.error().message;
}

// ---- a server on a real loop ---------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/amlfw-ctl.XXXXXX";
    path_ = ::mkdtemp(tmpl);
    ::chmod(path_.c_str(), 0755);  // a dropped-privilege child must reach the socket
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Answers {"cmd":...} requests with {"ok":true,"cmd":...,"uid":peer uid}.
StreamServer::Reply echo_handler(std::string_view line, const PeerCred& peer) {
  auto r = parse_control_request(line);
  if (!r.ok()) return {control_error_line(r.error().message), false};
  nlohmann::json j;
  j["cmd"] = static_cast<int>(r->cmd);
  j["uid"] = peer.uid;
  return {control_reply_line(j), false};
}

struct Server {
  explicit Server(StreamServer::Limits lim = {}, StreamServer::Admit admit = nullptr, mode_t mode = 0660,
                  std::optional<gid_t> group = std::nullopt) {
    path = dir.path() + "/run/control.sock";  // run/ is created by listen_unix
    auto l = EventLoop::create();
    EXPECT_TRUE(l.ok());
    loop = std::move(*l);
    auto fd = listen_unix(path, mode, group);
    EXPECT_TRUE(fd.ok()) << fd.error().message;
    StreamServer::Canned canned;
    canned.oversize = control_error_line("request larger than 4096 bytes");
    canned.busy = control_error_line("too many control connections");
    auto s = StreamServer::create(*loop, std::move(*fd), lim, frame_line, echo_handler, std::move(admit), canned);
    EXPECT_TRUE(s.ok());
    srv = std::move(*s);
    srv->unlink_on_close(path);
  }
  // Runs the loop until `done` or 5 s.
  template <class F>
  bool run_until(F done, std::chrono::milliseconds limit = 5000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > end) return false;
      EXPECT_TRUE(loop->run_once(10ms).ok());
    }
    return true;
  }
  // Runs `client` on a thread while the loop serves it.
  template <class F>
  void serve(F client) {
    std::atomic<bool> done{false};
    std::thread t([&] {
      client();
      done = true;
    });
    EXPECT_TRUE(run_until([&] { return done.load(); }, 10000ms));
    t.join();
  }

  TempDir dir;
  std::string path;
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<StreamServer> srv;
};

// A raw client: connects, sends `data`, reads until EOF or `timeout`.
struct Raw {
  Fd fd;
  explicit Raw(const std::string& path) {
    fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    connected = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0;
    timeval tv{2, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  bool send_all(std::string_view d) {
    while (!d.empty()) {
      ssize_t n = ::send(fd.get(), d.data(), d.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      d.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Reads one line (or up to EOF / timeout).
  std::string line() {
    std::string out;
    char c;
    while (::recv(fd.get(), &c, 1, 0) == 1) {
      out.push_back(c);
      if (c == '\n') break;
    }
    return out;
  }
  bool at_eof() {
    char c;
    return ::recv(fd.get(), &c, 1, 0) == 0;
  }
  bool connected = false;
};

TEST(ControlServer, AnswersRequestsAndKeepsTheConnection) {
  Server s;
  struct stat st {};
  ASSERT_EQ(::stat(s.path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  std::string a, b, c;
  s.serve([&] {
    Raw r(s.path);
    r.send_all("{\"cmd\":\"status\"}\n{\"cmd\":\"nope\"}\n");
    a = r.line();
    b = r.line();
    r.send_all("{\"cmd\":\"reload\"}\n");
    c = r.line();
  });
  EXPECT_EQ(nlohmann::json::parse(a)["cmd"], 0);
  EXPECT_EQ(nlohmann::json::parse(a)["uid"], ::getuid());
  EXPECT_NE(b.find("unknown cmd 'nope'"), std::string::npos) << b;
  EXPECT_EQ(nlohmann::json::parse(c)["cmd"], 2);
  EXPECT_EQ(s.srv->stats().requests, 3u);
}

TEST(ControlServer, ControlCallClient) {
  Server s;
  Result<nlohmann::json> reply = runtime_error("not run");
  s.serve([&] { reply = control_call(s.path, {{"cmd", "explain"}, {"target", "pypi.org"}}, 2000ms); });
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ((*reply)["ok"], true);
  EXPECT_EQ((*reply)["cmd"], 1);

  auto none = control_call(s.dir.path() + "/nothing.sock", {{"cmd", "status"}}, 500ms);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Exit::kRuntime);
  EXPECT_NE(none.error().message.find("no amlfw daemon answers on"), std::string::npos) << none.error().message;

  // A server that never answers: the client gives up at its timeout.
  auto quiet = listen_unix(s.dir.path() + "/quiet.sock", 0600, std::nullopt);
  ASSERT_TRUE(quiet.ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = control_call(s.dir.path() + "/quiet.sock", {{"cmd", "status"}}, 300ms);
  ASSERT_FALSE(slow.ok());
  EXPECT_NE(slow.error().message.find("did not answer"), std::string::npos) << slow.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(ControlServer, OversizedRequestGetsAnErrorAndIsClosed) {
  for (bool with_newline : {false, true}) {
    Server s;
    std::string reply;
    bool eof = false;
    s.serve([&] {
      Raw r(s.path);
      std::string big = "{\"cmd\":\"explain\",\"target\":\"" + std::string(6000, 'a') + "\"}";
      if (with_newline) big += "\n";
      r.send_all(big);
      reply = r.line();
      eof = r.at_eof();
    });
    EXPECT_NE(reply.find("larger than 4096"), std::string::npos) << with_newline << ": " << reply;
    EXPECT_TRUE(eof) << "the connection must be closed after an oversized request";
    EXPECT_EQ(s.srv->stats().oversized, 1u);
    EXPECT_EQ(s.srv->stats().requests, 0u);
    EXPECT_TRUE(s.run_until([&] { return s.srv->clients() == 0; }));
  }
}

TEST(ControlServer, ExactlyTheLimitIsServed) {
  Server s;
  // 4095 bytes of request plus the newline: a request of 4096 bytes is accepted.
  std::string req = "{\"cmd\":\"status\"}";
  req += std::string(4095 - req.size(), ' ') + "\n";
  ASSERT_EQ(req.size(), 4096u);
  std::string reply;
  s.serve([&] {
    Raw r(s.path);
    r.send_all(req);
    reply = r.line();
  });
  EXPECT_EQ(nlohmann::json::parse(reply)["ok"], true) << reply;
}

TEST(ControlServer, TooManyClientsAreTurnedAway) {
  StreamServer::Limits lim;
  lim.max_clients = 2;
  Server s(lim);
  std::vector<std::unique_ptr<Raw>> held;
  for (int i = 0; i < 2; ++i) held.push_back(std::make_unique<Raw>(s.path));
  ASSERT_TRUE(s.run_until([&] { return s.srv->clients() == 2; }));
  std::string third;
  bool eof = false;
  s.serve([&] {
    Raw r(s.path);
    third = r.line();
    eof = r.at_eof();
  });
  EXPECT_NE(third.find("too many control connections"), std::string::npos) << third;
  EXPECT_TRUE(eof);
  EXPECT_EQ(s.srv->stats().refused_busy, 1u);
  held.clear();  // closing them frees the slots
  ASSERT_TRUE(s.run_until([&] { return s.srv->clients() == 0; }));
  std::string ok;
  s.serve([&] {
    Raw r(s.path);
    r.send_all("{\"cmd\":\"status\"}\n");
    ok = r.line();
  });
  EXPECT_EQ(nlohmann::json::parse(ok)["ok"], true);
}

TEST(ControlServer, IdlePeersAreClosed) {
  StreamServer::Limits lim;
  lim.idle = 150ms;
  Server s(lim);
  Raw r(s.path);
  r.send_all("{\"cmd\":");  // half a request, then silence
  ASSERT_TRUE(s.run_until([&] { return s.srv->stats().accepted == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(s.run_until([&] { return s.srv->clients() == 0; }, 3000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_EQ(s.srv->stats().timed_out, 1u);
  EXPECT_TRUE(r.at_eof());
}

TEST(ControlServer, PeerThatHalfClosesStillGetsItsReply) {
  Server s;
  std::string reply;
  s.serve([&] {
    Raw r(s.path);
    r.send_all("{\"cmd\":\"status\"}\n");
    ::shutdown(r.fd.get(), SHUT_WR);
    reply = r.line();
  });
  EXPECT_EQ(nlohmann::json::parse(reply)["ok"], true);
}

// Forks a child that drops to uid/gid 65534 (with `extra_group` as its only supplementary
// group, if any) and runs `child`; the loop serves while it runs. Returns its exit status.
template <class F>
int as_nobody(Server& s, std::optional<gid_t> extra_group, F child) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const gid_t g = extra_group.value_or(65534);
    if (::setgroups(extra_group ? 1 : 0, &g) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(90);
    if (::getuid() != 65534) ::_exit(91);
    ::_exit(child());
  }
  int status = -1;
  EXPECT_TRUE(s.run_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, 10000ms));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST(ControlServer, PeerCredentialsRefuseOtherUsers) {
  if (::geteuid() != 0) {
    AMLFW_SKIP_OR_FAIL_IN_CI("needs root (setuid to 65534 in a child)");
  }
  const uid_t self = ::geteuid();
  const gid_t kGroup = 4242;
  auto admit = [self, kGroup](const PeerCred& p) -> std::optional<StreamServer::Reply> {
    if (peer_allowed(p, kGroup, self)) return std::nullopt;
    return StreamServer::Reply{control_error_line("permission denied: uid " + std::to_string(p.uid)), true};
  };
  // 0666 so that the file mode lets the child in: SO_PEERCRED has to refuse it.
  Server s({}, admit, 0666);
  int rc = as_nobody(s, std::nullopt, [&] {
    auto r = control_call(s.path, {{"cmd", "status"}}, 2000ms);
    if (!r.ok()) return 2;
    if ((*r)["ok"] != false) return 3;
    return (*r)["error"].get<std::string>() == "permission denied: uid 65534" ? 0 : 4;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(s.srv->stats().refused_peer, 1u);
  EXPECT_EQ(s.srv->stats().requests, 0u);

  // A member of the group (supplementary, seen through SO_PEERGROUPS) is let in.
  rc = as_nobody(s, kGroup, [&] {
    auto r = control_call(s.path, {{"cmd", "status"}}, 2000ms);
    if (!r.ok()) return 2;
    return (*r)["ok"] == true && (*r)["uid"] == 65534 ? 0 : 3;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(s.srv->stats().requests, 1u);
}

TEST(ControlServer, FileModeKeepsOtherUsersOut) {
  if (::geteuid() != 0) {
    AMLFW_SKIP_OR_FAIL_IN_CI("needs root (setuid to 65534 in a child)");
  }
  Server s({}, nullptr, 0660, gid_t{4242});
  struct stat st {};
  ASSERT_EQ(::stat(s.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4242u);
  EXPECT_EQ(st.st_uid, 0u);
  int rc = as_nobody(s, std::nullopt, [&] {
    auto r = control_call(s.path, {{"cmd", "status"}}, 2000ms);
    if (r.ok()) return 2;
    return r.error().message.find("permission denied") != std::string::npos ? 0 : 3;
  });
  EXPECT_EQ(rc, 0);
  rc = as_nobody(s, gid_t{4242}, [&] {  // the group's members get through the file mode
    auto r = control_call(s.path, {{"cmd", "status"}}, 2000ms);
    return r.ok() && (*r)["ok"] == true ? 0 : 2;
  });
  EXPECT_EQ(rc, 0);
}

// ---- the listener --------------------------------------------------------------------------

TEST(ControlListener, OneDaemonPerSocketAndStaleSocketsReplaced) {
  TempDir d;
  const std::string path = d.path() + "/control.sock";
  auto first = listen_unix(path, 0660, std::nullopt);
  ASSERT_TRUE(first.ok()) << first.error().message;
  bool in_use = false;
  auto second = listen_unix(path, 0660, std::nullopt, &in_use);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(in_use);
  EXPECT_NE(second.error().message.find("another amlfw daemon answers there"), std::string::npos);
  first->reset();  // the socket file stays behind, like after kill -9
  auto third = listen_unix(path, 0660, std::nullopt, &in_use);
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_FALSE(in_use);

  const std::string file = d.path() + "/not-a-socket";
  { std::FILE* f = std::fopen(file.c_str(), "w"); std::fclose(f); }
  auto refused = listen_unix(file, 0660, std::nullopt);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("is not a socket"), std::string::npos);

  auto too_long = listen_unix("/" + std::string(200, 'x') + "/control.sock", 0660, std::nullopt);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("longer than"), std::string::npos);
}

TEST(ControlListener, UnlinkedAtCloseOnlyWhenStillOurs) {
  Server s;
  const std::string path = s.path;
  s.srv.reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0);

  Server t;
  // Someone else's socket took the path: ours must not remove it.
  ASSERT_EQ(::unlink(t.path.c_str()), 0);
  auto other = listen_unix(t.path, 0600, std::nullopt);
  ASSERT_TRUE(other.ok());
  t.srv.reset();
  EXPECT_EQ(::access(t.path.c_str(), F_OK), 0);
}

// ---- configuration keys ------------------------------------------------------------------

TEST(ControlConfig, GroupAndMetricsKeys) {
  auto c = parse_config("[control]\ngroup = \"amlfw-ops\"\n[metrics]\nlisten = \"127.0.0.1:9469\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->control.group, "amlfw-ops");
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:9469");
  EXPECT_FALSE(c->metrics.allow_remote);
  EXPECT_EQ(c->source_text, "[control]\ngroup = \"amlfw-ops\"\n[metrics]\nlisten = \"127.0.0.1:9469\"\n");

  c = parse_config("[metrics]\nlisten = \"[::1]:9469\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;

  auto d = parse_config("", "t.toml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->control.group, "");

  c = parse_config("[metrics]\nlisten = \"192.0.2.1:9469\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Exit::kUsage);
  EXPECT_EQ(c.error().message.rfind("t.toml:2:10: metrics.listen: '192.0.2.1:9469' is not a loopback address", 0),
            0u)
      << c.error().message;
  EXPECT_NE(c.error().message.find("allow_remote = true"), std::string::npos);

  c = parse_config("[metrics]\nlisten = \"0.0.0.0:9469\"\nallow_remote = true\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c->metrics.allow_remote);

  c = parse_config("[control]\ngroup = \"bad group\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message.rfind("t.toml:2:9: control.group: 'bad group' is not a group name", 0), 0u)
      << c.error().message;
  c = parse_config("[control]\ngroup = \"-x\"\n", "t.toml");
  EXPECT_FALSE(c.ok());
  c = parse_config("[control]\ngroup = \"" + std::string(33, 'a') + "\"\n", "t.toml");
  EXPECT_FALSE(c.ok());
  c = parse_config("[control]\ngroop = \"x\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("did you mean 'group'"), std::string::npos) << c.error().message;
  c = parse_config("group = \"x\"\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("[control]"), std::string::npos) << c.error().message;
}

// ---- the fuzzer's seed corpus, replayed -----------------------------------------------------

std::string corpus(const std::string& name) {
  std::ifstream f(std::string(AMLFW_FIXTURES) + "/../fuzz/corpus/control/" + name, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_FALSE(s.empty()) << name;
  return s.empty() ? s : s.substr(1);  // the first byte picks the reader
}

TEST(ControlFuzzCorpus, SeedsReadAsDocumented) {
  for (const char* ok : {"status", "explain", "reload"}) {
    auto r = parse_control_request(corpus(ok));
    EXPECT_TRUE(r.ok()) << ok << ": " << r.error().message;
  }
  for (const char* bad : {"bad_json", "unknown_cmd"}) {
    auto r = parse_control_request(corpus(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
  EXPECT_EQ(http_metrics_response(corpus("http_get"), "x\n").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(http_metrics_response(corpus("http_bad"), "x\n").rfind("HTTP/1.1 400", 0), 0u);
  // The state seeds are written by a Python encoder following docs/operations.md: the
  // format as documented is the format as read.
  auto p = decode_policy_state(corpus("policy_state"), "seed");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->generation, 3u);
  EXPECT_EQ(p->tags.change_number, 375u);
  ASSERT_EQ(p->tags.tags.size(), 1u);
  EXPECT_TRUE(p->tags.tags[0].prefixes.contains(*IpAddr::parse("198.51.100.17")));
  EXPECT_TRUE(p->tags.tags[0].prefixes.contains(*IpAddr::parse("2001:db8:2::1")));
  EXPECT_EQ(p->upstreams.addrs.size(), 2u);
  auto l = decode_learned_state(corpus("learned_state"), "seed");
  ASSERT_TRUE(l.ok()) << l.error().message;
  ASSERT_EQ(l->entries.size(), 2u);
  EXPECT_EQ(l->entries[1].addr, *IpAddr::parse("2001:db8:c0::70"));
  EXPECT_EQ(l->entries[1].name, "pypi.org");
  EXPECT_FALSE(decode_policy_state(corpus("foreign"), "seed").ok());
}

}  // namespace
}  // namespace amlfw
