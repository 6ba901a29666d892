/* --allow: parsing its values and the nftables rules they become (net/allow.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/allow.h"
#include "net/dns.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

static int parse_port(const char *spec, const char *s, uint16_t *out, struct error *err)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return error_set(err, 0, "invalid --allow '%s': the port must be a number", spec);
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return error_set(err, 0, "invalid --allow '%s': the port must be 1 to 65535", spec);
	*out = (uint16_t)v;
	return 0;
}

/* RFC 1035 with RFC 1123's leading digits: labels of [a-z0-9-], 1..63 long, not edged by '-'. */
static bool name_valid(const char *s)
{
	size_t len = strlen(s), label = 0;
	bool alpha = false;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return false;
		if (label == 0 && c == '-')
			return false;
		alpha |= isalpha((unsigned char)c) || c == '-';
		if (++label > 63)
			return false;
	}
	/* All digits and dots would be an IPv4 address inet_pton refused. */
	return alpha;
}

static int parse_host(const char *spec, const char *host, bool bracketed, struct allow_rule *r,
		      struct error *err)
{
	char buf[256];
	const char *slash = strchr(host, '/');
	size_t alen = slash ? (size_t)(slash - host) : strlen(host);
	unsigned max;

	if (alen == 0 || alen >= sizeof(buf))
		return error_set(err, 0, "invalid --allow '%s': no host", spec);
	memcpy(buf, host, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, r->addr) == 1 && !bracketed) {
		r->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
		/* No packet carries one: the kernel sends IPv4 for them. */
		if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)r->addr))
			return error_set(err, 0, "invalid --allow '%s': '%s' is an IPv4 address "
					 "written as IPv6; give it as %u.%u.%u.%u", spec, buf,
					 r->addr[12], r->addr[13], r->addr[14], r->addr[15]);
		r->family = AF_INET6;
		max = 128;
	} else {
		if (slash || bracketed)
			return error_set(err, 0, "invalid --allow '%s': '%s' is not an IP address",
					 spec, buf);
		if (!name_valid(buf))
			return error_set(err, 0, "invalid --allow '%s': '%s' is neither an IP address "
					 "nor a DNS name", spec, buf);
		r->kind = ALLOW_NAME;
		for (size_t i = 0; i <= alen; i++)
			r->name[i] = (char)tolower((unsigned char)buf[i]);
		return 0;
	}
	r->kind = ALLOW_ADDR;
	r->prefix = max;
	if (slash) {
		char *end;
		unsigned long v;
		errno = 0;
		v = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || errno || *end || v > max)
			return error_set(err, 0, "invalid --allow '%s': the prefix length must be 0 "
					 "to %u", spec, max);
		r->prefix = (unsigned)v;
	}
	/* 10.1.2.3/8 means the block 10.0.0.0/8, as ip(8) takes it. */
	for (unsigned bit = r->prefix; bit < max; bit++)
		r->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	return 0;
}

int allow_parse(const char *spec, struct allow_rule *out, struct error *err)
{
	char host[300];
	const char *port = NULL;
	bool bracketed = false;
	size_t len = strlen(spec);

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return error_set(err, 0, "invalid --allow '': it needs a host, address or network");
	if (len >= sizeof(host))
		return error_set(err, 0, "invalid --allow '%.64s...': too long", spec);
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close)
			return error_set(err, 0, "invalid --allow '%s': no ']'", spec);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return error_set(err, 0, "invalid --allow '%s': ':PORT' or nothing must "
					 "follow ']'", spec);
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		bracketed = true;
	} else {
		const char *colon = strchr(spec, ':');
		memcpy(host, spec, len + 1);
		/* One colon: HOST:PORT. More: an IPv6 address without a port. */
		if (colon && !strchr(colon + 1, ':')) {
			host[colon - spec] = '\0';
			port = colon + 1;
		}
	}
	if (port && parse_port(spec, port, &out->port, err) < 0)
		return -1;
	return parse_host(spec, host, bracketed, out, err);
}

static void format_addr(const struct allow_rule *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(r->family, r->addr, a, sizeof(a));
	if (r->prefix == (r->family == AF_INET ? 32u : 128u))
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s/%u", a, r->prefix);
}

void allow_format(const struct allow_rule *r, char *buf, size_t len)
{
	char host[300];
	bool v6 = r->kind == ALLOW_ADDR && r->family == AF_INET6;

	if (r->kind == ALLOW_NAME)
		snprintf(host, sizeof(host), "%s", r->name);
	else
		format_addr(r, host, sizeof(host));
	if (!r->port)
		snprintf(buf, len, "%s", host);
	else
		snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", r->port);
}

struct text {
	char *s;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len)
			break;
		t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0) + 64;
		t->s = xrealloc(t->s, t->cap);
	}
	t->len += (size_t)n;
}

