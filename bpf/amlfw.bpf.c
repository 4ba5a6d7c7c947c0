// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * amlfw's cgroup programs: the compiled policy decided per connection (connect4/6),
 * per datagram (sendmsg4/6), and per packet for what bypasses those hooks (cgroup_skb
 * egress) and for inbound traffic (cgroup_skb ingress). docs/ebpf.md explains the maps.
 *
 * A decision reads the active slot (amlfw_active), then that slot's inner maps: the
 * generation's settings and group descriptors (amlfw_conf), its port table (amlfw_ports:
 * proto x port -> bitmap of the groups allowing it), its LPM tries (amlfw_lpm4/6: prefix ->
 * bitmap of the groups that contain the whole prefix) and its learned addresses
 * (amlfw_learn4/6: address -> expiry + bitmap). Allowed = address bits & port bits. Userspace builds a generation aside in the
 * other slot and flips amlfw_active: one 16-byte write switches the whole policy.
 * Uses only uapi headers (no vmlinux.h, no CO-RE): the context structs are stable ABI.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "amlfw_abi.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define LOOPBACK_IFINDEX 1

/* ---- load-time tunables (set between open and load; see daemon/ebpf_object.cpp) ---- */

/* How long a UDP exchange lets its replies through after its last datagram. */
const volatile __u64 flow_timeout_ns = 120ULL * 1000000000ULL;
/* A remembered flow is rewritten at most this often (saves map writes on busy flows). */
const volatile __u64 flow_refresh_ns = 1000000000ULL;

/* ---- maps ---------------------------------------------------------------------------- */

/* Inner maps give sizes, not BTF types: clang emits the value types of a map-in-map's
 * inner definition as forward declarations only, and userspace creates the inner maps. */
struct amlfw_i_lpm4 {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, AMLFW_LPM_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct amlfw_lpm4_key));
	__uint(value_size, sizeof(__u64));
};

struct amlfw_i_lpm6 {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, AMLFW_LPM_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct amlfw_lpm6_key));
	__uint(value_size, sizeof(__u64));
};

struct amlfw_i_conf {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct amlfw_conf));
};

struct amlfw_i_ports {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * AMLFW_PORTS_PER_PROTO);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
};

struct amlfw_addr6 {
	__u8 a[16];
};

struct amlfw_i_learn4 {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AMLFW_LEARN_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct amlfw_learned));
};

struct amlfw_i_learn6 {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AMLFW_LEARN_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, sizeof(struct amlfw_addr6));
	__uint(value_size, sizeof(struct amlfw_learned));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct amlfw_active);
} amlfw_active SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AMLFW_SLOTS);
	__type(key, __u32);
	__array(values, struct amlfw_i_conf);
} amlfw_conf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AMLFW_SLOTS);
	__type(key, __u32);
	__array(values, struct amlfw_i_ports);
} amlfw_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AMLFW_SLOTS);
	__type(key, __u32);
	__array(values, struct amlfw_i_lpm4);
} amlfw_lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AMLFW_SLOTS);
	__type(key, __u32);
	__array(values, struct amlfw_i_lpm6);
} amlfw_lpm6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AMLFW_SLOTS);
	__type(key, __u32);
	__array(values, struct amlfw_i_learn4);
} amlfw_learn4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, AMLFW_SLOTS);
	__type(key, __u32);
	__array(values, struct amlfw_i_learn6);
} amlfw_learn6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AMLFW_FLOW_MAX);
	__type(key, struct amlfw_flow_key);
	__type(value, __u64);
} amlfw_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AMLFW_DNS_ORIG_MAX);
	__type(key, __u64);
	__type(value, struct amlfw_dns_orig);
} amlfw_dns_orig SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, AMLFW_EVENTS_BYTES);
} amlfw_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AMLFW_STATS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} amlfw_stats SEC(".maps");

/* ---- the decision ------------------------------------------------------------------- */

/* The maps of the active generation for one family. */
struct gen {
	struct amlfw_conf *conf;
	void *ports;
	void *lpm;
	void *learn;
};

