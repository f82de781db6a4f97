// The kernel floor for reading a pinned map: bpf_map_lookup_batch, timed in-process.
//   mapbatch read PIN REPS        prints "entries N median_ns T min_ns T max_ns T"
//   mapbatch fill PIN PODS        writes 3 dns_stats rows (qtypes 0..2, role 0) per synthetic pod
//                                 (cgroup ids 1000000 + i) with bpf_map_update_batch; every u64
//                                 of the value is 3
//   mapbatch fillids PIN ID...    the same for the given cgroup ids
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* struct dns_stats_key in bpf/dns.h */
struct stats_key {
	__u64 cgroup_id;
	__u8 role;
	__u8 qtype;
	__u8 pad[6];
};

static int fill(int fd, const struct bpf_map_info *info, __u32 pods, char **ids)
{
	__u32 n = pods * 3;
	struct stats_key *keys = calloc(n, sizeof(*keys));
	__u64 *vals = malloc((size_t)n * info->value_size);

	if (info->key_size != sizeof(*keys)) {
		fprintf(stderr, "key size %u, expected %zu (not dns_stats?)\n", info->key_size,
			sizeof(*keys));
		return 1;
	}
	for (__u32 i = 0; i < n; i++) {
		/* no real cgroup has an inode as small as 1000000 + i here */
		keys[i].cgroup_id = ids ? strtoull(ids[i / 3], NULL, 10) : 1000000 + i / 3;
		keys[i].qtype = i % 3;
	}
	for (size_t j = 0; j < (size_t)n * info->value_size / 8; j++)
		vals[j] = 3;
	if (bpf_map_update_batch(fd, keys, vals, &n, NULL)) {
		perror("bpf_map_update_batch");
		return 1;
	}
	printf("written %u\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info), batch = 4096, total = 0;
	int reps = argc > 3 ? atoi(argv[3]) : 20, fd;
	long long *t;
	char *keys, *vals;

	if (argc < 3 || reps < 1) {
		fprintf(stderr, "usage: mapbatch read PIN [REPS] | mapbatch fill PIN PODS\n");
		return 2;
	}
	fd = bpf_obj_get(argv[2]);
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &info_len)) {
		perror(argv[2]);
		return 1;
	}
	if (!strcmp(argv[1], "fill"))
		return fill(fd, &info, reps, NULL);
	if (!strcmp(argv[1], "fillids"))
		return fill(fd, &info, argc - 3, argv + 3);
	keys = malloc((size_t)batch * info.key_size);
	vals = malloc((size_t)batch * info.value_size);
	t = calloc(reps, sizeof(*t));
	for (int r = 0; r < reps; r++) {
		__u32 in = 0, out = 0, n;
		void *inp = NULL;
		long long t0 = now_ns();
		int err;

		total = 0;
		do {
			n = batch;
			err = bpf_map_lookup_batch(fd, inp, &out, keys, vals, &n, NULL);
			total += n;
			in = out;
			inp = &in;
		} while (!err);
		if (errno != ENOENT) {
			perror("bpf_map_lookup_batch");
			return 1;
		}
		t[r] = now_ns() - t0;
	}
	qsort(t, reps, sizeof(*t), cmp);
	printf("entries %u median_ns %lld min_ns %lld max_ns %lld\n", total, t[reps / 2], t[0],
	       t[reps - 1]);
	return 0;
}
