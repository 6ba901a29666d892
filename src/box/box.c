/* The host side of a run, step by step (box.h), and box_run(), which takes them in order. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "box/box.h"
#include "box/box_internal.h"
#include "box/control.h"
#include "box/fsplan.h"
#include "box/init.h"
#include "box/mounts.h"
#include "box/tty.h"
#include "box/userns.h"
#include "net/net.h"
#include "net/pasta.h"
#include "policy/eventlog.h"
#include "policy/limits.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "common/banned.h"

/* The network namespace is PID 1's to make, on a thread of its own (box/init.c). */
#define BOX_CLONE_FLAGS                                                                            \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)

/* A joining run retries when the box stopped between its connect and its request. */
#define JOIN_ATTEMPTS 3

/* Signals passed on to the program (SIGWINCH resizes its terminal instead). */
static const int relayed[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
			      SIGUSR2, SIGCONT, SIGALRM, SIGWINCH};

extern char **environ;

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Everything that shapes the box a run would build: its policy, --root,
 * and the host's mount table and top-level entries, which the box's plan
 * is made from. A box that lingers after its last program serves a run
 * only if they match (box/loop.c); else the run gets a new box.
 */
static uint64_t run_fingerprint(const struct box_start *s)
{
	_cleanup_closedir_ DIR *d = opendir("/");
	_cleanup_free_ char *mounts = NULL;
	uint64_t h = HASH_SEED;
	char as_root = s->as_root;
	struct dirent *e;
	struct error err;

	h = policy_hash(s->policy, h);
	h = hash_bytes(h, &as_root, 1);
	mounts = read_file("/proc/self/mountinfo", 64 << 20, &err);
	if (mounts)
		h = hash_bytes(h, mounts, strlen(mounts));
	while (d && (e = readdir(d))) {
		h = hash_bytes(h, e->d_name, strlen(e->d_name) + 1);
		h = hash_bytes(h, &e->d_type, sizeof(e->d_type));
	}
	return h;
}

