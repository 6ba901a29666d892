#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "box/kernel.h"
#include "box/overlay.h"
#include "policy/landlock.h"
#include "common/util.h"
#include "common/banned.h"

int kernel_version_cmp(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return 0; /* unknown: assume it has it */
	return ma != major ? ma - major : mi - minor;
}

static void add(char **out, const char *line)
{
	char *s = xasprintf("%s%s%s", *out, **out ? "\n" : "", line);
	free(*out);
	*out = s;
}

char *kernel_gaps_describe(void)
{
	char *out = xstrdup("");
	int legacy = overlay_legacy_probe_detached();
	int abi = landlock_abi();

	if (legacy == 1)
		add(&out, getenv("HUTCH_TEST_LEGACY_OVERLAY")
			      ? "overlay: lowerdir+ not used (HUTCH_TEST_LEGACY_OVERLAY): one escaped "
				"lowerdir= option string instead"
			      : "overlay: no lowerdir+ (Linux 6.8): one escaped lowerdir= option string "
				"instead, the same overlay");
	/*
	 * ABI 6 (6.12) scopes signals and abstract unix sockets to the box.
	 * Without it the box's own pid and network namespaces keep both
	 * apart; Landlock was the second layer under them.
	 */
	if (abi < 6) {
		char *what = abi ? xasprintf("ABI %d", abi) : xstrdup("not enabled in this kernel");
		char *line = xasprintf("landlock: %s: no scoping of signals and abstract unix sockets "
				       "(needs ABI 6, Linux 6.12); the box's pid and network namespaces "
				       "alone keep them in the box",
				       what);
		add(&out, line);
		free(line);
		free(what);
	}
	/* Speed only: the supervisor answers the same, through the scheduler. */
	if (kernel_version_cmp(6, 6) < 0)
		add(&out, "seccomp: no synchronous supervisor wake-ups (Linux 6.6): each logged call "
			  "costs a few microseconds more, the policy is the same");
	return out;
}
