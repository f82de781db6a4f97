/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * packet.bpf.h: find the UDP/TCP ports behind the IP header of a cgroup_skb packet.
 *
 * In cgroup_skb programs skb->data points at the IP header: there is no link layer. Every
 * packet of every pod passes here, so the common case (header linear, not port 53) must
 * leave after a handful of instructions: l4_locate_direct() reads the headers in place;
 * only packets whose headers are not in the linear area, or IPv6 packets with extension
 * headers, take the bpf_skb_load_bytes() path in l4_locate_copy().
 */
#ifndef DNSRACE_PACKET_BPF_H
#define DNSRACE_PACKET_BPF_H

#define IPV4_HDR_LEN 20
#define IPV6_HDR_LEN 40
#define IPV4_SADDR_OFF 12
#define IPV6_SADDR_OFF 8
#define IPV4_FRAG_OFFSET 0x1fff /* fragment offset bits of iphdr.frag_off */
#define IPV6_FRAG_OFFSET 0xfff8 /* fragment offset bits of frag_hdr.frag_off */

/* Extension headers walked before giving up: real DNS traffic carries none, and a walk that
 * long already means something unusual (HEALTH_PARSE_IPV6_EXT counts it). */
#define IPV6_EXT_MAX 4

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

#define L4_F_IPV6 0x01
#define L4_F_TCP 0x02
#define L4_F_EGRESS 0x04 /* set by the caller: which program saw the packet */

/* 8 bytes, so that it passes by value (as a __u64) to a global BPF function on 5.10, whose
 * global functions take only scalars and the context. */
struct l4_loc {
	__u16 l4_off; /* UDP/TCP header, counted from the IP header */
	__u16 sport;  /* host byte order */
	__u16 dport;  /* host byte order */
	__u8 flags;   /* L4_F_* */
	__u8 pad;
};

enum l4_verdict {
	L4_SKIP = 0,   /* not UDP/TCP port 53, or not parseable: leave */
	L4_PORT53,     /* UDP/TCP with port 53 on one side; l4_loc is filled */
	L4_NEEDS_COPY, /* headers not linear, or IPv6 extension headers: l4_locate_copy() */
	L4_FRAGMENT,   /* non-first UDP/TCP fragment: no ports to look at */
	L4_IPV6_EXT,   /* more than IPV6_EXT_MAX extension headers */
};

static __always_inline bool is_udp_or_tcp(__u8 proto)
{
	return proto == IPPROTO_UDP || proto == IPPROTO_TCP;
}

static __always_inline bool is_ipv6_ext(__u8 nexthdr)
{
	return nexthdr == NEXTHDR_HOP || nexthdr == NEXTHDR_ROUTING ||
	       nexthdr == NEXTHDR_FRAGMENT || nexthdr == NEXTHDR_DEST;
}

static __always_inline int l4_fill(struct l4_loc *l, __u32 l4_off, bool ipv6, __u8 proto,
				   __be16 sport, __be16 dport)
{
	l->l4_off = l4_off;
	l->sport = bpf_ntohs(sport);
	l->dport = bpf_ntohs(dport);
	l->flags = (ipv6 ? L4_F_IPV6 : 0) | (proto == IPPROTO_TCP ? L4_F_TCP : 0);
	l->pad = 0;
	return L4_PORT53;
}

/* Fast path: direct packet access, no helper call. */
static __always_inline int l4_locate_direct(struct __sk_buff *skb, struct l4_loc *l)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *ip = data;
	__u32 l4_off;
	__u8 proto;

	if (data + IPV4_HDR_LEN > data_end)
		return L4_NEEDS_COPY;
	if ((ip[0] >> 4) == 4) {
		proto = ip[9];
		if (!is_udp_or_tcp(proto))
			return L4_SKIP;
		if (*(__be16 *)(ip + 6) & bpf_htons(IPV4_FRAG_OFFSET))
			return L4_FRAGMENT;
		l4_off = (ip[0] & 0x0f) << 2;
		if (l4_off < IPV4_HDR_LEN)
			return L4_SKIP;
	} else if ((ip[0] >> 4) == 6) {
		if (data + IPV6_HDR_LEN > data_end)
			return L4_NEEDS_COPY;
		proto = ip[6];
		if (!is_udp_or_tcp(proto))
			return is_ipv6_ext(proto) ? L4_NEEDS_COPY : L4_SKIP;
		l4_off = IPV6_HDR_LEN;
	} else {
		return L4_SKIP;
	}

	__be16 *ports = data + l4_off;

	if ((void *)(ports + 2) > data_end)
		return L4_NEEDS_COPY;
	if (ports[0] != bpf_htons(DNS_PORT) && ports[1] != bpf_htons(DNS_PORT))
		return L4_SKIP;
	return l4_fill(l, l4_off, (ip[0] >> 4) == 6, proto, ports[0], ports[1]);
}

/* Slow path: copies the headers out with bpf_skb_load_bytes() and walks IPv6 extension headers. */
static __always_inline int l4_locate_copy(struct __sk_buff *skb, struct l4_loc *l)
{
	__u8 ip[IPV4_HDR_LEN];
	__be16 ports[2];
	__u32 l4_off;
	__u8 proto;
	bool ipv6 = false;

	/* 20 bytes hold the whole IPv4 header and the IPv6 version and next header fields. */
	if (bpf_skb_load_bytes(skb, 0, ip, sizeof(ip)) < 0)
		return L4_SKIP;
	if ((ip[0] >> 4) == 4) {
		proto = ip[9];
		if (!is_udp_or_tcp(proto))
			return L4_SKIP;
		if (((ip[6] << 8) | ip[7]) & IPV4_FRAG_OFFSET)
			return L4_FRAGMENT;
		l4_off = (ip[0] & 0x0f) << 2;
		if (l4_off < IPV4_HDR_LEN)
			return L4_SKIP;
	} else if ((ip[0] >> 4) == 6) {
		ipv6 = true;
		proto = ip[6];
		l4_off = IPV6_HDR_LEN;
#pragma unroll
		for (int i = 0; i < IPV6_EXT_MAX; i++) {
			/* next header, length, and the fragment header's offset field */
			__u8 ext[4];

			if (is_udp_or_tcp(proto) || !is_ipv6_ext(proto))
				break;
			if (bpf_skb_load_bytes(skb, l4_off, ext, sizeof(ext)) < 0)
				return L4_SKIP;
			if (proto == NEXTHDR_FRAGMENT) {
				if (((ext[2] << 8) | ext[3]) & IPV6_FRAG_OFFSET)
					return is_udp_or_tcp(ext[0]) ? L4_FRAGMENT : L4_SKIP;
				l4_off += 8;
			} else {
				l4_off += (ext[1] + 1) << 3;
			}
			proto = ext[0];
		}
		if (!is_udp_or_tcp(proto))
			return is_ipv6_ext(proto) ? L4_IPV6_EXT : L4_SKIP;
	} else {
		return L4_SKIP;
	}

	if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)) < 0)
		return L4_SKIP;
	if (ports[0] != bpf_htons(DNS_PORT) && ports[1] != bpf_htons(DNS_PORT))
		return L4_SKIP;
	return l4_fill(l, l4_off, ipv6, proto, ports[0], ports[1]);
}

#endif /* DNSRACE_PACKET_BPF_H */