int box_open(struct box *box, const struct box_start *start, struct error *err)
{
	_cleanup_free_ char *newroot = NULL;
	sigset_t set;
	struct stat st;

	*box = (struct box){
		.start = *start,
		.dirfd = -1,
		.running = -1,
		.setup = -1,
		.log_fd = -1,
		.sfd = -1,
		.init = -1,
		.keeper = -1,
		.keeper_sock = -1,
		.mounted = -1,
		.ns_fds = {-1, -1},
		.conn = -1,
		.pidfd = -1,
		.master = -1,
		.timer = -1,
	};
	sigprocmask(SIG_SETMASK, NULL, &box->old_mask);
	box->dir = store_box_dir(start->store, start->name);
	newroot = xasprintf("%s/mnt", box->dir);
	box->created = access(box->dir, F_OK) < 0;
	if (box->created && mkdir_p(newroot, 0700, err) < 0)
		return error_prefix(err, "cannot create box '%s'", start->name);
	box->dirfd = open(box->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (box->dirfd < 0)
		return error_set(err, errno, "cannot open box '%s'", start->name);
	/* Shared with every other run of the box; a commit or reset takes it alone. */
	box->running = box_lock(box->dir, BOX_LOCK_RUNNING, BOX_LOCK_SHARED, 2000, err);
	if (box->running < 0 && err->errnum == EWOULDBLOCK) {
		warn("waiting for box '%s': a commit, reset or rm is using it", start->name);
		box->running = box_lock(box->dir, BOX_LOCK_RUNNING, BOX_LOCK_SHARED, -1, err);
	}
	if (box->running < 0)
		return error_prefix(err, "cannot use box '%s'", start->name);
	if (fstat(box->dirfd, &st) < 0 || st.st_nlink == 0)
		return error_set(err, 0, "box '%s' was removed while this run waited for it",
				 start->name);
	futimens(box->running, NULL); /* "last used", for hutch list */
	box->log_fd = eventlog_open(box->dir, err);
	if (box->log_fd < 0)
		return -1;

	box->fingerprint = run_fingerprint(start);
	box->policy_hash = policy_hash(start->policy, HASH_SEED);
	box->net_hash = policy_net_hash(start->policy, HASH_SEED);
	box->cwd = get_current_dir_name();
	box_explain_cwd(box->cwd);
	/* Blocked before any child exists, so no signal slips past the signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(relayed); i++)
		sigaddset(&set, relayed[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	box->sfd = signalfd(-1, &set, SFD_CLOEXEC);
	return 0;
}

static int listen_box(int box_dirfd, struct error *err)
{
	struct sockaddr_un addr;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* Left by a box that was killed: nothing listens on it any more. */
	unlinkat(box_dirfd, "control", 0);
	control_addr(box_dirfd, &addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0)
		return error_set(err, errno, "cannot create the box's control socket");
	return steal_fd(&fd);
}

struct net_clone {
	struct box *box;
	struct box_init *init;
};

static int net_write_maps(pid_t pid, bool outer, void *arg, struct error *err)
{
	struct net_clone *c = arg;

	/* U1 maps the caller as itself; the box's own namespace as any box's. */
	return userns_write_maps(pid, getuid(), getgid(), !outer && c->box->start.as_root, err);
}

static void net_child(void *arg)
{
	struct net_clone *c = arg;

	close(c->box->conn);
	box_init_main(c->init);
}

static void net_log(void *arg, const char *event, const char *args_json, const char *verdict,
		    const char *why)
{
	struct net_clone *c = arg;

	eventlog_write(c->box->log_fd, getpid(), event, args_json, verdict, why);
}

/*
 * With --allow, PID 1 is started by the keeper of the box's network, in a
 * user namespace nested in the one owning that network (net/net.h); its
 * id maps are written by then.
 */
static pid_t clone_init_net(struct box *box, struct box_init *init, struct error *err)
{
	const struct strlist *allow = &box->start.policy->allow;
	_cleanup_free_ struct allow_rule *rules = xcalloc(allow->n, sizeof(*rules));
	struct net_clone c = {.box = box, .init = init};
	struct netns_box nb = {
		.clone_flags = BOX_CLONE_FLAGS,
		.cgroup_fd = box->limits.cgroup_fd,
		.as_root = box->start.as_root,
		.rules = rules,
		.nrules = allow->n,
		.write_maps = net_write_maps,
		.child = net_child,
		.log = net_log,
		.arg = &c,
		.keep_fds = &box->log_fd,
		.nkeep = 1,
	};

	const struct policy *p = box->start.policy;
	struct pasta_config cfg;
	pid_t pid;

	for (size_t i = 0; i < allow->n; i++)
		if (allow_parse(allow->v[i], &rules[i], err) < 0)
			return -1;
	/* The stub answers every --allow box's queries, allowed names or none (net/dns.h). */
	init->net_stub = allow->n > 0;
	/* --allow implies --net user (policy_build), limited to what it names. */
	if (p->net == NET_USER) {
		if (pasta_config_parse(&cfg, p->publish.v, p->publish.n, p->host_port.v,
				       p->host_port.n, err) < 0) {
			pasta_config_release(&cfg);
			return -1;
		}
		nb.pasta = &cfg;
	}
	init->net_made = true;
	pid = netns_clone_box(&nb, &box->keeper, &box->keeper_sock, err);
	if (nb.pasta)
		pasta_config_release(&cfg);
	return pid;
}

/* Make PID 1 in its namespaces (and its cgroup); it runs box_init_main(). */
static pid_t clone_init(struct box *box, int listener, int init_sock, struct error *err)
{
	_cleanup_free_ char *newroot = xasprintf("%s/mnt", box->dir);
	const struct box_start *s = &box->start;
	struct box_init init = {
		.root = {.store_home = s->store->home,
			 .box_dir = box->dir,
			 .newroot = newroot,
			 .policy = s->policy,
			 .log_fd = box->log_fd},
		.host_root = getuid() == 0,
		.fingerprint = box->fingerprint,
		.policy_hash = box->policy_hash,
		.net_hash = box->net_hash,
		.as_root = s->as_root,
		.cwd = box->cwd,
		.sock = init_sock,
		.listener = listener,
		.box_dirfd = box->dirfd,
		.lock_fds = {box->running, box->setup},
		.policy = s->policy,
		.limits = &box->limits,
		.log_fd = box->log_fd,
	};
	pid_t pid;

	if (s->policy->allow.n)
		return clone_init_net(box, &init, err);
	if (box->limits.cgroup_fd >= 0) {
		/*
		 * Born in its cgroup: the box's cgroup namespace is then rooted
		 * there, and no mount of cgroup2 inside can reach the parent's
		 * cgroup.procs to move out of the limits.
		 */
		struct clone_args ca = {
			.flags = BOX_CLONE_FLAGS | CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)box->limits.cgroup_fd,
		};
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	} else {
		pid = (pid_t)syscall(SYS_clone, BOX_CLONE_FLAGS | SIGCHLD, NULL, NULL, NULL, NULL);
	}
	if (pid < 0) {
		userns_explain(errno, err);
		return -1;
	}
	if (pid == 0) {
		close(box->conn);
		box_init_main(&init);
	}
	return pid;
}

