// SPDX-License-Identifier: MIT
// What survives a restart or a reboot (SPEC guarantee 7), kept in paths.state_dir:
//
//   policy.state   the last good configuration (its TOML text), the service-tag ranges the
//                  policy used and the DNS upstreams: enough to compile and enforce the same
//                  policy again with no network. Written after every successful apply.
//   learned.state  addresses learned from DNS answers, with the name and the absolute
//                  (wall-clock) expiry. Written a few seconds after they change, and at stop.
//
// Both files: a 32-byte header (magic "AMLFWST\0", format version, kind, payload length,
// CRC-32C of the payload), then the payload. They are written atomically (temporary file in
// the same directory, fsync, rename, fsync of the directory), and checked whole before any
// of it is used: a corrupt, truncated or foreign file is an error, never half-trusted.
// See docs/operations.md.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/enforcer.h"
#include "daemon/inputs.h"
#include "daemon/learn.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "policy/result.h"
#include "policy/service_tags.h"

namespace amlfw {

inline constexpr std::string_view kPolicyStateFile = "policy.state";
inline constexpr std::string_view kLearnedNamesStateFile = "learned.state";
inline constexpr uint32_t kStateVersion = 1;
// Largest state file read (100k IPv6 ranges are ~3.2 MiB; the config at most 1 MiB).
inline constexpr size_t kMaxStateFile = size_t{256} << 20;

// CRC-32C (Castagnoli), as used by iSCSI/ext4: crc32c("123456789") = 0xE3069283.
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

// ---- the last good policy --------------------------------------------------------------

struct PolicyState {
  std::string config_path;      // where the config came from ("<embedded default>" ...)
  bool config_is_default = false;
  std::string config_text;      // its TOML text
  int64_t saved_at = 0;         // unix seconds
  uint64_t generation = 0;
  std::string tags_origin;      // file or URL the service tags came from
  int64_t tags_loaded_at = 0;   // unix seconds: when that data was loaded
  ServiceTags tags;             // only the tags the policy used (cloud, change number kept)
  DnsUpstreams upstreams;       // as compiled into the policy
  std::string cloud, region;    // as compiled (stand in for cloud/region = "auto" of the text)
};

// The state of a compiled policy: tags and upstreams are taken from the policy itself, so
// what is saved is exactly what was enforced.
PolicyState policy_state_of(const Config& cfg, const Policy& p, uint64_t generation, int64_t tags_loaded_at,
                            int64_t now);

std::string encode_policy_state(const PolicyState& s);
// `origin` names the file in errors. Errors are Exit::kData, one line.
Result<PolicyState> decode_policy_state(std::string_view bytes, std::string_view origin);

// Parses the saved config text and compiles it with the saved tags and upstreams (no DNS,
// no network: the catalog is built in).
struct CompiledState {
  Config config;
  Policy policy;
};
Result<CompiledState> compile_state(const PolicyState& s);

// ---- learned addresses -----------------------------------------------------------------

struct LearnedRecord {
  IpAddr addr;
  std::string name;             // the question the answer was for
  int64_t expires_at = 0;       // unix seconds
};

struct LearnedState {
  int64_t saved_at = 0;
  std::vector<LearnedRecord> entries;
};

std::string encode_learned_state(const LearnedState& s);
Result<LearnedState> decode_learned_state(std::string_view bytes, std::string_view origin);

// The daemon's live view of learned addresses: address -> the names that taught it, with
// their groups and expiry. Bounded: at most `max_addresses` addresses and kMaxNamesPerAddr
// names per address.
class LearnedTable {
 public:
  static constexpr size_t kMaxNamesPerAddr = 8;
  struct Source {
    std::string name;
    std::vector<std::string> groups;
    int64_t expires_at = 0;     // unix seconds
  };

  explicit LearnedTable(size_t max_addresses = 65536) : max_(max_addresses) {}
  void set_limit(size_t max_addresses) { max_ = max_addresses; }

  // Records what was programmed. Returns how many addresses did not fit (table full).
  size_t record(const std::string& name, const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs,
                int64_t now);
  // Drops what expired at `now`. Returns how many addresses went.
  size_t prune(int64_t now);
  // The live sources of `a` (expired ones skipped); nullptr when unknown.
  const std::vector<Source>* find(const IpAddr& a) const;
  size_t size() const { return table_.size(); }
  std::vector<LearnedRecord> records(int64_t now) const;  // unexpired, one per (addr, name)
  void clear() { table_.clear(); }

 private:
  size_t max_;
  std::map<IpAddr, std::vector<Source>> table_;
};

// Learn batches for saved records under `p`: records grouped by the policy's groups for
// their name (names no rule accepts any more are dropped), lifetime = what is left of it
// (expired records dropped), capped at lim.max_ttl_s + lim.grace_s (a clock that jumped
// back never stretches a lifetime).
struct LearnBatch {
  std::vector<std::string> groups;
  std::vector<LearnedAddr> addrs;
  std::vector<std::string> names;  // parallel to addrs
};
std::vector<LearnBatch> learn_batches(const Policy& p, const std::vector<LearnedRecord>& records, int64_t now,
                                      const LearnLimits& lim);

// ---- files -------------------------------------------------------------------------------

// Writes `data` to dir/name atomically: dir/.name.XXXXXX, write, fsync, rename, fsync(dir).
// Creates `dir` (mode 0750) when it is missing. On error the old file is untouched.
Status write_file_atomic(const std::string& dir, std::string_view name, std::string_view data, mode_t mode = 0600);

// Reads dir/name. std::nullopt when it does not exist; an error when it cannot be read.
Result<std::optional<std::string>> read_state_file(const std::string& dir, std::string_view name);

// Reads and decodes; nullopt when there is no file. Errors name the file and say it is ignored.
Result<std::optional<PolicyState>> load_policy_state(const std::string& dir);
Result<std::optional<LearnedState>> load_learned_state(const std::string& dir);

// ---- boot --------------------------------------------------------------------------------

struct RestoreReport {
  std::string state_dir;
  PolicyState state;
  size_t rules = 0;
  size_t prefixes = 0;           // ranges of the enforced groups (v4 + v6, after merging)
  size_t learned = 0;            // learned addresses programmed again
  size_t learned_expired = 0;    // saved ones that had expired
  std::string learned_problem;   // learned.state unusable (one line), "" when fine
  double load_ms = 0, compile_ms = 0, apply_ms = 0, learn_ms = 0;
};
// `amlfw restore`: enforces the last good state of `state_dir` with `e`. No DNS, no network.
// Exit::kRuntime when there is no state (message says so), Exit::kData when it is corrupt.
Result<RestoreReport> restore_state(const std::string& state_dir, Enforcer& e, int64_t now);
// The same with the backend the saved configuration names (`open` gets that configuration).
using BackendFactory = std::function<Result<std::unique_ptr<Enforcer>>(const Config&)>;
Result<RestoreReport> restore_state(const std::string& state_dir, const BackendFactory& open, int64_t now);

int64_t unix_now();

}  // namespace amlfw
