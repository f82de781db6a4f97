/*
 * ctrace.c: drives the conntrack insert race that glibc's parallel A+AAAA lookups can hit
 * behind a DNATed DNS ClusterIP. Built with gcc by test/lab/race.ts.
 *
 * Mode "race": per iteration one new connected UDP socket to SERVER:PORT (so one 5-tuple);
 * two threads pinned to CPU0 and CPU1 leave a spin barrier together and send() an A and an
 * AAAA query on that socket at the same instant. Both packets then create an unconfirmed
 * conntrack entry for the same tuple on different CPUs, and the second to confirm clashes.
 * Mode "mmsg": one thread sends both queries with a single sendmmsg(), as glibc does; the
 * packets pass netfilter one after the other on one CPU, so they do not clash.
 *
 * Usage: ctrace [-n ITERATIONS] [-m race|mmsg] [-t TIMEOUT_MS] [-s SERVER] [-p PORT] [-q NAME]
 * Prints one line: iterations=N mode=M ok=N lost_a=N lost_aaaa=N send_errors=N
 * (ok counts iterations where both answers came back within TIMEOUT_MS).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QTYPE_A 1
#define QTYPE_AAAA 28
#define QBUF 512

static int iterations = 1000;
static int fd = -1;
static unsigned char q_a[QBUF], q_aaaa[QBUF];
static int len_a, len_aaaa;
static sem_t go, sent;
static atomic_int arrived, generation, send_errors;

/* A DNS query with one question (RD set) for name/qtype; returns its length or -1. */
static int build_query(unsigned char *b, unsigned short id, const char *name, unsigned short qtype)
{
	int o = 12;

	memset(b, 0, 12);
	b[0] = id >> 8;
	b[1] = id & 0xff;
	b[2] = 0x01; /* RD */
	b[5] = 1;    /* QDCOUNT */
	while (*name) {
		const char *dot = strchr(name, '.');
		int l = dot ? (int)(dot - name) : (int)strlen(name);

		if (l < 1 || l > 63 || o + l + 6 > QBUF)
			return -1;
		b[o++] = l;
		memcpy(b + o, name, l);
		o += l;
		name += l;
		if (*name)
			name++;
	}
	b[o++] = 0;
	b[o++] = qtype >> 8;
	b[o++] = qtype & 0xff;
	b[o++] = 0;
	b[o++] = 1; /* class IN */
	return o;
}

static int pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

/* Both threads spin here and leave together; spinning (not futex) keeps the skew ~100 ns. */
static void barrier(void)
{
	int g = atomic_load(&generation);

	if (atomic_fetch_add(&arrived, 1) == 1) {
		atomic_store(&arrived, 0);
		atomic_fetch_add(&generation, 1);
	} else {
		while (atomic_load(&generation) == g)
			__builtin_ia32_pause();
	}
}

static void send_counted(const unsigned char *q, int len)
{
	if (send(fd, q, len, 0) != len)
		atomic_fetch_add(&send_errors, 1);
}

static void *aaaa_sender(void *arg)
{
	int err = pin(1);

	if (err) {
		fprintf(stderr, "ctrace: cannot pin the AAAA thread to CPU1: %s\n", strerror(err));
		exit(3);
	}
	for (int i = 0; i < iterations; i++) {
		sem_wait(&go);
		barrier();
		send_counted(q_aaaa, len_aaaa);
		sem_post(&sent); /* main may close fd only after this send */
	}
	return arg;
}

static void send_mmsg(void)
{
	struct iovec iov[2] = {{q_a, len_a}, {q_aaaa, len_aaaa}};
	struct mmsghdr m[2];
	int n;

	memset(m, 0, sizeof(m));
	m[0].msg_hdr.msg_iov = &iov[0];
	m[0].msg_hdr.msg_iovlen = 1;
	m[1].msg_hdr.msg_iov = &iov[1];
	m[1].msg_hdr.msg_iovlen = 1;
	n = sendmmsg(fd, m, 2, 0);
	if (n < 2)
		atomic_fetch_add(&send_errors, n < 0 ? 2 : 2 - n);
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-n ITERATIONS] [-m race|mmsg] [-t TIMEOUT_MS] [-s SERVER] [-p PORT] "
		"[-q NAME]\n",
		argv0);
	exit(64);
}

