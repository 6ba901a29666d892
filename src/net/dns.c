/* The stub resolver's DNS messages (net/dns.h; RFC 1035 section 4). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

#define HEADER 12
#define TYPE_A 1
#define TYPE_AAAA 28
#define CLASS_IN 1

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Skip a (possibly compressed) name at *off; -1 if it runs past len. */
static int skip_name(const uint8_t *msg, size_t len, size_t *off)
{
	for (int labels = 0; labels < 128; labels++) {
		if (*off >= len)
			return -1;
		uint8_t l = msg[*off];
		if (l == 0) {
			*off += 1;
			return 0;
		}
		if ((l & 0xc0) == 0xc0) {
			if (*off + 2 > len)
				return -1;
			*off += 2;
			return 0;
		}
		if (l & 0xc0)
			return -1;
		*off += 1u + l;
	}
	return -1;
}

int dns_question(const uint8_t *msg, size_t len, char name[256], uint16_t *qtype)
{
	size_t off = HEADER, n = 0;

	/* A query (QR 0), standard (opcode 0), with one question or more. */
	if (len < HEADER || (msg[2] & 0x80) || (msg[2] & 0x78) || get16(msg + 4) == 0)
		return -1;
	for (;;) {
		if (off >= len)
			return -1;
		uint8_t l = msg[off++];
		if (l == 0)
			break;
		/* No compression in a question of its own, and 255 bytes at most. */
		if ((l & 0xc0) || off + l > len || n + l + 1 > 255)
			return -1;
		if (n)
			name[n++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			char c = (char)msg[off + i];
			/* Bytes a name in --allow cannot hold never match it: keep the log clean. */
			if (!isalnum((unsigned char)c) && c != '-' && c != '_')
				c = '?';
			name[n++] = (char)tolower((unsigned char)c);
		}
		off += l;
	}
	name[n] = '\0';
	if (off + 4 > len)
		return -1;
	*qtype = get16(msg + off);
	return (int)(off + 4);
}

size_t dns_nxdomain(uint8_t *msg, size_t len)
{
	char name[256];
	uint16_t qtype;
	int end = dns_question(msg, len, name, &qtype);

	if (end < 0)
		return 0;
	msg[2] = (uint8_t)(0x80 | (msg[2] & 0x01)); /* QR, opcode 0, RD kept */
	msg[3] = 0x80 | 3;                            /* RA, NXDOMAIN */
	msg[4] = 0;
	msg[5] = 1; /* the one question answered */
	memset(msg + 6, 0, 6);
	return (size_t)end;
}

int dns_answers(const uint8_t *msg, size_t len, struct dns_addr *out, int max)
{
	size_t off = HEADER;
	unsigned qd, an;
	int n = 0;

	if (len < HEADER)
		return -1;
	qd = get16(msg + 4);
	an = get16(msg + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (skip_name(msg, len, &off) < 0 || off + 4 > len)
			return -1;
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		if (skip_name(msg, len, &off) < 0 || off + 10 > len)
			return -1;
		uint16_t type = get16(msg + off), class = get16(msg + off + 2);
		uint32_t ttl = (uint32_t)get16(msg + off + 4) << 16 | get16(msg + off + 6);
		uint16_t rdlen = get16(msg + off + 8);
		off += 10;
		if (off + rdlen > len)
			return -1;
		if (class == CLASS_IN && n < max &&
		    ((type == TYPE_A && rdlen == 4) || (type == TYPE_AAAA && rdlen == 16))) {
			out[n].family = type == TYPE_A ? AF_INET : AF_INET6;
			memcpy(out[n].addr, msg + off, rdlen);
			/* RFC 2181 8: a TTL with the top bit set means 0. */
			out[n].ttl = ttl & 0x80000000u ? 0 : ttl;
			n++;
		}
		off += rdlen;
	}
	return n;
}

bool dns_name_allowed(const struct allow_rule *rules, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (rules[i].kind == ALLOW_NAME && !strcmp(rules[i].name, name))
			return true;
	return false;
}

char *dns_allow_command(const struct allow_rule *rules, size_t n, const char *name,
			const struct dns_addr *a)
{
	char addr[INET6_ADDRSTRLEN];
	bool v6 = a->family == AF_INET6;
	uint32_t ttl = a->ttl ? a->ttl : 1;
	char *cmd = NULL;

	inet_ntop(a->family, a->addr, addr, sizeof(addr));
	for (size_t i = 0; i < n; i++) {
		if (rules[i].kind != ALLOW_NAME || strcmp(rules[i].name, name))
			continue;
		char *line;
		if (rules[i].port)
			line = xasprintf("add element inet hutch dns%s { %s . %u timeout %us }\n",
					 v6 ? "6" : "4", addr, rules[i].port, ttl);
		else
			line = xasprintf("add element inet hutch dnsany%s { %s timeout %us }\n",
					 v6 ? "6" : "4", addr, ttl);
		char *joined = xasprintf("%s%s", cmd ? cmd : "", line);
		free(line);
		free(cmd);
		cmd = joined;
	}
	return cmd;
}

static int parse_upstream(const char *s, uint16_t port, struct sockaddr_storage *ss,
			  socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *colon = strrchr(s, ':');

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || (size_t)(close - s - 1) >= sizeof(host))
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
		if (close[1] == ':')
			port = (uint16_t)atoi(close + 2);
	} else if (colon && strchr(s, ':') == colon) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
		port = (uint16_t)atoi(colon + 1);
	} else {
		snprintf(host, sizeof(host), "%s", s);
	}
	if (!port)
		return -1;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

int dns_upstream(struct sockaddr_storage *ss, socklen_t *len, struct error *err)
{
	const char *env = getenv("HUTCH_RESOLVER");
	_cleanup_free_ char *conf = NULL;
	char *save = NULL;

	if (env && *env) {
		if (parse_upstream(env, 53, ss, len) < 0)
			return error_set(err, 0, "HUTCH_RESOLVER '%s' is not ADDR or ADDR:PORT", env);
		return 0;
	}
	conf = read_file("/etc/resolv.conf", 65536, err);
	if (!conf)
		return error_prefix(err, "cannot find the host's resolver for --allow NAME");
	for (char *line = strtok_r(conf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char addr[64];
		if (sscanf(line, " nameserver %63s", addr) == 1 && parse_upstream(addr, 53, ss, len) == 0)
			return 0;
	}
	return error_set(err, 0, "/etc/resolv.conf names no nameserver, which --allow NAME needs");
}