/* PID 1 started, but the box could not be made: undo the start. */
static enum box_step abort_create(struct box *box, struct error *err)
{
	cleanup_pidp(&box->init);
	box->init = -1;
	unlinkat(box->dirfd, "control", 0);
	error_prefix(err, "cannot start box '%s'", box->start.name);
	return BOX_FAILED;
}

/* PID 1 ended before the program ran, having said why: its exit code is the run's. */
static enum box_step init_exited(struct box *box)
{
	int status;

	while (waitpid(box->init, &status, 0) < 0 && errno == EINTR)
		;
	box->init = -1;
	box->code = exit_status_code(status);
	return BOX_EXITED;
}

enum box_step box_create(struct box *box, struct error *err)
{
	const struct box_start *s = &box->start;
	_cleanup_close_ int listener = -1;
	int sv[2];

	/* Two runs never both start a PID 1: box_run() took it to decide, else take it now. */
	if (box->setup < 0) {
		box->setup = box_lock(box->dir, BOX_LOCK_SETUP, BOX_LOCK_EXCLUSIVE, 10000, err);
		if (box->setup < 0)
			return BOX_FAILED;
	}
	/* An attempt to join may have come first. */
	box->joins = false;
	box->plan_hash = 0;
	if (limits_prepare(s->policy, s->name, &box->limits, err) < 0)
		return BOX_FAILED;
	box->limits_held = true;
	if (s->policy->verbose)
		box_say_policy(s->name, s->policy, &box->limits);
	listener = listen_box(box->dirfd, err);
	if (listener < 0)
		return BOX_FAILED;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return error_set(err, errno, "cannot create a socket pair"), BOX_FAILED;
	box->conn = sv[0];
	box->init = clone_init(box, listener, sv[1], err);
	close(sv[1]);
	if (box->init < 0) {
		unlinkat(box->dirfd, "control", 0);
		if (box->created) {
			/* Bad input leaves nothing behind. */
			struct error ignored;
			remove_tree(box->dir, &ignored);
		}
		return BOX_FAILED;
	}
	/* Only PID 1 may hold it: a run must not join a box whose PID 1 is gone. */
	close_fd(&listener);
	box_ns_open(box->init, box->ns_fds);
	/* PID 1 listens now: later runs may queue up to join. */
	close_fd(&box->setup);

