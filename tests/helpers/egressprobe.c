/*
 * egressprobe: tries one way out of a box and reports, straight from the
 * kernel, what happened, for tests/integration/allow.bats.
 *
 *   egressprobe tcp ADDR PORT       connect (2 s at most); "connected: LINE" with
 *                                   the server's first line, or the errno name
 *   egressprobe udp ADDR PORT       send a datagram, wait 2 s for the echo:
 *                                   "echoed" or the errno name (ECONNREFUSED
 *                                   after an ICMP port unreachable)
 *   egressprobe lo-tcp ADDR PORT    tcp, on a socket bound to "lo" (SO_BINDTODEVICE)
 *   egressprobe uring ADDR PORT     connect through io_uring (IORING_OP_CONNECT)
 *   egressprobe icmp ADDR           an ICMP echo on a datagram socket: "reply" or
 *                                   the errno name
 *   egressprobe raw | packet | mark open a SOCK_RAW socket, an AF_PACKET one, or set
 *                                   SO_MARK: "allowed" or the errno name
 *   egressprobe setns-owner         setns into the user namespace owning this
 *                                   network namespace: "allowed" or the errno name
 * Each also prints the milliseconds it took ("in N ms"). ADDR is IPv4 or
 * IPv6. Exit status 0 when the way out worked, 1 when not, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct timespec start;

static long elapsed_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
}

static const char *errname(int e)
{
	switch (e) {
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENETUNREACH: return "ENETUNREACH";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	default: return strerror(e);
	}
}

static int report(int ok, const char *what)
{
	printf("%s in %ld ms\n", what, elapsed_ms());
	return ok ? 0 : 1;
}

static int report_errno(int e)
{
	return report(0, errname(e));
}

static socklen_t parse_addr(const char *a, const char *p, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)atoi(p ? p : "0"));
		return sizeof(*in4);
	}
	if (inet_pton(AF_INET6, a, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)atoi(p ? p : "0"));
		return sizeof(*in6);
	}
	fprintf(stderr, "egressprobe: '%s' is not an address\n", a);
	exit(2);
}

/* Wait for a connect in progress; then the server's first line. */
static int finish_connect(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	char line[128], out[160];
	int e = 0;
	socklen_t len = sizeof(e);
	ssize_t n;

	if (poll(&p, 1, 2000) == 0)
		return report(0, "ETIMEDOUT");
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
	if (e)
		return report_errno(e);
	p.events = POLLIN;
	if (poll(&p, 1, 2000) <= 0)
		return report(0, "connected but no reply");
	n = read(fd, line, sizeof(line) - 1);
	if (n < 0)
		return report_errno(errno);
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	snprintf(out, sizeof(out), "connected: %s", line);
	return report(1, out);
}

static int tcp(const char *a, const char *p, int lo)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(a, p, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return report_errno(errno);
	if (lo && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3) < 0)
		return report_errno(errno);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		return report_errno(errno);
	return finish_connect(fd);
}

static int udp(const char *a, const char *p)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(a, p, &ss);
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	char buf[16];

	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
		return report_errno(errno);
	if (send(fd, "ping", 4, 0) < 0)
		return report_errno(errno);
	if (poll(&pf, 1, 2000) == 0)
		return report(0, "ETIMEDOUT");
	if (recv(fd, buf, sizeof(buf), 0) < 0)
		return report_errno(errno);
	return report(1, "echoed");
}

static int icmp(const char *a)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(a, NULL, &ss);
	int v6 = ss.ss_family == AF_INET6;
	int fd = socket(ss.ss_family, SOCK_DGRAM, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	unsigned char pkt[8] = {v6 ? 128 : ICMP_ECHO, 0, 0, 0, 0, 1, 0, 1};
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	char buf[64];

	if (fd < 0)
		return report_errno(errno);
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&ss, len) < 0)
		return report_errno(errno);
	if (poll(&pf, 1, 2000) == 0)
		return report(0, "ETIMEDOUT");
	if (recv(fd, buf, sizeof(buf), 0) < 0)
		return report_errno(errno);
	return report(1, "reply");
}

/* IORING_OP_CONNECT on a ring of one entry, without liburing. */
static int uring(const char *a, const char *p)
{
	struct sockaddr_storage ss;
	socklen_t len = parse_addr(a, p, &ss);
	struct io_uring_params prm = {0};
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	int ring = (int)syscall(__NR_io_uring_setup, 1, &prm);

	if (fd < 0)
		return report_errno(errno);
	if (ring < 0)
		return printf("io_uring_setup: "), report_errno(errno);
	size_t sq_len = prm.sq_off.array + prm.sq_entries * sizeof(unsigned);
	size_t cq_len = prm.cq_off.cqes + prm.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_SQ_RING);
	char *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(NULL, prm.sq_entries * sizeof(*sqes),
					 PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return report_errno(errno);
	memset(&sqes[0], 0, sizeof(sqes[0]));
	sqes[0].opcode = IORING_OP_CONNECT;
	sqes[0].fd = fd;
	sqes[0].addr = (unsigned long)&ss;
	sqes[0].off = len;
	unsigned *tail = (unsigned *)(sq + prm.sq_off.tail);
	unsigned *array = (unsigned *)(sq + prm.sq_off.array);
	array[*tail & *(unsigned *)(sq + prm.sq_off.ring_mask)] = 0;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return report_errno(errno);
	struct io_uring_cqe *cqe = (struct io_uring_cqe *)(cq + prm.cq_off.cqes);
	if (cqe->res < 0)
		return report_errno(-cqe->res);
	return report(1, "connected");
}

static int open_socket(int family, int type, int proto)
{
	int fd = socket(family, type, proto);

	if (fd < 0)
		return report_errno(errno);
	return report(1, "allowed");
}

static int mark(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), m = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &m, sizeof(m)) < 0)
		return report_errno(errno);
	return report(1, "allowed");
}

static int setns_owner(void)
{
	int net = open("/proc/self/ns/net", O_RDONLY), owner;

	if (net < 0)
		return report_errno(errno);
	owner = ioctl(net, NS_GET_USERNS);
	if (owner < 0)
		return printf("NS_GET_USERNS: "), report_errno(errno);
	if (setns(owner, CLONE_NEWUSER) < 0)
		return report_errno(errno);
	return report(1, "allowed");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IONBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	if (!strcmp(cmd, "tcp") && argc == 4)
		return tcp(argv[2], argv[3], 0);
	if (!strcmp(cmd, "lo-tcp") && argc == 4)
		return tcp(argv[2], argv[3], 1);
	if (!strcmp(cmd, "udp") && argc == 4)
		return udp(argv[2], argv[3]);
	if (!strcmp(cmd, "uring") && argc == 4)
		return uring(argv[2], argv[3]);
	if (!strcmp(cmd, "icmp") && argc == 3)
		return icmp(argv[2]);
	if (!strcmp(cmd, "raw") && argc == 2)
		return open_socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (!strcmp(cmd, "packet") && argc == 2)
		return open_socket(AF_PACKET, SOCK_RAW, 0);
	if (!strcmp(cmd, "mark") && argc == 2)
		return mark();
	if (!strcmp(cmd, "setns-owner") && argc == 2)
		return setns_owner();
	fprintf(stderr, "usage: egressprobe tcp|udp|lo-tcp|uring ADDR PORT | icmp ADDR | raw | "
			"packet | mark | setns-owner\n");
	return 2;
}
