// SPDX-License-Identifier: MIT
#include "daemon/dns_learned.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>

#include "daemon/fd.h"

namespace amlfw {
namespace {

constexpr size_t kMaxStateFile = 64u << 20;

int64_t wall_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool group_token(std::string_view s) {
  if (s.empty() || s.size() > 200) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Status write_all(int fd, const std::string& data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(what + ": write");
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status write_learned_file(const std::string& path, const std::vector<LearnedEntry>& entries) {
  std::string text(kLearnedStateMagic);
  text += '\n';
  for (const auto& e : entries) {
    text += std::to_string(e.expires_unix_s);
    text += ' ';
    text += e.group;
    text += ' ';
    text += e.addr.str();
    text += '\n';
  }
  text += "end " + std::to_string(entries.size()) + "\n";
  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return sys_error(tmp + ": open (is paths.state_dir writable?)");
    AMLFW_TRY(write_all(fd.get(), text, tmp));
    if (::fsync(fd.get()) != 0) return sys_error(tmp + ": fsync");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = sys_error("rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return e;
  }
  Fd dir(::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) (void)::fsync(dir.get());
  return {};
}

Result<std::vector<LearnedEntry>> read_learned_file(const std::string& path) {
  std::vector<LearnedEntry> out;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return out;
    return sys_error(path + ": open");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error(path + ": read");
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxStateFile)
      return data_error(path + ": larger than 64 MiB: not a learned-addresses file (delete it; amlfw writes a new one)");
  }
  const std::string fix = " (delete the file; amlfw writes a new one)";
  auto bad = [&](size_t line, const std::string& what) {
    return data_error(path + ":" + std::to_string(line) + ": " + what + fix);
  };
  size_t pos = 0, line = 0;
  bool ended = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) return bad(line + 1, "incomplete last line (the file was cut)");
    std::string_view l(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++line;
    if (line == 1) {
      if (l == kLearnedStateMagic) continue;
      if (l.rfind("amlfw-learned-addresses ", 0) == 0)
        return bad(1, "format version '" + std::string(l.substr(24)) + "' is not supported by this amlfw (1)");
      return bad(1, "not an amlfw learned-addresses file");
    }
    if (ended) return bad(line, "data after the end line");
    if (l.rfind("end ", 0) == 0) {
      size_t n = 0;
      auto sv = l.substr(4);
      auto [p, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), n);
      if (ec != std::errc() || p != sv.data() + sv.size()) return bad(line, "bad end line");
      if (n != out.size())
        return bad(line, "end line counts " + std::to_string(n) + " entries, the file has " + std::to_string(out.size()));
      ended = true;
      continue;
    }
    size_t s1 = l.find(' ');
    size_t s2 = s1 == std::string_view::npos ? s1 : l.find(' ', s1 + 1);
    if (s2 == std::string_view::npos || l.find(' ', s2 + 1) != std::string_view::npos)
      return bad(line, "expected '<expiry> <group> <address>'");
    LearnedEntry e;
    auto ts = l.substr(0, s1);
    auto [p, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), e.expires_unix_s);
    if (ec != std::errc() || p != ts.data() + ts.size() || e.expires_unix_s < 0) return bad(line, "bad expiry time");
    e.group = std::string(l.substr(s1 + 1, s2 - s1 - 1));
    if (!group_token(e.group)) return bad(line, "bad group name");
    auto a = IpAddr::parse(l.substr(s2 + 1));
    if (!a) return bad(line, "bad address");
    e.addr = *a;
    out.push_back(std::move(e));
  }
  if (line == 0) return bad(1, "empty file");
  if (!ended) return bad(line, "no end line (the file was cut)");
  return out;
}

// ---- DnsLearner --------------------------------------------------------------------------

DnsLearner::DnsLearner(Enforcer& enforcer, GroupsFn groups, LearnLimits limits, uint32_t max_learned)
    : enforcer_(enforcer), groups_(std::move(groups)), limits_(limits), max_learned_(max_learned) {}

void DnsLearner::set_limits(LearnLimits limits, uint32_t max_learned) {
  limits_ = limits;
  max_learned_ = max_learned;
}

