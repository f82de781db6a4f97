/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * skb_drop.bpf.h: what the drop programs (drops.bpf.c, conntrack_fexit.bpf.c) share: reading
 * the headers of a kernel struct sk_buff they were handed (CO-RE for the sk_buff fields,
 * bpf_probe_read_kernel for the wire bytes), and counting a drop in packet_drops and
 * dropped_queries (drop_maps.bpf.h).
 *
 * Wire headers are read as byte arrays, not through vmlinux.h's struct iphdr: its bitfields
 * would need CO-RE bitfield relocations for nothing (wire formats do not change).
 */
#ifndef DNSRACE_SKB_DROP_BPF_H
#define DNSRACE_SKB_DROP_BPF_H

#include "lib/drop_maps.bpf.h"
#include "lib/dns_wire.bpf.h"
#include "lib/packet.bpf.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#ifndef EEXIST
#define EEXIST 17
#endif
#define L4_READ 16 /* UDP header and the start of the DNS header, or TCP up to data offset */

#define DP_F_DNS 0x01	/* port 53 on either side */
#define DP_F_QUERY 0x02 /* a DNS query (QR=0, opcode QUERY, one question): id and qtype are set */

/*
 * A dropped packet as far as the drop programs need it. Addresses are IPv4-mapped for IPv4,
 * ports and DNS fields in host byte order.
 */
struct drop_pkt {
	__u8 saddr[ADDR_LEN];
	__u8 daddr[ADDR_LEN];
	__u16 sport;
	__u16 dport;
	__u16 id;    /* DNS id (DP_F_QUERY) */
	__u16 qtype; /* raw QTYPE (DP_F_QUERY) */
	__u8 proto;  /* IPPROTO_UDP, IPPROTO_TCP, 0 for anything else (also non-first fragments) */
	__u8 flags;  /* DP_F_* */
	__u8 pad[6];
};

/*
 * Per-CPU working memory: a drop program in process context (a drop on the OUTPUT path of
 * sendmsg) can be interrupted by the softirq that frees another packet on the same CPU, so
 * two programs nest at most and each takes a slot.
 */
#define DROP_SCRATCH_SLOTS 2

struct drop_scratch {
	__u32 busy;
	__u32 pad;
	struct drop_pkt pkt;
	__u8 question[DNS_NAME_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_SCRATCH_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct drop_scratch));
} drop_scratch SEC(".maps");

/* Takes a free scratch slot (its number in *slot), or NULL. */
static __always_inline struct drop_scratch *drop_scratch_try(__u32 i, __u32 *slot)
{
	struct drop_scratch *s = bpf_map_lookup_elem(&drop_scratch, &i);

	if (!s || s->busy)
		return NULL;
	s->busy = 1;
	*slot = i;
	return s;
}

/*
 * A program that interrupts us runs to completion before we resume. Two explicit tries, not a
 * loop: the verifiers of 5.10, 6.1 and 6.12 reject the loop over map lookups ("infinite loop
 * detected"), which 6.18 accepts (kernel matrix).
 */
static __always_inline struct drop_scratch *drop_scratch_get(__u32 *slot)
{
	struct drop_scratch *s = drop_scratch_try(0, slot);

	return s ? s : drop_scratch_try(1, slot);
}

/*
 * Length of the wire-format QNAME in the question of scratch slot `slot` (n bytes read), or a
 * negative enum qname_error. A global function: the verifier walks its 128-label loop once,
 * not once for every path into it (IPv4/IPv6, UDP/TCP, ...: inlined, the walks added up to
 * 100k instructions and 1.4 s of verification). Scalars only, as 5.10 requires.
 */
__noinline int drop_qname_length(__u32 slot, __u32 n)
{
	struct drop_scratch *s = bpf_map_lookup_elem(&drop_scratch, &slot);

	if (!s || n > DNS_QUESTION_MAX)
		return QNAME_BAD;
	return qname_walk(s->question, n);
}

enum skb_parse_result {
	SKB_PARSE_OK = 0,     /* addresses set; ports, proto and DNS fields as far as present */
	SKB_PARSE_NOT_IP = 1, /* not IPv4/IPv6 (ARP, ...): nothing of ours */
	SKB_PARSE_FAILED = 2, /* IP by skb->protocol, but its headers could not be read */
};

static __always_inline void addr4_mapped(__u8 *out, const __u8 *v4)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, v4, 4);
}

/*
 * Reads the DNS header and the question of a query at msg (end: first byte after the IP
 * packet) and sets id, qtype and DP_F_QUERY. Anything else (an answer, another opcode, a
 * malformed question) leaves the packet a plain port-53 packet.
 */