static __always_inline int load_gen(struct gen *g, const int v6)
{
	__u32 zero = 0;
	struct amlfw_active *a = bpf_map_lookup_elem(&amlfw_active, &zero);
	if (!a)
		return -1;
	__u32 slot = a->slot & 1;
	void *confm = bpf_map_lookup_elem(&amlfw_conf, &slot);
	if (!confm)
		return -1;
	g->conf = bpf_map_lookup_elem(confm, &zero);
	if (!g->conf)
		return -1;
	g->ports = bpf_map_lookup_elem(&amlfw_ports, &slot);
	if (!g->ports)
		return -1;
	if (v6) {
		g->lpm = bpf_map_lookup_elem(&amlfw_lpm6, &slot);
		g->learn = bpf_map_lookup_elem(&amlfw_learn6, &slot);
	} else {
		g->lpm = bpf_map_lookup_elem(&amlfw_lpm4, &slot);
		g->learn = bpf_map_lookup_elem(&amlfw_learn4, &slot);
	}
	if (!g->lpm || !g->learn)
		return -1;
	return 0;
}

/* The reason the policy of generation `g` denies addr/proto/port in direction `dir`, or
 * AMLFW_REASON_NONE when it allows it. `addr` points to 4 or 16 network-order bytes.
 * No loop: the groups of the address (LPM, learned) AND the groups of the port. */
static __always_inline __u32 decide(const struct gen *g, const int v6, const void *addr, __u8 proto,
				    __u16 port, __u8 dir)
{
	const struct amlfw_conf *c = g->conf;
	__u64 mask = dir == AMLFW_DIR_INGRESS ? c->ingress_mask : c->egress_mask;
	__u64 bits = 0, port_bits = 0;
	__u64 *v;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return AMLFW_REASON_PROTO;
	__u32 pidx = (proto == IPPROTO_UDP ? AMLFW_PORTS_PER_PROTO : 0) + port;
	v = bpf_map_lookup_elem(g->ports, &pidx);
	if (v)
		port_bits = *v & mask;
	if (v6) {
		struct amlfw_lpm6_key k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, addr, 16);
		v = bpf_map_lookup_elem(g->lpm, &k);
	} else {
		struct amlfw_lpm4_key k = {.prefixlen = 32};
		__builtin_memcpy(k.addr, addr, 4);
		v = bpf_map_lookup_elem(g->lpm, &k);
	}
	if (v)
		bits = *v & mask;
	if (bits & port_bits)
		return AMLFW_REASON_NONE;
	__u32 reason = bits ? AMLFW_REASON_PORT : AMLFW_REASON_NO_MATCH;

	if (c->names_mask & mask) {
		struct amlfw_learned *l;
		if (v6) {
			struct amlfw_addr6 k6;
			__builtin_memcpy(k6.a, addr, 16);
			l = bpf_map_lookup_elem(g->learn, &k6);
		} else {
			__u32 k4;
			__builtin_memcpy(&k4, addr, 4);
			l = bpf_map_lookup_elem(g->learn, &k4);
		}
		if (l) {
			__u64 lb = l->groups & c->names_mask & mask;
			if (lb) {
				if (l->expires_ns <= bpf_ktime_get_ns()) {
					if (reason == AMLFW_REASON_NO_MATCH)
						reason = AMLFW_REASON_EXPIRED;
				} else if (lb & port_bits) {
					return AMLFW_REASON_NONE;
				} else {
					reason = AMLFW_REASON_PORT;
				}
			}
		}
	}
	if (dir == AMLFW_DIR_EGRESS && port == c->dns_port)
		reason = AMLFW_REASON_DNS;
	return reason;
}

/* ---- counters, events, UDP flows ------------------------------------------------------ */

static __always_inline void count(__u8 hook, __u32 stat)
{
	__u32 idx = (__u32)hook * AMLFW_STAT_PER_HOOK + stat;
	__u64 *v = bpf_map_lookup_elem(&amlfw_stats, &idx);
	if (v)
		*v += 1;
}

