/* The stub resolver's sockets and its answers (net/dns.h), served by the keeper. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/dns.h"
#include "net/stub.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "common/banned.h"

/* How long a forwarded query may wait for the host's resolver. */
#define UPSTREAM_MS 3000

int stub_upstream_open(struct stub *s, struct error *err)
{
	struct sockaddr_storage ss;
	socklen_t len;

	s->up_fd = -1;
	s->fd = -1;
	if (dns_upstream(&ss, &len, err) < 0)
		return -1;
	s->up_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->up_fd < 0 || connect(s->up_fd, (struct sockaddr *)&ss, len) < 0)
		return error_set(err, errno, "cannot reach the host's resolver");
	return 0;
}

/* DNS_STUB_ADDR on the box's loopback, /32, so that nothing else of 169.254/16 is local. */
static int add_stub_addr(struct error *err)
{
	struct ifreq ifr = {0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return error_set(err, errno, "cannot open a socket");
	memcpy(ifr.ifr_name, "lo:53", 6);
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, DNS_STUB_ADDR, &sin->sin_addr);
	if (ioctl(fd, SIOCSIFADDR, &ifr) < 0)
		return error_set(err, errno, "cannot give the box's loopback " DNS_STUB_ADDR);
	inet_pton(AF_INET, "255.255.255.255", &sin->sin_addr);
	if (ioctl(fd, SIOCSIFNETMASK, &ifr) < 0)
		return error_set(err, errno, "cannot set the netmask of " DNS_STUB_ADDR);
	return 0;
}

int stub_listen_open(struct stub *s, struct error *err)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(53)};

	if (add_stub_addr(err) < 0)
		return -1;
	inet_pton(AF_INET, DNS_STUB_ADDR, &sin.sin_addr);
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return error_set(err, errno, "cannot serve DNS at " DNS_STUB_ADDR ":53 in the box");
	return 0;
}

/*
 * At most STUB_LOG_RATE events a second, after a burst of twice that, as
 * the rules log their denials (allow.h): a box asking in a loop cannot
 * fill the host's disk with its log. What was left out is counted, and
 * said with the next event logged. One stub a process (the keeper, or a
 * --net user forwarder): the bucket is the process's.
 */
#define STUB_LOG_RATE 100
static double log_tokens = 2 * STUB_LOG_RATE;
static uint64_t log_last_ns, log_skipped;

static void stub_log(const struct stub *s, const char *args, const char *verdict, const char *why)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (log_last_ns)
		log_tokens += (double)(now - log_last_ns) * STUB_LOG_RATE / 1e9;
	if (log_tokens > 2 * STUB_LOG_RATE)
		log_tokens = 2 * STUB_LOG_RATE;
	log_last_ns = now;
	if (log_tokens < 1) {
		log_skipped++;
		return;
	}
	log_tokens -= 1;
	if (log_skipped) {
		_cleanup_free_ char *n = xasprintf("%llu DNS events not logged: more than %d a "
						   "second", (unsigned long long)log_skipped,
						   STUB_LOG_RATE);
		s->log(s->arg, "dns", NULL, "info", n);
		log_skipped = 0;
	}
	s->log(s->arg, "dns", args, verdict, why);
}

static const char *type_name(uint16_t t, char *buf, size_t len)
{
	switch (t) {
	case 1: return "A";
	case 28: return "AAAA";
	case 5: return "CNAME";
	case 65: return "HTTPS";
	default: snprintf(buf, len, "%u", t); return buf;
	}
}

/* rcode: the answer's (its header's low 4 bits), or -1 for none. */
static void log_answer(const struct stub *s, const char *name, uint16_t qtype, const char *verdict,
		       const char *answers, int rcode, const char *why)
{
	_cleanup_free_ char *q = json_quote(name);
	char tb[8], rc[16] = "";
	_cleanup_free_ char *args = NULL;

	if (rcode >= 0)
		snprintf(rc, sizeof(rc), ",\"rcode\":%d", rcode);
	args = xasprintf("{\"name\":%s,\"type\":\"%s\"%s%s%s%s}", q,
			 type_name(qtype, tb, sizeof(tb)), answers ? ",\"answers\":[" : "",
			 answers ? answers : "", answers ? "]" : "", rc);

	stub_log(s, args, verdict, why);
}

