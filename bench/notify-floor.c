/*
 * bench/notify-floor: the kernel's own cost of one seccomp user
 * notification on this machine, with the least possible supervisor: a
 * filter sends bind(2) to user space, a parent answers CONTINUE in a tight
 * receive/respond loop, nothing read, nothing logged. hutch's supervisor
 * (bench/notify in a box) cannot be cheaper than this.
 */
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	scmp_filter_ctx ctx;
	int fd;
	pid_t pid;

	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(bind), 0) < 0 ||
	    seccomp_load(ctx) < 0 || (fd = seccomp_notify_fd(ctx)) < 0) {
		fprintf(stderr, "notify-floor: cannot load a filter\n");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		struct timespec a, b;
		close(fd);
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (long i = 0; i < n; i++)
			bind(-1, NULL, 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("%.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n);
		fflush(stdout);
		_exit(0);
	}
	if (seccomp_notify_alloc(&req, &resp) < 0)
		return 1;
	for (long i = 0; i < n; i++) {
		memset(req, 0, sizeof(*req)); /* the kernel wants it zeroed */
		if (seccomp_notify_receive(fd, req) < 0)
			break;
		resp->id = req->id;
		resp->val = 0;
		resp->error = 0;
		resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		seccomp_notify_respond(fd, resp);
	}
	waitpid(pid, NULL, 0);
	return 0;
}
