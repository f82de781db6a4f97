/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * dns.h: what bpf/dns.bpf.c writes and the exporter decodes (src/bpf/dns-maps.ts).
 * Fixed-width types only; every struct is padded explicitly so that the layout is the
 * same for clang -target bpf and for the TypeScript decoder. Change a struct here and
 * you change the pinned-map ABI: the loader refuses to reuse maps whose sizes differ.
 */
#ifndef DNSRACE_DNS_H
#define DNSRACE_DNS_H

#define DNS_PORT 53

/* Dimensions behind max_entries. */
/* container cgroups with DNS traffic on one node (110-250 pods x a few containers) */
#define MAX_CGROUPS 2048
#define DNS_ROLES 2 /* client, server */
#define MAX_STATS_ROWS (MAX_CGROUPS * DNS_ROLES * QTYPE_CLASSES)
/* queries in flight at once on one node; overflow is counted (HEALTH_PENDING_FULL) */
#define MAX_PENDING 16384
/*
 * A cgroup's fair share of dns_pending. Beyond it, a cgroup's new queries are tracked only
 * while the table is less than half full, so that one pod flooding a server that never
 * answers cannot leave the other pods' lookups unpaired (HEALTH_PENDING_SHARE_FULL).
 */
#define PENDING_SHARE (MAX_PENDING / 8)
#define QNAME_LEN 128	  /* wire-format query name kept for the drill-down, truncated */
#define SWEEP_MAX_KEYS 64 /* pending keys one dns_sweep_timeouts run examines (bounded loop) */

enum dns_role {
	ROLE_CLIENT = 0, /* query leaves the cgroup, answer comes back */
	ROLE_SERVER = 1, /* query arrives in the cgroup (a DNS server pod), answer leaves */
};

/* qtype and rcode are closed small sets: they become Prometheus labels. */
enum qtype_class {
	QTYPE_A = 0,
	QTYPE_AAAA = 1,
	QTYPE_OTHER = 2,
	QTYPE_CLASSES = 3,
};

enum rcode_class {
	RCODE_NOERROR = 0,
	RCODE_NXDOMAIN = 1,
	RCODE_SERVFAIL = 2,
	RCODE_REFUSED = 3,
	RCODE_OTHER = 4,
	RCODE_CLASSES = 5,
};

/*
 * Latency buckets are the buckets of a Prometheus native histogram with schema 2: bucket
 * index i holds latencies in (2^((i-1)/4), 2^(i/4)] seconds, four buckets per power of two,
 * so 5 s, 10 s and 15 s stalls land in different buckets and 1 ms is told from 2 ms.
 * Slot 0 is the zero bucket (<= 2^(LAT_MIN_INDEX/4) s = 61 us); slot s >= 1 is index
 * LAT_MIN_INDEX + s; latencies above 2^(LAT_MAX_INDEX/4) s = 256 s are clamped into the last slot.
 */
#define LAT_SCHEMA 2
#define LAT_MIN_INDEX (-56)
#define LAT_MAX_INDEX 32
#define LAT_SLOTS (LAT_MAX_INDEX - LAT_MIN_INDEX + 1)

struct dns_stats_key {
	__u64 cgroup_id; /* bpf_skb_cgroup_id(): inode of the socket's cgroup2 directory */
	__u8 role;	 /* enum dns_role */
	__u8 qtype;	 /* enum qtype_class */
	__u8 pad[6];
};

/*
 * Why a query was re-sent or never answered, as far as the node can tell: a netfilter
 * drop of the query seen by bpf/drops.bpf.c, an exact conntrack insert failure seen by
 * bpf/conntrack_fexit.bpf.c where the kernel allows fexit, or nothing seen (unanswered).
 */
enum stall_cause {
	CAUSE_UNANSWERED = 0,
	CAUSE_NETFILTER_DROP = 1,
	CAUSE_CONNTRACK_INSERT_FAILED = 2,
	CAUSE_CLASSES = 3,
};

/* One row per (cgroup, role, qtype): every counter the exporter needs for that triple. */
struct dns_stats {
	__u64 queries; /* distinct queries (first sends) */
	__u64
	    retransmits[CAUSE_CLASSES]; /* re-sends of a pending query, same socket or a new one */
	__u64 timeouts[CAUSE_CLASSES];	/* pending queries never answered (dns_sweep_timeouts) */
	__u64 responses[RCODE_CLASSES];
	__u64 latency_count; /* answers paired with their query */
	__u64 latency_sum_ns;
	__u64 latency[LAT_SLOTS];
};

/*
 * dns_cgroup_names value (exporter-owned). Kubernetes limits: namespace 63 characters, pod
 * name 253; longer values are truncated by the exporter. Retired rows (rows of cgroups gone
 * longer than the exporter's grace period, summed per namespace) use cgroup ids with
 * RETIRED_ID_BIT set, which no cgroup inode can have.
 */
