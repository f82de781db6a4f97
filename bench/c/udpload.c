// UDP query/answer load for bench/run.ts.
//   udpload server PORT...           reflect every datagram, setting the DNS QR bit
//   udpload client IP PORT COUNT [RATE]  send COUNT queries one at a time, wait for each answer,
//                                     at most RATE queries/s if given (paced to a schedule);
//                                     prints "sent N answered N elapsed_ns T"
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const unsigned char query_tail[] = {
	0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* flags RD, 1 question */
	7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0x00, 0x01, 0x00, 0x01,
};

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int server(int argc, char **argv)
{
	struct pollfd fds[8];
	int n = 0;

	for (int i = 2; i < argc && n < 8; i++, n++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[i])) };
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("server bind");
			return 1;
		}
		fds[n] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (poll(fds, n, -1) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			unsigned char buf[512];
			struct sockaddr_in peer;
			socklen_t pl = sizeof(peer);
			ssize_t len;

			if (!(fds[i].revents & POLLIN))
				continue;
			len = recvfrom(fds[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &pl);
			if (len < 12)
				continue;
			buf[2] |= 0x80; /* QR */
			buf[3] |= 0x80; /* RA */
			sendto(fds[i].fd, buf, len, 0, (struct sockaddr *)&peer, pl);
		}
	}
}

static int client(char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
	long count = atol(argv[4]), answered = 0;
	long rate = argv[5] ? atol(argv[5]) : 0;
	unsigned char q[2 + sizeof(query_tail)], buf[512];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	long long t0;

	inet_pton(AF_INET, argv[2], &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("client connect");
		return 1;
	}
	memcpy(q + 2, query_tail, sizeof(query_tail));
	t0 = now_ns();
	for (long i = 0; i < count; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (rate > 0) {
			long long due = t0 + i * 1000000000LL / rate, wait = due - now_ns();

			if (wait > 0) {
				struct timespec ts = { wait / 1000000000LL, wait % 1000000000LL };

				nanosleep(&ts, NULL);
			}
		}

		q[0] = (i >> 8) & 0xff;
		q[1] = i & 0xff;
		if (send(fd, q, sizeof(q), 0) < 0)
			continue;
		if (poll(&p, 1, 1000) == 1 && recv(fd, buf, sizeof(buf), 0) >= 12)
			answered++;
	}
	printf("sent %ld answered %ld elapsed_ns %lld\n", count, answered, now_ns() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "server"))
		return server(argc, argv);
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "client"))
		return client(argv);
	fprintf(stderr, "usage: udpload server PORT... | udpload client IP PORT COUNT [RATE]\n");
	return 2;
}
