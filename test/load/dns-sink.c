/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns-sink: a DNS "server" that answers every query at once, for test/e2e/flood.test.ts.
 *
 *   dns-sink LISTEN_IP PORT
 *
 * Turns each query around (QR and RA set, RCODE NOERROR, no answer records) in batches of
 * 64 with recvmmsg/sendmmsg, so that one core answers far more than 10k queries per second
 * and the flood measures the exporter, not the lab's dnsmasq. Prints "ready" once bound.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define PKT_MAX 1500

int main(int argc, char **argv)
{
	static uint8_t buf[BATCH][PKT_MAX];
	struct sockaddr_in addr = {.sin_family = AF_INET}, peers[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	int fd, one = 1, size = 8 << 20, i, n, out;

	if (argc != 3 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "usage: %s LISTEN_IP PORT\n", argv[0]);
		return 2;
	}
	addr.sin_port = htons((uint16_t)atoi(argv[2]));
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("dns-sink: socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("dns-sink: bind");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = PKT_MAX;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &peers[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
		}
		/* Block for the first query, then take whatever else is queued. */
		n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		for (i = 0, out = 0; i < n; i++) {
			if (msgs[i].msg_len < 12)
				continue;  /* not DNS: no answer */
			buf[i][2] |= 0x80; /* QR */
			buf[i][3] = 0x80;  /* RA, RCODE NOERROR */
			iov[i].iov_len = msgs[i].msg_len;
			if (out != i)
				msgs[out] = msgs[i];
			out++;
		}
		if (out > 0)
			sendmmsg(fd, msgs, (unsigned int)out, 0);
	}
}
