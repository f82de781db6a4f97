/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * latency_slot.bpf.h: nanoseconds -> slot of struct dns_stats.latency[], i.e. the bucket of
 * a schema-2 native histogram (dns.h): index i holds (2^((i-1)/4), 2^(i/4)] seconds.
 * src/bpf/latency-buckets.ts mirrors this computation exactly; change both together.
 *
 * Method: u = floor(ns * 2^30 / 10^9), the latency in units of 2^-30 s (0.93 ns), so that
 * every power-of-two boundary 2^(k/4) with k % 4 == 0 is an integer. e = floor(log2 u) picks
 * the power of two, and the top 17 bits of u (m in [2^16, 2^17)) pick the quarter by
 * comparison with floor(2^(j/4) * 2^16). Both truncations only move a latency down, so it
 * lands one bucket low only when it lies within 1 ns + 2^-16 (15 ppm) above a bucket's upper
 * bound: e.g. 1 s + 10 us still counts as 1 s. No bucket is ever skipped.
 */
#ifndef DNSRACE_LATENCY_SLOT_BPF_H
#define DNSRACE_LATENCY_SLOT_BPF_H

/* Above the last bucket (256 s) and small enough that ns << 21 cannot overflow. */
#define LAT_NS_CLAMP (1ULL << 40)
#define LAT_M0 65536  /* 2^(0/4) * 2^16 */
#define LAT_M1 77935  /* floor(2^(1/4) * 2^16) */
#define LAT_M2 92681  /* floor(2^(2/4) * 2^16) */
#define LAT_M3 110217 /* floor(2^(3/4) * 2^16) */

static __always_inline __u32 log2_floor(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xffffffffULL) << 5;
	v >>= shift;
	r |= shift;
	shift = (v > 0xffff) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xff) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xf) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 latency_slot(__u64 ns)
{
	if (ns > LAT_NS_CLAMP)
		ns = LAT_NS_CLAMP;
	/* ns * 2^30 / 10^9 = ns * 2^21 / 5^9 */
	__u64 u = (ns << 21) / 1953125;

	/* Below 2^16 units (2^-14 s = 61 us): the zero bucket. */
	if (u <= (1ULL << 16))
		return 0;
	__u32 e = log2_floor(u); /* 16..40 */
	__u64 m = u >> (e - 16); /* [2^16, 2^17) */
	__u32 quarter = m <= LAT_M0 ? 0 : m <= LAT_M1 ? 1 : m <= LAT_M2 ? 2 : m <= LAT_M3 ? 3 : 4;
	/* index = 4 * (e - 30) + quarter, slot = index - LAT_MIN_INDEX */
	__u32 slot = 4 * e + quarter - 64;

	return slot < LAT_SLOTS ? slot : LAT_SLOTS - 1;
}

#endif /* DNSRACE_LATENCY_SLOT_BPF_H */