static __always_inline struct amlfw_event *event_begin(__u8 hook, __u8 dir, const int v6, const void *addr,
						      __u16 port, __u8 proto, __u32 reason, int audit,
						      __u64 generation)
{
	struct amlfw_event *e = bpf_ringbuf_reserve(&amlfw_events, sizeof(*e), 0);
	if (!e) {
		count(hook, AMLFW_STAT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->generation = generation;
	e->reason = reason;
	if (v6)
		__builtin_memcpy(e->addr, addr, 16);
	else
		__builtin_memcpy(e->addr, addr, 4);
	e->port = port;
	e->family = v6 ? 6 : 4;
	e->proto = proto;
	e->hook = hook;
	e->audit = audit ? 1 : 0;
	e->direction = dir;
	return e;
}

static __always_inline void flow_key(struct amlfw_flow_key *k, const int v6, const void *raddr, __u16 lport,
				     __u16 rport)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = v6 ? 6 : 4;
	k->lport = lport;
	k->rport = rport;
	if (v6)
		__builtin_memcpy(k->raddr, raddr, 16);
	else
		__builtin_memcpy(k->raddr, raddr, 4);
}

/* A UDP exchange with raddr:rport from local port lport seen within flow_timeout_ns? */
static __always_inline int flow_live(const int v6, const void *raddr, __u16 lport, __u16 rport)
{
	struct amlfw_flow_key k;
	if (lport == 0)
		return 0;
	flow_key(&k, v6, raddr, lport, rport);
	__u64 *t = bpf_map_lookup_elem(&amlfw_flows, &k);
	return t && bpf_ktime_get_ns() - *t < flow_timeout_ns;
}

static __always_inline void flow_note(const int v6, const void *raddr, __u16 lport, __u16 rport)
{
	struct amlfw_flow_key k;
	flow_key(&k, v6, raddr, lport, rport);
	__u64 now = bpf_ktime_get_ns();
	__u64 *t = bpf_map_lookup_elem(&amlfw_flows, &k);
	if (t && now - *t < flow_refresh_ns)
		return;
	bpf_map_update_elem(&amlfw_flows, &k, &now, BPF_ANY);
}

/* ---- connect / sendmsg ------------------------------------------------------------------ */

static __always_inline int loopback4(__u32 ip_be)
{
	__u32 ip = bpf_ntohl(ip_be);
	return (ip >> 24) == 127 || ip == 0;
}

/* The active generation's settings only (recvmsg4/6). */
static __always_inline struct amlfw_conf *load_conf(void)
{
	__u32 zero = 0;
	struct amlfw_active *a = bpf_map_lookup_elem(&amlfw_active, &zero);
	if (!a)
		return 0;
	__u32 slot = a->slot & 1;
	void *confm = bpf_map_lookup_elem(&amlfw_conf, &slot);
	if (!confm)
		return 0;
	return bpf_map_lookup_elem(confm, &zero);
}

/* dns.redirect: does this connect()/sendmsg() to port 53 of an address of family `fam`
 * (4 or 6) go to the proxy? Not the proxy's own upstream queries (SO_MARK). */
static __always_inline int dns_redirected(struct bpf_sock_addr *ctx, const struct gen *g, __u16 port, __u8 fam)
{
	const struct amlfw_conf *c = g->conf;
	if (port != AMLFW_DNS_PORT || !(c->flags & AMLFW_F_DNS_REDIRECT) || c->redirect_family != fam)
		return 0;
	if (ctx->protocol != IPPROTO_UDP && ctx->protocol != IPPROTO_TCP)
		return 0;
	struct bpf_sock *sk = ctx->sk;
	if (sk && sk->mark == AMLFW_DNS_PROXY_MARK)
		return 0;
	return 1;
}

/* A redirected UDP socket: remember where it meant to go (recvmsg4/6 put it back as the
 * answer's source). `addr` is the destination as the socket's family sees it. */
static __always_inline void dns_remember(struct bpf_sock_addr *ctx, __u8 sock_family, const void *addr)
{
	if (ctx->protocol != IPPROTO_UDP)
		return;
	struct amlfw_dns_orig o;
	__builtin_memset(&o, 0, sizeof(o));
	if (sock_family == 6)
		__builtin_memcpy(o.addr, addr, 16);
	else
		__builtin_memcpy(o.addr, addr, 4);
	o.port = bpf_htons(AMLFW_DNS_PORT);
	o.family = sock_family;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	bpf_map_update_elem(&amlfw_dns_orig, &cookie, &o, BPF_ANY);
}

/* Decides one connect() or sendmsg() towards addr:port (v4: 4 bytes, v6: 16) with the
 * generation `gp` (0 when none is installed: fail closed). */
static __always_inline int sock_addr_verdict(struct bpf_sock_addr *ctx, __u8 hook, const int v6, const void *addr,
					     __u16 port, const struct gen *gp)
{
	__u8 proto = (__u8)ctx->protocol;
	struct bpf_sock *sk = ctx->sk;
	__u16 lport = sk ? (__u16)sk->src_port : 0;

	/* DHCP renewals from the client port (the first lease goes through a packet socket). */
	if (proto == IPPROTO_UDP && ((!v6 && port == 67 && lport == 68) || (v6 && port == 547 && lport == 546)))
		return 1;
	if (!gp) {
		count(hook, AMLFW_STAT_DENY);
		struct amlfw_event *e = event_begin(hook, AMLFW_DIR_EGRESS, v6, addr, port, proto,
						    AMLFW_REASON_NO_POLICY, 0, 0);
		if (e) {
			e->pid = bpf_get_current_pid_tgid() >> 32;
			e->cgroup_id = bpf_get_current_cgroup_id();
			bpf_get_current_comm(e->comm, sizeof(e->comm));
			bpf_ringbuf_submit(e, 0);
		}
		return 0;
	}
	__u32 reason = decide(gp, v6, addr, proto, port, AMLFW_DIR_EGRESS);
	if (reason == AMLFW_REASON_NONE) {
		count(hook, AMLFW_STAT_ALLOW);
		return 1;
	}
	/* A reply to a datagram that came in (conntrack's "established" for UDP). */
	if (proto == IPPROTO_UDP && flow_live(v6, addr, lport, port)) {
		count(hook, AMLFW_STAT_ALLOW);
		return 1;
	}
	int audit = (gp->conf->flags & AMLFW_F_AUDIT) != 0;
	count(hook, audit ? AMLFW_STAT_AUDIT : AMLFW_STAT_DENY);
	struct amlfw_event *e = event_begin(hook, AMLFW_DIR_EGRESS, v6, addr, port, proto, reason, audit,
					    gp->conf->generation);
	if (e) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->cgroup_id = bpf_get_current_cgroup_id();
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	}
	return audit ? 1 : 0;
}

