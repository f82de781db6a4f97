/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * drop_reason.bpf.h: the kernel-version shim of the kfree_skb raw tracepoint. Its arguments
 * changed twice:
 *   - before 5.17: (skb, location)
 *   - 5.17 ("net: skb: introduce kfree_skb_reason()"): (skb, location, reason), with
 *     enum skb_drop_reason; NETFILTER_DROP and many more reasons came in 5.18/5.19
 *   - 6.11 ("net: add rx_sk to trace_kfree_skb"): (skb, location, reason, rx_sk)
 * so reason is args[2] wherever it exists. The enum has been renumbered between releases
 * (NO_SOCKET is 2 on 6.1 and 3 on 6.12): every value is resolved from the running kernel's
 * BTF with CO-RE, none is copied from a header.
 */
#ifndef DNSRACE_DROP_REASON_BPF_H
#define DNSRACE_DROP_REASON_BPF_H

#include "drops.h"

#define REASON_IS(r, name)                                                                         \
	(bpf_core_enum_value_exists(enum skb_drop_reason, name) &&                                 \
	 (r) == bpf_core_enum_value(enum skb_drop_reason, name))

enum {
	REASON_SKIP = -1,  /* not a loss of ours: do not count */
	REASON_VAGUE = -2, /* no reason given: count DNS packets only, as DROP_OTHER */
};

/*
 * enum drop_reason_class of the drop, or REASON_SKIP / REASON_VAGUE.
 *
 * NOT_SPECIFIED is the reason of every kfree_skb() caller nobody annotated, and many of those
 * free packets that were no loss: counting them for every pod would bury the real drops.
 * SKB_CONSUMED (6.3+) is no drop; OTHERHOST drops are frames for another host that a bridge
 * hands to the stack too.
 */
static __always_inline int drop_reason_class(__u32 reason)
{
	if (REASON_IS(reason, SKB_DROP_REASON_NETFILTER_DROP))
		return DROP_NETFILTER;
	if (REASON_IS(reason, SKB_DROP_REASON_NO_SOCKET))
		return DROP_NO_SOCKET;
	if (REASON_IS(reason, SKB_DROP_REASON_SOCKET_RCVBUFF))
		return DROP_SOCKET_RCVBUFF;
	if (REASON_IS(reason, SKB_DROP_REASON_NOT_SPECIFIED))
		return REASON_VAGUE;
	if (REASON_IS(reason, SKB_CONSUMED) || REASON_IS(reason, SKB_DROP_REASON_OTHERHOST))
		return REASON_SKIP;
	return DROP_OTHER;
}

/*
 * The class of a kfree_skb raw tracepoint event. On a kernel without the reason argument the
 * condition is false at load time and the verifier never walks the read of args[2], which the
 * attach of a two-argument tracepoint would refuse.
 */
static __always_inline int kfree_skb_reason_class(struct bpf_raw_tracepoint_args *ctx)
{
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED))
		return drop_reason_class(ctx->args[2]);
	return REASON_VAGUE;
}

#endif /* DNSRACE_DROP_REASON_BPF_H */
