// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * qtype_match.bpf.c: socket-filter programs used as an iptables/ip6tables match
 * (`-m bpf --object-pinned <pin>`) by the test lab's fault knob. Each returns 1 for a
 * DNS query over UDP to port 53 whose first question has the program's QTYPE, 0 otherwise.
 * In netfilter hooks skb->data starts at the IPv4 or IPv6 header. Two programs instead of a
 * const volatile global, because bpftool cannot set globals at load time.
 * Build: scripts/build-bpf.sh
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DNS_PORT 53
#define DNS_HDR_LEN 12
#define MAX_LABELS 32 /* a 253-byte name of 1-char labels has more, but real lookups have < 16 */
#define IP6_HDR_LEN 40
#define PROTO_UDP 17
#define QTYPE_A 1
#define QTYPE_AAAA 28

/* Offset of the UDP header, or -1 when the packet is not unfragmented UDP. */
static __always_inline int udp_offset(struct __sk_buff *skb)
{
	__u8 vihl;

	if (bpf_skb_load_bytes(skb, 0, &vihl, 1) < 0)
		return -1;
	if ((vihl >> 4) == 4) {
		struct iphdr iph;

		if (bpf_skb_load_bytes(skb, 0, &iph, sizeof(iph)) < 0)
			return -1;
		if (iph.protocol != PROTO_UDP || (iph.frag_off & bpf_htons(0x3fff)))
			return -1;
		return iph.ihl * 4;
	}
	if ((vihl >> 4) == 6) {
		__u8 nexthdr;

		/* extension headers are not followed: DNS queries do not carry them */
		if (bpf_skb_load_bytes(skb, 6, &nexthdr, 1) < 0)
			return -1;
		return nexthdr == PROTO_UDP ? IP6_HDR_LEN : -1;
	}
	return -1;
}

static __always_inline int match_qtype(struct __sk_buff *skb, __u16 want)
{
	struct udphdr uh;
	__u8 dh[DNS_HDR_LEN];
	__u8 qt[2];
	__u32 off;
	int l4 = udp_offset(skb);

	if (l4 < 0 || l4 > 60 + IP6_HDR_LEN)
		return 0;
	if (bpf_skb_load_bytes(skb, l4, &uh, sizeof(uh)) < 0)
		return 0;
	if (uh.dest != bpf_htons(DNS_PORT))
		return 0;
	off = l4 + sizeof(uh);
	if (bpf_skb_load_bytes(skb, off, dh, sizeof(dh)) < 0)
		return 0;
	if (dh[2] & 0x80) /* QR set: a response */
		return 0;
	if (!(dh[4] | dh[5])) /* QDCOUNT 0 */
		return 0;
	off += DNS_HDR_LEN;
	for (int i = 0; i < MAX_LABELS; i++) {
		__u8 len;

		if (bpf_skb_load_bytes(skb, off, &len, 1) < 0)
			return 0;
		off += 1;
		if (len == 0)
			break;
		if (len > 63) /* compression pointers do not belong in a question */
			return 0;
		off += len;
	}
	if (bpf_skb_load_bytes(skb, off, qt, sizeof(qt)) < 0)
		return 0;
	return ((qt[0] << 8) | qt[1]) == want;
}

SEC("socket")
int qtype_a(struct __sk_buff *skb)
{
	return match_qtype(skb, QTYPE_A);
}

SEC("socket")
int qtype_aaaa(struct __sk_buff *skb)
{
	return match_qtype(skb, QTYPE_AAAA);
}

char LICENSE[] SEC("license") = "GPL";
