// SPDX-License-Identifier: MIT
#include "daemon/dns_wire.h"

#include <algorithm>
#include <cstring>

namespace amlfw::dns {
namespace {

inline char lower(uint8_t c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); }

// Reads a (possibly compressed) name at *off. On success *off is after the name's inline
// part and `wire` holds it lower-cased in wire form (root label included). Pointers must
// point strictly before the label that holds them, so every jump goes backwards and the
// walk ends; the expanded name is at most kMaxName bytes.
bool read_name(std::span<const uint8_t> msg, size_t* off, std::string* wire) {
  wire->clear();
  size_t pos = *off;
  size_t end_inline = 0;
  bool jumped = false;
  size_t limit = pos;  // a pointer must point below this
  for (;;) {
    if (pos >= msg.size()) return false;
    const uint8_t len = msg[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= msg.size()) return false;
      const size_t target = static_cast<size_t>(((len & 0x3f) << 8) | msg[pos + 1]);
      if (!jumped) end_inline = pos + 2;
      if (target >= limit) return false;
      jumped = true;
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) return false;  // 0x40 / 0x80: obsolete label types
    if (wire->size() + 1 + len > kMaxName) return false;
    if (pos + 1 + len > msg.size()) return false;
    wire->push_back(static_cast<char>(len));
    if (len == 0) {
      if (!jumped) end_inline = pos + 1;
      break;
    }
    for (size_t i = 0; i < len; ++i) wire->push_back(lower(msg[pos + 1 + i]));
    pos += 1 + len;
  }
  *off = end_inline;
  return true;
}

// Dotted text of a lower-cased wire name; false when a label holds anything but
// letters, digits, '-' and '_' (such a name matches no pattern: a '.' inside a label
// would otherwise forge a name).
bool wire_to_text(const std::string& wire, std::string* text) {
  text->clear();
  size_t i = 0;
  bool ok = true;
  while (i < wire.size()) {
    const auto len = static_cast<uint8_t>(wire[i]);
    if (len == 0) break;
    if (!text->empty()) text->push_back('.');
    for (size_t k = 0; k < len; ++k) {
      const char c = wire[i + 1 + k];
      const bool good = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
      if (!good) ok = false;
      text->push_back(good ? c : '?');
    }
    i += 1 + len;
  }
  return ok;
}

struct Rec {
  std::string owner;
  uint16_t type = 0;
  uint32_t ttl = 0;
  IpAddr addr;
  std::string target;  // CNAME
};

}  // namespace

bool parse_header(std::span<const uint8_t> msg, Header* h) {
  if (msg.size() < kHeaderSize) return false;
  const uint8_t* p = msg.data();
  h->id = read16(p);
  h->flags = read16(p + 2);
  h->qdcount = read16(p + 4);
  h->ancount = read16(p + 6);
  h->nscount = read16(p + 8);
  h->arcount = read16(p + 10);
  return true;
}

QueryStatus parse_query(std::span<const uint8_t> msg, Query* out) {
  if (!parse_header(msg, &out->header)) return QueryStatus::kShort;
  if (out->header.qr()) return QueryStatus::kResponse;
  out->question_end = 0;
  if (out->header.opcode() != 0) return QueryStatus::kNotQuery;
  if (out->header.qdcount != 1) return QueryStatus::kFormErr;
  size_t off = kHeaderSize;
  Question& q = out->question;
  if (!read_name(msg, &off, &q.wire)) return QueryStatus::kFormErr;
  if (off + 4 > msg.size()) return QueryStatus::kFormErr;
  q.type = read16(msg.data() + off);
  q.klass = read16(msg.data() + off + 2);
  off += 4;
  q.matchable = wire_to_text(q.wire, &q.text) && !q.text.empty();
  out->question_end = off;
  return QueryStatus::kOk;
}

