/* The keeper's side of netns_clone_box() (net/net.h): internal to src/net. */
#ifndef HUTCH_NET_KEEPER_H
#define HUTCH_NET_KEEPER_H

#include "net/net.h"

/* What the keeper tells the caller once PID 1 is started (or could not be). */
struct keeper_reply {
	int32_t pid; /* PID 1's, or -1 */
	int32_t errnum;
	char msg[1024];
};

/* In the forked keeper: everything after fork; sock talks to the caller. */
_Noreturn void keeper_main(const struct netns_box *nb, int sock);

#endif