	/* The keeper of an --allow box's network wrote them already. */
	if ((box->keeper < 0 &&
	     userns_write_maps(box->init, getuid(), getgid(), s->as_root, err) < 0) ||
	    limits_attach(&box->limits, box->init, err) < 0)
		return abort_create(box, err);
	/* 'M': PID 1 may plan and mount all but the box's layers... */
	if (send(box->conn, &(char){CONTROL_MOUNT}, 1, MSG_NOSIGNAL) != 1)
		return init_exited(box);
	/*
	 * ...'O': and its layers too, once the previous run of this box has
	 * unmounted them (its unmount holder), which it may still be doing
	 * while PID 1 gets on with the rest.
	 */
	box->mounted = box_lock(box->dir, BOX_LOCK_MOUNTED, BOX_LOCK_EXCLUSIVE, 10000, err);
	if (box->mounted < 0)
		return abort_create(box, err);
	if (send(box->conn, &(char){CONTROL_LAYERS}, 1, MSG_NOSIGNAL) != 1)
		return init_exited(box);
	/* --allow: no program starts before the rules are in force. */
	if (box->keeper_sock >= 0 && netns_rules_wait(&box->keeper_sock, err) < 0)
		return abort_create(box, err);
	return BOX_OK;
}

static enum fsplan_flags plan_flags(const struct box_start *s)
{
	return s->policy->private_tmp ? FSPLAN_PRIVATE_TMP : 0;
}

/*
 * Before joining a box, let it see the host as it is now: PID 1 sends the
 * fds of its user and mount namespaces first (CONTROL_NS). Returns -1 when
 * the box went away.
 */
static int refresh_box(const char *box_dir, int conn)
{
	int fds[CONTROL_MAX_FDS];
	size_t nfds = 0;
	char tag, msg[16];
	struct error err;

	if (control_recv(conn, &tag, msg, sizeof(msg), fds, &nfds) < 0 || tag != CONTROL_NS ||
	    nfds != 2) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return -1;
	}
	/* Taken exclusively: the box's overlays are being unmounted, and it is ending. */
	_cleanup_close_ int lock = box_lock(box_dir, BOX_LOCK_REFRESH, BOX_LOCK_SHARED, 0, &err);
	if (lock >= 0 && box_root_refresh(fds[0], fds[1]) < 0)
		warn("cannot refresh the running box's view of the host: it may miss host "
		     "changes made since its programs looked");
	close(fds[0]);
	close(fds[1]);
	return 0;
}

enum box_step box_join(struct box *box, int conn, struct error *err)
{
	close_fd(&box->conn);
	box->conn = conn;
	box->joins = true;
	box->plan_hash = fsplan_hash_host(plan_flags(&box->start), box->cwd);
	return refresh_box(box->dir, conn) < 0 ? BOX_RETRY : BOX_OK;
}

enum box_step box_start(struct box *box, char **argv, struct error *err)
{
	const struct box_start *s = &box->start;
	_cleanup_free_ char *cwd = get_current_dir_name();
	struct request req = {
		.flags = (tty_wanted() ? REQUEST_PTY : 0) | (s->as_root ? REQUEST_ROOT : 0),
		.fingerprint = box->fingerprint,
		.plan_hash = box->plan_hash,
		.policy_hash = box->policy_hash,
		.net_hash = box->net_hash,
		.argv = argv,
		.envp = environ,
	};
	char msg[4097], tag;
	int fds[CONTROL_MAX_FDS];
	size_t nfds = 0;
	ssize_t n;

