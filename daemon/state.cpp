// SPDX-License-Identifier: MIT
#include "daemon/state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "daemon/fd.h"

namespace amlfw {
namespace {

constexpr char kMagic[8] = {'A', 'M', 'L', 'F', 'W', 'S', 'T', '\0'};
constexpr size_t kHeaderSize = 32;
enum class Kind : uint32_t { kPolicy = 1, kLearned = 2 };

std::string_view kind_name(uint32_t k) {
  switch (static_cast<Kind>(k)) {
    case Kind::kPolicy: return "policy";
    case Kind::kLearned: return "learned-addresses";
  }
  return "unknown";
}

// ---- CRC-32C, slicing by 8 ------------------------------------------------------------

using CrcTables = std::array<std::array<uint32_t, 256>, 8>;
const CrcTables& crc_tables() {
  static const CrcTables t = [] {
    CrcTables x{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      x[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (size_t s = 1; s < 8; ++s) x[s][i] = (x[s - 1][i] >> 8) ^ x[0][x[s - 1][i] & 0xff];
    return x;
  }();
  return t;
}

// ---- little-endian encoding with bounds-checked decoding ------------------------------

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) { le(v, 2); }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void i64(int64_t v) { le(static_cast<uint64_t>(v), 8); }
  void u128(u128 v) {
    u64(static_cast<uint64_t>(v));
    u64(static_cast<uint64_t>(v >> 64));
  }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void addr(const IpAddr& a) {
    u8(a.v6 ? 6 : 4);
    if (a.v6) u128(a.value);
    else u32(a.v4value());
  }
  void reserve(size_t n) { out_.reserve(n); }
  std::string& out() { return out_; }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return err_.empty(); }
  const std::string& error() const { return err_; }
  size_t left() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }
  void fail(const std::string& what) {
    if (err_.empty()) err_ = what + " at byte " + std::to_string(kHeaderSize + pos_);
  }

