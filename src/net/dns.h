/*
 * hutch's stub resolver for --allow NAME (net/net.h): the box's
 * /etc/resolv.conf names DNS_STUB_ADDR, where the keeper answers. A query
 * for a name the allow-list names is forwarded to the host's resolver
 * (the keeper's socket for it was made in the host's network namespace)
 * and the A and AAAA addresses of the answer are added to the kernel's
 * allowed sets for their TTL; any other name gets NXDOMAIN. Every query
 * and answer is logged. UDP only.
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

/* The first question of a DNS message: its name (lowercase, no final dot) and type. */
int dns_question(const uint8_t *msg, size_t len, char name[256], uint16_t *qtype);

/*
 * Turn the query in msg (len bytes, already checked by dns_question) into
 * an NXDOMAIN reply, in place: the header and question kept. Returns the
 * reply's length.
 */
size_t dns_nxdomain(uint8_t *msg, size_t len);

/* One address record of an answer. */
struct dns_addr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint32_t ttl;
};

/* The A and AAAA records of the answer section, at most max; their count, or -1 if malformed. */
int dns_answers(const uint8_t *msg, size_t len, struct dns_addr *out, int max);

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
