#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `amlfw flush` removes every trace of enforcement and gives everything back; it succeeds
# again when there is nothing left to remove, and on a machine that never ran amlfw.
# After a flush, apply works again.
source "$(dirname "$0")/lib.sh"
e2e_init "$@"
topo_up

section "flush on a machine where amlfw never ran"
expect_rc 0 "amlfw flush with nothing installed" af flush
expect_eq "" "$(hx nft list tables)" "no table created by a flush"

section "apply, then flush"
expect_rc 0 "amlfw apply" af apply
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "enforced: unlisted"
expect_blocked "$E2E_ST_EUS_V4" 443 tcp "enforced: Storage.EastUS"
expect_rc 0 "amlfw flush" af flush
expect_eq "" "$(hx nft list tables)" "no table left in the host namespace"
is_ebpf && expect_true "eBPF: no pin left, no program on the test cgroup" enforcement_absent
expect_eq "" "$(hx nft list ruleset)" "empty ruleset"
expect_connect "$E2E_UNLISTED_V4" 8080 tcp "after flush: unlisted"
expect_connect "$E2E_UNLISTED_V6" 8080 tcp "after flush: unlisted IPv6"
expect_connect "$E2E_ST_EUS_V4" 443 tcp "after flush: Storage.EastUS"
expect_connect "$E2E_OTHER_DNS_V4" 53 udp "after flush: any DNS server"
expect_connect "$E2E_AML_WE_V4" 443 tcp "after flush: AzureMachineLearning"

section "flush again: idempotent"
expect_rc 0 "second amlfw flush" af flush
expect_rc 0 "third amlfw flush" af flush
expect_eq "" "$(hx nft list ruleset)" "still empty"

section "apply after flush"
expect_rc 0 "amlfw apply" af apply
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "enforced again"
expect_connect "$E2E_AML_WE_V4" 443 tcp "allowed again"

section "flush while the daemon runs, then stop it"
expect_rc 0 "amlfw flush" af flush
daemon_start
if daemon_wait_ready 15; then ok "amlfw run is ready"; else bad "amlfw run did not become ready"; fi
expect_blocked "$E2E_UNLISTED_V4" 8080 tcp "the daemon enforces"
daemon_stop
expect_rc 0 "amlfw flush after the daemon stopped" af flush
is_ebpf && expect_true "eBPF: no pin left, no program on the test cgroup" enforcement_absent
expect_eq "" "$(hx nft list ruleset)" "empty ruleset"
expect_connect "$E2E_UNLISTED_V4" 8080 tcp "open after flush"
e2e_finish
