// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * conntrack_fexit.bpf.c: catches conntrack insert failures exactly. When
 * __nf_conntrack_confirm returns NF_DROP (the new entry lost a race for its tuple and clash
 * resolution could not save it), the packet is counted under DROP_CONNTRACK_INSERT_FAILED and,
 * if it is a DNS query, recorded in dropped_queries with CAUSE_CONNTRACK_INSERT_FAILED.
 *
 * The netfilter hook then frees the skb with reason NETFILTER_DROP on the same CPU; the skb is
 * remembered in drop_confirm_skb so that drops.bpf.o (loaded beside this object, maps shared
 * through their pins) does not count it a second time.
 *
 * The client address and port come from the entry's ORIGINAL tuple: they are what the pod
 * sent, before any SNAT (the packet itself is already DNAT'ed to a replica). The DNS id and
 * question come from the packet.
 *
 * Needs fexit (5.5+) on a function of nf_conntrack, i.e. module BTF when nf_conntrack is a
 * module (5.11+, CONFIG_DEBUG_INFO_BTF_MODULES): Debian 5.10 refuses to load it, and so do
 * sandboxes that forbid tracing programs (EPERM). The loader then runs drops.bpf.o alone.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "drops.h"
#include "lib/skb_drop.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define NF_DROP 0
#define NFCT_INFOMASK 7UL /* low bits of skb->_nfct: enum ip_conntrack_info */
#define AF_INET 2
#define AF_INET6 10

/* The ORIGINAL-direction tuple of the skb's conntrack entry; false without one. */
static __always_inline bool original_tuple(struct sk_buff *skb, struct nf_conntrack_tuple *t)
{
	struct nf_conn *ct;
	unsigned long nfct;

	if (!bpf_core_field_exists(skb->_nfct))
		return false;
	nfct = BPF_CORE_READ(skb, _nfct);
	ct = (struct nf_conn *)(nfct & ~NFCT_INFOMASK);
	if (!ct)
		return false;
	/* The tuple's own layout has not changed since 2.6; only its place in nf_conn may. */
	if (bpf_core_read(t, sizeof(*t), &ct->tuplehash[IP_CT_DIR_ORIGINAL].tuple))
		return false;
	return t->src.l3num == AF_INET || t->src.l3num == AF_INET6;
}

/* Takes addresses and ports from the tuple: what the pod sent, before NAT. */
static __always_inline void use_tuple(struct drop_pkt *p, const struct nf_conntrack_tuple *t)
{
	if (t->src.l3num == AF_INET) {
		addr4_mapped(p->saddr, (const __u8 *)&t->src.u3.ip);
		addr4_mapped(p->daddr, (const __u8 *)&t->dst.u3.ip);
	} else {
		__builtin_memcpy(p->saddr, t->src.u3.all, ADDR_LEN);
		__builtin_memcpy(p->daddr, t->dst.u3.all, ADDR_LEN);
	}
	if (t->dst.protonum != IPPROTO_UDP && t->dst.protonum != IPPROTO_TCP)
		return;
	p->proto = t->dst.protonum;
	p->sport = bpf_ntohs(t->src.u.all);
	p->dport = bpf_ntohs(t->dst.u.all);
	p->flags &= ~DP_F_DNS;
	if (p->sport == DNS_PORT || p->dport == DNS_PORT)
		p->flags |= DP_F_DNS;
	/* A query DNAT'ed to another port was parsed because the tuple said port 53. */
	if (p->dport != DNS_PORT)
		p->flags &= ~DP_F_QUERY;
}

SEC("fexit/__nf_conntrack_confirm")
int BPF_PROG(ct_confirm_exit, struct sk_buff *skb, int ret)
{
	struct nf_conntrack_tuple t;
	struct drop_scratch *s;
	struct confirm_drop *c;
	__u32 zero = 0, slot;
	bool have_tuple;
	int r;

	if (ret != NF_DROP)
		return 0;
	drop_health_inc(DROP_HEALTH_CONFIRM_DROPS);
	c = bpf_map_lookup_elem(&drop_confirm_skb, &zero);
	if (c) {
		c->skb = (__u64)skb;
		c->ts_ns = bpf_ktime_get_ns();
	}

	s = drop_scratch_get(&slot);
	if (!s)
		return 0;
	have_tuple = original_tuple(skb, &t);
	r = skb_parse(skb, s, slot, have_tuple && bpf_ntohs(t.dst.u.all) == DNS_PORT);
	if (r == SKB_PARSE_NOT_IP)
		goto out;
	if (r != SKB_PARSE_OK) {
		drop_health_inc(DROP_HEALTH_PARSE_FAILED);
		goto out;
	}
	if (have_tuple)
		use_tuple(&s->pkt, &t);
	drop_account(&s->pkt, DROP_CONNTRACK_INSERT_FAILED, CAUSE_CONNTRACK_INSERT_FAILED);
out:
	s->busy = 0;
	return 0;
}
