// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * dns.bpf.c: pairs every DNS query with its answer per cgroup and keeps per (cgroup, role,
 * qtype) counters and latency histograms in dns_stats (layouts: dns.h).
 *
 * dns_egress and dns_ingress are cgroup_skb programs attached with BPF_F_ALLOW_MULTI to a
 * parent cgroup2 directory: they see the packets of every socket in every descendant cgroup,
 * whatever its network namespace, and bpf_skb_cgroup_id() names the socket's cgroup (the
 * inode of its directory). They only observe: every path returns 1 (allow).
 *
 *   direction  ports       QR  role    event
 *   egress     dport 53    0   client  a query leaves the pod
 *   ingress    sport 53    1   client  its answer comes back
 *   ingress    dport 53    0   server  a query reaches a DNS server pod
 *   egress     sport 53    1   server  the server answers
 *
 * dns_sweep_timeouts is never attached: the exporter runs it with BPF_PROG_TEST_RUN to end
 * the pending queries it found too old (struct sweep_request in dns.h).
 *
 * Stall causes: the drop programs (drops.bpf.c, conntrack_fexit.bpf.c) record dropped queries
 * in dropped_queries; a retransmit, a retry from a new socket and the sweep look their query
 * up there and count retransmits[] / timeouts[] under the cause (enum stall_cause). For the
 * drop programs, dns_egress keeps dns_client_addrs: which pod cgroup an address belongs to.
 *
 * Verifier cost: the work behind "port 53" lives in global functions (__noinline, not
 * static), which the verifier checks once each (kernel 5.6+), instead of once for every
 * path that leads into them. Global functions on 5.10 take only scalars and the context,
 * hence the scratch slot numbers and the packed struct l4_loc in their arguments.
 */
/* No CO-RE: only UAPI context fields and wire-format headers are read, so the object also
 * loads on kernels without BTF for vmlinux. */
#define BPF_NO_PRESERVE_ACCESS_INDEX
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "dns.h"
#include "lib/drop_maps.bpf.h"
#include "lib/packet.bpf.h"
#include "lib/dns_wire.bpf.h"
#include "lib/latency_slot.bpf.h"

#define EEXIST 17
/*
 * Compare map update errors as int: on 5.10 and 6.1 (Debian) the helper's -EEXIST reached
 * the program zero-extended (4294967279), so a 64-bit compare with -EEXIST failed; 6.12 and
 * later sign-extend. Measured in the kernel matrix (test/kernel-matrix).
 */

/*
 * A query re-sent with the same question and DNS id from a new socket counts as a retransmit
 * of the pending one if that one was last sent at most this long ago. Resolvers retry after
 * 1-5 s (glibc timeout:5, musl 2.5 s), and even glibc's maximum (timeout:30) fits.
 */
#define RETRY_WINDOW_NS (30ULL * 1000000000ULL)

/*
 * dns_client_addrs is refreshed at most this often per address: every query of a pod would
 * otherwise write the same cache line from every CPU. The drop programs only need to know
 * that the address is a pod's, not when it last asked to the nanosecond.
 */
#define CLIENT_ADDR_REFRESH_NS 1000000000ULL

/*
 * A cgroup_skb program in process context (egress from sendmsg) can be interrupted by the
 * softirq that runs the ingress program on the same CPU; hard interrupts run neither. So at
 * most two programs nest per CPU, and each takes its own scratch slot (scratch_get()).
 */
#define SCRATCH_SLOTS 2

char LICENSE[] SEC("license") = "GPL";

/*
 * Every map is declared by key_size/value_size, not __type(): a map with key/value BTF makes
 * `bpftool map dump` fetch that BTF by ID, which needs CAP_SYS_ADMIN. Without it bpftool
 * prints raw bytes, which the exporter decodes with its own layouts (src/bpf/map-layouts.ts,
 * held to these headers by a test), so the DaemonSet runs without CAP_SYS_ADMIN. The two big
 * maps are read through map iterators instead (bpf/iter_*.bpf.c): raw bytes, no printf.
 */

/* Queries in flight: a query inserts, its answer or dns_sweep_timeouts removes. Preallocated:
 * the insert on the query path never allocates. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PENDING);
	__uint(key_size, sizeof(struct pending_key));
	__uint(value_size, sizeof(struct pending_val));
} dns_pending SEC(".maps");

/* (cgroup, role, id, qtype, name) -> pending key: finds the query that a re-send from a new
 * socket belongs to. At most one entry per pending query, hence the same size. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PENDING);
	__uint(key_size, sizeof(struct retry_key));
	__uint(value_size, sizeof(struct pending_key));
} dns_retry_index SEC(".maps");

/*
 * Entries of dns_pending per cgroup, and in all: the fair-share check of pending_reserve().
 * Signed, never clamped: a counter that starts after its entries (an evicted LRU counter, a
 * table from an older object) runs below the truth, which loosens the share, never tightens it.
 * LRU: a gone cgroup's counter ages out.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(__s64));
} dns_pending_per_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__s64));
} dns_pending_count SEC(".maps");

/* Feeds dnsrace_dns_{queries,responses,retransmits,timeouts}_total and
 * dnsrace_dns_query_duration_seconds. Rows come and go with pods (the exporter deletes the
 * rows of removed cgroups), so memory follows use rather than the maximum: no prealloc. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_STATS_ROWS);
	__uint(key_size, sizeof(struct dns_stats_key));
	__uint(value_size, sizeof(struct dns_stats));
} dns_stats SEC(".maps");

/*
 * Written and read only by the exporter, never by a program: the name of every cgroup whose
 * rows are in dns_stats, and of the synthetic ids of retired rows (RETIRED_ID_BIT), so that
 * an exporter restarted after a pod is gone still sums its rows into the right namespace.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_CGROUP_NAMES);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(struct cgroup_name));
} dns_cgroup_names SEC(".maps");

/* Feeds the dnsrace_bpf_* self-health counters (enum health_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HEALTH_COUNTERS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u64));
} dns_health SEC(".maps");

struct dns_scratch {
	__u32 busy; /* a program on this CPU is using the slot */
	__u32 pad;
	__u8 name[DNS_NAME_BUF]; /* the first question: QNAME, QTYPE, QCLASS */
	struct pending_key key;	 /* the packet's pending key */
	struct pending_val val;	 /* a query's pending value; too big for the stack */
	struct dns_stats zero;	 /* never written: the first value of a new dns_stats row */
};

