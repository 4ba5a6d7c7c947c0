// SPDX-License-Identifier: MIT
// libFuzzer target: the DNS proxy's packet path on arbitrary bytes, as a client's query
// (parse_query, error_reply) and as an upstream's answer to that same question
// (parse_response through the CNAME chain). Beyond "no crash, no sanitizer report" it
// checks the invariants the proxy relies on.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "daemon/dns_wire.h"

namespace {

void check_reply(const std::vector<uint8_t>& r, const amlfw::dns::Query* q, size_t in_size) {
  if (r.size() < amlfw::dns::kHeaderSize) __builtin_trap();
  if ((r[2] & 0x80) == 0) __builtin_trap();  // QR
  if (q != nullptr && q->question_end > amlfw::dns::kHeaderSize && r.size() != q->question_end) __builtin_trap();
  if (r.size() > (in_size > amlfw::dns::kHeaderSize ? in_size : amlfw::dns::kHeaderSize)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace amlfw::dns;
  std::vector<uint8_t> msg(data, data + size);
  // As a query (QR cleared so that the question is read).
  std::vector<uint8_t> query = msg;
  if (query.size() > 2) query[2] &= 0x7f;
  Query q;
  const QueryStatus qs = parse_query(query, &q);
  if (qs == QueryStatus::kOk) {
    if (q.question_end > query.size() || q.question_end < kHeaderSize + 5) __builtin_trap();
    if (q.question.wire.empty() || q.question.wire.size() > kMaxName) __builtin_trap();
    if (q.question.matchable && q.question.text.empty()) __builtin_trap();
    check_reply(error_reply(query, &q, kServFail), &q, query.size());
  } else if (qs == QueryStatus::kFormErr || qs == QueryStatus::kNotQuery) {
    check_reply(error_reply(query, nullptr, kFormErr), nullptr, query.size());
  }
  // As the answer to that question (QR set).
  if (qs != QueryStatus::kOk || msg.size() < kHeaderSize) return 0;
  msg[2] |= 0x80;
  Answer a;
  const ResponseStatus rs = parse_response(msg, q.header.id, q.question, true, &a);
  if (rs == ResponseStatus::kOk) {
    if (a.chain > kMaxChain) __builtin_trap();
    // Every address comes from a distinct answer record of 4 or 16 bytes.
    if (a.addrs.size() > a.header.ancount) __builtin_trap();
  } else if (!a.addrs.empty()) {
    __builtin_trap();
  }
  return 0;
}
