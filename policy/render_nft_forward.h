// SPDX-License-Identifier: MIT
// Internal to render_nft.cpp: the chains of [forward] (docs/kubernetes.md, docs/nftables.md).
#pragma once

#include <vector>

#include "policy/render_nft.h"

namespace amlfw {

// Adds, after the hook chains built so far, the forward hook chain and the regular chain
// "pods" (the output chain's rules without its loopback and established rules: the same
// dispatch, groups and end), and with [forward] dns_redirect the prerouting nat chain
// "pods_dns". Nothing without [forward] interfaces or sources.
void nft_add_forward_chains(const Policy& p, const NftChainSpec& output, std::vector<NftChainSpec>* chains);

// Input-chain rules (inbound.enforce) that let the pods reach the DNS proxy on a node address
// (CoreDNS forwarding to it, or their redirected DNS). Empty without [forward] pods, or when the
// proxy listens on loopback.
std::vector<NftRuleSpec> nft_pods_proxy_rules(const Policy& p);

// The matches that say "a pod's packet": one list per input interface and per source prefix.
std::vector<std::vector<NftMatch>> nft_pod_matches(const Policy& p);

}  // namespace amlfw
