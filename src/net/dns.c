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
#define TYPE_CNAME 5
#define TYPE_AAAA 28
#define TYPE_OPT 41
#define CLASS_IN 1
#define RCODE_FORMERR 1
#define RCODE_NOTIMP 4
#define RCODE_REFUSED 5
/* The stub's EDNS UDP size: what DNS flag day 2020 settled on. */
#define EDNS_UDP 1232

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The types a box may ask about: what programs ask for, not 16 bits of its choice upstream. */
static bool type_forwarded(uint16_t t)
{
	static const uint16_t types[] = {1, 2, 5, 6, 12, 15, 16, 28, 33, 64, 65, 257};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i] == t)
			return true;
	return false;
}

int dns_query_read(const uint8_t *msg, size_t len, bool any_type, struct dns_query *q,
		   const char **why)
{
	size_t off = HEADER, n = 0;

	*why = NULL;
	/* Not even a header, or an answer: nothing to reply to. */
	if (len < HEADER || (msg[2] & 0x80))
		return -1;
	*why = "a query of another opcode than QUERY: refused";
	q->rcode = RCODE_NOTIMP;
	if (msg[2] & 0x78)
		return -1;
	/* RFC 9619: one question; the box's own records would go upstream with it. */
	*why = "a query with other than one question, or with records of its own: refused";
	q->rcode = RCODE_FORMERR;
	if (get16(msg + 4) != 1 || get16(msg + 6) || get16(msg + 8) || get16(msg + 10) > 1)
		return -1;
	*why = "a malformed query: refused";
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
			q->name[n++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			char c = (char)msg[off + i];
			/* Bytes a name in --allow cannot hold never match it: keep the log clean. */
			if (!isalnum((unsigned char)c) && c != '-' && c != '_')
				c = '?';
			q->name[n++] = (char)tolower((unsigned char)c);
		}
		off += l;
	}
	q->name[n] = '\0';
	if (off + 4 > len)
		return -1;
	q->type = get16(msg + off);
	q->id = get16(msg);
	q->rd = msg[2] & 0x01;
	q->edns = false;
	if (get16(msg + 10)) {
		/* The one additional record: an OPT (root owner, type 41), read no further. */
		size_t opt = off + 4;
		if (opt + 11 > len || msg[opt] != 0 || get16(msg + opt + 1) != TYPE_OPT)
			return -1;
		q->edns = true;
	}
	*why = "a query of another class than IN: refused";
	q->rcode = RCODE_REFUSED;
	if (get16(msg + off + 2) != CLASS_IN)
		return -1;
	*why = "a query of a type the stub does not forward: refused";
	if (!any_type && !type_forwarded(q->type))
		return -1;
	*why = NULL;
	return (int)(off + 4);
}

size_t dns_refusal(const uint8_t *msg, const struct dns_query *q, uint8_t out[12])
{
	memset(out, 0, HEADER);
	memcpy(out, msg, 2);
	out[2] = (uint8_t)(0x80 | (msg[2] & 0x79)); /* QR, the opcode and RD kept */
	out[3] = (uint8_t)(0x80 | q->rcode);
	return HEADER;
}

size_t dns_nxdomain(uint8_t *msg, size_t end)
{
	msg[2] = (uint8_t)(0x80 | (msg[2] & 0x01)); /* QR, opcode 0, RD kept */
	msg[3] = 0x80 | 3;                            /* RA, NXDOMAIN */
	msg[4] = 0;
	msg[5] = 1; /* the one question answered */
	memset(msg + 6, 0, 6);
	return end;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* name (dotted, no final dot) in wire form, lowercase; its length, 0 if not a valid name. */
static size_t name_to_wire(const char *name, uint8_t out[255])
{
	size_t n = 0;

	for (const char *p = name; *p;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || n + 1 + l + 1 > 255)
			return 0;
		out[n++] = (uint8_t)l;
		for (size_t i = 0; i < l; i++)
			out[n++] = (uint8_t)tolower((unsigned char)p[i]);
		p += l;
		if (*p)
			p++;
	}
	out[n++] = 0;
	return n;
}

size_t dns_upstream_query(const struct dns_query *q, uint8_t *out, size_t cap)
{
	uint8_t wire[255];
	size_t wlen = name_to_wire(q->name, wire), n = HEADER;

	if (!wlen || HEADER + wlen + 4 + (q->edns ? 11 : 0) > cap)
		return 0;
	memset(out, 0, HEADER);
	put16(out, q->id);
	out[2] = q->rd ? 0x01 : 0;
	out[5] = 1;
	out[11] = q->edns ? 1 : 0;
	memcpy(out + n, wire, wlen);
	n += wlen;
	put16(out + n, q->type);
	put16(out + n + 2, CLASS_IN);
	n += 4;
	if (q->edns) {
		/* RFC 6891 6.1.2: root owner, OPT, the stub's UDP size, no flags or options. */
		static const uint8_t opt[] = {0, 0, TYPE_OPT, EDNS_UDP >> 8, EDNS_UDP & 0xff,
					      0, 0, 0, 0, 0, 0};
		memcpy(out + n, opt, sizeof(opt));
		n += sizeof(opt);
	}
	return n;
}