static __always_inline void dns_query_parse(struct drop_scratch *s, __u32 slot, unsigned char *msg,
					    __u64 end)
{
	struct dns_hdr h;
	__u64 q = (__u64)msg + DNS_HDR_LEN, avail, name_len;
	__u16 flags;
	int ret;

	if (q >= end || bpf_probe_read_kernel(&h, sizeof(h), msg))
		return;
	flags = bpf_ntohs(h.flags);
	if ((flags & DNS_FLAG_QR) || DNS_OPCODE(flags) != DNS_OPCODE_QUERY ||
	    h.qdcount != bpf_htons(1))
		return;
	avail = end - q;
	if (avail > DNS_QUESTION_MAX)
		avail = DNS_QUESTION_MAX;
	if (avail < 1 + DNS_QUESTION_TAIL)
		return;
	barrier_var(avail);
	if (avail > DNS_QUESTION_MAX || bpf_probe_read_kernel(s->question, avail, (void *)q))
		return;
	ret = drop_qname_length(slot, avail);
	if (ret < 1)
		return;
	name_len = ret;
	barrier_var(name_len);
	if (name_len > DNS_NAME_MAX || name_len + DNS_QUESTION_TAIL > avail)
		return;
	s->pkt.id = bpf_ntohs(h.id);
	s->pkt.qtype = (s->question[name_len] << 8) | s->question[name_len + 1];
	s->pkt.flags |= DP_F_QUERY;
}

/*
 * Reads the IP and UDP/TCP headers of skb into s->pkt; with want_query (or a destination port
 * 53 in the packet) also the DNS query it carries. The IP header alone says where L4 starts
 * (IPv4 IHL; IPv6 only without extension headers), so transport_header, which is not set on
 * every path that drops, is not needed.
 *
 * Only the linear area (head .. head + tail) is read: a small UDP datagram lies there whole,
 * but TCP keeps its payload in page fragments, which a tracing program cannot reach without
 * the kernel's page-to-address arithmetic. A DNS-over-TCP query is then counted as a port-53
 * packet without its question (qtype QTYPE_CLASSES, no dropped_queries record).
 */
static __always_inline int skb_parse(struct sk_buff *skb, struct drop_scratch *s, __u32 slot,
				     bool want_query)
{
	struct drop_pkt *p = &s->pkt;
	unsigned char *head, *l4;
	__u8 ip[IPV6_HDR_LEN];
	__u8 th[L4_READ];
	__u64 end, linear_end, msg;
	__u32 tail;
	__u16 nh;
	__be16 eth;
	__u8 proto;

	__builtin_memset(p, 0, sizeof(*p));
	eth = BPF_CORE_READ(skb, protocol);
	if (eth != bpf_htons(ETH_P_IP) && eth != bpf_htons(ETH_P_IPV6))
		return SKB_PARSE_NOT_IP;
	head = BPF_CORE_READ(skb, head);
	nh = BPF_CORE_READ(skb, network_header);
	/* sk_buff_data_t is an offset from head on 64-bit kernels, the only ones we build for */
	tail = BPF_CORE_READ(skb, tail);
	linear_end = (__u64)head + tail;
	if (eth == bpf_htons(ETH_P_IP)) {
		if (bpf_probe_read_kernel(ip, IPV4_HDR_LEN, head + nh) || (ip[0] >> 4) != 4 ||
		    (ip[0] & 0x0f) < 5)
			return SKB_PARSE_FAILED;
		addr4_mapped(p->saddr, ip + 12);
		addr4_mapped(p->daddr, ip + 16);
		if (((ip[6] << 8) | ip[7]) & IPV4_FRAG_OFFSET)
			return SKB_PARSE_OK; /* a non-first fragment: no ports */
		proto = ip[9];
		l4 = head + nh + (ip[0] & 0x0f) * 4;
		end = (__u64)(head + nh) + ((ip[2] << 8) | ip[3]);
	} else {
		if (bpf_probe_read_kernel(ip, IPV6_HDR_LEN, head + nh) || (ip[0] >> 4) != 6)
			return SKB_PARSE_FAILED;
		__builtin_memcpy(p->saddr, ip + 8, ADDR_LEN);
		__builtin_memcpy(p->daddr, ip + 24, ADDR_LEN);
		proto = ip[6];
		l4 = head + nh + IPV6_HDR_LEN;
		end = (__u64)l4 + ((ip[4] << 8) | ip[5]);
	}
	if (end > linear_end)
		end = linear_end;
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return SKB_PARSE_OK;
	if (bpf_probe_read_kernel(th, sizeof(th), l4))
		return SKB_PARSE_FAILED;
	p->proto = proto;
	p->sport = (th[0] << 8) | th[1];
	p->dport = (th[2] << 8) | th[3];
	if (p->sport == DNS_PORT || p->dport == DNS_PORT)
		p->flags |= DP_F_DNS;
	if (!want_query && p->dport != DNS_PORT)
		return SKB_PARSE_OK;
	if (proto == IPPROTO_UDP) {
		dns_query_parse(s, slot, l4 + 8, end);
	} else {
		__be16 length;

		/* Only a segment that starts a DNS message (length prefix and header). */
		msg = (__u64)l4 + (th[12] >> 4) * 4;
		if (msg + sizeof(struct dns_tcp_start) > end ||
		    bpf_probe_read_kernel(&length, sizeof(length), (void *)msg))
			return SKB_PARSE_OK;
		if (bpf_ntohs(length) >= DNS_MSG_MIN)
			dns_query_parse(s, slot, (unsigned char *)msg + 2, end);
	}
	return SKB_PARSE_OK;
}

