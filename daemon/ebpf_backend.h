// SPDX-License-Identifier: MIT
// The eBPF Enforcer: the compiled policy as cgroup programs (bpf/amlfw.bpf.c) attached to
// the configured cgroup through bpf_links, with programs, links and maps pinned under the
// pin directory so that enforcement outlives the process. See docs/ebpf.md.
//
//   EbpfOptions o;
//   o.cgroup = config.ebpf.cgroup;                     // "" = the cgroup v2 root
//   auto be = EbpfBackend::create(o);                  // probes the kernel, resolves the cgroup
//   (*be)->apply(policy, group_rules(policy));         // first call: adopts the pins, reconciles
//
// Every policy change is built aside in the inactive slot of the outer maps and switched in
// with one write to amlfw_active; a restarted process reuses the pinned maps, switches to a
// fresh generation the same way, and moves the pinned links to its own programs with
// bpf_link_update (atomic per hook). Learned addresses are added one by one to the active
// generation's hash maps with an expiry the programs honour; collect_garbage() deletes
// expired ones (learn() does it too when a map is full).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/ebpf_image.h"
#include "daemon/ebpf_learned.h"
#include "daemon/ebpf_object.h"
#include "daemon/ebpf_sys.h"
#include "daemon/enforcer.h"
#include "daemon/fd.h"

namespace amlfw {

struct EbpfOptions {
  std::string cgroup;                           // [ebpf] cgroup (Config::ebpf.cgroup)
  std::string pin_dir = ebpf_pin_dir();          // kEbpfPinDir unless AMLFW_EBPF_PIN_DIR
  EbpfTunables tunables;
};

// What the last apply() did (tests, benchmarks, `amlfw status`).
struct EbpfApplyReport {
  bool adopted = false;        // first apply of the process took over pinned maps
  bool fresh_maps = false;     // new maps (first install, or pins of another layout replaced)
  bool nothing_to_do = false;  // the same policy is installed: no new generation
  uint64_t generation = 0;
  uint32_t slot = 0;
  uint32_t groups = 0;
  EbpfFillStats fill;
  size_t links_created = 0;    // new attachments
  size_t links_updated = 0;    // pinned links moved to this process's programs
  size_t links_replaced = 0;   // pinned links of another cgroup detached after the new ones
  double load_ms = 0;           // open + verifier (first apply only)
  double fill_ms = 0;           // new inner maps created and filled, learned carried over
  double ms = 0;                // the whole apply
};

// What is pinned now (any process may read it): `ebpf_tool dump`, tests, `amlfw status`.
struct EbpfSnapshot {
  amlfw_active active{};
  amlfw_conf conf{};
  std::vector<EbpfLearnedEntry> learned;  // expired ones included
  std::vector<uint64_t> counters;         // amlfw_stats summed over CPUs
  struct Link {
    std::string name;                     // the pin (the program's name)
    uint64_t cgroup_id = 0;
    uint32_t attach_type = 0;
    uint32_t prog_id = 0;
  };
  std::vector<Link> links;
};

class EbpfBackend final : public Enforcer {
 public:
  // Probes the kernel (program types, map types, helpers: the error names what is missing),
  // resolves the cgroup (Exit::kUsage when it is not a cgroup v2 directory). Touches nothing.
  static Result<std::unique_ptr<EbpfBackend>> create(const EbpfOptions& opts);

  std::string_view name() const override { return "ebpf"; }
  Status apply(const Policy& p, const std::vector<PortGroup>& groups) override;
  Status learn(const std::vector<std::string>& groups, const std::vector<LearnedAddr>& addrs) override;
  // Detaches every pinned link and removes the pin directory. Idempotent.
  Status flush() override;
  // The same without a backend object (no probe, no cgroup): for `amlfw flush`.
  static Status remove_pins(const std::string& pin_dir = ebpf_pin_dir());

  // Reads the pinned state (error when nothing is pinned).
  static Result<EbpfSnapshot> inspect(const std::string& pin_dir = ebpf_pin_dir());

  // Deletes expired learned addresses of the active generation (this process's, or the
  // pinned one before any apply); returns how many.
  Result<size_t> collect_garbage();
  // The learned addresses of the active generation (expired ones included).
  Result<std::vector<EbpfLearnedEntry>> learned();
  // amlfw_stats summed over CPUs, indexed hook * AMLFW_STAT_PER_HOOK + counter.
  Result<std::vector<uint64_t>> counters();

  const EbpfApplyReport& last_report() const { return report_; }
  const std::string& cgroup_path() const { return cgroup_path_; }
  uint64_t cgroup_id() const { return cgroup_id_; }
  uint64_t generation() const { return generation_; }
  const std::string& pin_dir() const { return opts_.pin_dir; }

 private:
  EbpfBackend(EbpfOptions opts, std::string cgroup_path, Fd cgroup_fd, uint64_t cgroup_id)
      : opts_(std::move(opts)), cgroup_path_(std::move(cgroup_path)), cgroup_fd_(std::move(cgroup_fd)),
        cgroup_id_(cgroup_id) {}

  Status apply_locked(const EbpfImage& img);
  Status attach_all();
  Status pin_maps();
  // Re-reads the active generation when another process changed it; false when the pins
  // are not this process's maps any more (flushed or replaced).
  Result<bool> sync_locked();
  void reset();

  EbpfOptions opts_;
  std::string cgroup_path_;
  Fd cgroup_fd_;
  uint64_t cgroup_id_ = 0;

  std::unique_ptr<EbpfObject> obj_;  // null until the first apply, and after flush
  std::vector<Fd> links_;
  EbpfGeneration gen_;               // the active generation's inner maps
  amlfw_conf conf_{};
  std::optional<EbpfImage> image_;   // what this process installed last
  uint32_t slot_ = 0;
  uint64_t generation_ = 0;
  EbpfApplyReport report_;
};

}  // namespace amlfw