static __always_inline int sock_addr4(struct bpf_sock_addr *ctx, __u8 hook)
{
	__u32 ip = ctx->user_ip4;
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	struct gen g;
	if (loopback4(ip))
		return 1;
	if (load_gen(&g, 0))
		return sock_addr_verdict(ctx, hook, 0, &ip, port, 0);
	if (dns_redirected(ctx, &g, port, 4)) {
		/* To the proxy: loopback, or the dns-proxy group of the policy. An AF_INET6
		 * socket sending to an IPv4-mapped address comes here too (udpv6_sendmsg hands
		 * it to udp_sendmsg): it will see the answer's source IPv4-mapped in recvmsg6. */
		struct bpf_sock *sk = ctx->sk;
		if (sk && sk->family == AF_INET6) {
			__u32 mapped[4] = {0, 0, bpf_htonl(0xffff), ip};
			dns_remember(ctx, 6, mapped);
		} else {
			dns_remember(ctx, 4, &ip);
		}
		__u32 proxy;
		__builtin_memcpy(&proxy, g.conf->redirect_addr, 4);
		ctx->user_ip4 = proxy;
		ctx->user_port = bpf_htons(g.conf->redirect_port);
		count(hook, AMLFW_STAT_ALLOW);
		return 1;
	}
	return sock_addr_verdict(ctx, hook, 0, &ip, port, &g);
}

