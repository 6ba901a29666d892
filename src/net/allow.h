/*
 * The egress allow-list (--allow, the profile key "allow"): what a box
 * may connect to, as nftables rules loaded into the box's network
 * namespace from the user namespace that owns it (net/netns.c), where no
 * program of the box has any privilege, not even under --root.
 */
#ifndef HUTCH_NET_ALLOW_H
#define HUTCH_NET_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The NFLOG group the deny rule logs to (read in net/nflog.c). */
#define ALLOW_LOG_GROUP 7171
/* Denials logged a second at most (after a burst of twice as many); all are refused. */
#define ALLOW_LOG_RATE 100
/* The prefix of that log: every logged packet is a denial by the one deny rule. */
#define ALLOW_LOG_PREFIX "hutch-deny"

enum allow_kind {
	ALLOW_ADDR, /* an address or a CIDR block */
	ALLOW_NAME, /* a DNS name (net/dns.c adds what it resolves to) */
};

struct allow_rule {
	enum allow_kind kind;
	int family;       /* ALLOW_ADDR: AF_INET or AF_INET6 */
	uint8_t addr[16]; /* ALLOW_ADDR: network byte order, host bits cleared */
	unsigned prefix;  /* ALLOW_ADDR: 0..32 or 0..128 */
	char name[254];   /* ALLOW_NAME: lowercase, no trailing dot */
	uint16_t port;    /* 0: every port */
};

/*
 * Parse one --allow value: ADDR, CIDR or NAME, each optionally followed by
 * :PORT; an IPv6 address or block with a port goes in brackets
 * ("[2001:db8::/32]:443"). Returns -1 with a one-line reason on bad input.
 */
int allow_parse(const char *spec, struct allow_rule *out, struct error *err);

/* The rule as --allow would name it, into buf ("10.0.0.0/8:5432"). */
void allow_format(const struct allow_rule *r, char *buf, size_t len);

/*
 * The nftables ruleset (nft's syntax) for rules: table inet hutch, an
 * output chain that accepts loopback, the allowed address . port pairs
 * over TCP and UDP, and logs and rejects everything else. Caller frees.
 */
char *allow_ruleset(const struct allow_rule *rules, size_t n);

#endif