ResponseStatus parse_response(std::span<const uint8_t> msg, uint16_t id, const Question& q, bool want_addrs,
                              Answer* out) {
  out->addrs.clear();
  out->chain = 0;
  out->chain_cut = false;
  if (!parse_header(msg, &out->header)) return ResponseStatus::kMalformed;
  const Header& h = out->header;
  if (!h.qr()) return ResponseStatus::kMalformed;
  if (h.id != id || h.opcode() != 0) return ResponseStatus::kWrongQuestion;
  if (h.qdcount != 1) {
    // Some servers leave the question out of FORMERR/NOTIMP/REFUSED answers.
    if (h.qdcount == 0 && h.rcode() != kNoError && h.rcode() != kNxDomain) return ResponseStatus::kOk;
    return ResponseStatus::kWrongQuestion;
  }
  size_t off = kHeaderSize;
  std::string name;
  name.reserve(64);
  if (!read_name(msg, &off, &name)) return ResponseStatus::kMalformed;
  if (off + 4 > msg.size()) return ResponseStatus::kMalformed;
  if (name != q.wire || read16(msg.data() + off) != q.type || read16(msg.data() + off + 2) != q.klass)
    return ResponseStatus::kWrongQuestion;
  off += 4;
  if (!want_addrs) return ResponseStatus::kOk;

  // A record needs at least 11 bytes (root name + 10); cheap sanity before allocating.
  if (static_cast<size_t>(h.ancount) * 11 > msg.size() - off) return ResponseStatus::kMalformed;
  std::vector<Rec> recs;
  recs.reserve(h.ancount);
  for (uint16_t i = 0; i < h.ancount; ++i) {
    Rec r;
    if (!read_name(msg, &off, &r.owner)) return ResponseStatus::kMalformed;
    if (off + 10 > msg.size()) return ResponseStatus::kMalformed;
    const uint8_t* p = msg.data() + off;
    r.type = read16(p);
    const uint16_t klass = read16(p + 2);
    uint32_t ttl = (static_cast<uint32_t>(p[4]) << 24) | (static_cast<uint32_t>(p[5]) << 16) |
                   (static_cast<uint32_t>(p[6]) << 8) | p[7];
    r.ttl = ttl > 0x7fffffffu ? 0 : ttl;  // RFC 2181 8: a TTL with the top bit set is 0
    const uint16_t rdlen = read16(p + 8);
    off += 10;
    if (off + rdlen > msg.size()) return ResponseStatus::kMalformed;
    const size_t rd_end = off + rdlen;
    if (klass == kClassIn) {
      if (r.type == kTypeA) {
        if (rdlen != 4) return ResponseStatus::kMalformed;
        r.addr = IpAddr::from_bytes(false, msg.data() + off);
        recs.push_back(std::move(r));
      } else if (r.type == kTypeAaaa) {
        if (rdlen != 16) return ResponseStatus::kMalformed;
        r.addr = IpAddr::from_bytes(true, msg.data() + off);
        recs.push_back(std::move(r));
      } else if (r.type == kTypeCname) {
        size_t t = off;
        if (!read_name(msg.first(rd_end), &t, &r.target) || t != rd_end) return ResponseStatus::kMalformed;
        recs.push_back(std::move(r));
      }
    }
    off = rd_end;
  }

  // Walk from the question name through the CNAME chain.
  const std::string* cur = &q.wire;
  uint32_t cap = 0xffffffffu;
  std::vector<const std::string*> seen{cur};
  for (;;) {
    const Rec* next = nullptr;
    for (const Rec& r : recs) {
      if (r.owner != *cur) continue;
      if (r.type == kTypeCname) {
        if (next == nullptr) next = &r;  // more than one CNAME for a name: the first counts
      } else {
        out->addrs.emplace_back(r.addr, std::min(r.ttl, cap));
      }
    }
    if (next == nullptr) break;
    if (out->chain >= kMaxChain ||
        std::any_of(seen.begin(), seen.end(), [&](const std::string* s) { return *s == next->target; })) {
      out->chain_cut = true;
      break;
    }
    ++out->chain;
    cap = std::min(cap, next->ttl);
    cur = &next->target;
    seen.push_back(cur);
  }
  return ResponseStatus::kOk;
}

std::vector<uint8_t> error_reply(std::span<const uint8_t> query, const Query* parsed, Rcode rcode) {
  const bool with_q = parsed != nullptr && parsed->question_end > kHeaderSize && parsed->question_end <= query.size();
  std::vector<uint8_t> out(with_q ? parsed->question_end : kHeaderSize, 0);
  if (query.size() >= 2) std::memcpy(out.data(), query.data(), 2);
  const uint16_t qflags = query.size() >= 4 ? read16(query.data() + 2) : 0;
  // QR, the query's opcode and RD, RA, the rcode.
  const uint16_t flags = static_cast<uint16_t>(0x8000 | (qflags & 0x7800) | (qflags & 0x0100) | 0x0080 | rcode);
  write16(out.data() + 2, flags);
  if (with_q) {
    write16(out.data() + 4, 1);
    std::memcpy(out.data() + kHeaderSize, query.data() + kHeaderSize, parsed->question_end - kHeaderSize);
  }
  return out;
}

std::vector<uint8_t> make_query(uint16_t id, std::string_view name, uint16_t type, uint16_t edns_size) {
  std::vector<uint8_t> out(kHeaderSize, 0);
  write16(out.data(), id);
  write16(out.data() + 2, 0x0100);  // RD
  write16(out.data() + 4, 1);
  if (edns_size != 0) write16(out.data() + 10, 1);
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const size_t len = std::min<size_t>(dot - start, 63);
    out.push_back(static_cast<uint8_t>(len));
    out.insert(out.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
               name.begin() + static_cast<std::ptrdiff_t>(start + len));
    start = dot + 1;
  }
  out.push_back(0);
  const uint8_t tail[4] = {static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0, kClassIn};
  out.insert(out.end(), tail, tail + 4);
  if (edns_size != 0) {
    const uint8_t opt[11] = {0, 0, 41, static_cast<uint8_t>(edns_size >> 8), static_cast<uint8_t>(edns_size), 0, 0, 0, 0, 0, 0};
    out.insert(out.end(), opt, opt + 11);
  }
  return out;
}

}  // namespace amlfw::dns