int main(int argc, char **argv)
{
	const char *server = "10.96.0.10", *name = "web.default.svc.cluster.local";
	int mmsg = 0, timeout_ms = 200, port = 53, opt, err;
	long ok = 0, lost_a = 0, lost_aaaa = 0;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	pthread_t th;

	while ((opt = getopt(argc, argv, "n:m:t:s:p:q:")) != -1) {
		switch (opt) {
		case 'n':
			iterations = atoi(optarg);
			break;
		case 'm':
			if (!strcmp(optarg, "mmsg"))
				mmsg = 1;
			else if (strcmp(optarg, "race"))
				usage(argv[0]);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 's':
			server = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'q':
			name = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (iterations < 1 || timeout_ms < 1 || port < 1 || port > 65535)
		usage(argv[0]);
	sa.sin_port = htons(port);
	if (inet_pton(AF_INET, server, &sa.sin_addr) != 1) {
		fprintf(stderr, "ctrace: %s is not an IPv4 address\n", server);
		return 64;
	}
	if (!mmsg && sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "ctrace: race mode needs 2 online CPUs, have %ld\n",
			sysconf(_SC_NPROCESSORS_ONLN));
		return 3;
	}
	sem_init(&go, 0, 0);
	sem_init(&sent, 0, 0);
	err = pin(0);
	if (err) {
		fprintf(stderr, "ctrace: cannot pin the A thread to CPU0: %s\n", strerror(err));
		return 3;
	}
	if (!mmsg) {
		err = pthread_create(&th, NULL, aaaa_sender, NULL);
		if (err) {
			fprintf(stderr, "ctrace: pthread_create: %s\n", strerror(err));
			return 1;
		}
	}

	for (int i = 0; i < iterations; i++) {
		unsigned short id_a = rand_r(&seed), id_aaaa = rand_r(&seed);
		int got_a = 0, got_aaaa = 0;

		if (id_aaaa == id_a)
			id_aaaa++;
		len_a = build_query(q_a, id_a, name, QTYPE_A);
		len_aaaa = build_query(q_aaaa, id_aaaa, name, QTYPE_AAAA);
		if (len_a < 0 || len_aaaa < 0) {
			fprintf(stderr, "ctrace: %s is not a valid DNS name\n", name);
			return 64;
		}
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			fprintf(stderr, "ctrace: socket/connect %s:%d: %s\n", server, port,
				strerror(errno));
			return 1;
		}
		if (mmsg) {
			send_mmsg();
		} else {
			sem_post(&go);
			barrier();
			send_counted(q_a, len_a);
		}
		while (!(got_a && got_aaaa)) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			unsigned char r[1024];
			unsigned short id;
			ssize_t n;

			if (poll(&p, 1, timeout_ms) <= 0)
				break;
			n = recv(fd, r, sizeof(r), 0);
			if (n < 12)
				continue; /* ICMP errors surface as -1 here: keep waiting */
			id = r[0] << 8 | r[1];
			if (id == id_a)
				got_a = 1;
			else if (id == id_aaaa)
				got_aaaa = 1;
		}
		ok += got_a && got_aaaa;
		lost_a += !got_a;
		lost_aaaa += !got_aaaa;
		if (!mmsg)
			sem_wait(&sent);
		close(fd);
	}
	if (!mmsg)
		pthread_join(th, NULL);
	printf("iterations=%d mode=%s ok=%ld lost_a=%ld lost_aaaa=%ld send_errors=%d\n", iterations,
	       mmsg ? "mmsg" : "race", ok, lost_a, lost_aaaa, atomic_load(&send_errors));
	return 0;
}