static void log_query(const struct stub *s, const char *name, uint16_t qtype, const char *verdict,
		      const char *answers, const char *why)
{
	log_answer(s, name, qtype, verdict, answers, -1, why);
}

/* Send the query built for q and wait for its answer (same id). */
static ssize_t forward(const struct stub *s, const struct dns_query *q, uint8_t *ans, size_t cap)
{
	struct pollfd p = {.fd = s->up_fd, .events = POLLIN};
	uint8_t up[512];
	size_t qlen = dns_upstream_query(q, up, sizeof(up));
	ssize_t n;

	if (!qlen || send(s->up_fd, up, qlen, 0) < 0)
		return -1;
	for (int tries = 0; tries < 16; tries++) {
		if (poll(&p, 1, UPSTREAM_MS) <= 0)
			return -1;
		n = recv(s->up_fd, ans, cap, 0);
		if (n < 0)
			return -1;
		/* A late answer to an earlier query: not this one's. */
		if (n >= 12 && ans[0] == up[0] && ans[1] == up[1])
			return n;
	}
	return -1;
}

/*
 * Add the addresses the answer gives for name to the allowed sets; their
 * list, JSON, for the log. The box still receives the whole answer: an
 * address left out here is one it learns but cannot reach.
 */
static char *allow_answers(const struct stub *s, const char *name, const uint8_t *ans, size_t n)
{
	struct dns_addr addrs[32];
	int count = dns_answers(ans, n, name, addrs, 32);
	char *list = xstrdup("");

	for (int i = 0; i < count; i++) {
		char a[INET6_ADDRSTRLEN];
		struct error err;
		_cleanup_free_ char *cmd = dns_allow_command(s->rules, s->nrules, name, &addrs[i]);
		inet_ntop(addrs[i].family, addrs[i].addr, a, sizeof(a));
		if (cmd && nft_helper_run(s->nft, cmd, &err) < 0)
			stub_log(s, NULL, "info", err.msg);
		char *more = xasprintf("%s%s{\"address\":\"%s\",\"ttl\":%u}", list, i ? "," : "", a,
				       addrs[i].ttl);
		free(list);
		list = more;
	}
	return list;
}

void stub_serve(const struct stub *s)
{
	uint8_t q[1500], ans[4096];
	struct sockaddr_storage from;
	socklen_t flen = sizeof(from);
	struct dns_query dq;
	const char *refused;
	ssize_t n = recvfrom(s->fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	int end;

	if (n <= 0)
		return;
	end = dns_query_read(q, (size_t)n, s->forward_all, &dq, &refused);
	if (end < 0) {
		uint8_t reply[12];
		if (!refused)
			return;
		stub_log(s, NULL, "denied", refused);
		sendto(s->fd, reply, dns_refusal(q, &dq, reply), 0, (struct sockaddr *)&from,
		       flen);
		return;
	}
	if (!s->forward_all && !dns_name_allowed(s->rules, s->nrules, dq.name)) {
		_cleanup_free_ char *why = xasprintf("'%s' is not in the box's --allow list: "
						     "answered NXDOMAIN", dq.name);
		size_t r = dns_nxdomain(q, (size_t)end);
		log_query(s, dq.name, dq.type, "denied", NULL, why);
		sendto(s->fd, q, r, 0, (struct sockaddr *)&from, flen);
		return;
	}
	ssize_t an = forward(s, &dq, ans, sizeof(ans));
	if (an < 0) {
		log_query(s, dq.name, dq.type, "info", NULL, "the host's resolver did not answer");
		return;
	}
	/* Allowed before the box sees the answer, so its connect finds them. */
	_cleanup_free_ char *list = allow_answers(s, dq.name, ans, (size_t)an);
	log_answer(s, dq.name, dq.type, "allowed", list, ans[3] & 0xf, NULL);
	sendto(s->fd, ans, (size_t)an, 0, (struct sockaddr *)&from, flen);
}