static __always_inline int sock_addr6(struct bpf_sock_addr *ctx, __u8 hook, __u8 hook4)
{
	__u32 ip[4];
	ip[0] = ctx->user_ip6[0];
	ip[1] = ctx->user_ip6[1];
	ip[2] = ctx->user_ip6[2];
	ip[3] = ctx->user_ip6[3];
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	if (ip[0] == 0 && ip[1] == 0) {
		if (ip[2] == 0 && (ip[3] == 0 || ip[3] == bpf_htonl(1)))
			return 1; /* :: and ::1 */
		if (ip[2] == bpf_htonl(0xffff)) {
			/* An IPv4-mapped destination of a dual-stack socket: the IPv4 policy. */
			__u32 ip4 = ip[3];
			struct gen g4;
			if (loopback4(ip4))
				return 1;
			if (load_gen(&g4, 0))
				return sock_addr_verdict(ctx, hook4, 0, &ip4, port, 0);
			if (dns_redirected(ctx, &g4, port, 4)) {
				dns_remember(ctx, 6, ip);
				__u32 proxy;
				__builtin_memcpy(&proxy, g4.conf->redirect_addr, 4);
				ctx->user_ip6[3] = proxy;
				ctx->user_port = bpf_htons(g4.conf->redirect_port);
				count(hook4, AMLFW_STAT_ALLOW);
				return 1;
			}
			return sock_addr_verdict(ctx, hook4, 0, &ip4, port, &g4);
		}
	}
	struct gen g;
	if (load_gen(&g, 1))
		return sock_addr_verdict(ctx, hook, 1, ip, port, 0);
	if (dns_redirected(ctx, &g, port, 6)) {
		dns_remember(ctx, 6, ip);
		__u32 proxy[4];
		__builtin_memcpy(proxy, g.conf->redirect_addr, 16);
		ctx->user_ip6[0] = proxy[0];
		ctx->user_ip6[1] = proxy[1];
		ctx->user_ip6[2] = proxy[2];
		ctx->user_ip6[3] = proxy[3];
		ctx->user_port = bpf_htons(g.conf->redirect_port);
		count(hook, AMLFW_STAT_ALLOW);
		return 1;
	}
	return sock_addr_verdict(ctx, hook, 1, ip, port, &g);
}

SEC("cgroup/connect4")
int amlfw_connect4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, AMLFW_HOOK_CONNECT4);
}

SEC("cgroup/connect6")
int amlfw_connect6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, AMLFW_HOOK_CONNECT6, AMLFW_HOOK_CONNECT4);
}

SEC("cgroup/sendmsg4")
int amlfw_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, AMLFW_HOOK_SENDMSG4);
}

SEC("cgroup/sendmsg6")
int amlfw_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, AMLFW_HOOK_SENDMSG6, AMLFW_HOOK_SENDMSG4);
}

/* recvmsg4/6 (dns.redirect): an answer from the proxy to a socket whose DNS was redirected
 * shows the address the socket sent to as its source, so that resolvers that check where the
 * answer comes from (glibc does) accept it. Always 1: these hooks only rewrite. */