static void add_set(struct text *t, const char *name, int family, const struct allow_rule *rules,
		    size_t n)
{
	bool first = true;

	add(t, "\tset %s {\n\t\ttype %s . inet_service\n\t\tflags interval\n", name,
	    family == AF_INET ? "ipv4_addr" : "ipv6_addr");
	for (size_t i = 0; i < n; i++) {
		char a[64];
		if (rules[i].kind != ALLOW_ADDR || rules[i].family != family)
			continue;
		format_addr(&rules[i], a, sizeof(a));
		add(t, "%s%s . ", first ? "\t\telements = { " : ", ", a);
		if (rules[i].port)
			add(t, "%u", rules[i].port);
		else
			add(t, "0-65535");
		first = false;
	}
	add(t, "%s\t}\n", first ? "" : " }\n");
}

/*
 * Enforced in the output hook, so every socket of the box is covered,
 * whatever made it (connect, sendto, io_uring, a --root program's own
 * interface): the packet leaving is what is checked, not a system call.
 *  - loopback stays the box's own: oif lo, and also by address, because a
 *    --root program may SO_BINDTODEVICE a socket to lo (it cannot be kept
 *    from it), so only 127.0.0.0/8 and ::1 go out that way unchecked;
 *  - replies to what was let in (published ports) and to what was allowed;
 *  - IPv6 neighbour discovery, without which no IPv6 packet leaves (and
 *    the multicast listener reports the kernel sends by itself);
 *  - the allowed address . port pairs, TCP and UDP, from --allow (sets
 *    allow4/allow6) and from the names the stub resolver answered for
 *    (dns4/dns6, and dnsany4/dnsany6 for names without a port, whose
 *    elements time out with the answer's TTL), and the stub resolver
 *    (UDP);
 *  - everything else is logged to NFLOG (net/nflog.c reads it), at most
 *    ALLOW_LOG_RATE a second after a burst of twice that, so that a box
 *    refused in a loop cannot fill the host's disk with its log (the
 *    counter counts them all), and rejected, TCP with a reset and the rest
 *    with port unreachable, so that a denied connection fails at once
 *    instead of timing out.
 */
char *allow_ruleset(const struct allow_rule *rules, size_t n)
{
	struct text t = {0};

	add(&t, "table inet hutch {\n");
	add_set(&t, "allow4", AF_INET, rules, n);
	add_set(&t, "allow6", AF_INET6, rules, n);
	add(&t, "\tset dns4 {\n\t\ttype ipv4_addr . inet_service\n\t\tflags timeout\n\t}\n");
	add(&t, "\tset dns6 {\n\t\ttype ipv6_addr . inet_service\n\t\tflags timeout\n\t}\n");
	add(&t, "\tset dnsany4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t}\n");
	add(&t, "\tset dnsany6 {\n\t\ttype ipv6_addr\n\t\tflags timeout\n\t}\n");
	add(&t, "\tchain output {\n"
		"\t\ttype filter hook output priority filter; policy accept;\n"
		"\t\toif \"lo\" ip daddr 127.0.0.0/8 accept\n"
		"\t\toif \"lo\" ip6 daddr ::1 accept\n"
		"\t\tct state established,related accept\n"
		"\t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, "
		"mld-listener-report, mld2-listener-report } accept\n"
		"\t\tmeta l4proto { tcp, udp } ip daddr . th dport @allow4 accept\n"
		"\t\tmeta l4proto { tcp, udp } ip6 daddr . th dport @allow6 accept\n"
		"\t\tmeta l4proto { tcp, udp } ip daddr . th dport @dns4 accept\n"
		"\t\tmeta l4proto { tcp, udp } ip6 daddr . th dport @dns6 accept\n"
		"\t\tmeta l4proto { tcp, udp } ip daddr @dnsany4 accept\n"
		"\t\tmeta l4proto { tcp, udp } ip6 daddr @dnsany6 accept\n"
		/*
		 * The stub, which serves under every --allow (net/keeper.c), and
		 * only on the box's lo: routed anywhere else, to pasta, whose
		 * --dns-forward answers any name, it would be a way out.
		 */
		"\t\toif \"lo\" ip daddr " DNS_STUB_ADDR " udp dport 53 accept\n"
		"\t\tcounter limit rate %d/second burst %d packets log prefix \"" ALLOW_LOG_PREFIX
		"\" group %d\n"
		"\t\tmeta l4proto tcp reject with tcp reset\n"
		"\t\treject with icmpx type port-unreachable\n"
		"\t}\n"
		"}\n",
	    ALLOW_LOG_RATE, 2 * ALLOW_LOG_RATE, ALLOW_LOG_GROUP);
	return t.s;
}
