#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy/landlock.h"
#include "common/banned.h"

/*
 * The uapi as of Linux 6.12; Debian 12's headers (6.1) stop before
 * handled_access_net and scoped. The kernel takes the struct by size.
 */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};
_Static_assert(sizeof(struct ruleset_attr) == 24, "landlock_ruleset_attr (ABI 6) is 24 bytes");

#define CREATE_RULESET_VERSION (1U << 0)
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_restrict_self 446
#endif

int landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, CREATE_RULESET_VERSION);

	return abi < 0 ? 0 : (int)abi;
}

int landlock_scope_box(struct error *err)
{
	struct ruleset_attr attr = {.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL};
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, CREATE_RULESET_VERSION);
	int fd;

	if (abi < 6)
		return 0; /* no Landlock (ENOSYS, EOPNOTSUPP) or no scoping yet */
	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		return error_set(err, errno, "cannot create a Landlock ruleset");
	if (syscall(SYS_landlock_restrict_self, fd, 0) < 0) {
		int e = errno;
		close(fd);
		return error_set(err, e, "cannot apply the Landlock ruleset");
	}
	close(fd);
	return (int)abi;
}