static __always_inline int dns_restore(struct bpf_sock_addr *ctx, __u8 sock_family)
{
	const struct amlfw_conf *c = load_conf();
	if (!c || !(c->flags & AMLFW_F_DNS_REDIRECT) || ctx->user_port != bpf_htons(c->redirect_port))
		return 1;
	__u32 proxy[4];
	__builtin_memcpy(proxy, c->redirect_addr, 16);
	if (sock_family == 4) {
		if (c->redirect_family != 4 || ctx->user_ip4 != proxy[0])
			return 1;
	} else if (c->redirect_family == 4) {
		if (ctx->user_ip6[0] != 0 || ctx->user_ip6[1] != 0 || ctx->user_ip6[2] != bpf_htonl(0xffff) ||
		    ctx->user_ip6[3] != proxy[0])
			return 1;
	} else if (ctx->user_ip6[0] != proxy[0] || ctx->user_ip6[1] != proxy[1] || ctx->user_ip6[2] != proxy[2] ||
		   ctx->user_ip6[3] != proxy[3]) {
		return 1;
	}
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct amlfw_dns_orig *o = bpf_map_lookup_elem(&amlfw_dns_orig, &cookie);
	if (!o || o->family != sock_family)
		return 1;
	__u32 orig[4];
	__builtin_memcpy(orig, o->addr, 16);
	if (sock_family == 4) {
		ctx->user_ip4 = orig[0];
	} else {
		ctx->user_ip6[0] = orig[0];
		ctx->user_ip6[1] = orig[1];
		ctx->user_ip6[2] = orig[2];
		ctx->user_ip6[3] = orig[3];
	}
	ctx->user_port = o->port;
	return 1;
}

SEC("cgroup/recvmsg4")
int amlfw_recvmsg4(struct bpf_sock_addr *ctx)
{
	return dns_restore(ctx, 4);
}

SEC("cgroup/recvmsg6")
int amlfw_recvmsg6(struct bpf_sock_addr *ctx)
{
	return dns_restore(ctx, 6);
}

/* ---- packets ----------------------------------------------------------------------------- */

struct pkt {
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
	__u8 v6;
	__u8 proto;
	__u8 l4;        /* the transport header was read (not a later fragment) */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u8 icmp_type;
};

#define TCPF_FIN 0x01
#define TCPF_SYN 0x02
#define TCPF_RST 0x04
#define TCPF_ACK 0x10

/* 0: parsed, 1: not IP (pass), -1: malformed. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	__u32 off;
	__builtin_memset(p, 0, sizeof(*p));
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return -1;
		if (ip.ihl < 5)
			return -1;
		p->proto = ip.protocol;
		p->saddr[0] = ip.saddr;
		p->daddr[0] = ip.daddr;
		off = ip.ihl * 4;
		if (ip.frag_off & bpf_htons(0x1fff))
			return 0; /* a later fragment: no transport header */
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return -1;
		p->v6 = 1;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		__u8 nh = ip6.nexthdr;
		off = sizeof(ip6);
		for (int i = 0; i < 4; i++) {
			if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
				__u8 h[2];
				if (bpf_skb_load_bytes(skb, off, h, 2))
					return -1;
				nh = h[0];
				off += ((__u32)h[1] + 1) * 8;
			} else if (nh == IPPROTO_FRAGMENT) {
				__u8 h[8];
				if (bpf_skb_load_bytes(skb, off, h, 8))
					return -1;
				nh = h[0];
				off += 8;
				if (((h[2] << 8) | h[3]) & 0xfff8) {
					p->proto = nh;
					return 0; /* a later fragment */
				}
			} else {
				break;
			}
		}
		p->proto = nh;
	} else {
		return 1;
	}
	if (p->proto == IPPROTO_TCP) {
		__u8 h[14];
		if (bpf_skb_load_bytes(skb, off, h, 14))
			return -1;
		p->sport = (h[0] << 8) | h[1];
		p->dport = (h[2] << 8) | h[3];
		p->tcp_flags = h[13];
		p->l4 = 1;
	} else if (p->proto == IPPROTO_UDP) {
		__u8 h[4];
		if (bpf_skb_load_bytes(skb, off, h, 4))
			return -1;
		p->sport = (h[0] << 8) | h[1];
		p->dport = (h[2] << 8) | h[3];
		p->l4 = 1;
	} else if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6) {
		if (bpf_skb_load_bytes(skb, off, &p->icmp_type, 1))
			return -1;
		p->l4 = 1;
	}
	return 0;
}

/* ICMP that answers or belongs to other traffic ("related"), and IPv6 neighbour discovery
 * and multicast listener messages, which the link needs. */
