// DNS load whose response times spread over many latency buckets, for bench/vs-capture.ts
// (udpload's reflector answers in ~10 us: everything lands in the zero bucket).
//   spread-load server PORT MIN_US MAX_US
//       answers each query (QR and RA set) after a delay drawn log-uniform in [MIN_US, MAX_US];
//       prints "ready" once bound
//   spread-load client IP PORT COUNT RATE SOCKETS
//       open loop: COUNT queries at RATE/s on a fixed schedule, round-robin over SOCKETS
//       connected sockets, ids 0,1,2,... (mod 2^16) across them, so no two outstanding queries
//       share an id; waits up to 2 s for the last answers;
//       prints "sent N answered N elapsed_ns T"
#define _GNU_SOURCE /* ppoll */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 65536 /* 10k queries/s x 6.5 s of delay: far more than outstanding */
#define MAX_DNS 512
#define MAX_SOCKETS 64

/* after the id: RD, 1 question, example.com A IN; split so no \x escape runs on */
static const char query_tail[] = "\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
				 "\x07"
				 "example"
				 "\x03"
				 "com"
				 "\x00\x00\x01\x00\x01";
#define QUERY_TAIL_LEN (sizeof(query_tail) - 1) /* without the string's NUL */

struct pending {
	long long due_ns;
	struct sockaddr_in peer;
	unsigned short len;
	unsigned char buf[MAX_DNS];
};

#define SOCKET_BUFFER (4 << 20) /* rides out a few ms without CPU on a busy 2-core VM */

static struct pending pend[MAX_PENDING];
static int npend;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static struct timespec until(long long due)
{
	long long d = due - now_ns();

	if (d < 0)
		d = 0;
	return (struct timespec){d / 1000000000LL, d % 1000000000LL};
}

/* SO_RCVBUFFORCE (root) goes past net.core.rmem_max; a lost answer is a timeout, not a sample */
static int big_buffers(int fd)
{
	int size = SOCKET_BUFFER;

	return setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) ||
	       setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
}

/* xorshift64*: reproducible delays */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static double uniform01(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static int server(char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
	double lo = log(atof(argv[3]) * 1000.0), hi = log(atof(argv[4]) * 1000.0);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	if (fd < 0 || big_buffers(fd) || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("spread-load server socket");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		struct timespec wait = {1, 0};
		long long first = -1, now;

		for (int i = 0; i < npend; i++)
			if (first < 0 || pend[i].due_ns < first)
				first = pend[i].due_ns;
		if (first >= 0)
			wait = until(first);
		if (ppoll(&p, 1, &wait, NULL) < 0 && errno != EINTR)
			return 1;
		while (npend < MAX_PENDING) {
			struct pending *q = &pend[npend];
			socklen_t pl = sizeof(q->peer);
			ssize_t len = recvfrom(fd, q->buf, sizeof(q->buf), 0,
					       (struct sockaddr *)&q->peer, &pl);

			if (len < 0)
				break;
			if (len < 12)
				continue;
			q->buf[2] |= 0x80; /* QR */
			q->buf[3] |= 0x80; /* RA */
			q->len = len;
			q->due_ns = now_ns() + (long long)exp(lo + (hi - lo) * uniform01());
			npend++;
		}
		now = now_ns();
		for (int i = 0; i < npend;) {
			if (pend[i].due_ns > now) {
				i++;
				continue;
			}
			sendto(fd, pend[i].buf, pend[i].len, 0, (struct sockaddr *)&pend[i].peer,
			       sizeof(pend[i].peer));
			pend[i] =
			    pend[--npend]; /* order does not matter: each has its own due time */
		}
	}
}

/* Reads every answer waiting on the sockets; returns how many. */
static long drain(struct pollfd *fds, int n)
{
	unsigned char buf[MAX_DNS];
	long got = 0;

	for (int i = 0; i < n; i++)
		while (recv(fds[i].fd, buf, sizeof(buf), MSG_DONTWAIT) >= 12)
			got++;
	return got;
}

static int client(char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
	long count = atol(argv[4]), rate = atol(argv[5]), answered = 0;
	int nsock = atoi(argv[6]);
	struct pollfd fds[MAX_SOCKETS];
	unsigned char q[2 + QUERY_TAIL_LEN];
	long long t0, end;

	if (rate <= 0 || nsock < 1 || nsock > MAX_SOCKETS) {
		fprintf(stderr, "spread-load client: RATE > 0 and 1 <= SOCKETS <= %d\n",
			MAX_SOCKETS);
		return 2;
	}
	inet_pton(AF_INET, argv[2], &a.sin_addr);
	for (int i = 0; i < nsock; i++) {
		fds[i] = (struct pollfd){.fd = socket(AF_INET, SOCK_DGRAM, 0), .events = POLLIN};
		if (fds[i].fd < 0 || big_buffers(fds[i].fd) ||
		    connect(fds[i].fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("spread-load client socket");
			return 1;
		}
	}
	memcpy(q + 2, query_tail, QUERY_TAIL_LEN);
	t0 = now_ns();
	for (long i = 0; i < count; i++) {
		long long due = t0 + i * 1000000000LL / rate;

		while (now_ns() < due) {
			struct timespec wait = until(due);

			if (ppoll(fds, nsock, &wait, NULL) > 0)
				answered += drain(fds, nsock);
		}
		q[0] = (i >> 8) & 0xff;
		q[1] = i & 0xff;
		send(fds[i % nsock].fd, q, sizeof(q), 0);
	}
	end = now_ns() + 2000000000LL;
	while (answered < count && now_ns() < end) {
		struct timespec wait = until(end);

		if (ppoll(fds, nsock, &wait, NULL) > 0)
			answered += drain(fds, nsock);
	}
	printf("sent %ld answered %ld elapsed_ns %lld\n", count, answered, now_ns() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	/* the default 50 us timer slack would blur short delays and the send schedule */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (argc == 5 && !strcmp(argv[1], "server"))
		return server(argv);
	if (argc == 7 && !strcmp(argv[1], "client"))
		return client(argv);
	fprintf(stderr, "usage: spread-load server PORT MIN_US MAX_US | "
			"spread-load client IP PORT COUNT RATE SOCKETS\n");
	return 2;
}
