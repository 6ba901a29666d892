/*
 * netprobe: reports what the network of the calling process looks like,
 * straight from the kernel, for tests/integration/run.bats.
 *
 *   netprobe interfaces          print each network interface's name, one a line
 *   netprobe loopback            send bytes through TCP on 127.0.0.1; print
 *                                "loopback ok" or the step that failed
 *   netprobe connect ADDR PORT   try a TCP connection to an IPv4 address for at
 *                                most 2 s; print "connected", "timeout" or the
 *                                errno name (e.g. ENETUNREACH)
 *
 * Exit status 0 when the probe succeeded, 1 when it did not, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *step)
{
	printf("%s: %s\n", step, strerror(errno));
	return 1;
}

static int list_interfaces(void)
{
	struct if_nameindex *ifs = if_nameindex();

	if (!ifs)
		return fail("if_nameindex");
	for (struct if_nameindex *i = ifs; i->if_index; i++)
		printf("%s\n", i->if_name);
	if_freenameindex(ifs);
	return 0;
}

static int loopback(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	char buf[8] = "";
	int srv, cli, conn;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv < 0)
		return fail("socket");
	if (bind(srv, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("bind 127.0.0.1");
	if (listen(srv, 1) < 0)
		return fail("listen");
	if (getsockname(srv, (struct sockaddr *)&addr, &len) < 0)
		return fail("getsockname");
	cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cli < 0)
		return fail("socket");
	if (connect(cli, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return fail("connect 127.0.0.1");
	conn = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return fail("accept");
	if (write(cli, "ping", 4) != 4)
		return fail("write");
	if (read(conn, buf, sizeof(buf) - 1) != 4 || strcmp(buf, "ping"))
		return fail("read");
	printf("loopback ok\n");
	return 0;
}

static const char *errno_name(int e)
{
	switch (e) {
	case ENETUNREACH:
		return "ENETUNREACH";
	case EHOSTUNREACH:
		return "EHOSTUNREACH";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case EACCES:
		return "EACCES";
	case EPERM:
		return "EPERM";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	default:
		return strerror(e);
	}
}

static int connect_to(const char *host, const char *port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0;
	char *end;
	long p = strtol(port, &end, 10);

	if (*end || p <= 0 || p > 65535 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		fprintf(stderr, "netprobe: bad address '%s' port '%s'\n", host, port);
		return 2;
	}
	addr.sin_port = htons((unsigned short)p);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return fail("socket");
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
		printf("connected\n");
		return 0;
	}
	if (errno != EINPROGRESS) {
		printf("%s\n", errno_name(errno));
		return 1;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, 2000) == 0) {
		printf("timeout\n");
		return 1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return fail("getsockopt");
	if (err) {
		printf("%s\n", errno_name(err));
		return 1;
	}
	printf("connected\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "interfaces"))
		return list_interfaces();
	if (argc == 2 && !strcmp(argv[1], "loopback"))
		return loopback();
	if (argc == 4 && !strcmp(argv[1], "connect"))
		return connect_to(argv[2], argv[3]);
	fprintf(stderr, "usage: netprobe interfaces | loopback | connect ADDR PORT\n");
	return 2;
}
