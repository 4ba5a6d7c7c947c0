// SPDX-License-Identifier: MIT
#include "daemon/dns_wire.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/unit/mock_dns_server.h"

namespace amlfw::dns {
namespace {

using test::MockDnsServer;
using test::MockRecord;

IpAddr ip(const char* s) { return IpAddr::parse(s).value(); }

std::vector<uint8_t> a_rdata(const char* s) {
  std::vector<uint8_t> b(4);
  ip(s).to_bytes(b.data());
  return b;
}
std::vector<uint8_t> aaaa_rdata(const char* s) {
  std::vector<uint8_t> b(16);
  ip(s).to_bytes(b.data());
  return b;
}
MockRecord a(const char* owner, const char* addr, uint32_t ttl = 300) { return {owner, kTypeA, ttl, a_rdata(addr)}; }
MockRecord aaaa(const char* owner, const char* addr, uint32_t ttl = 300) {
  return {owner, kTypeAaaa, ttl, aaaa_rdata(addr)};
}
MockRecord cname(const char* owner, const char* target, uint32_t ttl = 300) {
  return {owner, kTypeCname, ttl, MockDnsServer::encode_name(target)};
}

Query parse_ok(const std::vector<uint8_t>& m) {
  Query q;
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kOk);
  return q;
}

TEST(DnsWire, ParsesAQueryAndNormalizesTheName) {
  auto m = make_query(0x1234, "WWW.Anaconda.COM.", kTypeAaaa);
  Query q = parse_ok(m);
  EXPECT_EQ(q.header.id, 0x1234);
  EXPECT_EQ(q.question.text, "www.anaconda.com");
  EXPECT_TRUE(q.question.matchable);
  EXPECT_EQ(q.question.type, kTypeAaaa);
  EXPECT_EQ(q.question.klass, kClassIn);
  EXPECT_EQ(q.question_end, m.size());
  EXPECT_EQ(q.question.wire, std::string("\3www\10anaconda\3com\0", 18));
}

TEST(DnsWire, QueryErrors) {
  Query q;
  EXPECT_EQ(parse_query(std::vector<uint8_t>{1, 2, 3}, &q), QueryStatus::kShort);
  auto m = make_query(1, "a.example", kTypeA);
  m[2] |= 0x80;
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kResponse);
  m = make_query(1, "a.example", kTypeA);
  m[2] |= 0x10;  // opcode 2 (STATUS)
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kNotQuery);
  m = make_query(1, "a.example", kTypeA);
  m[5] = 2;  // qdcount 2
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kFormErr);
  m[5] = 0;
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kFormErr);
  m = make_query(1, "a.example", kTypeA);
  m.resize(m.size() - 2);  // class cut
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kFormErr);
  m = make_query(1, "a.example", kTypeA);
  m[12] = 60;  // label runs past the end
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kFormErr);
  m = make_query(1, "a.example", kTypeA);
  m[12] = 0x40;  // extended label type
  EXPECT_EQ(parse_query(m, &q), QueryStatus::kFormErr);
  // A compression pointer in the question pointing forward (at itself).
  std::vector<uint8_t> ptr = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  EXPECT_EQ(parse_query(ptr, &q), QueryStatus::kFormErr);
}

TEST(DnsWire, NamesThatCannotBeHostNamesMatchNothing) {
  // A label holding a dot would otherwise read as "evil.pytorch.org".
  std::vector<uint8_t> m = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  const std::string label = "evil.pytorch";
  m.push_back(static_cast<uint8_t>(label.size()));
  m.insert(m.end(), label.begin(), label.end());
  m.insert(m.end(), {3, 'o', 'r', 'g', 0, 0, 1, 0, 1});
  Query q = parse_ok(m);
  EXPECT_FALSE(q.question.matchable);
  EXPECT_NE(q.question.text, "evil.pytorch.org");
  // The root name is not matchable either.
  Query r = parse_ok(make_query(1, "", kTypeA));
  EXPECT_FALSE(r.question.matchable);
}

TEST(DnsWire, NameLengthIsBounded) {
  std::string name;
  for (int i = 0; i < 5; ++i) name += std::string(60, 'a') + ".";
  name += "com";  // 5 * 61 + 4 + 1 > 255
  Query q;
  EXPECT_EQ(parse_query(make_query(1, name, kTypeA), &q), QueryStatus::kFormErr);
}

