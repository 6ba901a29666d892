#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "box/control.h"
#include "box/init.h"
#include "box/init_internal.h"
#include "net/dns.h"
#include "net/net.h"
#include "net/pasta.h"
#include "box/fsplan.h"
#include "policy/eventlog.h"
#include "policy/landlock.h"
#include "policy/limits.h"
#include "policy/seccomp.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "common/banned.h"

struct planner {
	struct mount_table mt; /* the host's, read before the box mounts anything */
	enum fsplan_flags flags;
	const char *cwd;
	struct fsplan plan;
	struct error err;
	int r;
};

static void *plan_thread(void *arg)
{
	struct planner *p = arg;

	p->r = fsplan_build(&p->plan, "", &p->mt, p->flags, &p->err);
	if (p->r == 0)
		fsplan_add_cwd(&p->plan, "", p->cwd);
	return NULL;
}

struct netmaker {
	int fd; /* the new network namespace */
	struct error err;
};

/* A thread's own namespace: the box joins it once it is ready. */
static void *net_thread(void *arg)
{
	struct netmaker *n = arg;

	n->fd = netns_create(&n->err);
	return NULL;
}

/*
 * --net user: the keeper of pasta starts here, while PID 1 is still in the
 * host's network namespace and alone (net/net.h); pasta configures the
 * box's namespace while PID 1 mounts the root, and build_root() waits for
 * it last.
 */
static int net_user_start(struct box_init *init, int netns_fd, struct error *err)
{
	const struct policy *p = init->policy;
	struct pasta_config cfg;
	int r;

	r = pasta_config_parse(&cfg, p->publish.v, p->publish.n, p->host_port.v, p->host_port.n,
			       err);
	if (r == 0)
		r = usernet_start(&init->built.net, &cfg, init->log_fd, err);
	pasta_config_release(&cfg);
	return r < 0 ? -1 : usernet_attach(&init->built.net, netns_fd, err);
}

static void run_thread(pthread_t *thread, bool *threaded, void *(*fn)(void *), void *arg)
{
	*threaded = pthread_create(thread, NULL, fn, arg) == 0;
	if (!*threaded)
		fn(arg);
}

/*
 * Build the box's root and network. Three things go in parallel, as they
 * cost about as much each: a thread makes the network namespace (about
 * 0.4 ms of the kernel's time), another plans the root (box/fsplan.h),
 * while this one mounts what every box has. The plan is made here, in the
 * box's user namespace, where the caller's user and groups are mapped as
 * themselves: the access checks it makes answer as they would on the host.
 */
static int build_root(struct box_init *init, struct box_built *built, struct error *err)
{
	struct planner p = {
		.flags = (init->host_root ? FSPLAN_PRIVILEGED : 0) |
			 (init->policy->private_tmp ? FSPLAN_PRIVATE_TMP : 0),
		.cwd = init->cwd,
	};
	struct netmaker net = {.fd = -1};
	pthread_t plan_tid, net_tid;
	bool plan_threaded, net_threaded;
	char go;
	int r;

	/* An --allow box's network is made outside it, where it is beyond the box's reach. */
	if (init->net_made)
		net_threaded = false;
	else
		run_thread(&net_tid, &net_threaded, net_thread, &net);
	/* Read before anything is mounted: the store is below /home. */
	r = mount_table_read(&p.mt, err);
	if (r == 0) {
		run_thread(&plan_tid, &plan_threaded, plan_thread, &p);
		r = box_root_prepare(&init->root, err);
		if (plan_threaded)
			pthread_join(plan_tid, NULL);
		mount_table_release(&p.mt);
		if (p.r < 0 && r == 0)
			*err = p.err;
		r = p.r < 0 ? -1 : r;
	}
	if (net_threaded)
		pthread_join(net_tid, NULL);
	if (net.fd < 0 && r == 0 && !init->net_made) {
		*err = net.err;
		r = -1;
	}
	built->net.keeper = -1;
	/* With --allow the box's network is made, and pasta started, by the keeper outside. */
	if (r == 0 && init->policy->net == NET_USER && !init->net_made)
		r = net_user_start(init, net.fd, err);
	if (r == 0 && net.fd >= 0 && setns(net.fd, CLONE_NEWNET) < 0)
		r = error_set(err, errno, "cannot enter the box's network namespace");
	if (net.fd >= 0)
		close(net.fd);
	if (r == 0)
		r = box_root_sys(&init->root, err);
	if (r == 0) {
		built->plan_hash = fsplan_hash(&p.plan);
		r = box_root_mount(&init->root, &p.plan, err);
	}
	/* 'O': the box's last run has unmounted its layers (box.c). */
	if (r == 0 && (read_all(init->sock, &go, 1) != 1 || go != CONTROL_LAYERS))
		_exit(EXIT_HUTCH_FAILED); /* the host side already said why */
	if (r == 0)
		r = box_root_finish(&init->root, &p.plan, err);
	if (r == 0 && init->net_stub)
		r = net_resolv_conf_mount("--allow: hutch's resolver, which answers the names allowed",
					  DNS_STUB_ADDR, err);
	if (r == 0 && built->net.keeper > 0)
		r = net_resolv_conf_mount("--net user: hutch forwards this to the host's resolver",
					  NET_DNS_ADDR, err) < 0 ? -1 : usernet_ready(&built->net, err);
	if (p.r == 0)
		fsplan_release(&p.plan);
	return r;
}

void box_init_main(struct box_init *init)
{
	struct error err;
	char go;

	/* If the creating hutch dies, the box dies with it (until its program is done). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Else the lock would outlive the run until this process has fully exited. */
	close(init->lock_fds[0]);
	close(init->lock_fds[1]);
	/* Nothing else hutch or its caller had open may reach the programs. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	if (read_all(init->sock, &go, 1) != 1 || go != CONTROL_MOUNT)
		_exit(EXIT_HUTCH_FAILED); /* the host side already said why */
	/*
	 * No program in the box may ptrace PID 1 (a --root one could, having
	 * its capabilities) and take its supervisor's fd or its unfiltered
	 * view. The host side has opened what it needs of /proc/PID by now.
	 */
	prctl(PR_SET_DUMPABLE, 0);
	setsid();
	umask(0);
	if (build_root(init, &init->built, &err) < 0) {
		error_print(&err);
		_exit(EXIT_HUTCH_FAILED);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot set no_new_privs");
	/*
	 * Loaded into PID 1 itself, so that every program it forks has it and
	 * one listener sees them all. PID 1 never makes a call the filter sends
	 * to user space (it would wait on itself).
	 */
	if (landlock_scope_box(&err) < 0) {
		error_print(&err);
		_exit(EXIT_HUTCH_FAILED);
	}
	int notify_fd = -1;
	if (init->policy->seccomp != FILTER_OFF) {
		notify_fd = seccomp_install(init->policy->seccomp,
					    init->limits && init->limits->cpus == LIMIT_AFFINITY, &err);
		if (notify_fd < 0) {
			error_print(&err);
			_exit(EXIT_HUTCH_FAILED);
		}
	}
	uname(&init->built.uts);
	/*
	 * Each program gets its stdio from its own run. Holding the creating
	 * run's would keep a pipe reading it open while others still run.
	 */
	stdio_to_null();
	box_loop(init, notify_fd);
}