static __always_inline int icmp_passes(const struct pkt *p, __u8 dir)
{
	if (!p->l4)
		return 0;
	if (p->proto == IPPROTO_ICMP) {
		__u8 t = p->icmp_type;
		/* echo reply, unreachable, time exceeded, parameter problem; inbound echo requests */
		return t == 0 || t == 3 || t == 11 || t == 12 || (dir == AMLFW_DIR_INGRESS && t == 8);
	}
	if (p->proto == IPPROTO_ICMPV6) {
		__u8 t = p->icmp_type;
		return (t >= 1 && t <= 4) || t == 129 || (t >= 130 && t <= 136) || t == 143 ||
		       (dir == AMLFW_DIR_INGRESS && t == 128);
	}
	return 0;
}

static __always_inline int skb_deny(struct __sk_buff *skb, const struct pkt *p, __u8 hook, __u8 dir, __u32 reason,
				    const struct gen *g, int report)
{
	int audit = g && (g->conf->flags & AMLFW_F_AUDIT);
	count(hook, audit ? AMLFW_STAT_AUDIT : AMLFW_STAT_DENY);
	if (report) {
		const void *remote = dir == AMLFW_DIR_INGRESS ? p->saddr : p->daddr;
		struct amlfw_event *e = event_begin(hook, dir, p->v6, remote, p->dport, p->proto, reason, audit,
						    g ? g->conf->generation : 0);
		if (e) {
			e->cgroup_id = bpf_skb_cgroup_id(skb);
			bpf_ringbuf_submit(e, 0);
		}
	}
	return audit ? 1 : 0;
}

static __always_inline int egress(struct __sk_buff *skb, const int v6, struct pkt *p)
{
	struct bpf_sock *sk = skb->sk;
	int tcp_sock = 0, udp_sock = 0;
	struct gen g;

	if (sk) {
		sk = bpf_sk_fullsock(sk);
		if (sk) {
			tcp_sock = sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP;
			udp_sock = sk->type == SOCK_DGRAM && sk->protocol == IPPROTO_UDP;
		}
	}
	int syn = p->proto == IPPROTO_TCP && p->l4 && (p->tcp_flags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) == TCPF_SYN;
	if (p->proto == IPPROTO_TCP) {
		/* Only a connection's first SYN opens anything. Every other segment belongs to a
		 * connection whose SYN was decided (here or by connect4/6), that came in, or that
		 * existed before the programs were attached ("established"); the kernel's own
		 * resets and TIME-WAIT acks leave from its raw control socket. */
		if (p->l4 && !syn)
			return 1;
	} else if (p->proto == IPPROTO_UDP) {
		if (p->l4 && ((!v6 && p->sport == 68 && p->dport == 67) || (v6 && p->sport == 546 && p->dport == 547)))
			return 1;
	} else if (icmp_passes(p, AMLFW_DIR_EGRESS)) {
		return 1;
	}
	if (load_gen(&g, v6))
		return skb_deny(skb, p, AMLFW_HOOK_EGRESS, AMLFW_DIR_EGRESS, AMLFW_REASON_NO_POLICY, 0, 1);
	if (p->proto == IPPROTO_UDP && udp_sock) {
		/* connect4/6 or sendmsg4/6 decided; remember the exchange so that the answer may
		 * come in when inbound traffic is filtered. */
		if (p->l4 && (g.conf->flags & AMLFW_F_INBOUND))
			flow_note(v6, p->daddr, p->sport, p->dport);
		return 1;
	}
	if (!p->l4 && (tcp_sock || udp_sock))
		return 1; /* a later fragment of a socket's segment */
	__u32 reason = p->l4 ? decide(&g, v6, p->daddr, p->proto, p->dport, AMLFW_DIR_EGRESS) : AMLFW_REASON_PROTO;
	if (reason == AMLFW_REASON_NONE) {
		count(AMLFW_HOOK_EGRESS, AMLFW_STAT_ALLOW);
		if (p->proto == IPPROTO_UDP && (g.conf->flags & AMLFW_F_INBOUND))
			flow_note(v6, p->daddr, p->sport, p->dport);
		return 1;
	}
	/* In audit mode connect4/6 already reported the first SYN of a TCP socket. */
	int report = !(syn && tcp_sock && (g.conf->flags & AMLFW_F_AUDIT));
	return skb_deny(skb, p, AMLFW_HOOK_EGRESS, AMLFW_DIR_EGRESS, reason, &g, report);
}

