/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * dns_wire.bpf.h: the DNS message header and the first question (RFC 1035 4.1), read from
 * a copy of the packet bytes in a per-CPU buffer, never from the packet itself: one
 * bpf_skb_load_bytes() of the whole question beats one helper call per label.
 */
#ifndef DNSRACE_DNS_WIRE_BPF_H
#define DNSRACE_DNS_WIRE_BPF_H

#define DNS_HDR_LEN 12
#define DNS_FLAG_QR 0x8000
/* Reserved, must be zero: a cheap sign that a TCP segment starts a message. */
#define DNS_FLAG_Z 0x0040
#define DNS_OPCODE(flags) (((flags) >> 11) & 0x0f)
#define DNS_RCODE(flags) ((flags)&0x0f)
#define DNS_OPCODE_QUERY 0

#define DNS_LABEL_MAX 63
#define DNS_NAME_MAX 255    /* wire format, root label included */
#define DNS_QUESTION_TAIL 4 /* QTYPE + QCLASS */
#define DNS_QUESTION_MAX (DNS_NAME_MAX + DNS_QUESTION_TAIL)
/* DNS_QUESTION_MAX rounded up to the 8-byte chunks that the name hash reads */
#define DNS_NAME_BUF 264
#define DNS_LABELS_MAX 128 /* a 255-byte name has at most 127 one-byte labels and the root */
#define DNS_MSG_MIN (DNS_HDR_LEN + 1 + DNS_QUESTION_TAIL) /* header + root name question */

#define DNS_QTYPE_A 1
#define DNS_QTYPE_AAAA 28

struct dns_hdr {
	__be16 id;
	__be16 flags;
	__be16 qdcount;
	__be16 ancount;
	__be16 nscount;
	__be16 arcount;
};

/* What a DNS-over-TCP segment starts with when it starts a message (RFC 7766 8). */
struct dns_tcp_start {
	__be16 length;
	struct dns_hdr hdr;
};

enum qname_error {
	QNAME_TRUNCATED = -1, /* the packet ends inside the question */
	QNAME_BAD = -2,	      /* label > 63 (compression pointer, reserved type) or name > 255 */
};

/*
 * Walks the wire-format QNAME at buf[0..n), n <= DNS_QUESTION_MAX, and returns its length
 * including the root label, or a negative enum qname_error. A question never needs a
 * compression pointer (nothing precedes it to point at), so one is treated as malformed.
 */
static __always_inline int qname_walk(const __u8 *buf, __u64 n)
{
	__u64 off = 0;

	for (int i = 0; i < DNS_LABELS_MAX; i++) {
		if (off >= n)
			return QNAME_TRUNCATED;
		__u8 len = buf[off];

		if (len == 0)
			return off + 1;
		if (len > DNS_LABEL_MAX)
			return QNAME_BAD;
		off += len + 1;
		/* a root label at off, the next length byte, makes the name off + 1 long */
		if (off >= DNS_NAME_MAX)
			return QNAME_BAD;
	}
	return QNAME_BAD;
}

/*
 * Multiply-xor hash of the wire-format name over 8-byte chunks (the last one zero-padded),
 * copying the first QNAME_LEN bytes to out at the same time. Used only to match a re-sent
 * question (struct retry_key), so speed matters more than distribution quality. The whole
 * chunks and the tail are handled apart so that the loop has a single exit condition: the
 * verifier then walks it in a few instructions per iteration.
 */
#define QNAME_HASH_SEED 0xcbf29ce484222325ULL
#define QNAME_HASH_MUL 0x9e3779b97f4a7c15ULL

static __always_inline __u32 qname_hash_copy(const __u8 *name, __u32 name_len, __u8 *out)
{
	__u32 whole = name_len / 8, tail = name_len % 8, at;
	__u64 h = QNAME_HASH_SEED, chunk;

	for (__u32 i = 0; i < DNS_NAME_MAX / 8; i++) {
		if (i >= whole)
			break;
		chunk = *(const __u64 *)(name + i * 8);
		h = (h ^ chunk) * QNAME_HASH_MUL;
		if (i < QNAME_LEN / 8)
			*(__u64 *)(out + i * 8) = chunk;
	}
	if (tail) {
		at = whole * 8;
		/* bound the register that indexes, not a copy of it (clang 14, -mcpu=v2) */
		barrier_var(at);
		if (at > DNS_NAME_MAX)
			return 0; /* cannot happen; tells the verifier */
		chunk = *(const __u64 *)(name + at) & ((1ULL << (tail * 8)) - 1);
		h = (h ^ chunk) * QNAME_HASH_MUL;
		if (at < QNAME_LEN)
			*(__u64 *)(out + at) = chunk;
	}
	return (__u32)(h ^ (h >> 32));
}

/* qtype and rcode become Prometheus labels: closed sets (dns.h). */
static __always_inline __u8 qtype_class(__u16 qtype)
{
	if (qtype == DNS_QTYPE_A)
		return QTYPE_A;
	if (qtype == DNS_QTYPE_AAAA)
		return QTYPE_AAAA;
	return QTYPE_OTHER;
}

static __always_inline __u32 rcode_class(__u16 rcode)
{
	switch (rcode) {
	case 0:
		return RCODE_NOERROR;
	case 2:
		return RCODE_SERVFAIL;
	case 3:
		return RCODE_NXDOMAIN;
	case 5:
		return RCODE_REFUSED;
	default:
		return RCODE_OTHER;
	}
}

#endif /* DNSRACE_DNS_WIRE_BPF_H */
