// SPDX-License-Identifier: MIT
// The control socket: `amlfw status`, `amlfw explain` and `amlfw reload` talk to the running
// daemon over a unix stream socket, <paths.runtime_dir>/control.sock (mode 0660, owner root,
// group [control] group), one JSON request per line, one JSON reply per line:
//
//   {"cmd":"status"}                      -> {"ok":true, "mode":..., "generation":..., ...}
//   {"cmd":"explain","target":"IP:PORT"}  -> {"ok":true, "target":..., "verdict":..., "rule":..., "why":...}
//   {"cmd":"reload"}                      -> {"ok":true, "applied":true|false, "message":...}
//   anything else                         -> {"ok":false, "error":"one line"}
//
// A request longer than kControlMaxRequest bytes gets an error reply and the connection is
// closed. Peers are checked with SO_PEERCRED/SO_PEERGROUPS: root, the daemon's own uid, or a
// member of the configured group. StreamServer (also used by the metrics listener) keeps
// every connection non-blocking on the EventLoop, bounded in number, request size, reply
// backlog and idle time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/event_loop.h"
#include "daemon/fd.h"
#include "policy/config.h"
#include "policy/result.h"

namespace amlfw {

inline constexpr size_t kControlMaxRequest = 4096;
inline constexpr std::string_view kControlSocketName = "control.sock";

// ---- protocol ----------------------------------------------------------------------------

enum class ControlCmd : uint8_t { kStatus, kExplain, kReload };

struct ControlRequest {
  ControlCmd cmd = ControlCmd::kStatus;
  std::string target;  // explain
};

// One request line (a trailing "\n" or "\r\n" is allowed). Errors are Exit::kUsage, one line.
Result<ControlRequest> parse_control_request(std::string_view line);
// `{"ok":false,"error":"..."}\n`
std::string control_error_line(std::string_view message);
// `j` with "ok": true (unless it has "ok"), on one line, "\n"-terminated.
std::string control_reply_line(nlohmann::json j);

// <runtime_dir>/control.sock
std::string control_socket_path(const Config& c);
// The same for the configuration file at `config_path`, also when that file no longer
// validates (a reload is about to be refused: the client must still find the daemon):
// paths.runtime_dir is then read leniently, else the default is used.
std::string control_socket_path_for(const std::string& config_path);

// ---- peers -------------------------------------------------------------------------------

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS)
};
Result<PeerCred> peer_credentials(int fd);
// Root, `self` (the daemon's uid), or a member of `group` (primary or supplementary).
bool peer_allowed(const PeerCred& p, std::optional<gid_t> group, uid_t self);
// The gid of a group name; nullopt for "". Error when the group does not exist.
Result<std::optional<gid_t>> lookup_group(const std::string& name);

// ---- listening sockets -------------------------------------------------------------------

// A unix stream socket at `path`: refuses when another process answers there (another
// daemon), replaces a stale socket, creates the parent directory (0755) when missing, binds
// with a umask that never exposes it, then sets `mode` and the group. Non-blocking, CLOEXEC.
// `in_use` (optional) is set when the error is "another process answers there".
Result<Fd> listen_unix(const std::string& path, mode_t mode, std::optional<gid_t> group, bool* in_use = nullptr);
// A TCP listener (SO_REUSEADDR; IPv6 only for an IPv6 address). Non-blocking, CLOEXEC.
Result<Fd> listen_tcp(const SocketAddress& a);

// ---- StreamServer --------------------------------------------------------------------------

class StreamServer {
 public:
  struct Limits {
    size_t max_clients = 16;
    size_t max_request = kControlMaxRequest;
    std::chrono::milliseconds idle{10000};  // no complete request for that long: closed
    size_t max_backlog = size_t{16} << 20;  // replies not yet read by the peer
  };
  struct Reply {
    std::string data;
    bool close = false;  // close once it is sent
  };
  // Length of the first complete request in `buf` (terminator included), 0 when incomplete.
  using Framer = std::function<size_t(std::string_view buf)>;
  using Handler = std::function<Reply(std::string_view request, const PeerCred& peer)>;
  // Returns a refusal to send (then close) for a peer that may not talk to us. Unset: no
  // credential check (TCP).
  using Admit = std::function<std::optional<Reply>(const PeerCred& peer)>;
  struct Canned {
    std::string oversize;  // sent, then closed, when a request exceeds max_request
    std::string busy;      // sent (best effort), then closed, past max_clients
  };
  struct Stats {
    uint64_t accepted = 0;
    uint64_t requests = 0;
    uint64_t refused_busy = 0;
    uint64_t refused_peer = 0;
    uint64_t oversized = 0;
    uint64_t timed_out = 0;
  };

  static Result<std::unique_ptr<StreamServer>> create(EventLoop& loop, Fd listener, Limits limits, Framer framer,
                                                      Handler handler, Admit admit, Canned canned);
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Unlinks `path` at destruction if it is still the socket we bound (same inode).
  void unlink_on_close(const std::string& path);
  size_t clients() const { return clients_.size(); }
  const Stats& stats() const { return stats_; }
  const Limits& limits() const { return limits_; }

 private:
  struct Client {
    Fd fd;
    PeerCred peer;
    std::string in, out;
    bool closing = false;  // close once `out` is sent
    EventLoop::TimerId timer = 0;
  };
  StreamServer(EventLoop& loop, Fd listener, Limits limits, Framer framer, Handler handler, Admit admit, Canned canned);
  void on_accept();
  void on_io(int fd, uint32_t events);
  void process(Client& c);
  void flush(Client& c);
  void drop(int fd);

  EventLoop& loop_;
  Fd listener_;
  Limits limits_;
  Framer framer_;
  Handler handler_;
  Admit admit_;
  Canned canned_;
  Stats stats_;
  std::map<int, std::unique_ptr<Client>> clients_;
  std::string unlink_path_;
  ino_t unlink_ino_ = 0;
  dev_t unlink_dev_ = 0;
};

// Framing: one line ("\n"), and an HTTP/1.x request head ("\r\n\r\n" or "\n\n").
size_t frame_line(std::string_view buf);
size_t frame_http_head(std::string_view buf);

// ---- client ----------------------------------------------------------------------------------

// Sends one request to the daemon at `socket_path` and returns its reply (parsed). Transport
// problems are Exit::kRuntime, one line: no daemon, permission denied (and the fix), timeout,
// a reply that is not JSON. A reply with "ok": false is returned as is.
Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                    std::chrono::milliseconds timeout);

}  // namespace amlfw
