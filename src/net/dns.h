/*
 * hutch's stub resolver for --allow NAME (net/net.h): the box's
 * /etc/resolv.conf names DNS_STUB_ADDR, where the keeper answers. A query
 * for a name the allow-list names is forwarded to the host's resolver
 * (the keeper's socket for it was made in the host's network namespace)
 * as a query the stub builds itself from the question, so that nothing
 * else the box put in its query leaves; the A and AAAA addresses the
 * answer gives for the name (or for its CNAME chain) are added to the
 * kernel's allowed sets for their TTL, DNS_TTL_MAX at most. Any other
 * name gets NXDOMAIN, a query of another shape (several questions,
 * records of its own, another opcode) FORMERR or REFUSED. Every query and
 * answer is logged. UDP only.
 */
#ifndef HUTCH_NET_DNS_H
#define HUTCH_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/error.h"
#include "net/allow.h"

/* The same address pasta's --dns-forward uses for --net user. */
#define DNS_STUB_ADDR "169.254.1.1"

/* The most seconds an answer's address stays in the allowed sets, whatever its TTL. */
#define DNS_TTL_MAX 3600

/* A query as the stub reads it (dns_query_read): all that goes on upstream of it. */
struct dns_query {
	uint16_t id;
	bool rd;        /* recursion desired */
	bool edns;      /* an OPT record came with it (RFC 6891): the stub sends its own */
	uint16_t type;  /* one of the types the stub forwards (A, AAAA, CNAME, HTTPS...) */
	char name[256]; /* lowercase, no final dot; a byte no --allow name holds reads '?' */
	uint8_t rcode;  /* of a refused query's reply: FORMERR, NOTIMP or REFUSED */
};

/*
 * Read the query in msg (len bytes). The end of its question if it is one
 * the stub answers: a standard query (opcode QUERY) with exactly one
 * question, of class IN and a type the stub forwards (any type with
 * any_type: --net user, whose box reaches the world anyway), no answer or
 * authority records and at most an OPT record (whose contents are never
 * read) as additional section. Else -1, with *why saying what is refused,
 * and dns_refusal() the reply to send; *why is NULL when msg deserves no
 * reply (shorter than a header, or itself an answer).
 */
int dns_query_read(const uint8_t *msg, size_t len, bool any_type, struct dns_query *q,
		   const char **why);

/* The reply to a query dns_query_read refused with a reason: its header alone, 12 bytes. */
size_t dns_refusal(const uint8_t *msg, const struct dns_query *q, uint8_t out[12]);

/*
 * Turn the query in msg, whose question ends at end (dns_query_read), into
 * an NXDOMAIN reply, in place: the header and question kept. Returns the
 * reply's length.
 */
size_t dns_nxdomain(uint8_t *msg, size_t end);

/*
 * The query sent to the host's resolver for q, built from q alone: its id
 * and RD bit, its one question, and an OPT record of the stub's own if the
 * box sent one. No other byte of the box's query leaves. Its length, or 0
 * if cap is too small.
 */
size_t dns_upstream_query(const struct dns_query *q, uint8_t *out, size_t cap);

/* One address record of an answer. */
struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint32_t ttl; /* at most DNS_TTL_MAX */
};

/*
 * The A and AAAA records of the answer (to the question for qname) whose
 * owner is qname or a name the answer's CNAME records lead to from it
 * (DNS_CHAIN_MAX of them at most; names compared ignoring ASCII case), at
 * most max; their count, or -1 if malformed or not an answer for qname.
 * Other addresses, which a resolver has no business giving for qname, are
 * left out.
 */
#define DNS_CHAIN_MAX 8
int dns_answers(const uint8_t *msg, size_t len, const char *qname, struct dns_addr *out, int max);

/*
 * The nft command adding a's address to the allowed sets for each port the
 * rules give name (all of them for a rule without one), for ttl seconds
 * (at least 1). NULL if no rule names it. Caller frees.
 */
char *dns_allow_command(const struct allow_rule *rules, size_t n, const char *name,
			const struct dns_addr *a);

/* Whether some rule names name. */
bool dns_name_allowed(const struct allow_rule *rules, size_t n, const char *name);

/*
 * The upstream resolver: HUTCH_RESOLVER (ADDR or ADDR:PORT, IPv6 in
 * brackets) if set, else the first nameserver of /etc/resolv.conf, port 53.
 */
int dns_upstream(struct sockaddr_storage *ss, socklen_t *len, struct error *err);

#endif
