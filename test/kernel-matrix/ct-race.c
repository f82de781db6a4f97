/*
 * ct-race: provokes conntrack insert failures, the drops that fexit/__nf_conntrack_confirm
 * exists to see. Per iteration two threads pinned to CPU 0 and CPU 1 leave a spin barrier
 * together and each sends the same TCP SYN (same ports, one raw socket per thread: a raw
 * socket serialises its senders) to DST:PORT. Each packet gets its own unconfirmed conntrack
 * entry for the same tuple; the one that confirms second clashes, and TCP, unlike UDP, has
 * no clash resolution: __nf_conntrack_confirm returns NF_DROP (insert_failed) and sendto()
 * fails with EPERM. Every iteration uses a new source port, so a new tuple.
 *
 * Usage: ct-race ITERATIONS [DST [PORT]]   (default 127.0.0.1 53)
 * Prints: iterations=N sent=N send_errors=N
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sock[2];
static int iterations;
static struct sockaddr_in dst = {.sin_family = AF_INET};
static struct tcphdr syn;
static atomic_int arrived, generation, sent, send_errors;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Both threads return from here at (nearly) the same instant. */
static void barrier(void)
{
	int gen = atomic_load(&generation);

	if (atomic_fetch_add(&arrived, 1) == 1) {
		atomic_store(&arrived, 0);
		atomic_fetch_add(&generation, 1);
	} else {
		while (atomic_load(&generation) == gen)
			__builtin_ia32_pause();
	}
}

static uint32_t sum16(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *b = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	return sum;
}

/* The SYN of iteration i, source port 20000 + i, checksummed over the IPv4 pseudo-header. */
static void build_syn(int i)
{
	struct {
		uint32_t saddr, daddr;
		uint8_t zero, proto;
		uint16_t len;
	} pseudo = {dst.sin_addr.s_addr, dst.sin_addr.s_addr, 0, IPPROTO_TCP, htons(sizeof(syn))};
	uint32_t sum;

	memset(&syn, 0, sizeof(syn));
	syn.source = htons(20000 + (i % 40000));
	syn.dest = dst.sin_port;
	syn.seq = htonl(0x4b4d0000u + i);
	syn.doff = sizeof(syn) / 4;
	syn.syn = 1;
	syn.window = htons(1024);
	sum = sum16(&pseudo, sizeof(pseudo), 0);
	sum = sum16(&syn, sizeof(syn), sum);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	syn.check = htons(~sum & 0xffff);
}

static void send_syn(int s)
{
	if (sendto(s, &syn, sizeof(syn), 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
		atomic_fetch_add(&send_errors, 1);
	else
		atomic_fetch_add(&sent, 1);
}

static void *second_cpu(void *arg)
{
	(void)arg;
	pin(1);
	for (int i = 0; i < iterations; i++) {
		barrier(); /* the SYN of iteration i is built */
		send_syn(sock[1]);
		barrier(); /* both are sent */
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	iterations = argc > 1 ? atoi(argv[1]) : 200;
	if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &dst.sin_addr) != 1) {
		fprintf(stderr, "ct-race: bad IPv4 address %s\n", argv[2]);
		return 2;
	}
	dst.sin_port = htons(argc > 3 ? atoi(argv[3]) : 53);
	for (int i = 0; i < 2; i++) {
		sock[i] = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
		if (sock[i] < 0) {
			perror("ct-race: socket(AF_INET, SOCK_RAW, IPPROTO_TCP)");
			return 1;
		}
	}
	pin(0);
	if (pthread_create(&t, NULL, second_cpu, NULL) != 0) {
		perror("ct-race: pthread_create");
		return 1;
	}
	for (int i = 0; i < iterations; i++) {
		build_syn(i);
		barrier();
		send_syn(sock[0]);
		barrier();
	}
	pthread_join(t, NULL);
	printf("iterations=%d sent=%d send_errors=%d\n", iterations, atomic_load(&sent),
	       atomic_load(&send_errors));
	return 0;
}
