// SPDX-License-Identifier: MIT
// The nftables Enforcer: table `inet amlfw` programmed through libnftnl + libmnl, every
// change one netlink transaction. See docs/nftables.md for the table layout.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/enforcer.h"
#include "daemon/nft_batch.h"
#include "daemon/nft_netlink.h"

namespace amlfw {

// What the last transaction did (tests, benchmarks, `amlfw status`).
struct NftApplyReport {
  bool adopted = false;         // first apply of the process: read the kernel and reconciled
  bool table_created = false;
  bool rules_rewritten = false; // some chains flushed and their rules re-added
  size_t chains_rewritten = 0;  // chains whose rules were (re)added
  bool nothing_to_do = false;   // no batch was sent
  NftBatchStats batch;
};

class NftBackend final : public Enforcer {
 public:
  static Result<std::unique_ptr<NftBackend>> create();

  std::string_view name() const override { return "nftables"; }
  Status apply(const Policy& p, const std::vector<PortGroup>& groups) override;
  Status learn(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) override;
  Status flush() override;

  // Reads table inet amlfw back from the kernel. Rules of the dispatch and group chains
  // (out_*, in_*, g_*) are reported under the hook chain that reaches them (output, input):
  // counters are per hook chain and rule comment, whatever the layout.
  Result<NftTableDump> read_back(const NftDumpOptions& opts = {});
  const NftApplyReport& last_report() const { return report_; }

 private:
  using Clock = std::chrono::steady_clock;
  explicit NftBackend(NftSocket sock) : sock_(std::move(sock)) {}

  struct SetState {
    NftSetKind kind = NftSetKind::kPlain;
    bool v6 = false;
    PrefixSet prefixes;                         // kPrefixes (one family)
    std::vector<IpAddr> addrs;                  // kPlain
    std::map<IpAddr, Clock::time_point> learned;  // kLearned: expiry as we know it
  };
  struct ChainState {
    // What the chain is hooked as: a regular chain (no hook), or its hook number and type.
    bool regular = false;
    uint32_t hook = 0;
    std::string type;
    std::vector<std::string> rule_texts;
    bool same_kind(const ChainState& o) const { return regular == o.regular && hook == o.hook && type == o.type; }
  };
  struct State {
    std::map<std::string, SetState> sets;
    std::map<std::string, ChainState> chains;
    std::vector<std::string> name_groups;       // groups with learned-address sets
  };

  Status apply_once(const Policy& p, const std::vector<PortGroup>& groups, bool* retry);
  Status send(NftBatch& b, int* err = nullptr, uint32_t* failed_seq = nullptr);
  Status learn_once(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs, bool* retry);

  NftSocket sock_;
  bool synced_ = false;  // state_ is what the kernel holds
  bool applied_ = false; // state_ comes from a successful apply (learn may use it)
  State state_;
  NftApplyReport report_;
  static constexpr auto kPruneEvery = std::chrono::seconds(5);
  Clock::time_point last_prune_{};  // learn_once(): expired learned entries last forgotten
};

}  // namespace amlfw