/* Records a dropped DNS query for dns.bpf.c; a stronger cause already recorded stays. */
static __always_inline void dropped_query_record(const struct drop_pkt *p, __u8 cause, __u64 now)
{
	struct dropped_query_key k = {};
	struct dropped_query_val v = {}, *cur;

	dropped_query_key_of(&k, p->saddr, p->sport, p->id, p->qtype);
	cur = bpf_map_lookup_elem(&dropped_queries, &k);
	if (cur) {
		if (cur->cause < cause)
			cur->cause = cause;
		cur->ts_ns = now;
		return;
	}
	v.ts_ns = now;
	v.cause = cause;
	bpf_map_update_elem(&dropped_queries, &k, &v, BPF_ANY);
}

static __always_inline bool known_pod_addr(const __u8 *addr)
{
	return bpf_map_lookup_elem(&dns_client_addrs, addr) != NULL;
}

/*
 * Counts a dropped packet under its pod: the non-53 side of a DNS packet, else whichever
 * address dns_client_addrs knows (the source first), in both cases only an address that
 * dns_client_addrs knows. A drop of a DNS query with a cause also goes to dropped_queries.
 * Drops of no known pod only count in drop_health, so that neither random sources nor the
 * host's own traffic can fill packet_drops (kfree_skb sees every packet of the node).
 */
static __always_inline void drop_account(const struct drop_pkt *p, __u8 reason, __u8 cause)
{
	struct packet_drop_key k = {};
	const __u8 *pod = NULL;
	__u64 one = 1, *n;
	__u8 direction = 0;
	long err;

	if (cause != CAUSE_UNANSWERED && (p->flags & DP_F_QUERY))
		dropped_query_record(p, cause, bpf_ktime_get_ns());

	if (p->flags & DP_F_DNS) {
		/* The non-53 side, if it is a pod's. dns_egress learns it from the pod's query as
		 * it leaves the pod, before the node's netfilter can drop it or its answer; a drop
		 * in OUTPUT comes before dns_egress, so a hostNetwork pod's very first query
		 * dropped there is unattributed. */
		if (p->dport == DNS_PORT) {
			if (known_pod_addr(p->saddr))
				pod = p->saddr;
		} else if (known_pod_addr(p->daddr)) {
			pod = p->daddr;
			direction = 1;
		}
	} else if (known_pod_addr(p->saddr)) {
		pod = p->saddr;
	} else if (known_pod_addr(p->daddr)) {
		pod = p->daddr;
		direction = 1;
	}
	if (!pod) {
		drop_health_inc(DROP_HEALTH_UNATTRIBUTED);
		if (reason == DROP_NETFILTER)
			drop_health_inc(DROP_HEALTH_UNATTR_NETFILTER);
		return;
	}

	__builtin_memcpy(k.pod_addr, pod, ADDR_LEN);
	k.proto = p->proto;
	k.port_class = p->flags & DP_F_DNS ? PORT_DNS : PORT_OTHER;
	k.qtype = p->flags & DP_F_QUERY ? qtype_class(p->qtype) : QTYPE_CLASSES;
	k.reason = reason;
	k.direction = direction;
	n = bpf_map_lookup_elem(&packet_drops, &k);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	err = bpf_map_update_elem(&packet_drops, &k, &one, BPF_NOEXIST);
	if ((int)err == -EEXIST) { /* as int: see dns.bpf.c */
		n = bpf_map_lookup_elem(&packet_drops, &k);
		if (n)
			__sync_fetch_and_add(n, 1);
	} else if (err) {
		drop_health_inc(DROP_HEALTH_ROWS_FULL);
	}
}

#endif /* DNSRACE_SKB_DROP_BPF_H */