static __always_inline int ingress(struct __sk_buff *skb, const int v6, struct pkt *p)
{
	struct gen g;
	if (load_gen(&g, v6))
		return 1; /* inbound is filtered only by a policy that asks for it */
	int enforce = (g.conf->flags & AMLFW_F_INBOUND) != 0;

	if (p->proto == IPPROTO_UDP && p->l4) {
		if ((!v6 && p->sport == 67 && p->dport == 68) || (v6 && p->sport == 547 && p->dport == 546))
			return 1;
		if (!enforce || flow_live(v6, p->saddr, p->dport, p->sport)) {
			flow_note(v6, p->saddr, p->dport, p->sport);
			return 1;
		}
	}
	if (!enforce)
		return 1;
	if (p->proto == IPPROTO_TCP && p->l4) {
		/* Only a connection's first SYN is new; the rest belongs to a connection that this
		 * program or connect4/6 let through (or that existed before). */
		if ((p->tcp_flags & (TCPF_SYN | TCPF_ACK | TCPF_RST)) != TCPF_SYN)
			return 1;
	}
	if (icmp_passes(p, AMLFW_DIR_INGRESS))
		return 1;
	__u32 reason = p->l4 ? decide(&g, v6, p->saddr, p->proto, p->dport, AMLFW_DIR_INGRESS) : AMLFW_REASON_PROTO;
	if (reason == AMLFW_REASON_NONE) {
		count(AMLFW_HOOK_INGRESS, AMLFW_STAT_ALLOW);
		if (p->proto == IPPROTO_UDP)
			flow_note(v6, p->saddr, p->dport, p->sport);
		return 1;
	}
	return skb_deny(skb, p, AMLFW_HOOK_INGRESS, AMLFW_DIR_INGRESS, reason, &g, 1);
}

/* A segment of a TCP socket that is not listening: its connection was decided when it
 * opened (connect4/6, which every connect() and TCP Fast Open goes through, or the ingress
 * program for the SYN that created it), or it existed before the programs were attached.
 * The fast path of both packet programs: no parsing, no map. */
static __always_inline int tcp_socket_segment(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 0;
	sk = bpf_sk_fullsock(sk);
	return sk && sk->type == SOCK_STREAM && sk->protocol == IPPROTO_TCP && sk->state != BPF_TCP_LISTEN;
}

SEC("cgroup_skb/egress")
int amlfw_egress(struct __sk_buff *skb)
{
	struct pkt p;
	if (skb->ifindex == LOOPBACK_IFINDEX || tcp_socket_segment(skb))
		return 1;
	int r = parse(skb, &p);
	if (r > 0)
		return 1;
	if (r < 0) {
		struct gen g;
		int have = load_gen(&g, 0) == 0;
		return skb_deny(skb, &p, AMLFW_HOOK_EGRESS, AMLFW_DIR_EGRESS, AMLFW_REASON_MALFORMED, have ? &g : 0, 1);
	}
	return p.v6 ? egress(skb, 1, &p) : egress(skb, 0, &p);
}

SEC("cgroup_skb/ingress")
int amlfw_ingress(struct __sk_buff *skb)
{
	struct pkt p;
	if (skb->ifindex == LOOPBACK_IFINDEX || tcp_socket_segment(skb))
		return 1;
	int r = parse(skb, &p);
	if (r != 0)
		return 1; /* not IP, or left to the stack to reject */
	return p.v6 ? ingress(skb, 1, &p) : ingress(skb, 0, &p);
}
