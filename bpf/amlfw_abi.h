/* SPDX-License-Identifier: MIT */
/*
 * The ABI between the eBPF programs (bpf/amlfw.bpf.c) and userspace (daemon/ebpf_*.cpp).
 * C, fixed-width types, explicit values. Numbers here are stable: reason codes, hooks and
 * counters are never renumbered (new ones get new numbers); a layout change bumps
 * AMLFW_ABI_VERSION, which a restarted daemon compares before it adopts pinned maps.
 * docs/ebpf.md describes the maps and the decision.
 */
#ifndef AMLFW_BPF_ABI_H
#define AMLFW_BPF_ABI_H

#include <linux/types.h>

#define AMLFW_ABI_VERSION 2          /* 2: dns.redirect (amlfw_conf.redirect_*, amlfw_dns_orig) */

/* Limits of one policy generation. */
#define AMLFW_MAX_GROUPS 64        /* bits of a group bitmap (__u64) */
#define AMLFW_MAX_PORT_RANGES 16   /* port ranges of one group */
#define AMLFW_LPM_MAX 262144       /* prefixes per family and generation (no prealloc) */
#define AMLFW_LEARN_MAX 262144     /* learned addresses per family (no prealloc) */
#define AMLFW_FLOW_MAX 65536       /* UDP flows remembered for replies (LRU) */
#define AMLFW_DNS_ORIG_MAX 65536   /* UDP sockets whose DNS was redirected (LRU, by socket cookie) */
#define AMLFW_EVENTS_BYTES (256 * 1024)
#define AMLFW_SLOTS 2              /* generations held: the active one and the one built aside */
#define AMLFW_PORTS_PER_PROTO 65536 /* amlfw_ports: index = (proto == UDP) * 65536 + port */

/* amlfw_conf.flags */
#define AMLFW_F_AUDIT (1u << 0)    /* log would-be denials, deny nothing */
#define AMLFW_F_INBOUND (1u << 1)  /* filter inbound (inbound.enforce) */
#define AMLFW_F_DNS_REDIRECT (1u << 2) /* dns.redirect: port 53 goes to the proxy (redirect_*) */

/* The SO_MARK of the DNS proxy's upstream sockets (kDnsProxyMark, policy/render_nft.h):
 * their queries are not redirected to the proxy itself. */
#define AMLFW_DNS_PROXY_MARK 0x616d6c66u
#define AMLFW_DNS_PORT 53

enum amlfw_direction {
	AMLFW_DIR_EGRESS = 0,
	AMLFW_DIR_INGRESS = 1,
};

/* amlfw_group.proto: IP protocol numbers; 0 is TCP or UDP (the policy's "any"). */
#define AMLFW_PROTO_ANY 0
#define AMLFW_PROTO_TCP 6
#define AMLFW_PROTO_UDP 17

enum amlfw_group_kind {
	AMLFW_GROUP_POLICY = 0,    /* a PortGroup of the compiled policy */
	AMLFW_GROUP_DNS = 1,       /* the configured resolvers on the DNS port */
	AMLFW_GROUP_PLATFORM = 2,  /* 168.63.129.16, 169.254.169.254 (platform.azure) */
	AMLFW_GROUP_PROXY = 3,     /* the DNS proxy when it listens on a non-loopback address */
	AMLFW_GROUP_LOCAL = 4,     /* the host's own addresses (what nftables sees leave through lo) */
};

struct amlfw_port_range {
	__u16 lo;
	__u16 hi;
};

struct amlfw_group {
	__u8 direction;            /* enum amlfw_direction */
	__u8 proto;                /* AMLFW_PROTO_* */
	__u8 nports;               /* 0: every port */
	__u8 kind;                 /* enum amlfw_group_kind */
	__u8 has_names;            /* learned addresses may carry this bit */
	__u8 pad[3];
	__u64 name_hash;           /* FNV-1a 64 of the group name: maps bits across generations */
	struct amlfw_port_range ports[AMLFW_MAX_PORT_RANGES];
};

/* One generation's settings and group descriptors: the single value of amlfw_i_conf.
 * The programs read the masks and flags; the descriptors say what each bit is (userspace
 * maps learned bits across generations by name_hash; `bpftool map dump` shows them). The
 * port ranges are compiled into the generation's port table (amlfw_ports). */
struct amlfw_conf {
	__u32 abi;                 /* AMLFW_ABI_VERSION */
	__u32 flags;               /* AMLFW_F_* */
	__u64 generation;
	__u32 ngroups;
	__u16 dns_port;            /* for the reason code AMLFW_REASON_DNS */
	__u16 pad;
	__u64 egress_mask;         /* groups of each direction */
	__u64 ingress_mask;
	__u64 names_mask;          /* groups whose bits learned addresses may carry */
	/* dns.redirect (AMLFW_F_DNS_REDIRECT): connect()/sendmsg() to port 53 of another
	 * address of this family go to redirect_addr:redirect_port (the proxy, dns.listen). */
	__u8 redirect_family;      /* 4 or 6; 0 without redirect */
	__u8 pad2;
	__u16 redirect_port;       /* host order */
	__u32 pad3;
	__u8 redirect_addr[16];    /* network order; IPv4 in the first 4 bytes */
	struct amlfw_group groups[AMLFW_MAX_GROUPS];
};

