/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * drops.h: what bpf/drops.bpf.c (raw tracepoint kfree_skb) and bpf/conntrack_fexit.bpf.c
 * (fexit __nf_conntrack_confirm) write, what dns.bpf.c reads back for the join, and what
 * the exporter decodes (src/bpf/drop-maps.ts). Maps shared between objects are defined
 * in both and reused through their pins (the loader passes `map name X pinned P`).
 */
#ifndef DNSRACE_DROPS_H
#define DNSRACE_DROPS_H

#include "dns.h"

/* pod addresses on one node (110-250 pods, IPv4 + IPv6 each, plus churn); LRU */
#define MAX_CLIENT_ADDRS 4096
/* drop records kept for the join: dropped DNS queries within a few resolver timeouts */
#define MAX_DROPPED_QUERIES 4096
/* (pod address, protocol, port class, qtype, reason, direction) rows */
#define MAX_DROP_ROWS 8192

/* Drop reasons worth telling apart; the kernel's enum values are resolved with CO-RE. */
enum drop_reason_class {
	DROP_NETFILTER = 0,		  /* SKB_DROP_REASON_NETFILTER_DROP */
	DROP_CONNTRACK_INSERT_FAILED = 1, /* __nf_conntrack_confirm returned NF_DROP (fexit) */
	DROP_NO_SOCKET = 2,	 /* e.g. a DNS answer after the resolver closed its socket */
	DROP_SOCKET_RCVBUFF = 3, /* a socket's receive buffer was full */
	DROP_OTHER = 4,
	DROP_REASON_CLASSES = 5,
};

enum port_class {
	PORT_OTHER = 0,
	PORT_DNS = 1, /* either port is 53 */
};

/*
 * dns_client_addrs: written by dns_egress for every new client query (LRU), so that a
 * drop seen without a socket (kfree_skb, conntrack confirm) can be attributed to the
 * pod's cgroup by the pod's address. Key: the address, IPv4-mapped for IPv4.
 */
struct client_addr_val {
	__u64 cgroup_id;
	__u64 last_seen_ns;
};

/* dropped_queries: one record per dropped DNS query, keyed like the query it dropped. */
struct dropped_query_key {
	__u8 client_addr[16]; /* IPv4-mapped for IPv4 */
	__u16 port;	      /* client port, host byte order */
	__u16 id;	      /* DNS id, host byte order */
	__u16 qtype;	      /* raw QTYPE, host byte order */
	__u16 pad;
};

struct dropped_query_val {
	__u64 ts_ns;
	__u8 cause; /* enum stall_cause */
	__u8 pad[7];
};

/*
 * packet_drops: counts per pod address, only for addresses in dns_client_addrs (so a
 * flood from random sources cannot fill it) or for DNS packets. direction says whether
 * the pod sent the packet (saddr) or was to receive it (daddr).
 */
struct packet_drop_key {
	__u8 pod_addr[16];
	__u8 proto;	 /* IPPROTO_UDP, IPPROTO_TCP, or 0 for anything else */
	__u8 port_class; /* enum port_class */
	__u8 qtype;	 /* enum qtype_class for DNS queries, QTYPE_CLASSES otherwise */
	__u8 reason;	 /* enum drop_reason_class */
	__u8 direction;	 /* 0: sent by the pod, 1: to the pod */
	__u8 pad[3];
};

/* drop_health: per-CPU counters of the drop programs. */
enum drop_health_counter {
	DROP_HEALTH_EVENTS = 0,	  /* kfree_skb events with a drop reason we count */
	DROP_HEALTH_UNATTRIBUTED, /* IP drops whose addresses are no known pod (not in packet_drops)
				   */
	DROP_HEALTH_PARSE_FAILED, /* could not read the IP/L4 headers of a dropped skb */
	DROP_HEALTH_ROWS_FULL,	  /* packet_drops was full */
	DROP_HEALTH_CONFIRM_DROPS, /* __nf_conntrack_confirm returned NF_DROP (fexit mode only) */
	DROP_HEALTH_UNATTR_NETFILTER, /* netfilter drops among DROP_HEALTH_UNATTRIBUTED */
	DROP_HEALTH_COUNTERS = 8,
};

#endif /* DNSRACE_DROPS_H */