uint32_t DnsLearner::group_index(const std::string& g) {
  auto it = group_ids_.find(g);
  if (it != group_ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(group_names_.size());
  group_names_.push_back(g);
  group_ids_.emplace(g, id);
  return id;
}

void DnsLearner::notice(const std::string& line) {
  if (notice_) notice_(line);
}

std::optional<DnsLearner::Clock::time_point> DnsLearner::expiry(const std::string& group, const IpAddr& a) const {
  auto g = group_ids_.find(group);
  if (g == group_ids_.end()) return std::nullopt;
  auto it = table_.find(Key{g->second, a});
  if (it == table_.end()) return std::nullopt;
  return it->second;
}

Status DnsLearner::learn(std::string_view name, const std::vector<std::string>& groups,
                         const std::vector<std::pair<IpAddr, uint32_t>>& answers) {
  if (groups.empty() || answers.empty()) return {};
  const LearnPlan plan = plan_learning(answers, limits_);
  if (plan.refused_special > 0) {
    stats_.refused_special += plan.refused_special;
    notice(std::string(name) + ": " + std::to_string(plan.refused_special) +
           " special-use address(es) in the answer not learned (DNS rebinding; dns.allow_private = false)");
  }
  if (plan.over_limit > 0) {
    stats_.over_name_bound += plan.over_limit;
    notice(std::string(name) + ": " + std::to_string(plan.over_limit) +
           " address(es) beyond dns.max_addresses_per_name = " + std::to_string(limits_.max_per_name) + " not learned");
  }
  if (plan.addrs.empty()) return {};
  std::vector<uint32_t> gids;
  gids.reserve(groups.size());
  for (const auto& g : groups) gids.push_back(group_index(g));

  const auto now = Clock::now();
  std::vector<LearnedAddr> send;
  send.reserve(plan.addrs.size());
  size_t new_entries = 0, refused_total = 0;
  bool pruned = false;
  for (const auto& la : plan.addrs) {
    const auto until = now + std::chrono::seconds(la.timeout_s);
    bool need = false;
    size_t missing = 0;
    for (uint32_t g : gids) {
      auto it = table_.find(Key{g, la.addr});
      if (it == table_.end()) {
        need = true;
        ++missing;
      } else if (it->second + renew_slack_ < until) {
        need = true;
      }
    }
    if (!need) {
      ++stats_.renewals_skipped;
      continue;
    }
    if (missing > 0 && table_.size() + new_entries + missing > max_learned_) {
      if (!pruned) {
        prune();
        pruned = true;
      }
      if (table_.size() + new_entries + missing > max_learned_) {
        ++refused_total;
        continue;
      }
    }
    new_entries += missing;
    send.push_back(la);
  }
  if (refused_total > 0) {
    stats_.over_total_bound += refused_total;
    notice(std::string(name) + ": " + std::to_string(refused_total) + " address(es) not learned: dns.max_learned = " +
           std::to_string(max_learned_) + " addresses are learned already");
  }
  if (send.empty()) return {};
  Status s = enforcer_.learn(groups, send);
  if (!s.ok()) {
    ++stats_.learn_failures;
    return s;
  }
  for (const auto& la : send) {
    const auto until = now + std::chrono::seconds(la.timeout_s);
    for (uint32_t g : gids) {
      auto [it, inserted] = table_.try_emplace(Key{g, la.addr}, until);
      if (!inserted && it->second < until) it->second = until;
    }
  }
  ++stats_.answers_learned;
  stats_.addrs_learned += send.size() * gids.size();
  dirty_ = true;
  return {};
}

Result<size_t> DnsLearner::restore(const std::vector<LearnedEntry>& entries, const std::vector<std::string>& live_groups) {
  const int64_t wall = wall_now_s();
  const auto now = Clock::now();
  std::map<std::string, std::vector<LearnedAddr>> by_group;
  size_t skipped_total = 0;
  size_t count = table_.size();
  for (const auto& e : entries) {
    if (e.expires_unix_s <= wall) continue;
    if (std::find(live_groups.begin(), live_groups.end(), e.group) == live_groups.end()) continue;
    if (expiry(e.group, e.addr)) continue;  // known already
    if (count >= max_learned_) {
      ++skipped_total;
      continue;
    }
    const int64_t left = e.expires_unix_s - wall;
    const auto life = static_cast<uint32_t>(std::min<int64_t>(left, 0xffffffffu / 1000));
    by_group[e.group].push_back(LearnedAddr{e.addr, life});
    ++count;
  }
  if (skipped_total > 0) {
    stats_.over_total_bound += skipped_total;
    notice("state file: " + std::to_string(skipped_total) + " learned address(es) beyond dns.max_learned = " +
           std::to_string(max_learned_) + " not restored");
  }
  size_t done = 0;
  for (const auto& [g, addrs] : by_group) {
    Status s = enforcer_.learn({g}, addrs);
    if (!s.ok()) return std::move(s).error().context("restore learned addresses of group '" + g + "'");
    const uint32_t gid = group_index(g);
    for (const auto& la : addrs) table_[Key{gid, la.addr}] = now + std::chrono::seconds(la.timeout_s);
    done += addrs.size();
  }
  return done;
}

size_t DnsLearner::prune() {
  const auto now = Clock::now();
  const size_t n = std::erase_if(table_, [&](const auto& kv) { return kv.second <= now; });
  if (n > 0) dirty_ = true;
  return n;
}

std::vector<LearnedEntry> DnsLearner::snapshot() const {
  const auto now = Clock::now();
  const int64_t wall = wall_now_s();
  std::vector<LearnedEntry> out;
  out.reserve(table_.size());
  for (const auto& [k, until] : table_) {
    if (until <= now) continue;
    const auto left = std::chrono::ceil<std::chrono::seconds>(until - now).count();
    out.push_back(LearnedEntry{group_names_[k.group], k.addr, wall + left});
  }
  std::sort(out.begin(), out.end(), [](const LearnedEntry& a, const LearnedEntry& b) {
    return std::tie(a.group, a.addr, a.expires_unix_s) < std::tie(b.group, b.addr, b.expires_unix_s);
  });
  return out;
}

}  // namespace amlfw