/* Working memory of the programs; the exporter never reads it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCRATCH_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dns_scratch));
} dns_scratch SEC(".maps");

/* Drill-down events (struct dns_event), read by `bpftool map event_pipe`. max_entries 0: libbpf
 * sizes it to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} dns_events SEC(".maps");

/* Written by the exporter at start; all zero (no events) until then. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dns_event_config));
} dns_event_config SEC(".maps");

/* Token bucket per cgroup, so that one pod's flood cannot drown the others' events. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CGROUPS);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(struct event_bucket));
} dns_event_buckets SEC(".maps");

/* The last server pod answers, direct-mapped (struct server_answer in dns.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SERVER_ANSWER_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct server_answer));
} dns_server_answers SEC(".maps");

/* The event being built, one per scratch slot (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCRATCH_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct dns_event));
} dns_event_scratch SEC(".maps");

static __always_inline void health_inc(__u32 counter)
{
	__u64 *c = bpf_map_lookup_elem(&dns_health, &counter);

	if (c)
		*c += 1; /* per-CPU: no other CPU writes this slot */
}

/*
 * Takes a dns_pending slot for the cgroup: false when it holds its share and the table is half
 * full. Check, then add (no fetch-and-add on 5.10): CPUs racing at the limit may overshoot it
 * by one each, which is harmless.
 */
static __always_inline bool pending_reserve(__u64 cgroup_id)
{
	__s64 zero = 0, *n, *total;
	__u32 key = 0;

	n = bpf_map_lookup_elem(&dns_pending_per_cgroup, &cgroup_id);
	if (!n) {
		bpf_map_update_elem(&dns_pending_per_cgroup, &cgroup_id, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&dns_pending_per_cgroup, &cgroup_id);
	}
	total = bpf_map_lookup_elem(&dns_pending_count, &key);
	if (n && total && *n >= PENDING_SHARE && *total >= MAX_PENDING / 2)
		return false;
	if (n)
		__sync_fetch_and_add(n, 1);
	if (total)
		__sync_fetch_and_add(total, 1);
	return true;
}

/* Gives a slot back: after deleting one of the cgroup's entries, or a failed insert. */
static __always_inline void pending_release(__u64 cgroup_id)
{
	__s64 *n = bpf_map_lookup_elem(&dns_pending_per_cgroup, &cgroup_id), *total;
	__u32 key = 0;

	if (n)
		__sync_fetch_and_add(n, -1);
	total = bpf_map_lookup_elem(&dns_pending_count, &key);
	if (total)
		__sync_fetch_and_add(total, -1);
}

static __always_inline struct dns_scratch *scratch_slot(__u32 slot)
{
	return bpf_map_lookup_elem(&dns_scratch, &slot);
}

/* Takes a free scratch slot: returns its number, or -1 (cannot happen, see SCRATCH_SLOTS). */
static __always_inline int scratch_get(void)
{
	struct dns_scratch *s;

	/* A program that interrupts us runs to completion before we resume, so a plain
	 * check-then-set is enough. */
	for (__u32 slot = 0; slot < SCRATCH_SLOTS; slot++) {
		s = scratch_slot(slot);
		if (s && !s->busy) {
			s->busy = 1;
			return slot;
		}
	}
	return -1;
}

