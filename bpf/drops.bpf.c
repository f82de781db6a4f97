// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * drops.bpf.c: counts the packets the kernel drops, per pod address, and records every
 * dropped DNS query so that dns.bpf.c can say why the query was re-sent or timed out
 * (maps and layouts: drops.h, lib/drop_maps.bpf.h).
 *
 * A raw tracepoint on kfree_skb: it needs no tracefs (not mounted on every node) and sees the
 * drops of every network namespace. lib/drop_reason.bpf.h reads the drop reason where the
 * kernel has one (5.17+) and maps it to enum drop_reason_class.
 *
 * What is counted: drops with a specific reason; drops with no reason (kernels before 5.17,
 * or SKB_DROP_REASON_NOT_SPECIFIED) only when they are DNS packets, as DROP_OTHER. Without
 * a reason a netfilter drop cannot be told from others, so no dropped_queries record either.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "drops.h"
#include "lib/drop_reason.bpf.h"
#include "lib/skb_drop.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * How long after the fexit program flagged an skb its kfree_skb still counts as the same drop.
 * nf_hook_slow frees it right after __nf_conntrack_confirm returns, on the same CPU, and the
 * slot is cleared on use, so the window only guards against a reused skb address; 1 ms was
 * too short under emulation (the kernel matrix counted insert failures twice).
 */
#define CONFIRM_DEDUP_NS 1000000000ULL

/* True if the fexit program already counted this skb as a conntrack insert failure. */
static __always_inline bool counted_by_confirm(struct sk_buff *skb)
{
	struct confirm_drop *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&drop_confirm_skb, &zero);
	if (!c || !c->skb || c->skb != (__u64)skb)
		return false;
	c->skb = 0;
	return bpf_ktime_get_ns() - c->ts_ns < CONFIRM_DEDUP_NS;
}

SEC("raw_tp/kfree_skb")
int drops_kfree_skb(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];
	struct drop_scratch *s;
	__u32 slot;
	int cls, r;

	cls = kfree_skb_reason_class(ctx);
	if (cls == REASON_SKIP)
		return 0;
	if (cls == DROP_NETFILTER && counted_by_confirm(skb))
		return 0;

	s = drop_scratch_get(&slot);
	if (!s)
		return 0;
	r = skb_parse(skb, s, slot, false);
	if (r == SKB_PARSE_NOT_IP)
		goto out;
	if (cls == REASON_VAGUE) {
		if (r != SKB_PARSE_OK || !(s->pkt.flags & DP_F_DNS))
			goto out;
		cls = DROP_OTHER;
	}
	drop_health_inc(DROP_HEALTH_EVENTS);
	if (r != SKB_PARSE_OK) {
		drop_health_inc(DROP_HEALTH_PARSE_FAILED);
		goto out;
	}
	drop_account(&s->pkt, cls, cls == DROP_NETFILTER ? CAUSE_NETFILTER_DROP : CAUSE_UNANSWERED);
out:
	s->busy = 0;
	return 0;
}
