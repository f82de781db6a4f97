/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * drop_maps.bpf.h: the maps of the drop attribution (layouts: drops.h), declared once for the
 * three objects that use them. dns.bpf.o creates and pins all of them, so that they exist in
 * every mode (also when no drop program could load); drops.bpf.o and conntrack_fexit.bpf.o
 * reuse the pins (the loader passes `map name X pinned P`), which needs the same declaration
 * in every object. Declared by size, like every map (why: bpf/dns.bpf.c).
 */
#ifndef DNSRACE_DROP_MAPS_BPF_H
#define DNSRACE_DROP_MAPS_BPF_H

#include "drops.h"

#define ADDR_LEN 16 /* IPv6, or IPv4-mapped ::ffff:a.b.c.d */

/* Pod address -> cgroup of its last DNS query (dns_egress). LRU: pods come and go, and a
 * full map must not stop new pods from being learnt. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CLIENT_ADDRS);
	__uint(key_size, sizeof(__u8[ADDR_LEN]));
	__uint(value_size, sizeof(struct client_addr_val));
} dns_client_addrs SEC(".maps");

/* Dropped DNS queries, written by the drop programs, consumed (deleted) by dns.bpf.c when the
 * query is re-sent, answered or timed out. LRU: records of queries that never reach a
 * consumer (a pod outside the attach root, a server-side drop) age out by themselves. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_DROPPED_QUERIES);
	__uint(key_size, sizeof(struct dropped_query_key));
	__uint(value_size, sizeof(struct dropped_query_val));
} dropped_queries SEC(".maps");

/* Dropped packets per (pod address, proto, port class, qtype, reason, direction): value is
 * the packet count. Rows follow drops, not the maximum: no prealloc. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_DROP_ROWS);
	__uint(key_size, sizeof(struct packet_drop_key));
	__uint(value_size, sizeof(__u64));
} packet_drops SEC(".maps");

/* enum drop_health_counter, per CPU (the exporter sums the CPUs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_HEALTH_COUNTERS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
} drop_health SEC(".maps");

/*
 * The skb that __nf_conntrack_confirm just refused (fexit), per CPU: nf_hook_slow frees it
 * right after on the same CPU with reason NETFILTER_DROP, and the kfree_skb program must not
 * count that drop a second time. Internal; the exporter never reads it.
 */
struct confirm_drop {
	__u64 skb; /* struct sk_buff *, as a number: only compared */
	__u64 ts_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct confirm_drop));
} drop_confirm_skb SEC(".maps");

static __always_inline void drop_health_inc(__u32 counter)
{
	__u64 *c = bpf_map_lookup_elem(&drop_health, &counter);

	if (c)
		*c += 1; /* per-CPU: no other CPU writes this slot */
}

static __always_inline void dropped_query_key_of(struct dropped_query_key *k, const __u8 *addr,
						 __u16 port, __u16 id, __u16 qtype)
{
	__builtin_memcpy(k->client_addr, addr, ADDR_LEN);
	k->port = port;
	k->id = id;
	k->qtype = qtype;
	k->pad = 0;
}

#endif /* DNSRACE_DROP_MAPS_BPF_H */