#define MAX_CGROUP_NAMES (MAX_CGROUPS * 2)
#define RETIRED_ID_BIT (1ULL << 63)
struct cgroup_name {
	char namespace[64];
	char pod[256];
	char workload_kind[32];
	char workload[160];
};

enum dns_proto {
	PROTO_UDP = 0,
	PROTO_TCP = 1,
};

/*
 * A query in flight. The port is the non-53 side (the client's), so the same key pairs
 * a query with its answer on both the client and the server side. peer is the client
 * address on the server side and zero on the client side (the answer comes back from
 * the ClusterIP after un-DNAT, or from whatever address the query went to).
 */
struct pending_key {
	__u64 cgroup_id;
	__u8 peer[16]; /* IPv6, or IPv4-mapped ::ffff:a.b.c.d */
	__u16 port;    /* host byte order */
	__u16 id;      /* DNS id, host byte order */
	__u16 qtype;   /* raw QTYPE, host byte order */
	__u8 role;
	__u8 proto; /* enum dns_proto */
};

struct pending_val {
	__u64 first_ts_ns; /* bpf_ktime_get_ns() of the first send: latency runs from here */
	__u64 last_ts_ns;  /* last (re)send: the timeout deadline runs from here */
	__u32 retransmits;
	__u32 name_hash; /* hash of the wire-format QNAME, for retry_key */
	__u8 qname_len;	 /* bytes of qname[] in use (wire format, truncated at QNAME_LEN) */
	__u8 flags;	 /* PENDING_F_* */
	__u8 cause;	 /* enum stall_cause: the last drop of this query the node saw */
	__u8 pad;
	/*
	 * An IPv4 client query's destination (the DNS ClusterIP, before DNAT), for the drill-down
	 * events; zero otherwise. In the padding, so that the layout stays that of the pinned
	 * maps of earlier versions (an IPv6 destination is read from the answer or the re-send).
	 */
	__u8 server_addr4[4];
	/*
	 * The client's address as the query left it (IPv4-mapped for IPv4): with the port, id
	 * and qtype it finds the query in dropped_queries (bpf/drops.h), whose records the drop
	 * programs write from the dropped packet, where no cgroup id is at hand.
	 */
	__u8 client_addr[16];
	__u8 qname[QNAME_LEN];
};

/* was re-sent from a new socket (single-request-reopen) */
#define PENDING_F_RETRY_NEW_SOCKET 0x01
/* first sent from a connected UDP socket (glibc connect()s; musl sends from an unconnected one) */
#define PENDING_F_CONNECTED 0x02
/* the QNAME was longer than QNAME_LEN: qname[] holds its first QNAME_LEN bytes */
#define PENDING_F_QNAME_TRUNCATED 0x04

/*
 * glibc's single-request-reopen (and musl's retry, and many stub resolvers) re-send the
 * same question with the same DNS id from a new socket. This index finds the pending
 * query such a re-send belongs to.
 */
struct retry_key {
	__u64 cgroup_id;
	__u32 name_hash;
	__u16 id;
	__u16 qtype;
	__u8 role;
	__u8 pad[7];
};

/* Self-health counters (per-CPU array, summed by the exporter). */
enum health_counter {
	HEALTH_DNS_PACKETS = 0,	   /* packets parsed as DNS on port 53 */
	HEALTH_UNMATCHED_ANSWERS,  /* answers with no pending query (late, duplicate, or before
				      attach) */
	HEALTH_PENDING_FULL,	   /* queries not tracked because dns_pending was full */
	HEALTH_STATS_FULL,	   /* updates lost because dns_stats was full */
	HEALTH_RETRY_INDEX_FULL,   /* dns_retry_index was full: a retry may count as a new query */
	HEALTH_PARSE_TRUNCATED,	   /* port 53 but too short for the headers it claims */
	HEALTH_PARSE_BAD_QUESTION, /* qdcount != 1, bad label, compression pointer or name too long
				    */
	HEALTH_PARSE_FRAGMENT,	   /* IP fragment: only a first fragment can carry the DNS header */
	HEALTH_PARSE_IPV6_EXT,	   /* IPv6 extension header chain longer than we walk */
	HEALTH_PARSE_TCP_NOT_START,  /* TCP port 53 segment that does not start a DNS message */
	HEALTH_SWEEP_RUNS,	     /* dns_sweep_timeouts invocations */
	HEALTH_EVENTS_SENT,	     /* drill-down events written to dns_events */
	HEALTH_EVENTS_RATE_LIMITED,  /* events not sent: the cgroup's token bucket was empty */
	HEALTH_EVENTS_OUTPUT_FAILED, /* bpf_perf_event_output failed: no reader, or its ring full */
	HEALTH_PENDING_SHARE_FULL,   /* queries not tracked: their cgroup held PENDING_SHARE
					entries and dns_pending was half full */
	HEALTH_COUNTERS = 16,
};