/*
 * The (possibly compressed) name at *off, in wire form with ASCII
 * lowercased (RFC 4343), into out; *off moves past it. -1 if malformed.
 */
static int read_name(const uint8_t *msg, size_t len, size_t *off, uint8_t out[255], size_t *olen)
{
	size_t p = *off, n = 0;
	bool jumped = false;

	/* Every jump or label adds a byte or more, so 255 of them cover any valid name. */
	for (int steps = 0; steps < 255; steps++) {
		if (p >= len)
			return -1;
		uint8_t l = msg[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 2 > len)
				return -1;
			if (!jumped)
				*off = p + 2;
			jumped = true;
			p = (size_t)(l & 0x3f) << 8 | msg[p + 1];
			continue;
		}
		if (l & 0xc0 || p + 1 + l > len || n + 1 + l > 255)
			return -1;
		out[n++] = l;
		for (uint8_t i = 0; i < l; i++) {
			uint8_t c = msg[p + 1 + i];
			out[n++] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 'a' - 'A') : c;
		}
		p += 1u + l;
		if (l == 0) {
			if (!jumped)
				*off = p;
			*olen = n;
			return 0;
		}
	}
	return -1;
}
/* Whether the wire name w (wlen bytes) is one of the chain's. */
static bool in_chain(uint8_t chain[][255], const size_t *clen, int n, const uint8_t *w, size_t wlen)
{
	for (int i = 0; i < n; i++)
		if (clen[i] == wlen && !memcmp(chain[i], w, wlen))
			return true;
	return false;
}

/* One record of the answer section: its owner, type, class, TTL, and where its data is. */
struct rr {
	uint8_t owner[255];
	size_t olen;
	uint16_t type, class, rdlen;
	uint32_t ttl;
	size_t data;
};

/* The record at *off, which moves past it; -1 if it runs past len. */
static int read_rr(const uint8_t *msg, size_t len, size_t *off, struct rr *r)
{
	if (read_name(msg, len, off, r->owner, &r->olen) < 0 || *off + 10 > len)
		return -1;
	r->type = get16(msg + *off);
	r->class = get16(msg + *off + 2);
	r->ttl = (uint32_t)get16(msg + *off + 4) << 16 | get16(msg + *off + 6);
	r->rdlen = get16(msg + *off + 8);
	r->data = *off + 10;
	if (r->data + r->rdlen > len)
		return -1;
	*off = r->data + r->rdlen;
	return 0;
}

int dns_answers(const uint8_t *msg, size_t len, const char *qname, struct dns_addr *out, int max)
{
	uint8_t chain[DNS_CHAIN_MAX + 1][255], name[255];
	size_t clen[DNS_CHAIN_MAX + 1], off = HEADER, answers, nlen;
	unsigned an;
	int links = 1, n = 0;
	struct rr r;

	/* An answer to the one question, for qname. */
	clen[0] = name_to_wire(qname, chain[0]);
	if (!clen[0] || len < HEADER || !(msg[2] & 0x80) || get16(msg + 4) != 1)
		return -1;
	if (read_name(msg, len, &off, name, &nlen) < 0 || off + 4 > len ||
	    !in_chain(chain, clen, 1, name, nlen))
		return -1;
	answers = off + 4;
	an = get16(msg + 6);
	/*
	 * The CNAME chain from qname, its records in whatever order: each pass
	 * adds a link or ends the search, so DNS_CHAIN_MAX passes are enough.
	 */
	for (bool more = true; more && links <= DNS_CHAIN_MAX;) {
		more = false;
		off = answers;
		for (unsigned i = 0; i < an && links <= DNS_CHAIN_MAX; i++) {
			if (read_rr(msg, len, &off, &r) < 0)
				return -1;
			if (r.type != TYPE_CNAME || r.class != CLASS_IN ||
			    !in_chain(chain, clen, links, r.owner, r.olen))
				continue;
			size_t t = r.data;
			if (read_name(msg, r.data + r.rdlen, &t, name, &nlen) < 0 ||
			    in_chain(chain, clen, links, name, nlen))
				continue;
			memcpy(chain[links], name, nlen);
			clen[links++] = nlen;
			more = true;
		}
	}
	off = answers;
	for (unsigned i = 0; i < an; i++) {
		if (read_rr(msg, len, &off, &r) < 0)
			return -1;
		if (r.class != CLASS_IN || n >= max ||
		    !((r.type == TYPE_A && r.rdlen == 4) || (r.type == TYPE_AAAA && r.rdlen == 16)))
			continue;
		/* An address of another name: not the resolver's to give for this one. */
		if (!in_chain(chain, clen, links, r.owner, r.olen))
			continue;
		out[n].family = r.type == TYPE_A ? AF_INET : AF_INET6;
		memcpy(out[n].addr, msg + r.data, r.rdlen);
		/* RFC 2181 8: a TTL with the top bit set means 0. */
		out[n].ttl = r.ttl & 0x80000000u ? 0 : r.ttl;
		if (out[n].ttl > DNS_TTL_MAX)
			out[n].ttl = DNS_TTL_MAX;
		n++;
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
