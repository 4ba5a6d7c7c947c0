// SPDX-License-Identifier: MIT
// DNS wire format for the proxy: just what it needs, with a bounds check at every read.
//
//  - parse_query: header + the one question of a client's query (the name lower-cased in
//    wire form for comparisons, and as dotted text for the policy's name patterns);
//  - parse_response: checks that an upstream's answer is for our question, and collects
//    the A/AAAA records reachable from the question name through the CNAME chain of the
//    answer section (records of other owners are ignored: they teach nothing);
//  - error_reply: FORMERR / SERVFAIL / NOTIMP / REFUSED for a query.
//
// Untrusted input never reads out of bounds: names are at most 255 bytes, compression
// pointers must point backwards (no loops), counts are checked against the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "policy/net.h"

namespace amlfw::dns {

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxUdpMessage = 65535;
inline constexpr size_t kMaxName = 255;     // wire form, with the root label
inline constexpr size_t kMaxChain = 16;     // CNAME hops followed from the question
inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeCname = 5;
inline constexpr uint16_t kTypeAaaa = 28;
inline constexpr uint16_t kClassIn = 1;

enum Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};

struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  bool qr() const { return (flags & 0x8000) != 0; }
  uint8_t opcode() const { return static_cast<uint8_t>((flags >> 11) & 0xf); }
  bool tc() const { return (flags & 0x0200) != 0; }
  uint8_t rcode() const { return static_cast<uint8_t>(flags & 0xf); }
};
// False when shorter than a header.
bool parse_header(std::span<const uint8_t> msg, Header* h);

struct Question {
  std::string wire;     // the name in wire form, lower-cased (labels with length bytes, root 0)
  std::string text;     // dotted, lower-case, no trailing dot ("" for the root)
  bool matchable = false;  // text is a host name the policy can match (letters, digits, '-', '_')
  uint16_t type = 0;
  uint16_t klass = 0;
};

enum class QueryStatus : uint8_t {
  kOk,
  kShort,       // less than a header: drop
  kResponse,    // QR set: drop (never answer an answer)
  kNotQuery,    // opcode other than QUERY: NOTIMP
  kFormErr,     // no question, several, or a malformed one: FORMERR
};

struct Query {
  Header header;
  Question question;
  size_t question_end = 0;  // offset after the question (header + question bytes)
};
QueryStatus parse_query(std::span<const uint8_t> msg, Query* out);

enum class ResponseStatus : uint8_t {
  kOk,
  kMalformed,      // not a DNS response we can read
  kWrongQuestion,  // not the answer to our question (or id)
};

struct Answer {
  Header header;
  // A/AAAA records owned by the question name or a name of its CNAME chain, in answer
  // order, each with min(its TTL, the TTLs of the CNAMEs leading to it).
  std::vector<std::pair<IpAddr, uint32_t>> addrs;
  size_t chain = 0;          // CNAME hops followed
  bool chain_cut = false;    // the chain was longer than kMaxChain or looped
};
// Checks that `msg` answers `q` with id `id`; with `want_addrs`, walks the answer section.
ResponseStatus parse_response(std::span<const uint8_t> msg, uint16_t id, const Question& q, bool want_addrs,
                              Answer* out);

// A reply to `query` with `rcode` and no records: the question is copied when `parsed` has
// one (question_end > kHeaderSize), else qdcount is 0. Id, opcode and RD come from the query.
std::vector<uint8_t> error_reply(std::span<const uint8_t> query, const Query* parsed, Rcode rcode);

inline uint16_t read16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline void write16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Builds a query (tests, bench): RD set, one question, optional EDNS0 OPT with `edns_size`.
std::vector<uint8_t> make_query(uint16_t id, std::string_view name, uint16_t type, uint16_t edns_size = 0);

}  // namespace amlfw::dns