/*
 * Input of dns_sweep_timeouts, run with BPF_PROG_TEST_RUN (bpftool prog run ... data_in):
 * 14 bytes of Ethernet header (ignored; test-run strips it), then this header, then
 * count x struct pending_key. A key is swept only if it still exists and its last send is
 * older than deadline_ns by the kernel's own clock; deletion decides who counts, so an
 * answer racing the sweep is counted once, as an answer or as a timeout.
 */
struct sweep_request {
	__u64 deadline_ns;
	__u32 count;
	__u32 pad;
};

/*
 * Drill-down events (dns_events, a PERF_EVENT_ARRAY read by `bpftool map event_pipe`): one
 * record per lookup worth a human's look, with its name. Rare by construction (slow, failed,
 * timed out, re-sent after a drop), rate-limited per cgroup, and off until the exporter
 * writes dns_event_config.
 */
enum dns_event_kind {
	EVENT_SLOW = 0,	      /* answered, first send to answer >= slow_ns */
	EVENT_FAILED = 1,     /* answered with an error RCODE other than NXDOMAIN (SERVFAIL, ...) */
	EVENT_TIMEOUT = 2,    /* never answered: ended by dns_sweep_timeouts */
	EVENT_RETRANSMIT = 3, /* re-sent after a drop of an earlier send (cause != unanswered) */
	EVENT_NXDOMAIN = 4,   /* answered NXDOMAIN below slow_ns: search-list walks; low priority */
	EVENT_KINDS = 5,
};

/* no RCODE: the event is a timeout or a retransmit */
#define EVENT_RCODE_NONE 0xff

/* dns_event_config.flags */
/* record server-side answer times of local client pods and join them to client events */
#define EVENT_CFG_SERVER_JOIN 0x01

/*
 * dns_event_config[0], written by the exporter at start (bpftool cannot set const volatile
 * globals of a loaded program). All zero (the state after load): no events.
 */
struct dns_event_config {
	__u64 slow_ns;	    /* an answer this slow (first send to answer) is an EVENT_SLOW */
	__u32 rate_per_sec; /* token bucket refill per cgroup; 0: no events */
	__u32 burst;	    /* token bucket size per cgroup */
	__u32 kinds;	    /* bit (1 << enum dns_event_kind) set: that kind is sent */
	__u32 flags;	    /* EVENT_CFG_* */
};

/* Events per cgroup: tokens in units of 1e-9 event, refilled by elapsed ns x rate. */
struct event_bucket {
	__u64 ts_ns;
	__u64 tokens;
};

/*
 * The last answers of server pods, for the events of client pods on this node: how long the
 * server took. A direct-mapped cache (slot = hash of the key): every server answer overwrites
 * its slot in place, with no allocation and no lock, so the server's answer path stays cheap;
 * a client event finds its query's answer if no other answer took the slot since (answers
 * reach a local client within microseconds). The key is the query as it left the client,
 * like struct dropped_query_key (client address, client port, id, raw QTYPE).
 */
struct server_answer {
	__u8 client_addr[16]; /* IPv4-mapped for IPv4 */
	__u16 port;	      /* client port, host byte order */
	__u16 id;
	__u16 qtype;
	__u8 rcode; /* raw RCODE the server sent */
	__u8 pad;
	__u64 server_ns;	/* the server pod's own first query to answer time */
	__u64 answered_ts_ns;	/* bpf_ktime_get_ns() of the answer */
	__u64 server_cgroup_id; /* the server pod's cgroup */
};
#define SERVER_ANSWER_SLOTS 4096 /* a power of two */

/* One drill-down event (all times bpf_ktime_get_ns(), CLOCK_MONOTONIC). */
struct dns_event {
	__u64 cgroup_id;
	__u64 first_ts_ns;    /* first send */
	__u64 last_ts_ns;     /* last (re)send */
	__u64 end_ts_ns;      /* answer, timeout sweep, or the re-send that made a retransmit */
	__u64 server_ns;      /* server-side first query to answer, 0 if no local server saw it */
	__u8 server_addr[16]; /* the query's destination (client side), zero if unknown */
	__u8 client_addr[16];
	__u16 port; /* client port, host byte order */
	__u16 id;
	__u16 qtype; /* raw QTYPE */
	__u8 kind;   /* enum dns_event_kind */
	__u8 role;   /* enum dns_role */
	__u8 rcode;  /* raw RCODE of the answer, or EVENT_RCODE_NONE */
	__u8 cause;  /* enum stall_cause */
	__u8 flags;  /* PENDING_F_* */
	__u8 qname_len;
	__u32 retransmits;
	__u8 proto;	   /* enum dns_proto */
	__u8 server_rcode; /* raw RCODE the server sent, EVENT_RCODE_NONE if not seen */
	__u8 pad[6];
	__u64 server_cgroup_id; /* the local server pod that answered, 0 if none */
	__u8 qname[QNAME_LEN];	/* wire format, qname_len bytes used */
};

#endif /* DNSRACE_DNS_H */
