/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flood-sender: a dnsperf-like DNS load generator for test/e2e/flood.test.ts.
 *
 *   flood-sender SERVER_IP PORT SECONDS SOCKETS WINDOW QNAME
 *
 * Sends A queries over SOCKETS connected UDP sockets as fast as the server answers, keeping
 * at most WINDOW queries in flight per socket (like dnsperf -q); a query unanswered for
 * 500 ms is given up (lost) and frees its slot. WINDOW 0 sends open loop, never waiting for
 * answers (an unanswered flood). Socket i asks for s<i>.QNAME: the same id and name from
 * two sockets at once would be, for dnsrace as for glibc's single-request-reopen, one query
 * re-sent from a new socket. DNS ids run 0..65535 per socket and are reused only after
 * 65,536 sends, long after the exporter has swept a lost one. Prints one JSON line:
 * {"sent":N,"answered":N,"lost":N,"seconds":S,"qps":Q}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 64
#define BATCH 64
#define PKT_MAX 512
#define IDS 65536
#define LOSS_NS 500000000ULL

struct flow {
	int fd;
	uint64_t lo; /* oldest sequence number not yet answered or given up */
	uint64_t hi; /* next sequence number to send */
	uint64_t sent_ns[IDS];
	uint8_t done[IDS];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Wire-format query for qname, type A, class IN, RD set; returns its length. */
static size_t build_query(uint8_t *out, const char *qname)
{
	size_t n = 12, label;
	const char *p = qname;

	memset(out, 0, 12);
	out[2] = 0x01; /* RD */
	out[5] = 1;    /* QDCOUNT */
	while (*p) {
		const char *dot = strchr(p, '.');

		label = dot ? (size_t)(dot - p) : strlen(p);
		if (label == 0 || label > 63 || n + label + 1 > PKT_MAX - 5)
			break;
		out[n++] = (uint8_t)label;
		memcpy(out + n, p, label);
		n += label;
		p += label;
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = 1; /* QTYPE A */
	out[n++] = 0;
	out[n++] = 1; /* QCLASS IN */
	return n;
}

int main(int argc, char **argv)
{
	static struct flow flows[MAX_SOCKETS];
	static uint8_t tx[BATCH][PKT_MAX], rx[BATCH][PKT_MAX];
	struct mmsghdr txm[BATCH], rxm[BATCH];
	struct iovec txv[BATCH], rxv[BATCH];
	struct pollfd pfd[MAX_SOCKETS];
	struct sockaddr_in server = {.sin_family = AF_INET};
	uint64_t sent = 0, answered = 0, lost = 0, start, end, t;
	static uint8_t query[MAX_SOCKETS][PKT_MAX];
	static size_t qlen[MAX_SOCKETS];
	char name[300];
	int sockets, window, seconds, i, j, n;

	if (argc != 7) {
		fprintf(stderr, "usage: %s SERVER_IP PORT SECONDS SOCKETS WINDOW QNAME\n", argv[0]);
		return 2;
	}
	if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
		fprintf(stderr, "flood-sender: %s is not an IPv4 address\n", argv[1]);
		return 2;
	}
	server.sin_port = htons((uint16_t)atoi(argv[2]));
	seconds = atoi(argv[3]);
	sockets = atoi(argv[4]);
	window = atoi(argv[5]);
	if (seconds < 1 || sockets < 1 || sockets > MAX_SOCKETS || window < 0 || window > 4096 ||
	    strlen(argv[6]) > 250) {
		fprintf(stderr,
			"flood-sender: SECONDS >= 1, SOCKETS 1..%d, WINDOW 0..4096, QNAME <= 250\n",
			MAX_SOCKETS);
		return 2;
	}
	for (i = 0; i < sockets; i++) {
		snprintf(name, sizeof(name), "s%d.%s", i, argv[6]);
		qlen[i] = build_query(query[i], name);
	}

	for (i = 0; i < sockets; i++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		int buf = 4 << 20;

		if (fd < 0 || connect(fd, (struct sockaddr *)&server, sizeof(server)) < 0) {
			perror("flood-sender: socket/connect");
			return 1;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		flows[i].fd = fd;
		pfd[i].fd = fd;
		pfd[i].events = POLLIN;
	}
	for (j = 0; j < BATCH; j++) {
		rxv[j].iov_base = rx[j];
		rxv[j].iov_len = PKT_MAX;
		txv[j].iov_base = tx[j];
	}

	start = now_ns();
	end = start + (uint64_t)seconds * 1000000000ULL;
	for (;;) {
		t = now_ns();
		if (t >= end)
			break;
		for (i = 0; i < sockets; i++) {
			struct flow *f = &flows[i];
			int batch = 0;

			if (window == 0)
				f->lo = f->hi; /* open loop: nothing is waited for, nothing lost */
			/* Give up queries unanswered for LOSS_NS: they free their window slot. */
			while (f->lo < f->hi) {
				uint32_t k = (uint32_t)(f->lo & (IDS - 1));

				if (!f->done[k]) {
					if (t - f->sent_ns[k] < LOSS_NS)
						break;
					f->done[k] = 1;
					lost++;
				}
				f->lo++;
			}
			while (batch < BATCH &&
			       f->hi - f->lo < (uint64_t)(window ? window : BATCH)) {
				uint32_t k = (uint32_t)(f->hi & (IDS - 1));

				memcpy(tx[batch], query[i], qlen[i]);
				tx[batch][0] = (uint8_t)(k >> 8);
				tx[batch][1] = (uint8_t)k;
				txv[batch].iov_len = qlen[i];
				memset(&txm[batch].msg_hdr, 0, sizeof(txm[batch].msg_hdr));
				txm[batch].msg_hdr.msg_iov = &txv[batch];
				txm[batch].msg_hdr.msg_iovlen = 1;
				f->sent_ns[k] = t;
				f->done[k] = 0;
				f->hi++;
				batch++;
			}
			if (batch > 0) {
				n = sendmmsg(f->fd, txm, (unsigned int)batch, 0);
				if (n < 0)
					n = 0; /* ENOBUFS/EAGAIN: take the unsent ones back */
				sent += (uint64_t)n;
				f->hi -= (uint64_t)(batch - n);
			}
			for (;;) {
				for (j = 0; j < BATCH; j++) {
					memset(&rxm[j].msg_hdr, 0, sizeof(rxm[j].msg_hdr));
					rxm[j].msg_hdr.msg_iov = &rxv[j];
					rxm[j].msg_hdr.msg_iovlen = 1;
				}
				n = recvmmsg(f->fd, rxm, BATCH, MSG_DONTWAIT, NULL);
				if (n <= 0)
					break;
				for (j = 0; j < n; j++) {
					uint32_t id, k;
					uint64_t seq;

					if (rxm[j].msg_len < 12 || f->hi == 0)
						continue;
					id = ((uint32_t)rx[j][0] << 8) | rx[j][1];
					/* The in-flight sequence number with this id, if any. */
					seq = f->hi - 1 - ((f->hi - 1 - id) & (IDS - 1));
					k = id;
					if (seq < f->lo || seq >= f->hi || f->done[k])
						continue;
					f->done[k] = 1;
					answered++;
				}
			}
		}
		/* Every window full: wait briefly for answers instead of spinning. */
		n = window > 0;
		for (i = 0; i < sockets && n; i++)
			if (flows[i].hi - flows[i].lo < (uint64_t)window)
				n = 0;
		if (n)
			poll(pfd, (nfds_t)sockets, 1);
	}
	t = now_ns(); /* sent - answered - lost were still in flight at the end */
	printf("{\"sent\":%llu,\"answered\":%llu,\"lost\":%llu,\"seconds\":%.3f,\"qps\":%.0f}\n",
	       (unsigned long long)sent, (unsigned long long)answered, (unsigned long long)lost,
	       (double)(t - start) / 1e9, (double)sent / ((double)(t - start) / 1e9));
	return 0;
}