/* Lookup-or-insert of the (cgroup, role, qtype) row; NULL (counted) when dns_stats is full. */
static __always_inline struct dns_stats *stats_row(const struct dns_stats *zero, __u64 cgroup_id,
						   __u8 role, __u8 qtc)
{
	struct dns_stats_key key = {};
	struct dns_stats *row;
	long err;

	key.cgroup_id = cgroup_id;
	key.role = role;
	key.qtype = qtc;
	row = bpf_map_lookup_elem(&dns_stats, &key);
	if (row)
		return row;
	err = bpf_map_update_elem(&dns_stats, &key, zero, BPF_NOEXIST);
	if (err && (int)err != -EEXIST) {
		health_inc(HEALTH_STATS_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&dns_stats, &key);
}

static __always_inline bool pending_key_eq(const struct pending_key *a, const struct pending_key *b)
{
	__u64 x[4], y[4];

	__builtin_memcpy(x, a, sizeof(x));
	__builtin_memcpy(y, b, sizeof(y));
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

static __always_inline bool peer_eq(const __u8 *a, const __u8 *b)
{
	__u64 x[2], y[2];

	__builtin_memcpy(x, a, sizeof(x));
	__builtin_memcpy(y, b, sizeof(y));
	return x[0] == y[0] && x[1] == y[1];
}

static __always_inline void retry_key_of(struct retry_key *rk, const struct pending_key *k,
					 __u32 name_hash)
{
	rk->cgroup_id = k->cgroup_id;
	rk->name_hash = name_hash;
	rk->id = k->id;
	rk->qtype = k->qtype;
	rk->role = k->role;
}

/* A pending query ended: drop its retry index entry unless a newer query took it over. */
static __always_inline void retry_index_forget(const struct pending_key *k, __u32 name_hash)
{
	struct retry_key rk = {};
	struct pending_key *cur;

	retry_key_of(&rk, k, name_hash);
	cur = bpf_map_lookup_elem(&dns_retry_index, &rk);
	if (cur && pending_key_eq(cur, k))
		bpf_map_delete_elem(&dns_retry_index, &rk);
}

/*
 * Why a query was re-sent or not answered: the stronger of the cause its pending entry had
 * (`cause`) and a drop of the send keyed (addr, port, id, qtype) in dropped_queries, whose
 * record this consumes. A conntrack insert failure wins over a netfilter drop: it is the
 * more specific of the two (the kernel reports it as a netfilter drop too).
 */
static __always_inline __u32 take_drop_cause(const __u8 *addr, const struct pending_key *k,
					     __u32 cause)
{
	struct dropped_query_key dk = {};
	struct dropped_query_val *d;

	dropped_query_key_of(&dk, addr, k->port, k->id, k->qtype);
	d = bpf_map_lookup_elem(&dropped_queries, &dk);
	if (d) {
		if (d->cause > cause)
			cause = d->cause;
		bpf_map_delete_elem(&dropped_queries, &dk);
	}
	return cause < CAUSE_CLASSES ? cause : CAUSE_UNANSWERED;
}

static __always_inline struct dns_event_config *event_config(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dns_event_config, &zero);
}

static __always_inline bool event_wanted(const struct dns_event_config *cfg, __u32 kind)
{
	return cfg && cfg->rate_per_sec && (cfg->kinds & (1U << kind));
}

/* The event kind of an answer after `latency` ns with RCODE rcode, or -1 for none. */
static __always_inline int answer_event_kind(const struct dns_event_config *cfg, __u64 latency,
					     __u32 rcode)
{
	int kind = -1;

	if (!cfg || !cfg->rate_per_sec)
		return -1;
	if (rcode != 0 && rcode != 3)
		kind = EVENT_FAILED;
	else if (latency >= cfg->slow_ns)
		kind = EVENT_SLOW;
	else if (rcode == 3)
		kind = EVENT_NXDOMAIN;
	return kind >= 0 && event_wanted(cfg, kind) ? kind : -1;
}

#define NS_PER_SEC 1000000000ULL

/*
 * Takes a token from the cgroup's bucket: 1 if the event may go. Low-priority kinds
 * (EVENT_NXDOMAIN) only take one while the bucket is more than half full, so that a pod's
 * search-list walks never use up what its slow lookups need. Updates race between CPUs;
 * a token taken twice now and then is fine for a limit that only protects the reader.
 */
static __always_inline int bucket_take(const struct dns_event_config *cfg, __u64 cgroup_id,
				       __u32 kind, __u64 now)
{
	struct event_bucket *b, nb;
	__u64 cap, tokens, elapsed, floor;

	cap = (__u64)cfg->burst * NS_PER_SEC;
	floor = kind == EVENT_NXDOMAIN ? cap / 2 + NS_PER_SEC : NS_PER_SEC;
	b = bpf_map_lookup_elem(&dns_event_buckets, &cgroup_id);
	if (!b) {
		if (cap < floor)
			return 0;
		nb.ts_ns = now;
		nb.tokens = cap - NS_PER_SEC;
		bpf_map_update_elem(&dns_event_buckets, &cgroup_id, &nb, BPF_ANY);
		return 1;
	}
	tokens = b->tokens;
	if (now > b->ts_ns) {
		elapsed = now - b->ts_ns;
		/* no overflow: a full refill takes at most burst / rate seconds */
		if (elapsed > cap / (cfg->rate_per_sec ? cfg->rate_per_sec : 1))
			tokens = cap;
		else
			tokens += elapsed * cfg->rate_per_sec;
		if (tokens > cap)
			tokens = cap;
		b->ts_ns = now;
	}
	if (tokens < floor) {
		b->tokens = tokens;
		return 0;
	}
	b->tokens = tokens - NS_PER_SEC;
	return 1;
}

/* The dns_server_answers slot of the query (addr, port, id, qtype). */
static __always_inline struct server_answer *server_answer_of(const __u8 *addr,
							      const struct pending_key *k)
{
	__u64 lo, hi, h;
	__u32 slot;

	__builtin_memcpy(&hi, addr, 8);
	__builtin_memcpy(&lo, addr + 8, 8);
	h = (lo ^ (hi * QNAME_HASH_MUL) ^ ((__u64)k->port << 32 | (__u64)k->id << 16 | k->qtype)) *
	    QNAME_HASH_MUL;
	slot = (h >> 40) & (SERVER_ANSWER_SLOTS - 1);
	return bpf_map_lookup_elem(&dns_server_answers, &slot);
}

static __always_inline bool server_answer_is(const struct server_answer *sa, const __u8 *addr,
					     const struct pending_key *k)
{
	return peer_eq(sa->client_addr, addr) && sa->port == k->port && sa->id == k->id &&
	       sa->qtype == k->qtype;
}

static __always_inline bool addr_is_v4_mapped(const __u8 *a)
{
	__u64 hi;
	__u32 mid;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return hi == 0 && mid == bpf_htonl(0xffff);
}

/*
 * The client query's destination: kept at query time for IPv4; for IPv6 read from the packet
 * at hand, the answer's source or the re-send's destination (a timeout has no packet: zero).
 */
static __always_inline void event_server_addr(struct __sk_buff *skb, const struct dns_scratch *s,
					      __u32 kind, __u8 *out)
{
	if (addr_is_v4_mapped(s->val.client_addr)) {
		out[10] = 0xff;
		out[11] = 0xff;
		__builtin_memcpy(out + 12, s->val.server_addr4, 4);
	} else if (kind == EVENT_RETRANSMIT) {
		bpf_skb_load_bytes(skb, IPV6_SADDR_OFF + ADDR_LEN, out, ADDR_LEN);
	} else if (kind != EVENT_TIMEOUT) {
		bpf_skb_load_bytes(skb, IPV6_SADDR_OFF, out, ADDR_LEN);
	}
}

/*
 * Sends the event of kind `kind` for the query in scratch slot `slot` (key and a copy of its
 * pending value ready): rate-limited per cgroup, joined to a local server pod's answer time.
 */
__noinline int event_emit(struct __sk_buff *skb, __u32 slot, __u32 kind, __u32 rcode, __u64 now)
{
	struct dns_scratch *s = scratch_slot(slot);
	struct dns_event_config *cfg = event_config();
	struct server_answer *sa;
	struct dns_event *ev;

	if (!s || !cfg || kind >= EVENT_KINDS)
		return 0;
	if (!bucket_take(cfg, s->key.cgroup_id, kind, now)) {
		health_inc(HEALTH_EVENTS_RATE_LIMITED);
		return 0;
	}
	ev = bpf_map_lookup_elem(&dns_event_scratch, &slot);
	if (!ev)
		return 0;
	ev->cgroup_id = s->key.cgroup_id;
	ev->first_ts_ns = s->val.first_ts_ns;
	ev->last_ts_ns = s->val.last_ts_ns;
	ev->end_ts_ns = now;
	ev->server_ns = 0;
	__builtin_memset(ev->server_addr, 0, ADDR_LEN);
	if (s->key.role == ROLE_CLIENT)
		event_server_addr(skb, s, kind, ev->server_addr);
	__builtin_memcpy(ev->client_addr, s->val.client_addr, ADDR_LEN);
	ev->port = s->key.port;
	ev->id = s->key.id;
	ev->qtype = s->key.qtype;
	ev->kind = kind;
	ev->role = s->key.role;
	ev->rcode = rcode;
	ev->cause = s->val.cause;
	ev->flags = s->val.flags;
	ev->qname_len = s->val.qname_len;
	ev->retransmits = s->val.retransmits;
	ev->proto = s->key.proto;
	ev->server_rcode = EVENT_RCODE_NONE;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	ev->server_cgroup_id = 0;
	__builtin_memcpy(ev->qname, s->val.qname, QNAME_LEN);
	if (s->key.role == ROLE_CLIENT && (cfg->flags & EVENT_CFG_SERVER_JOIN)) {
		sa = server_answer_of(s->val.client_addr, &s->key);
		/* the slot's answer is this query's if its key matches and it came after the
		 * query's first send (not an earlier query that had the same port and id) */
		if (sa && server_answer_is(sa, s->val.client_addr, &s->key) &&
		    sa->answered_ts_ns >= s->val.first_ts_ns) {
			ev->server_ns = sa->server_ns;
			ev->server_rcode = sa->rcode;
			ev->server_cgroup_id = sa->server_cgroup_id;
		}
	}
	if (bpf_perf_event_output(skb, &dns_events, BPF_F_CURRENT_CPU, ev, sizeof(*ev)) == 0)
		health_inc(HEALTH_EVENTS_SENT);
	else
		health_inc(HEALTH_EVENTS_OUTPUT_FAILED);
	return 0;
}

/*
 * A server pod answered a query from addr (scratch key ready): its time, in the slot of the
 * query, for the event of a client pod on this node that may have sent it. Written in place:
 * two CPUs writing one slot at once may leave a mix, which the reader's key check and the
 * rarity of events make harmless.
 */
static __always_inline void server_answer_note(const struct dns_scratch *s, __u64 latency,
					       __u32 rcode, __u64 now)
{
	struct server_answer *sa = server_answer_of(s->key.peer, &s->key);

	if (!sa)
		return;
	__builtin_memcpy(sa->client_addr, s->key.peer, ADDR_LEN);
	sa->port = s->key.port;
	sa->id = s->key.id;
	sa->qtype = s->key.qtype;
	sa->rcode = rcode;
	sa->server_ns = latency;
	sa->answered_ts_ns = now;
	sa->server_cgroup_id = s->key.cgroup_id;
}

/* A new client query from addr: tells the drop programs that addr is this cgroup's pod. */
static __always_inline void client_addr_seen(const __u8 *addr, __u64 cgroup_id, __u64 now)
{
	struct client_addr_val *a, nv;

	a = bpf_map_lookup_elem(&dns_client_addrs, addr);
	if (a) {
		/* In place: an update call would cost more than the lookup. */
		if (a->cgroup_id != cgroup_id || now - a->last_seen_ns > CLIENT_ADDR_REFRESH_NS) {
			a->cgroup_id = cgroup_id;
			a->last_seen_ns = now;
		}
		return;
	}
	nv.cgroup_id = cgroup_id;
	nv.last_seen_ns = now;
	bpf_map_update_elem(&dns_client_addrs, addr, &nv, BPF_ANY);
}

/*
 * The same question with the same DNS id from a new socket (glibc single-request-reopen,
 * musl, most stub resolvers re-open): the query just inserted under the new key takes over
 * the pending one, keeping its first send time so that its latency still runs from the first
 * attempt, and the cause of its stall (a drop of the old send counts). Returns the cause of
 * the retry, or -1 if it was no retry.
 */
static __always_inline int adopt_retry(struct dns_scratch *s, const struct retry_key *rk, __u64 now)
{
	struct pending_val *ov, *nv;
	struct pending_key old;
	struct pending_key *idx;
	__u8 old_addr[ADDR_LEN];
	__u64 first_ts;
	__u32 retransmits, cause;
	__u8 flags;

	idx = bpf_map_lookup_elem(&dns_retry_index, rk);
	if (!idx)
		return -1;
	__builtin_memcpy(&old, idx, sizeof(old));
	/* On the server side a retry comes from the same client address (peer is zero on the
	 * client side): another client asking the same question with the same id is no retry. */
	if (!peer_eq(old.peer, s->key.peer) || pending_key_eq(&old, &s->key))
		return -1;
	ov = bpf_map_lookup_elem(&dns_pending, &old);
	if (!ov || ov->name_hash != s->val.name_hash)
		return -1;
	if (ov->last_ts_ns > now || now - ov->last_ts_ns > RETRY_WINDOW_NS)
		return -1;
	first_ts = ov->first_ts_ns;
	retransmits = ov->retransmits + 1;
	flags = ov->flags | PENDING_F_RETRY_NEW_SOCKET;
	cause = ov->cause;
	__builtin_memcpy(old_addr, ov->client_addr, ADDR_LEN);
	/* Whoever deletes the old entry owns it: an answer or a sweep racing us wins or loses
	 * as a whole. */
	if (bpf_map_delete_elem(&dns_pending, &old) != 0)
		return -1;
	pending_release(old.cgroup_id);
	cause = take_drop_cause(old_addr, &old, cause);
	nv = bpf_map_lookup_elem(&dns_pending, &s->key);
	if (nv) {
		nv->first_ts_ns = first_ts;
		nv->retransmits = retransmits;
		nv->flags = flags;
		nv->cause = cause;
	}
	if (bpf_map_update_elem(&dns_retry_index, rk, &s->key, BPF_ANY) != 0)
		health_inc(HEALTH_RETRY_INDEX_FULL);
	return cause;
}

/*
 * Starts the pending value of a query in scratch slot `slot`: zeroed, with the hash and the
 * first QNAME_LEN bytes of its name_len-byte QNAME.
 */
__noinline int query_value_init(__u32 slot, __u32 name_len)
{
	struct dns_scratch *s = scratch_slot(slot);

	if (!s || name_len > DNS_NAME_MAX)
		return -1;
	__builtin_memset(&s->val, 0, sizeof(s->val));
	s->val.name_hash = qname_hash_copy(s->name, name_len, s->val.qname);
	s->val.qname_len = name_len < QNAME_LEN ? name_len : QNAME_LEN;
	if (name_len > QNAME_LEN)
		s->val.flags |= PENDING_F_QNAME_TRUNCATED;
	return 0;
}

/* A query (scratch key and value ready): a new pending entry, or a retransmit of one. Each
 * step starts with the insert that succeeds in the common case, so that a new query costs
 * two inserts and no lookups. */
__noinline int on_query(struct __sk_buff *skb, __u32 slot, __u32 qtc, __u64 now)
{
	struct dns_scratch *s = scratch_slot(slot);
	struct retry_key rk = {};
	struct dns_stats *row;
	struct pending_val *v;
	__u32 cause = CAUSE_UNANSWERED;
	bool emit = false;
	long err;
	int retry;

	if (!s)
		return 0;
	row = stats_row(&s->zero, s->key.cgroup_id, s->key.role, qtc);
	s->val.first_ts_ns = now;
	s->val.last_ts_ns = now;
	if (pending_reserve(s->key.cgroup_id)) {
		err = bpf_map_update_elem(&dns_pending, &s->key, &s->val, BPF_NOEXIST);
		if (err)
			pending_release(s->key.cgroup_id);
	} else if (bpf_map_lookup_elem(&dns_pending, &s->key)) {
		err = -EEXIST; /* over its share, a re-send of a tracked query is still one */
	} else {
		health_inc(HEALTH_PENDING_SHARE_FULL);
		goto query;
	}
	if ((int)err == -EEXIST) {
		/* Same socket, same id, same question, still unanswered: a retransmit, because
		 * of the drop of an earlier send if the drop programs saw one. */
		v = bpf_map_lookup_elem(&dns_pending, &s->key);
		if (v) {
			__sync_fetch_and_add(&v->retransmits, 1);
			v->last_ts_ns = now;
			cause = take_drop_cause(v->client_addr, &s->key, v->cause);
			v->cause = cause;
			/* The drill-down wants re-sends that a drop explains (rare). */
			if (cause != CAUSE_UNANSWERED &&
			    event_wanted(event_config(), EVENT_RETRANSMIT)) {
				__builtin_memcpy(&s->val, v, sizeof(s->val));
				emit = true;
			}
		}
		goto retransmit;
	}
	if (err) {
		health_inc(HEALTH_PENDING_FULL);
		goto query; /* a query we cannot track is still a query */
	}

	retry_key_of(&rk, &s->key, s->val.name_hash);
	err = bpf_map_update_elem(&dns_retry_index, &rk, &s->key, BPF_NOEXIST);
	if ((int)err == -EEXIST) {
		retry = adopt_retry(s, &rk, now);
		if (retry >= 0) {
			cause = retry;
			if (cause != CAUSE_UNANSWERED &&
			    event_wanted(event_config(), EVENT_RETRANSMIT)) {
				v = bpf_map_lookup_elem(&dns_pending, &s->key);
				if (v) {
					__builtin_memcpy(&s->val, v, sizeof(s->val));
					emit = true;
				}
			}
			goto retransmit;
		}
		/* Not a retry of that query: the newer query takes the entry over. */
		err = bpf_map_update_elem(&dns_retry_index, &rk, &s->key, BPF_ANY);
	}
	if (err)
		health_inc(HEALTH_RETRY_INDEX_FULL);
query:
	if (s->key.role == ROLE_CLIENT)
		client_addr_seen(s->val.client_addr, s->key.cgroup_id, now);
	if (row)
		__sync_fetch_and_add(&row->queries, 1);
	return 0;

retransmit:
	if (row && cause < CAUSE_CLASSES)
		__sync_fetch_and_add(&row->retransmits[cause], 1);
	if (emit)
		event_emit(skb, slot, EVENT_RETRANSMIT, EVENT_RCODE_NONE, now);
	return 0;
}

/* A global function so that its many branches are checked once, not once per caller path: the
 * caller sees one unknown slot number, which it bounds. */
__noinline int latency_slot_of(__u64 ns)
{
	return latency_slot(ns);
}

/* An answer (scratch key ready): ends its pending query and records the latency. */
__noinline int on_answer(struct __sk_buff *skb, __u32 slot, __u32 qtc, __u32 rcode, __u64 now)
{
	struct dns_scratch *s = scratch_slot(slot);
	struct dns_event_config *cfg;
	struct pending_val *v;
	struct dns_stats *row;
	__u64 first_ts, latency;
	__u32 name_hash, rc;
	int slot_ix, kind;

	if (!s)
		return 0;
	v = bpf_map_lookup_elem(&dns_pending, &s->key);
	if (!v) {
		health_inc(HEALTH_UNMATCHED_ANSWERS);
		return 0;
	}
	first_ts = v->first_ts_ns;
	name_hash = v->name_hash;
	latency = now > first_ts ? now - first_ts : 0;
	cfg = event_config();
	kind = answer_event_kind(cfg, latency, rcode);
	/* The event needs the pending value, which the delete hands back to the map. */
	if (kind >= 0)
		__builtin_memcpy(&s->val, v, sizeof(s->val));
	/* Only the caller whose delete succeeds counts: a duplicate answer on another CPU or
	 * dns_sweep_timeouts may have ended this query since our lookup. */
	if (bpf_map_delete_elem(&dns_pending, &s->key) != 0) {
		health_inc(HEALTH_UNMATCHED_ANSWERS);
		return 0;
	}
	pending_release(s->key.cgroup_id);
	retry_index_forget(&s->key, name_hash);
	if (s->key.role == ROLE_SERVER && cfg && (cfg->flags & EVENT_CFG_SERVER_JOIN))
		server_answer_note(s, latency, rcode, now);
	if (kind >= 0)
		event_emit(skb, slot, kind, rcode, now);

	row = stats_row(&s->zero, s->key.cgroup_id, s->key.role, qtc);
	if (!row)
		return 0;
	slot_ix = latency_slot_of(latency);
	rc = rcode_class(rcode);
	if (slot_ix < 0 || slot_ix >= LAT_SLOTS || rc >= RCODE_CLASSES)
		return 0; /* cannot happen; tells the verifier */
	__sync_fetch_and_add(&row->responses[rc], 1);
	__sync_fetch_and_add(&row->latency_count, 1);
	__sync_fetch_and_add(&row->latency_sum_ns, latency);
	__sync_fetch_and_add(&row->latency[slot_ix], 1);
	return 0;
}

/* The client's address: source of a query, destination of an answer. IPv4 as ::ffff:a.b.c.d. */
static __always_inline void peer_load(struct __sk_buff *skb, const struct l4_loc *l, bool answer,
				      __u8 *peer)
{
	if (l->flags & L4_F_IPV6) {
		bpf_skb_load_bytes(skb, IPV6_SADDR_OFF + (answer ? 16 : 0), peer, 16);
	} else {
		peer[10] = 0xff;
		peer[11] = 0xff;
		bpf_skb_load_bytes(skb, IPV4_SADDR_OFF + (answer ? 4 : 0), peer + 12, 4);
	}
}

/* A client query's source, and for IPv4 its destination too (one load: they are adjacent). */
static __always_inline void query_addrs_load(struct __sk_buff *skb, const struct l4_loc *l,
					     struct pending_val *v)
{
	__u32 a[2];

	if (l->flags & L4_F_IPV6) {
		peer_load(skb, l, false, v->client_addr);
		return;
	}
	if (bpf_skb_load_bytes(skb, IPV4_SADDR_OFF, a, sizeof(a)) < 0)
		return;
	v->client_addr[10] = 0xff;
	v->client_addr[11] = 0xff;
	__builtin_memcpy(v->client_addr + 12, &a[0], 4);
	__builtin_memcpy(v->server_addr4, &a[1], 4);
}

/*
 * Finds the DNS header in a TCP segment. Returns 1 with *msg_off, *msg_end and *h set if the
 * segment starts a DNS message, 0 if it carries no payload (handshake, ACK, FIN: not an
 * error), or minus the health counter to bump. Only segments that start a message are
 * paired: the 2-byte length prefix and the header must be in this segment. *msg_end is where
 * the message ends by its length prefix, or the segment end if that comes first: a question
 * that runs past the message's own end is truncated, whatever follows it in the segment.
 */
static __always_inline int tcp_message(struct __sk_buff *skb, const struct l4_loc *l, __u64 len,
				       __u64 *msg_off, __u64 *msg_end, struct dns_hdr *h)
{
	struct dns_tcp_start start;
	__u64 payload;
	__u8 doff;

	if (bpf_skb_load_bytes(skb, l->l4_off + 12, &doff, 1) < 0)
		return -HEALTH_PARSE_TRUNCATED;
	doff >>= 4;
	if (doff < 5)
		return -HEALTH_PARSE_TRUNCATED;
	payload = l->l4_off + doff * 4;
	if (payload > len)
		return -HEALTH_PARSE_TRUNCATED; /* the header is longer than the segment */
	if (payload == len)
		return 0;
	if (bpf_skb_load_bytes(skb, payload, &start, sizeof(start)) < 0)
		return -HEALTH_PARSE_TCP_NOT_START;
	/* The middle of a message rarely looks like a header with one question and Z clear. */
	if (bpf_ntohs(start.length) < DNS_MSG_MIN || (start.hdr.flags & bpf_htons(DNS_FLAG_Z)) ||
	    start.hdr.qdcount != bpf_htons(1))
		return -HEALTH_PARSE_TCP_NOT_START;
	*msg_off = payload + 2;
	*msg_end = payload + 2 + bpf_ntohs(start.length);
	if (*msg_end > len)
		*msg_end = len; /* the message goes on in later segments */
	__builtin_memcpy(h, &start.hdr, sizeof(*h));
	return 1;
}

/* Length of the wire-format QNAME in scratch slot `slot` (n bytes loaded), or a negative
 * enum qname_error. */
__noinline int qname_length(__u32 slot, __u32 n)
{
	struct dns_scratch *s = scratch_slot(slot);

	if (!s || n > DNS_QUESTION_MAX)
		return QNAME_BAD;
	return qname_walk(s->name, n);
}

/* Parses the header and the question, and builds the key, in scratch slot `slot`. Returns
 * 1 for a query, 2 for an answer, 0 to stop. */
static __always_inline int dns_parse(struct __sk_buff *skb, const struct l4_loc *l, __u32 slot,
				     struct dns_scratch *s, __u64 q_off, __u64 avail,
				     const struct dns_hdr *h, bool answer)
{
	__u64 name_len;
	int ret;

	if (bpf_skb_load_bytes(skb, q_off, s->name, avail) < 0) {
		health_inc(HEALTH_PARSE_TRUNCATED);
		return 0;
	}
	ret = qname_length(slot, avail);
	if (ret == QNAME_TRUNCATED) {
		health_inc(HEALTH_PARSE_TRUNCATED);
		return 0;
	}
	if (ret < 1) {
		health_inc(HEALTH_PARSE_BAD_QUESTION);
		return 0;
	}
	name_len = ret;
	/* clang 14 bounds the int and then indexes with a sign-extended copy that the
	 * verifier cannot bound: make it check the 64-bit value itself. */
	barrier_var(name_len);
	if (name_len > DNS_NAME_MAX) {
		health_inc(HEALTH_PARSE_BAD_QUESTION);
		return 0;
	}
	if (name_len + DNS_QUESTION_TAIL > avail) {
		health_inc(HEALTH_PARSE_TRUNCATED);
		return 0;
	}

	__builtin_memset(&s->key, 0, sizeof(s->key));
	s->key.cgroup_id = bpf_skb_cgroup_id(skb);
	s->key.port = answer ? l->dport : l->sport;
	s->key.id = bpf_ntohs(h->id);
	s->key.qtype = (s->name[name_len] << 8) | s->name[name_len + 1];
	s->key.role = !!(l->flags & L4_F_EGRESS) != answer ? ROLE_CLIENT : ROLE_SERVER;
	s->key.proto = l->flags & L4_F_TCP ? PROTO_TCP : PROTO_UDP;
	if (s->key.role == ROLE_SERVER)
		peer_load(skb, l, answer, s->key.peer);
	if (answer)
		return 2;
	if (query_value_init(slot, name_len) != 0)
		return 0;
	/* The key to the query's drop records: the client's address as the query left it. */
	if (s->key.role == ROLE_SERVER) {
		__builtin_memcpy(s->val.client_addr, s->key.peer, ADDR_LEN);
		return 1;
	}
	query_addrs_load(skb, l, &s->val);
	/* glibc connect()s its UDP socket, musl does not: the drill-down tells them apart. */
	if (!(l->flags & L4_F_TCP)) {
		struct bpf_sock *sk = skb->sk;

		if (sk && sk->state == BPF_TCP_ESTABLISHED)
			s->val.flags |= PENDING_F_CONNECTED;
	}
	return 1;
}

/* A packet with port 53 on one side (loc: struct l4_loc): parse, then pair. */
__noinline int dns_message(struct __sk_buff *skb, __u64 loc)
{
	struct dns_scratch *s;
	struct dns_hdr h;
	struct l4_loc l;
	__u64 len = skb->len;
	__u64 msg_off, msg_end = len, q_off, avail, now;
	__u16 flags;
	bool answer;
	int slot, kind;

	__builtin_memcpy(&l, &loc, sizeof(l));
	if (!(l.flags & L4_F_TCP)) {
		msg_off = l.l4_off + 8;
		if (bpf_skb_load_bytes(skb, msg_off, &h, sizeof(h)) < 0) {
			health_inc(HEALTH_PARSE_TRUNCATED);
			return 0;
		}
	} else {
		int r = tcp_message(skb, &l, len, &msg_off, &msg_end, &h);

		if (r < 0)
			health_inc(-r);
		if (r <= 0)
			return 0;
	}
	health_inc(HEALTH_DNS_PACKETS);

	flags = bpf_ntohs(h.flags);
	if (DNS_OPCODE(flags) != DNS_OPCODE_QUERY)
		return 0; /* NOTIFY, UPDATE, ...: not what stalls a lookup */
	answer = flags & DNS_FLAG_QR;
	/* A query goes to port 53 and an answer comes from it; anything else (port 53 used as a
	 * client port) is not a query/answer pair we can key. */
	if (answer ? l.sport != DNS_PORT : l.dport != DNS_PORT)
		return 0;
	if (h.qdcount != bpf_htons(1)) {
		health_inc(HEALTH_PARSE_BAD_QUESTION);
		return 0;
	}

	q_off = msg_off + DNS_HDR_LEN;
	avail = msg_end > q_off ? msg_end - q_off : 0;
	if (avail < 1 + DNS_QUESTION_TAIL) {
		health_inc(HEALTH_PARSE_TRUNCATED);
		return 0;
	}
	if (avail > DNS_QUESTION_MAX)
		avail = DNS_QUESTION_MAX;

	slot = scratch_get();
	if (slot < 0)
		return 0;
	s = scratch_slot(slot);
	if (!s)
		return 0;
	kind = dns_parse(skb, &l, slot, s, q_off, avail, &h, answer);
	now = bpf_ktime_get_ns();
	if (kind == 1)
		on_query(skb, slot, qtype_class(s->key.qtype), now);
	else if (kind == 2)
		on_answer(skb, slot, qtype_class(s->key.qtype), DNS_RCODE(flags), now);
	s->busy = 0;
	return 0;
}

static __always_inline int dns_observe(struct __sk_buff *skb, bool egress)
{
	struct l4_loc l;
	int verdict;

	verdict = l4_locate_direct(skb, &l);
	if (verdict == L4_SKIP)
		return 1;
	if (verdict == L4_NEEDS_COPY)
		verdict = l4_locate_copy(skb, &l);
	if (verdict == L4_PORT53) {
		__u64 loc;

		l.flags |= egress ? L4_F_EGRESS : 0;
		__builtin_memcpy(&loc, &l, sizeof(loc));
		dns_message(skb, loc);
	} else if (verdict == L4_FRAGMENT) {
		health_inc(HEALTH_PARSE_FRAGMENT);
	} else if (verdict == L4_IPV6_EXT) {
		health_inc(HEALTH_PARSE_IPV6_EXT);
	}
	return 1;
}

SEC("cgroup_skb/egress")
int dns_egress(struct __sk_buff *skb)
{
	return dns_observe(skb, true);
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	return dns_observe(skb, false);
}

/* Sweeps key i of the request: 1 if it timed out here. Events use scratch slot `slot`
 * (SCRATCH_SLOTS: none free, no event). */
__noinline int sweep_key(struct __sk_buff *skb, __u32 i, __u64 deadline_ns, __u32 slot)
{
	struct pending_key k;
	struct pending_val *v;
	struct dns_stats *row;
	struct dns_scratch *s, *es = NULL;
	__u8 addr[ADDR_LEN];
	__u64 now, last_ts;
	__u32 name_hash, off, cause;

	if (i >= SWEEP_MAX_KEYS)
		return 0;
	off = sizeof(struct sweep_request) + i * sizeof(k);
	if (bpf_skb_load_bytes(skb, off, &k, sizeof(k)) < 0)
		return 0;
	v = bpf_map_lookup_elem(&dns_pending, &k);
	if (!v)
		return 0;
	now = bpf_ktime_get_ns();
	last_ts = v->last_ts_ns;
	name_hash = v->name_hash;
	if (last_ts >= now || now - last_ts <= deadline_ns)
		return 0;
	cause = v->cause;
	__builtin_memcpy(addr, v->client_addr, ADDR_LEN);
	if (slot < SCRATCH_SLOTS && event_wanted(event_config(), EVENT_TIMEOUT)) {
		es = scratch_slot(slot);
		if (es) {
			__builtin_memcpy(&es->key, &k, sizeof(k));
			__builtin_memcpy(&es->val, v, sizeof(es->val));
		}
	}
	if (bpf_map_delete_elem(&dns_pending, &k) != 0)
		return 0;
	pending_release(k.cgroup_id);
	retry_index_forget(&k, name_hash);
	/* A last send dropped and never re-sent (musl's last attempt) is only found here. */
	cause = take_drop_cause(addr, &k, cause);
	if (es) {
		es->val.cause = cause;
		event_emit(skb, slot, EVENT_TIMEOUT, EVENT_RCODE_NONE, now);
	}
	s = scratch_slot(0); /* only its zero row is read, so a busy slot is fine */
	if (!s)
		return 1;
	row = stats_row(&s->zero, k.cgroup_id, k.role, qtype_class(k.qtype));
	if (row && cause < CAUSE_CLASSES)
		__sync_fetch_and_add(&row->timeouts[cause], 1);
	return 1;
}

/*
 * Ends the pending queries the exporter found older than its deadline. Input (dns.h): struct
 * sweep_request, then `count` pending keys; BPF_PROG_TEST_RUN strips the 14-byte Ethernet
 * header, so the request starts at offset 0. A key is swept only if it still exists, its last
 * send is older than deadline_ns by the kernel's clock, and our delete succeeds: a racing
 * answer is counted once, as an answer or as a timeout. One test run per SWEEP_MAX_KEYS
 * keys; `bpftool batch file` runs many of them in one process.
 */
SEC("cgroup_skb/egress")
int dns_sweep_timeouts(struct __sk_buff *skb)
{
	struct sweep_request req;
	struct dns_scratch *s = NULL;
	int slot;

	health_inc(HEALTH_SWEEP_RUNS);
	if (bpf_skb_load_bytes(skb, 0, &req, sizeof(req)) < 0)
		return 1;
	/* A slot for the timeout events: an ingress program may interrupt us on this CPU. */
	slot = scratch_get();
	if (slot >= 0)
		s = scratch_slot(slot);
	for (__u32 i = 0; i < SWEEP_MAX_KEYS; i++) {
		if (i >= req.count)
			break;
		sweep_key(skb, i, req.deadline_ns, slot >= 0 ? slot : SCRATCH_SLOTS);
	}
	if (s)
		s->busy = 0;
	return 1;
}
