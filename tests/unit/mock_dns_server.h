// SPDX-License-Identifier: MIT
// MockDnsServer: a scripted DNS server on loopback for tests (UDP and TCP on the same port).
//
//   auto srv = MockDnsServer::start();              // 127.0.0.1, a free port
//   srv->add_a("api.example.com", "192.0.2.10", 300);
//   srv->add_aaaa("api.example.com", "2001:db8::10", 120);
//   srv->add_cname("www.example.com", "api.example.com", 60);
//   srv->set_rcode("broken.example.com", kAnyType, Rcode::kServFail);
//   srv->set_drop("slow.example.com", kTypeA);                  // never answers
//   srv->set_delay("late.example.com", kAnyType, 200ms);
//   srv->set_truncate("big.example.com", kAnyType);             // TC over UDP, full over TCP
//   resolver servers: { srv->endpoint() }                       // "127.0.0.1:NNNNN"
//   srv->query_count("api.example.com", kTypeA)
//
// Answers: the records of the queried name and type, following CNAME chains (each CNAME
// is put in the answer, as a recursive server does). A name with no record at all is
// NXDOMAIN; a name with records of other types only is NOERROR with no answer (NODATA).
// Over UDP a reply larger than 512 bytes (or the EDNS payload size of the query) is sent
// truncated (TC=1, no answers). Names are matched without case and trailing dot.
// The server runs on its own thread; every method is thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/fd.h"
#include "policy/result.h"

namespace amlfw::test {

inline constexpr uint16_t kAnyType = 0;  // in set_* calls: every query type of the name
inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeAaaa = 28;

enum class Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};

struct DnsQuestion {
  std::string name;  // lowercase, no trailing dot
  uint16_t type = 0;
  uint16_t id = 0;
  bool tcp = false;
};

struct MockRecord {
  std::string name;  // owner
  uint16_t type = 0;
  uint32_t ttl = 0;
  std::vector<uint8_t> rdata;  // wire format
};

class MockDnsServer {
 public:
  // A custom answer: std::nullopt falls back to the script; a vector is sent as is (an
  // empty vector sends nothing). `query` is the raw query message.
  using Handler =
      std::function<std::optional<std::vector<uint8_t>>(const DnsQuestion& q, const std::vector<uint8_t>& query)>;

  // Binds UDP and TCP on bind_ip (IPv4 or IPv6 literal), port 0 (a free one), and starts
  // serving on a thread.
  static Result<std::unique_ptr<MockDnsServer>> start(const std::string& bind_ip = "127.0.0.1");
  ~MockDnsServer();
  MockDnsServer(const MockDnsServer&) = delete;
  MockDnsServer& operator=(const MockDnsServer&) = delete;

  uint16_t port() const { return port_; }
  const std::string& ip() const { return ip_; }
  // "127.0.0.1:PORT" or "[::1]:PORT".
  std::string endpoint() const;

  // ---- script ----
  // Bad literals make these return false.
  bool add_a(std::string_view name, std::string_view ipv4, uint32_t ttl);
  bool add_aaaa(std::string_view name, std::string_view ipv6, uint32_t ttl);
  bool add_cname(std::string_view name, std::string_view target, uint32_t ttl);
  void add_record(MockRecord rr);
  // Behaviour of (name, type); type kAnyType applies to every type of that name.
  void set_rcode(std::string_view name, uint16_t type, Rcode rcode);  // no answers
  void set_drop(std::string_view name, uint16_t type, bool drop = true);
  void set_delay(std::string_view name, uint16_t type, std::chrono::milliseconds delay);
  void set_truncate(std::string_view name, uint16_t type, bool truncate = true);
  void set_handler(Handler h);
  // Forgets records, behaviours, the handler and the counters.
  void clear();

  // ---- observation ----
  size_t query_count() const;                                  // every query received
  size_t query_count(std::string_view name, uint16_t type) const;  // type kAnyType: all types
  size_t tcp_query_count() const;
  std::vector<DnsQuestion> queries() const;
  // Waits until at least n queries arrived; false on timeout.
  bool wait_for_queries(size_t n, std::chrono::milliseconds timeout) const;

  // ---- wire helpers (also for handlers) ----
  static std::vector<uint8_t> encode_name(std::string_view name);
  // A reply to `query` (its id, question and RD bit) with these answers.
  static std::vector<uint8_t> make_response(const std::vector<uint8_t>& query, Rcode rcode,
                                            const std::vector<MockRecord>& answers, bool truncated = false);

 private:
  struct Behaviour {
    std::optional<Rcode> rcode;
    bool drop = false;
    bool truncate = false;
    std::chrono::milliseconds delay{0};
  };
  struct Delayed {
    std::chrono::steady_clock::time_point due;
    bool tcp = false;
    uint64_t conn = 0;
    std::vector<uint8_t> peer;  // sockaddr bytes (UDP)
    std::vector<uint8_t> msg;
  };
  struct Conn {
    Fd fd;
    uint64_t id = 0;
    std::vector<uint8_t> in;
  };

  MockDnsServer() = default;
  void serve();
  void on_udp();
  void on_tcp_accept();
  bool on_tcp_readable(Conn& c);  // false: close
  // Returns the reply (empty: none) and the delay to apply.
  std::vector<uint8_t> answer(const std::vector<uint8_t>& query, bool tcp, size_t udp_limit,
                              std::chrono::milliseconds* delay);
  Behaviour behaviour_locked(const std::string& name, uint16_t type) const;

  std::string ip_;
  uint16_t port_ = 0;
  Fd udp_, tcp_, wake_;
  std::thread thread_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, std::vector<MockRecord>> records_;
  std::map<std::pair<std::string, uint16_t>, Behaviour> behaviours_;
  Handler handler_;
  std::vector<DnsQuestion> log_;

  // serve() thread only
  std::map<int, Conn> conns_;
  uint64_t next_conn_ = 1;
  std::vector<Delayed> delayed_;
};

}  // namespace amlfw::test