  uint8_t u8() { return static_cast<uint8_t>(le(1)); }
  uint16_t u16() { return static_cast<uint16_t>(le(2)); }
  uint32_t u32() { return static_cast<uint32_t>(le(4)); }
  uint64_t u64() { return le(8); }
  int64_t i64() { return static_cast<int64_t>(le(8)); }
  u128 u128v() {
    const uint64_t lo = u64();
    const uint64_t hi = u64();
    return (static_cast<u128>(hi) << 64) | lo;
  }
  std::string str(size_t max, const char* what) {
    const uint32_t n = u32();
    if (!ok()) return {};
    if (n > max || n > left()) {
      fail(std::string(what) + " length " + std::to_string(n) + " out of bounds");
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  IpAddr addr() {
    const uint8_t fam = u8();
    if (!ok()) return {};
    if (fam == 4) return IpAddr::v4addr(u32());
    if (fam == 6) return IpAddr::v6addr(u128v());
    fail("address family " + std::to_string(fam) + " unknown");
    return {};
  }
  // A count of items of at least `item_size` bytes each: never more than what is left.
  uint32_t count(size_t item_size, const char* what) {
    const uint32_t n = u32();
    if (ok() && static_cast<uint64_t>(n) * item_size > left()) {
      fail(std::string(what) + " count " + std::to_string(n) + " larger than the file");
      return 0;
    }
    return ok() ? n : 0;
  }

 private:
  uint64_t le(size_t n) {
    if (!ok()) return 0;
    if (left() < n) {
      fail("truncated");
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string_view in_;
  size_t pos_ = 0;
  std::string err_;
};

std::string frame(Kind kind, std::string payload) {
  Writer h;
  h.out().append(kMagic, sizeof kMagic);
  h.u32(kStateVersion);
  h.u32(static_cast<uint32_t>(kind));
  h.u64(payload.size());
  h.u32(crc32c(payload));
  h.u32(0);
  std::string out = std::move(h.out());
  out += payload;
  return out;
}

std::string_view kIgnoredFix = " (it is ignored; the next successful apply rewrites it)";

// Checks the header and returns the payload.
Result<std::string_view> unframe(std::string_view bytes, Kind want, std::string_view origin) {
  const std::string where = std::string(origin) + ": ";
  if (bytes.size() < kHeaderSize) {
    if (bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
      return data_error(where + "not an amlfw state file (wrong magic)" + std::string(kIgnoredFix));
    return data_error(where + "truncated state file (" + std::to_string(bytes.size()) + " bytes, the header alone is " +
                      std::to_string(kHeaderSize) + ")" + std::string(kIgnoredFix));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    return data_error(where + "not an amlfw state file (wrong magic)" + std::string(kIgnoredFix));
  Reader r(bytes.substr(sizeof kMagic, kHeaderSize - sizeof kMagic));
  const uint32_t version = r.u32();
  const uint32_t kind = r.u32();
  const uint64_t len = r.u64();
  const uint32_t crc = r.u32();
  const uint32_t reserved = r.u32();
  if (version == 0 || version > kStateVersion)
    return data_error(where + "state format version " + std::to_string(version) + " (this amlfw reads version " +
                      std::to_string(kStateVersion) + ")" + std::string(kIgnoredFix));
  if (reserved != 0)
    return data_error(where + "not an amlfw state file (reserved header bytes are set)" + std::string(kIgnoredFix));
  if (kind != static_cast<uint32_t>(want))
    return data_error(where + "a " + std::string(kind_name(kind)) + " state file, expected " +
                      std::string(kind_name(static_cast<uint32_t>(want))) + std::string(kIgnoredFix));
  const uint64_t have = bytes.size() - kHeaderSize;
  if (len != have)
    return data_error(where + (len > have ? "truncated" : "trailing bytes in") + " state file (payload " +
                      std::to_string(have) + " bytes, header says " + std::to_string(len) + ")" +
                      std::string(kIgnoredFix));
  const std::string_view payload = bytes.substr(kHeaderSize);
  if (crc32c(payload) != crc)
    return data_error(where + "corrupt state file (checksum mismatch)" + std::string(kIgnoredFix));
  return payload;
}

Error corrupt(std::string_view origin, const std::string& what) {
  return data_error(std::string(origin) + ": corrupt state file (" + what + ")" + std::string(kIgnoredFix));
}

void put_prefixes(Writer& w, const PrefixSet& s) {
  w.u32(static_cast<uint32_t>(s.v4().size()));
  for (const auto& r : s.v4()) {
    w.u32(r.lo);
    w.u32(r.hi);
  }
  w.u32(static_cast<uint32_t>(s.v6().size()));
  for (const auto& r : s.v6()) {
    w.u128(r.lo);
    w.u128(r.hi);
  }
}

bool get_prefixes(Reader& r, PrefixSet* out) {
  const uint32_t n4 = r.count(8, "IPv4 ranges");
  for (uint32_t i = 0; i < n4 && r.ok(); ++i) {
    Range4 x{r.u32(), 0};
    x.hi = r.u32();
    if (r.ok() && x.lo > x.hi) r.fail("IPv4 range with lo > hi");
    out->add_range4(x);
  }
  const uint32_t n6 = r.count(32, "IPv6 ranges");
  for (uint32_t i = 0; i < n6 && r.ok(); ++i) {
    Range6 x;
    x.lo = r.u128v();
    x.hi = r.u128v();
    if (r.ok() && x.lo > x.hi) r.fail("IPv6 range with lo > hi");
    out->add_range6(x);
  }
  if (!r.ok()) return false;
  out->normalize();
  return true;
}

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

}  // namespace

uint32_t crc32c(std::string_view data, uint32_t crc) {
  const CrcTables& t = crc_tables();
  crc = ~crc;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  while (n >= 8) {
    const uint32_t a = crc ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^
          t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// ---- policy state ----------------------------------------------------------------------

PolicyState policy_state_of(const Config& cfg, const Policy& p, uint64_t generation, int64_t tags_loaded_at,
                            int64_t now) {
  PolicyState s;
  s.config_path = cfg.path;
  s.config_is_default = cfg.is_default;
  s.config_text = cfg.source_text;
  s.saved_at = now;
  s.generation = generation;
  s.tags_origin = p.service_tags_origin;
  s.tags_loaded_at = tags_loaded_at;
  s.tags.cloud = p.service_tags_cloud;
  s.tags.change_number = p.service_tags_change;
  std::vector<std::string> seen;
  for (const auto& r : p.rules) {
    if (r.kind != DestKind::kServiceTag) continue;
    const std::string key = lower(r.dest);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    ServiceTag t;
    t.name = r.dest;
    t.prefix_count = r.prefix_count;
    t.prefixes = r.prefixes;
    s.tags.tags.push_back(std::move(t));
  }
  s.tags.build_index();
  s.upstreams.addrs = p.dns_upstreams;
  s.upstreams.port = p.dns_upstream_port;
  s.cloud = p.cloud;
  s.region = p.region;
  return s;
}

std::string encode_policy_state(const PolicyState& s) {
  Writer w;
  size_t est = s.config_text.size() + 1024;
  for (const auto& t : s.tags.tags) est += 64 + t.prefixes.v4().size() * 8 + t.prefixes.v6().size() * 32;
  w.reserve(est);
  w.str(s.config_path);
  w.u8(s.config_is_default ? 1 : 0);
  w.str(s.config_text);
  w.i64(s.saved_at);
  w.u64(s.generation);
  w.str(s.tags_origin);
  w.i64(s.tags_loaded_at);
  w.str(s.tags.cloud);
  w.u64(s.tags.change_number);
  w.u16(s.upstreams.port);
  w.u32(static_cast<uint32_t>(s.upstreams.addrs.size()));
  for (const auto& a : s.upstreams.addrs) w.addr(a);
  w.str(s.cloud);
  w.str(s.region);
  w.u32(static_cast<uint32_t>(s.tags.tags.size()));
  for (const auto& t : s.tags.tags) {
    w.str(t.name);
    w.str(t.region);
    w.u64(t.change_number);
    w.u64(t.prefix_count);
    put_prefixes(w, t.prefixes);
  }
  return frame(Kind::kPolicy, std::move(w.out()));
}

Result<PolicyState> decode_policy_state(std::string_view bytes, std::string_view origin) {
  auto payload = unframe(bytes, Kind::kPolicy, origin);
  if (!payload.ok()) return payload.error();
  Reader r(*payload);
  PolicyState s;
  s.config_path = r.str(4096, "config path");
  const uint8_t dflt = r.u8();
  if (r.ok() && dflt > 1) r.fail("flag out of range");
  s.config_is_default = dflt == 1;
  s.config_text = r.str(size_t{1} << 20, "config text");
  s.saved_at = r.i64();
  s.generation = r.u64();
  s.tags_origin = r.str(8192, "service-tags origin");
  s.tags_loaded_at = r.i64();
  s.tags.cloud = r.str(256, "cloud");
  s.tags.change_number = r.u64();
  s.upstreams.port = r.u16();
  const uint32_t nup = r.count(5, "upstreams");
  for (uint32_t i = 0; i < nup && r.ok(); ++i) s.upstreams.addrs.push_back(r.addr());
  s.cloud = r.str(64, "cloud");
  s.region = r.str(256, "region");
  const uint32_t ntags = r.count(32, "tags");
  s.tags.tags.reserve(ntags);
  for (uint32_t i = 0; i < ntags && r.ok(); ++i) {
    ServiceTag t;
    t.name = r.str(1024, "tag name");
    t.region = r.str(1024, "tag region");
    t.change_number = r.u64();
    t.prefix_count = r.u64();
    if (r.ok() && t.name.empty()) r.fail("empty tag name");
    if (!get_prefixes(r, &t.prefixes)) break;
    s.tags.tags.push_back(std::move(t));
  }
  if (r.ok() && !r.done()) r.fail(std::to_string(r.left()) + " unread bytes");
  if (!r.ok()) return corrupt(origin, r.error());
  s.tags.build_index();
  return s;
}

Result<CompiledState> compile_state(const PolicyState& s) {
  const std::string where = "saved policy (config " + s.config_path + ")";
  auto cfg = parse_config(s.config_text, s.config_path);
  if (!cfg.ok()) return std::move(cfg).error().context(where);
  cfg->is_default = s.config_is_default;
  // "auto" was resolved at run time: compile for what was found then.
  if (cfg->cloud == Cloud::kAuto)
    if (auto c = parse_cloud(s.cloud); c && *c != Cloud::kAuto) cfg->cloud = *c;
  if (cfg->region == "auto" && !s.region.empty()) cfg->region = s.region;
  const bool has_tags = !s.tags.cloud.empty() || !s.tags.tags.empty();
  auto pol = compile_policy(*cfg, has_tags ? &s.tags : nullptr, s.upstreams, s.tags_origin);
  if (!pol.ok()) return std::move(pol).error().context(where);
  return CompiledState{std::move(*cfg), std::move(*pol)};
}

// ---- learned state -----------------------------------------------------------------------

std::string encode_learned_state(const LearnedState& s) {
  Writer w;
  w.reserve(16 + s.entries.size() * 48);
  w.i64(s.saved_at);
  w.u32(static_cast<uint32_t>(s.entries.size()));
  for (const auto& e : s.entries) {
    w.addr(e.addr);
    w.str(e.name);
    w.i64(e.expires_at);
  }
  return frame(Kind::kLearned, std::move(w.out()));
}

Result<LearnedState> decode_learned_state(std::string_view bytes, std::string_view origin) {
  auto payload = unframe(bytes, Kind::kLearned, origin);
  if (!payload.ok()) return payload.error();
  Reader r(*payload);
  LearnedState s;
  s.saved_at = r.i64();
  const uint32_t n = r.count(17, "entries");
  s.entries.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    LearnedRecord e;
    e.addr = r.addr();
    e.name = r.str(255, "name");
    e.expires_at = r.i64();
    if (r.ok() && e.name.empty()) r.fail("empty name");
    s.entries.push_back(std::move(e));
  }
  if (r.ok() && !r.done()) r.fail(std::to_string(r.left()) + " unread bytes");
  if (!r.ok()) return corrupt(origin, r.error());
  return s;
}

// ---- files -------------------------------------------------------------------------------

Status write_file_atomic(const std::string& dir, std::string_view name, std::string_view data, mode_t mode) {
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) return sys_error("state: mkdir " + dir);
  const std::string final_path = dir + "/" + std::string(name);
  std::string tmp = dir + "/." + std::string(name) + ".XXXXXX";
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) return sys_error("state: create a temporary file in " + dir);
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return sys_error("state: " + what + " " + tmp, err);
  };
  if (::fchmod(fd.get(), mode) != 0) return fail("chmod");
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  if (::close(fd.release()) != 0) return fail("close");
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) return fail("rename to " + final_path + ":");
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::fsync(d.get()) != 0) return sys_error("state: fsync directory " + dir);
  return {};
}

Result<std::optional<std::string>> read_state_file(const std::string& dir, std::string_view name) {
  const std::string path = dir + "/" + std::string(name);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return sys_error("state: open " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return sys_error("state: stat " + path);
  if (!S_ISREG(st.st_mode)) return data_error(path + ": not a regular file (remove it; it is ignored)");
  if (static_cast<uint64_t>(st.st_size) > kMaxStateFile)
    return data_error(path + ": larger than " + std::to_string(kMaxStateFile >> 20) + " MiB" + std::string(kIgnoredFix));
  std::string buf(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < buf.size()) {
    const ssize_t n = ::read(fd.get(), buf.data() + off, buf.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("state: read " + path);
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  buf.resize(off);
  return std::optional<std::string>(std::move(buf));
}

Result<std::optional<PolicyState>> load_policy_state(const std::string& dir) {
  auto bytes = read_state_file(dir, kPolicyStateFile);
  if (!bytes.ok()) return bytes.error();
  if (!*bytes) return std::optional<PolicyState>{};
  auto s = decode_policy_state(**bytes, dir + "/" + std::string(kPolicyStateFile));
  if (!s.ok()) return s.error();
  return std::optional<PolicyState>(std::move(*s));
}

Result<std::optional<LearnedState>> load_learned_state(const std::string& dir) {
  auto bytes = read_state_file(dir, kLearnedNamesStateFile);
  if (!bytes.ok()) return bytes.error();
  if (!*bytes) return std::optional<LearnedState>{};
  auto s = decode_learned_state(**bytes, dir + "/" + std::string(kLearnedNamesStateFile));
  if (!s.ok()) return s.error();
  return std::optional<LearnedState>(std::move(*s));
}

}  // namespace amlfw