	if (!cwd)
		return error_set(err, errno, "cannot find the current directory"), BOX_FAILED;
	req.cwd = cwd;
	box->log_start = lseek(box->log_fd, 0, SEEK_END);
	req.umask = umask(022);
	umask((mode_t)req.umask);
	if (request_send(box->conn, &req, err) < 0)
		return errno == EPIPE || errno == ECONNRESET ? BOX_RETRY : BOX_FAILED;
	n = control_recv(box->conn, &tag, msg, sizeof(msg) - 1, fds, &nfds);
	if (n < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return BOX_RETRY;
	}
	if (tag == CONTROL_ERROR) {
		msg[n] = '\0';
		error_set(err, 0, "cannot run in box '%s': %s", s->name, msg);
		return BOX_FAILED;
	}
	if (tag == CONTROL_RESTART)
		return BOX_RETRY; /* an idle box, not this run's: it ends, start a new one */
	if (tag == CONTROL_DIFFERS) {
		/* A busy box, not this run's: its programs would not run under this run's policy. */
		msg[n] = '\0';
		error_set(err, 0, "box '%s' is running with %s; wait for its program to end, or "
			  "use another --box", s->name, msg);
		return BOX_FAILED;
	}
	if (tag != CONTROL_PROGRAM || nfds < 1) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		error_set(err, EPROTO, "cannot run in box '%s'", s->name);
		return BOX_FAILED;
	}
	if (box->joins && s->policy->verbose)
		note("box '%s' was up: this run joined it (it runs under the same policy)",
		     s->name);
	box->pidfd = fds[0];
	if (nfds > 1) {
		/* The terminal is ready: CONTROL_GO lets the program start. */
		box->master = fds[1];
		tty_setup_pty(box->master);
		tty_make_raw();
		if (write_all(box->conn, &(char){CONTROL_GO}, 1) < 0)
			return BOX_RETRY;
	}
	if (s->policy->timeout_ms) {
		struct itimerspec its = {
			.it_value = {.tv_sec = (time_t)(s->policy->timeout_ms / 1000),
				     .tv_nsec = (long)(s->policy->timeout_ms % 1000) * 1000000},
		};
		box->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		if (box->timer < 0 || timerfd_settime(box->timer, 0, &its, NULL) < 0) {
			error_set(err, errno, "cannot set the --timeout");
			return BOX_FAILED;
		}
	}
	return BOX_OK;
}

enum box_step box_wait(struct box *box, struct error *err)
{
	const struct box_start *s = &box->start;
	enum relay_end end;
	char why[512];

	end = relay(box->conn, box->sfd, box->pidfd, box->master, box->timer, &box->code, why,
		    sizeof(why));
	if (end == RELAY_TIMEOUT) {
		/* "Kills the whole box": PID 1's end ends every process in it. */
		if (box->init > 0)
			kill(box->init, SIGKILL);
		else
			pidfd_send_signal(box->pidfd, SIGKILL, NULL, 0);
		snprintf(why, sizeof(why), "box '%s' reached its --timeout of %llu ms and was killed",
			 s->name, (unsigned long long)s->policy->timeout_ms);
		eventlog_write(box->log_fd, 0, "limit", "{\"limit\":\"timeout\"}", "killed", why);
		box->code = EXIT_TIMEOUT;
	} else if (end == RELAY_EXITED && !why[0] && box->limits_held &&
		   limits_explain(&box->limits, box->code, why, sizeof(why)) > 0) {
		eventlog_write(box->log_fd, 0, "limit", "{}", "killed", why);
	}
	if (box->master >= 0)
		relay_drain(box->master);
	tty_restore();
	if (end == RELAY_LOST)
		return BOX_LOST;
	if (why[0])
		note("%s", why);
	/* Said once, at the end: the program's own error told what, this tells why. */
	if (end == RELAY_EXITED && s->policy->net == NET_NONE &&
	    net_unreached(box->dirfd, box->log_start, why, sizeof(why)))
		note("the program tried to reach %s and this box has no network "
		     "(use --net user or --allow)", why);
	return BOX_OK;
}

