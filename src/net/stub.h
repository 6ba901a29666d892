/* The keeper's stub resolver (net/dns.h): internal to src/net. */
#ifndef HUTCH_NET_STUB_H
#define HUTCH_NET_STUB_H

#include <stdbool.h>

#include "net/allow.h"
#include "net/nft.h"

struct stub {
	int fd;    /* DNS_STUB_ADDR:53 in the box's network namespace */
	int up_fd; /* to the host's resolver, made in the host's network namespace */
	const struct allow_rule *rules;
	size_t nrules;
	struct nft_helper *nft;
	bool forward_all; /* --net user: every name is forwarded, none allowed in nftables */
	void (*log)(void *arg, const char *event, const char *args_json, const char *verdict,
		    const char *why);
	void *arg;
};

/* In the host's network namespace: the socket to its resolver. */
int stub_upstream_open(struct stub *s, struct error *err);
/* In the box's: DNS_STUB_ADDR on its loopback, and the socket served there. */
int stub_listen_open(struct stub *s, struct error *err);
/* Answer one query waiting on s->fd. */
void stub_serve(const struct stub *s);

#endif
