/*
 * gai.c: getaddrinfo() client, built with `musl-gcc -static` by the test lab so that the
 * lab can compare musl's resolver with glibc's. Usage: gai NAME [unspec|inet|inet6]
 * Prints one "A <addr>" / "AAAA <addr>" line per result; on failure prints
 * "getaddrinfo: <code> <message>" to stderr and exits 2.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
	struct addrinfo hints, *res, *p;
	int family = AF_UNSPEC;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s NAME [unspec|inet|inet6]\n", argv[0]);
		return 64;
	}
	if (argc > 2 && !strcmp(argv[2], "inet"))
		family = AF_INET;
	else if (argc > 2 && !strcmp(argv[2], "inet6"))
		family = AF_INET6;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(argv[1], NULL, &hints, &res);
	if (rc) {
		fprintf(stderr, "getaddrinfo: %d %s\n", rc, gai_strerror(rc));
		return 2;
	}
	for (p = res; p; p = p->ai_next) {
		char buf[INET6_ADDRSTRLEN];
		const void *a = p->ai_family == AF_INET
				    ? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
				    : (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;

		printf("%s %s\n", p->ai_family == AF_INET ? "A" : "AAAA",
		       inet_ntop(p->ai_family, a, buf, sizeof(buf)));
	}
	freeaddrinfo(res);
	return 0;
}
