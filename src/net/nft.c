/* Running hutch-nft (net/nft.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/nft.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

char *nft_helper_path(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *dir, *path;

	if (n <= 0)
		return xstrdup("/usr/local/lib/hutch/hutch-nft");
	exe[n] = '\0';
	dir = dirname(exe);
	path = xasprintf("%s/hutch-nft", dir);
	if (access(path, X_OK) == 0)
		return path;
	free(path);
	return xasprintf("%s/../lib/hutch/hutch-nft", dir);
}

/* CAP_NET_ADMIN inheritable and ambient: kept across execve by a non-root uid. */
static int keep_net_admin(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	data[CAP_NET_ADMIN / 32].inheritable |= 1u << (CAP_NET_ADMIN % 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -1;
	return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0);
}

int nft_helper_start(struct nft_helper *h, struct error *err)
{
	_cleanup_free_ char *path = nft_helper_path();
	int in[2], out[2], ready[2];
	char buf[256];
	ssize_t n;

	h->pid = -1;
	h->to = h->from = -1;
	if (access(path, X_OK) < 0)
		return error_set(err, errno, "cannot run '%s', hutch's nftables helper (install it "
				 "with make install)", path);
	if (pipe2(in, O_CLOEXEC) < 0)
		return error_set(err, errno, "cannot create a pipe");
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return error_set(err, errno, "cannot create a pipe");
	}
	h->pid = fork();
	if (h->pid == 0) {
		const char *why = "cannot keep CAP_NET_ADMIN";
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (keep_net_admin() == 0 && dup2(in[0], STDIN_FILENO) >= 0 &&
		    dup2(out[1], STDOUT_FILENO) >= 0) {
			execl(path, "hutch-nft", (char *)NULL);
			why = "cannot execute";
		}
		n = snprintf(buf, sizeof(buf), "%s '%s': %s", why, path, strerror(errno));
		if (write(ready[1], buf, (size_t)n) < 0)
			_exit(127);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(ready[1]);
	h->to = in[1];
	h->from = out[0];
	if (h->pid < 0) {
		close(ready[0]);
		nft_helper_stop(h);
		return error_set(err, errno, "cannot start hutch's nftables helper");
	}
	/* EOF: it was executed (close-on-exec); else the child's reason. */
	n = read_all(ready[0], buf, sizeof(buf) - 1);
	close(ready[0]);
	if (n > 0) {
		buf[n] = '\0';
		nft_helper_stop(h);
		return error_set(err, 0, "%s", buf);
	}
	return 0;
}

int nft_helper_run(struct nft_helper *h, const char *text, struct error *err)
{
	char reply[1024];
	size_t len = 0;

	if (write_all(h->to, text, strlen(text) + 1) < 0)
		return error_set(err, errno, "cannot talk to hutch's nftables helper");
	for (;;) {
		ssize_t r = read(h->from, reply + len, sizeof(reply) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return error_set(err, 0, "hutch's nftables helper ended");
		len += (size_t)r;
		if (memchr(reply, '\0', len))
			break;
		if (len == sizeof(reply) - 1)
			break; /* an error longer than we keep: cut */
	}
	reply[len] = '\0';
	if (!reply[0])
		return 0;
	/* nft's message spans lines (the rule and a marker); keep its first. */
	reply[strcspn(reply, "\n")] = '\0';
	return error_set(err, 0, "nftables refused the rules: %s", reply);
}

void nft_helper_stop(struct nft_helper *h)
{
	if (h->to >= 0)
		close(h->to);
	if (h->from >= 0)
		close(h->from);
	h->to = h->from = -1;
	if (h->pid > 0) {
		/* Its stdin closed, it ends by itself. */
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	h->pid = -1;
}