/* The one element of amlfw_active: which slot of the outer maps the programs read. */
struct amlfw_active {
	__u32 slot;                /* 0 or 1 */
	__u32 abi;
	__u64 generation;
};

struct amlfw_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];              /* network order */
};

struct amlfw_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Learned addresses (keys: 4 or 16 network-order bytes). */
struct amlfw_learned {
	__u64 expires_ns;          /* CLOCK_MONOTONIC (bpf_ktime_get_ns); expired = absent */
	__u64 groups;              /* group bitmap of the generation that holds this map */
};

/* UDP exchanges, so that replies pass: inbound datagrams let the answer out, outbound
 * ones (with AMLFW_F_INBOUND) let the answer in. */
struct amlfw_flow_key {
	__u8 family;               /* 4 or 6 */
	__u8 pad;
	__u16 lport;               /* host order */
	__u16 rport;               /* host order */
	__u16 pad2;
	__u8 raddr[16];
};

/* amlfw_dns_orig: socket cookie -> where a redirected UDP socket meant to send its DNS,
 * so that recvmsg4/6 show the answer as coming from there (resolvers check the source). */
struct amlfw_dns_orig {
	__u8 addr[16];             /* network order, as the socket's family sees it (IPv4: 4 bytes;
	                            * an AF_INET6 socket: 16, IPv4-mapped included) */
	__u16 port;                /* network order */
	__u8 family;               /* the socket's family: 4 or 6 */
	__u8 pad[5];
};

/* Stable reason codes of a denial (never renumbered). */
enum amlfw_reason {
	AMLFW_REASON_NONE = 0,
	AMLFW_REASON_NO_MATCH = 1,   /* the address is in no group of this direction */
	AMLFW_REASON_PORT = 2,       /* the address is allowed, but not for this port or protocol */
	AMLFW_REASON_EXPIRED = 3,    /* learned from DNS, but its lifetime has passed */
	AMLFW_REASON_DNS = 4,        /* DNS to a server that is not a configured resolver */
	AMLFW_REASON_PROTO = 5,      /* neither TCP nor UDP (raw socket, ping, ...) */
	AMLFW_REASON_NO_POLICY = 6,  /* no generation installed: fail closed */
	AMLFW_REASON_MALFORMED = 7,  /* the packet could not be parsed */
};

/* Where a decision was taken (stable). */
enum amlfw_hook {
	AMLFW_HOOK_CONNECT4 = 1,
	AMLFW_HOOK_CONNECT6 = 2,
	AMLFW_HOOK_SENDMSG4 = 3,
	AMLFW_HOOK_SENDMSG6 = 4,
	AMLFW_HOOK_EGRESS = 5,
	AMLFW_HOOK_INGRESS = 6,
	AMLFW_HOOK_MAX = 7,
};

/* amlfw_stats: a per-CPU array indexed by hook * AMLFW_STAT_PER_HOOK + counter. */
enum amlfw_stat {
	AMLFW_STAT_ALLOW = 0,        /* allowed by a group or a base rule */
	AMLFW_STAT_DENY = 1,         /* denied (enforce) */
	AMLFW_STAT_AUDIT = 2,        /* would have been denied (audit) */
	AMLFW_STAT_LOST = 3,         /* an event did not fit in the ring buffer */
	AMLFW_STAT_PER_HOOK = 4,
};
#define AMLFW_STATS_MAX ((int)AMLFW_HOOK_MAX * (int)AMLFW_STAT_PER_HOOK)

/* One ring-buffer record: a denied (or, in audit mode, would-be-denied) connection,
 * datagram or packet. pid and comm are 0 and empty for the packet hooks (the packet may
 * be sent from softirq context); cgroup_id is the socket's cgroup there. */
struct amlfw_event {
	__u64 ts_ns;                 /* CLOCK_MONOTONIC */
	__u64 cgroup_id;
	__u64 generation;
	__u32 pid;                   /* thread group id */
	__u32 reason;                /* enum amlfw_reason */
	__u8 comm[16];
	__u8 addr[16];               /* the remote address: destination (egress), source (ingress) */
	__u16 port;                  /* destination port, host order (ingress: the local port) */
	__u8 family;                 /* 4 or 6 */
	__u8 proto;                  /* IP protocol */
	__u8 hook;                   /* enum amlfw_hook */
	__u8 audit;                  /* 1: audit mode, the traffic went through */
	__u8 direction;              /* enum amlfw_direction */
	__u8 pad;
};

/* The same layout on both sides (clang -target bpf and g++). */
#ifdef __cplusplus
#define AMLFW_ABI_ASSERT static_assert
#else
#define AMLFW_ABI_ASSERT _Static_assert
#endif
AMLFW_ABI_ASSERT(sizeof(struct amlfw_group) == 80, "amlfw_group layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_conf) == 72 + 80 * AMLFW_MAX_GROUPS, "amlfw_conf layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_active) == 16, "amlfw_active layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_lpm4_key) == 8, "amlfw_lpm4_key layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_lpm6_key) == 20, "amlfw_lpm6_key layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_learned) == 16, "amlfw_learned layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_flow_key) == 24, "amlfw_flow_key layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_event) == 72, "amlfw_event layout");
AMLFW_ABI_ASSERT(sizeof(struct amlfw_dns_orig) == 24, "amlfw_dns_orig layout");

#endif /* AMLFW_BPF_ABI_H */
