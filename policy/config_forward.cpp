// SPDX-License-Identifier: MIT
// [egress] and [forward]: which traffic the policy applies to on a node that routes pods or
// containers (docs/kubernetes.md, docs/configuration.md), and the checks across them.
#include <algorithm>
#include <cctype>

#include "policy/config_parser.h"

namespace amlfw::config_internal {
namespace {

constexpr size_t kIfNameMax = 15;  // IFNAMSIZ - 1

// Linux interface names as nft matches them: 1-15 bytes of letters, digits, '.', '_', '-'
// (the kernel also refuses '/', ':' and spaces), optionally ending in '*' (a prefix, as nft's
// iifname "cali*").
bool is_interface_pattern(std::string_view s) {
  std::string_view name = s;
  if (!name.empty() && name.back() == '*') name.remove_suffix(1);
  if (name.empty() || name.size() > kIfNameMax || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

void ConfigParser::parse_egress(const toml::node& n, const std::string& path) {
  walk(n, path,
       {{"local",
         [this](const toml::node& v, const std::string& p) {
           local_node_ = &v;
           bool_key(&cfg_.egress.local)(v, p);
         }}},
       "[egress]");
}

void ConfigParser::parse_forward(const toml::node& n, const std::string& path) {
  auto& f = cfg_.forward;
  auto interfaces = [this, &f](const toml::node& v, const std::string& p) {
    interfaces_node_ = &v;
    f.interfaces.clear();
    strings_of(v, p, "\"cni0\"", [&](const toml::node& el, const std::string& s) {
      if (s == "*") {
        fail(el, p,
             "'*' would take every forwarded packet for a pod's (name the pods' interfaces, e.g. \"cni0\" or "
             "\"cali*\", or list their CIDRs in sources)");
        return;
      }
      if (!is_interface_pattern(s)) {
        fail(el, p,
             quote(s) + " is not an interface name (use 1 to 15 letters, digits, '.', '_' or '-', with an "
                        "optional trailing '*' for a prefix, e.g. \"cni0\" or \"cali*\")");
        return;
      }
      if (std::find(f.interfaces.begin(), f.interfaces.end(), s) == f.interfaces.end()) f.interfaces.push_back(s);
    });
  };
  auto sources = [this, &f](const toml::node& v, const std::string& p) {
    sources_node_ = &v;
    f.sources.clear();
    strings_of(v, p, "\"10.244.0.0/16\"", [&](const toml::node& el, const std::string& s) {
      auto pfx = Prefix::parse(s, true);
      if (!pfx) {
        fail(el, p, with_fix(pfx.error().message, "write the pods' CIDR such as \"10.244.0.0/16\""));
        return;
      }
      const std::string text = pfx->str();
      if (std::find(f.sources.begin(), f.sources.end(), text) == f.sources.end()) f.sources.push_back(text);
    });
  };
  walk(n, path,
       {{"interfaces", interfaces},
        {"sources", sources},
        {"dns_redirect",
         [this, &f](const toml::node& v, const std::string& p) {
           dns_redirect_node_ = &v;
           bool_key(&f.dns_redirect)(v, p);
         }}},
       "[forward]");
}

// Settings that contradict each other are refused rather than half applied. Each message
// is placed on the key that asks for the impossible.
void ConfigParser::check_forward() {
  const auto& f = cfg_.forward;
  const bool ebpf = cfg_.backend == Backend::kEbpf;
  if (ebpf && (f.enabled() || f.dns_redirect)) {
    const toml::node* at = !f.interfaces.empty() ? interfaces_node_ : !f.sources.empty() ? sources_node_ : dns_redirect_node_;
    if (at != nullptr) {
      fail(*at, "forward",
           "the eBPF backend confines pods by their cgroup, not by forwarded traffic (set [ebpf] cgroup to the "
           "pods' subtree, e.g. \"/sys/fs/cgroup/kubepods.slice\", and remove [forward]; or use backend = \"nftables\")");
    }
  }
  if (!ebpf && f.dns_redirect && dns_redirect_node_ != nullptr) {
    if (!f.enabled()) {
      fail(*dns_redirect_node_, "forward",
           "dns_redirect needs to know the pods' traffic (list their interfaces or sources in [forward])");
    } else if (auto a = parse_socket_address(cfg_.dns.listen); a.ok()) {
      const bool loopback = a->addr.v6 ? a->addr.value == 1 : (a->addr.v4value() >> 24) == 127;
      const bool wildcard = a->addr.value == 0;
      if (loopback || wildcard) {
        fail(*dns_redirect_node_, "forward",
             "the pods' DNS cannot be redirected to the proxy on " + quote(cfg_.dns.listen) + " (set [dns] listen " +
                 "to an address of the node that the pods reach, e.g. the bridge's \"10.244.0.1:53\")");
      }
    }
  }
  if (!cfg_.egress.local && local_node_ != nullptr) {
    // The root, as written (a cgroup refused by its own check is not the root).
    const auto* cg = cgroup_node_ != nullptr ? cgroup_node_->as_string() : nullptr;
    const bool root = cgroup_node_ == nullptr || (cg != nullptr && cg->get().empty());
    if (ebpf && root) {
      fail(*local_node_, "egress",
           "local = false, but with backend = \"ebpf\" and [ebpf] cgroup = \"\" every process of the node is "
           "filtered (set [ebpf] cgroup to the pods' subtree, e.g. \"/sys/fs/cgroup/kubepods.slice\", or local = true)");
    } else if (!ebpf && !f.enabled()) {
      fail(*local_node_, "egress",
           "local = false and [forward] names no pods: nothing would be filtered (list the pods' interfaces or "
           "sources in [forward], or set local = true)");
    }
  }
}

}  // namespace amlfw::config_internal
