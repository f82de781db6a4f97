// The baseline: a cgroup_skb program that does nothing, so its run_time_ns is the cost of
// the hook plus bpf_stats' own clock reads.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("cgroup_skb/egress")
int noop_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int noop_ingress(struct __sk_buff *skb)
{
	return 1;
}