int box_teardown(struct box *box, enum box_step last, struct error *err)
{
	int status;

	if (last == BOX_OK) {
		/* The run is over; the unmount holder must not carry this lock on. */
		close_fd(&box->running);
		box_hand_over_unmount(box->init, box->mounted, box->dirfd, &box->limits,
				      box->ns_fds);
		box->init = -1;
		box->limits_held = false;
		return box->code;
	}
	if (last == BOX_EXITED)
		return box->code;
	if (box->init > 0 && (last == BOX_RETRY || last == BOX_LOST)) {
		/* PID 1 could not set the box up (and said why), was killed, or ended. */
		while (waitpid(box->init, &status, 0) < 0 && errno == EINTR)
			;
		box->init = -1;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return error_set(err, 0, "box '%s' ended before its program ran",
					 box->start.name);
		return exit_status_code(status);
	}
	/* The program could not be started (err says why): the box goes. */
	cleanup_pidp(&box->init);
	box->init = -1;
	return -1;
}

/*
 * The keeper ends once PID 1 has, having logged the box's last denials:
 * wait for that (briefly), so that they are in the log when hutch returns.
 */
static void box_keeper_reap(pid_t keeper)
{
	_cleanup_close_ int pidfd = pidfd_open(keeper, 0);
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	if (pidfd >= 0 && poll(&p, 1, 1000) <= 0)
		kill(keeper, SIGKILL);
	while (waitpid(keeper, NULL, 0) < 0 && errno == EINTR)
		;
}

void box_close(struct box *box)
{
	int *fds[] = {&box->conn,  &box->pidfd,  &box->master, &box->timer,
		      &box->setup, &box->mounted, &box->sfd,  &box->log_fd,
		      &box->running, &box->dirfd, &box->keeper_sock};

	cleanup_pidp(&box->init);
	box_ns_close(box->ns_fds);
	if (box->keeper > 0)
		box_keeper_reap(box->keeper);
	box->keeper = -1;
	if (box->limits_held)
		limits_release(&box->limits);
	box->limits_held = false;
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close_fd(fds[i]);
	sigprocmask(SIG_SETMASK, &box->old_mask, NULL);
	free(box->dir);
	free(box->cwd);
	box->dir = box->cwd = NULL;
}

/* Join the box if it is up, else create it; then run argv in it. */
static int run_once(struct box *box, char **argv, enum box_step *step, struct error *err)
{
	int conn;

	box->setup = box_lock(box->dir, BOX_LOCK_SETUP, BOX_LOCK_EXCLUSIVE, 10000, err);
	if (box->setup < 0)
		return *step = BOX_FAILED, -1;
	conn = control_connect(box->dirfd);
	if (conn >= 0) {
		close_fd(&box->setup);
		*step = box_join(box, conn, err);
		if (*step == BOX_OK)
			*step = box_start(box, argv, err);
		if (*step == BOX_OK)
			*step = box_wait(box, err);
		close_fd(&box->conn);
		close_fd(&box->pidfd);
		close_fd(&box->master);
		close_fd(&box->timer);
		if (*step == BOX_LOST)
			return error_set(err, 0, "box '%s' stopped before the program finished",
					 box->start.name);
		return *step == BOX_OK ? box->code : -1;
	}
	*step = box_create(box, err);
	if (*step == BOX_OK)
		*step = box_start(box, argv, err);
	if (*step == BOX_OK)
		*step = box_wait(box, err);
	int code = box_teardown(box, *step, err);
	/* A box this run made never asks for another attempt. */
	*step = BOX_OK;
	return code;
}

int box_run(const struct store *store, const struct box_run_opts *opts, struct error *err)
{
	struct box_start start = {
		.store = store,
		.name = opts->name,
		.as_root = opts->as_root,
		.policy = opts->policy,
	};
	struct box box;
	enum box_step step = BOX_RETRY;
	int code = -1;

	if (box_open(&box, &start, err) < 0) {
		box_close(&box);
		return -1;
	}
	for (int attempt = 0; attempt < JOIN_ATTEMPTS && step == BOX_RETRY; attempt++)
		code = run_once(&box, opts->argv, &step, err);
	if (step == BOX_RETRY)
		code = error_set(err, 0, "box '%s' stopped while this run was joining it",
				 opts->name);
	box_close(&box);
	return code;
}
