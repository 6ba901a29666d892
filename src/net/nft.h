/*
 * Talking to nftables through libnftables, by hutch-nft (src/libexec/
 * hutch-nft.c): hutch itself is linked statically, and Debian ships
 * libnftables as a shared library only. The helper is started once per
 * box network, in the namespace it is to change, and kept for later
 * changes (the addresses the stub resolver adds), so no nft program is
 * run per change.
 */
#ifndef HUTCH_NET_NFT_H
#define HUTCH_NET_NFT_H

#include <sys/types.h>

#include "common/error.h"

struct nft_helper {
	pid_t pid;
	int to, from; /* its stdin and stdout */
};

/*
 * Start hutch-nft in the caller's network namespace. The caller must hold
 * CAP_NET_ADMIN over it: it is handed on as an ambient capability, so the
 * helper keeps it across execve without being root in the namespace.
 */
int nft_helper_start(struct nft_helper *h, struct error *err);

/* Have the helper carry out text (nft's syntax); its error message on failure. */
int nft_helper_run(struct nft_helper *h, const char *text, struct error *err);

/* End the helper and reap it. */
void nft_helper_stop(struct nft_helper *h);

/* hutch-nft's path: next to hutch (the build), else in ../lib/hutch (make install). */
char *nft_helper_path(void);

#endif
