/* User namespace id maps. */
#ifndef HUTCH_BOX_USERNS_H
#define HUTCH_BOX_USERNS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/*
 * Write the id maps of pid's new user namespace. An unprivileged caller is
 * mapped to itself (or to 0 with as_root); root keeps every id it has, so
 * host files keep their owners inside.
 */
int userns_write_maps(pid_t pid, uid_t uid, gid_t gid, bool as_root, struct error *err);

/* Explain why creating a user namespace failed with errnum (sysctl, AppArmor). */
void userns_explain(int errnum, struct error *err);

/* From a /proc/PID/uid_map text, the map of the same ids onto themselves. */
char *userns_identity_map(const char *own_map);

#endif