TEST(DnsWire, ResponseThroughACnameChain) {
  auto query = make_query(7, "Www.Anaconda.com", kTypeA);
  Query q = parse_ok(query);
  auto resp = MockDnsServer::make_response(query, test::Rcode::kNoError,
                                           {cname("www.anaconda.com", "x.cdn.test", 30), cname("x.cdn.test", "y.cdn.test", 600),
                                            a("y.cdn.test", "192.0.2.10", 300), a("y.cdn.test", "192.0.2.11", 10),
                                            a("unrelated.test", "192.0.2.99", 300), aaaa("www.anaconda.com", "2001:db8::1", 50)});
  Answer ans;
  ASSERT_EQ(parse_response(resp, 7, q.question, true, &ans), ResponseStatus::kOk);
  EXPECT_EQ(ans.chain, 2u);
  EXPECT_FALSE(ans.chain_cut);
  std::vector<std::pair<IpAddr, uint32_t>> want = {
      {ip("2001:db8::1"), 50}, {ip("192.0.2.10"), 30}, {ip("192.0.2.11"), 10}};
  EXPECT_EQ(ans.addrs, want);  // the CNAME's 30 s caps the 300 s record; unrelated.test is not reachable
}

TEST(DnsWire, ResponseChecksIdAndQuestion) {
  auto query = make_query(7, "a.example", kTypeA);
  Query q = parse_ok(query);
  auto resp = MockDnsServer::make_response(query, test::Rcode::kNoError, {a("a.example", "192.0.2.1")});
  Answer ans;
  EXPECT_EQ(parse_response(resp, 8, q.question, true, &ans), ResponseStatus::kWrongQuestion);
  Query other = parse_ok(make_query(7, "b.example", kTypeA));
  EXPECT_EQ(parse_response(resp, 7, other.question, true, &ans), ResponseStatus::kWrongQuestion);
  Query aaaa_q = parse_ok(make_query(7, "a.example", kTypeAaaa));
  EXPECT_EQ(parse_response(resp, 7, aaaa_q.question, true, &ans), ResponseStatus::kWrongQuestion);
  EXPECT_EQ(parse_response(query, 7, q.question, true, &ans), ResponseStatus::kMalformed);  // not a response
}

TEST(DnsWire, CnameLoopsAndLongChainsAreCut) {
  auto query = make_query(1, "a.example", kTypeA);
  Query q = parse_ok(query);
  auto loop = MockDnsServer::make_response(query, test::Rcode::kNoError,
                                           {cname("a.example", "b.example"), cname("b.example", "a.example"),
                                            a("b.example", "192.0.2.5")});
  Answer ans;
  ASSERT_EQ(parse_response(loop, 1, q.question, true, &ans), ResponseStatus::kOk);
  EXPECT_TRUE(ans.chain_cut);
  ASSERT_EQ(ans.addrs.size(), 1u);
  std::vector<MockRecord> chain;
  std::string prev = "a.example";
  for (size_t i = 0; i < kMaxChain + 2; ++i) {
    std::string next = "c" + std::to_string(i) + ".example";
    chain.push_back(cname(prev.c_str(), next.c_str()));
    prev = next;
  }
  chain.push_back(a(prev.c_str(), "192.0.2.6"));
  auto longer = MockDnsServer::make_response(query, test::Rcode::kNoError, chain);
  ASSERT_EQ(parse_response(longer, 1, q.question, true, &ans), ResponseStatus::kOk);
  EXPECT_TRUE(ans.chain_cut);
  EXPECT_TRUE(ans.addrs.empty());
  EXPECT_EQ(ans.chain, kMaxChain);
}

