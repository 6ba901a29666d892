/*
 * Per-path access rules, as Sandboxie's open, closed and read-only rules,
 * enforced by the kernel with mounts in the box's mount namespace, never by
 * checking path strings in user space:
 *   --hide PATH       an empty, unreadable directory or file in its place
 *   --read-only PATH  the box's view of PATH, remounted read-only
 *   --direct PATH     the host's PATH bound in: writes go straight through
 *   --deny-exec PAT   each matching program (a glob on the path, or on the
 *                     name searched in PATH) covered by a file that cannot
 *                     be executed
 * Rules apply shallowest first, so a rule inside another's path wins there
 * (--direct ~/proj --hide ~/proj/.env hides .env in the project).
 *
 * Why not Landlock for these: a Landlock ruleset allows what it lists and
 * denies the rest, so "everything but ~/.ssh" needs a rule for every sibling
 * on the way, and files made later beside them would be denied. Landlock is
 * used where it fits (policy/landlock.h).
 */
#ifndef HUTCH_POLICY_ACCESS_H
#define HUTCH_POLICY_ACCESS_H

#include "common/error.h"
#include "policy/policy.h"

/*
 * Apply p's rules to the box root assembled at newroot (before the pivot,
 * while host paths are reachable). box_dir holds the empty file hidden
 * files are covered with. The programs --deny-exec covers are logged to
 * log_fd, so "why can't it run?" has an answer even when a shell refuses
 * the file without trying to execute it.
 */
int access_apply(const char *newroot, const char *box_dir, const struct policy *p, int log_fd,
		 struct error *err);

/*
 * The well-known secrets hidden by default: below home, and those in /tmp
 * (access_default_tmp_hides). Newly allocated.
 */
void access_default_hides(const char *home, struct strlist *out);

/*
 * The credentials in tmp (the host's /tmp) that the caller can read, as
 * they are now: Kerberos ticket caches (krb5cc_*, and the file or folder
 * $KRB5CCNAME names) and ssh-agent folders (ssh-*). The patterns are
 * expanded when a box starts, so a file that matches one and appears on
 * the host while a box runs is not hidden in that box: a box that starts
 * after it hides it (and a lingering box is not reused, as its hide list
 * differs). Other sockets there (.X11-unix, tmux-UID) are left visible:
 * they hold no secret in a file, and a box cannot connect to a host socket
 * through its overlay anyway.
 */
void access_default_tmp_hides(const char *tmp, struct strlist *out);

#endif