TEST(DnsWire, MalformedAnswers) {
  auto query = make_query(1, "a.example", kTypeA);
  Query q = parse_ok(query);
  auto good = MockDnsServer::make_response(query, test::Rcode::kNoError, {a("a.example", "192.0.2.1")});
  Answer ans;
  ASSERT_EQ(parse_response(good, 1, q.question, true, &ans), ResponseStatus::kOk);
  // Every truncation of a good answer is malformed (never a crash, never a partial read).
  for (size_t n = q.question_end; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
    EXPECT_EQ(parse_response(cut, 1, q.question, true, &ans), ResponseStatus::kMalformed) << n;
  }
  // A record with a wrong rdlength.
  auto bad = MockDnsServer::make_response(query, test::Rcode::kNoError, {{"a.example", kTypeA, 60, {1, 2, 3}}});
  EXPECT_EQ(parse_response(bad, 1, q.question, true, &ans), ResponseStatus::kMalformed);
  // ancount larger than what the message can hold.
  auto many = good;
  many[7] = 200;
  EXPECT_EQ(parse_response(many, 1, q.question, true, &ans), ResponseStatus::kMalformed);
  // Without want_addrs only the header and question are read.
  EXPECT_EQ(parse_response(many, 1, q.question, false, &ans), ResponseStatus::kOk);
}

TEST(DnsWire, CompressedOwnerNamesAndTtlTopBit) {
  auto query = make_query(1, "a.example", kTypeA);
  Query q = parse_ok(query);
  std::vector<uint8_t> m = query;
  m[2] |= 0x80;
  m[7] = 1;  // ancount
  // owner: pointer to the question name at offset 12
  m.insert(m.end(), {0xc0, 12, 0, 1, 0, 1, 0x80, 0, 0, 0, 0, 4, 192, 0, 2, 7});
  Answer ans;
  ASSERT_EQ(parse_response(m, 1, q.question, true, &ans), ResponseStatus::kOk);
  ASSERT_EQ(ans.addrs.size(), 1u);
  EXPECT_EQ(ans.addrs[0].first, ip("192.0.2.7"));
  EXPECT_EQ(ans.addrs[0].second, 0u);  // TTL with the top bit set counts as 0
  // A pointer pointing forward is refused.
  m[q.question_end] = 0xc0;
  m[q.question_end + 1] = static_cast<uint8_t>(q.question_end + 2);
  EXPECT_EQ(parse_response(m, 1, q.question, true, &ans), ResponseStatus::kMalformed);
}

TEST(DnsWire, ErrorReply) {
  auto query = make_query(0xbeef, "a.example", kTypeA);
  Query q = parse_ok(query);
  auto r = error_reply(query, &q, kServFail);
  Header h;
  ASSERT_TRUE(parse_header(r, &h));
  EXPECT_EQ(h.id, 0xbeef);
  EXPECT_TRUE(h.qr());
  EXPECT_EQ(h.rcode(), kServFail);
  EXPECT_EQ(h.qdcount, 1);
  EXPECT_EQ(h.ancount, 0);
  EXPECT_EQ(r.size(), q.question_end);
  EXPECT_EQ(h.flags & 0x0100, 0x0100);  // RD copied
  auto f = error_reply(std::vector<uint8_t>{0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nullptr, kFormErr);
  ASSERT_TRUE(parse_header(f, &h));
  EXPECT_EQ(h.id, 0xabcd);
  EXPECT_EQ(h.qdcount, 0);
  EXPECT_EQ(h.rcode(), kFormErr);
}

// The fuzzer's seed corpus (tests/fuzz/corpus/dns_packet) replayed: every input is read as a
// query and as the answer to its own question without a crash and within the invariants.
TEST(DnsWire, FuzzCorpusReplay) {
  const std::filesystem::path dir = std::filesystem::path(AMLFW_FIXTURES) / ".." / "fuzz" / "corpus" / "dns_packet";
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> msg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ++n;
    std::vector<uint8_t> query = msg;
    if (query.size() > 2) query[2] &= 0x7f;
    Query q;
    if (parse_query(query, &q) != QueryStatus::kOk) continue;
    EXPECT_LE(q.question_end, query.size()) << e.path();
    EXPECT_EQ(error_reply(query, &q, kServFail).size(), q.question_end) << e.path();
    msg[2] |= 0x80;
    Answer a;
    if (parse_response(msg, q.header.id, q.question, true, &a) == ResponseStatus::kOk) {
      EXPECT_LE(a.addrs.size(), a.header.ancount) << e.path();
      EXPECT_LE(a.chain, kMaxChain) << e.path();
    }
  }
  EXPECT_GE(n, 6u);
}

}  // namespace
}  // namespace amlfw::dns
