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
#include <sys/file.h>
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
#include "box/kernel.h"
#include "box/control.h"
#include "box/fsplan.h"
#include "box/init.h"
#include "box/mounts.h"
#include "box/tty.h"
#include "box/userns.h"
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
#define RETRY -2
/* The box went away while the program ran (its PID 1 was killed). */
#define LOST -4

/* Signals passed on to the program (SIGWINCH resizes its terminal instead). */
static const int relayed[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGTERM, SIGUSR1,
			      SIGUSR2, SIGCONT, SIGALRM, SIGWINCH};

extern char **environ;

/* Drain what the box still wrote to its terminal after its last process died. */
static void drain(int master)
{
	char buf[4096];
	ssize_t n;

	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	while ((n = read(master, buf, sizeof(buf))) > 0)
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			break;
}

/* relay() results besides an exit code. */
#define RELAY_LOST -1     /* the box went away without a code */
#define RELAY_TIMEOUT -3  /* --timeout expired first */

/*
 * Relay signals and the terminal until the box sends the program's exit
 * code on conn (and, if a limit ended it, why: into why, NUL-terminated).
 */
static int relay(int conn, int sfd, int pidfd, int master, int timer, char *why, size_t len)
{
	struct pollfd fds[5] = {
		{.fd = sfd, .events = POLLIN},
		{.fd = conn, .events = POLLIN},
		{.fd = master >= 0 ? STDIN_FILENO : -1, .events = POLLIN},
		{.fd = master, .events = POLLIN},
		{.fd = timer, .events = POLLIN},
	};
	char buf[16384];

	why[0] = '\0';
	for (;;) {
		if (poll(fds, ARRAY_SIZE(fds), -1) < 0) {
			if (errno == EINTR)
				continue;
			return RELAY_LOST;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGWINCH) {
					if (master >= 0)
						tty_copy_winsize(master);
				} else if (sig != SIGCHLD) {
					pidfd_send_signal(pidfd, sig, NULL, 0);
				}
			}
		}
		if (fds[1].revents) {
			char msg[sizeof(int) + 512], tag;
			int fdv[CONTROL_MAX_FDS], code;
			size_t nfds = 0;
			ssize_t n = control_recv(conn, &tag, msg, sizeof(msg), fdv, &nfds);
			for (size_t i = 0; i < nfds; i++)
				close(fdv[i]);
			if (n < (ssize_t)sizeof(int) || tag != CONTROL_EXIT)
				return RELAY_LOST;
			memcpy(&code, msg, sizeof(int));
			n -= (ssize_t)sizeof(int);
			if (n > 0 && (size_t)n < len) {
				memcpy(why, msg + sizeof(int), (size_t)n);
				why[n] = '\0';
			}
			return code;
		}
		if (fds[4].revents & POLLIN)
			return RELAY_TIMEOUT;
		if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0 || write_all(master, buf, (size_t)n) < 0)
				fds[2].fd = -1;
		}
		if (fds[3].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n > 0)
				write_all(STDOUT_FILENO, buf, (size_t)n);
			else if (n < 0 && errno != EINTR && errno != EAGAIN)
				fds[3].fd = -1; /* EIO: no process holds the terminal */
		}
	}
}

/* What a run needs besides its options: who to kill on --timeout, where to log. */
struct run_ctx {
	pid_t init;           /* the box's PID 1 when this run started the box, else 0 */
	int log_fd;
	struct limits *limits; /* when this run started the box, else NULL */
	uint64_t fingerprint;  /* run_fingerprint() */
	bool joins;            /* the box was up before this run */
	uint64_t plan_hash;    /* when it joins: fsplan_hash_host() */
};

/*
 * Ask the box's PID 1 on conn to run opts->argv, and stay with the program
 * until it exits. Returns its exit code; -1 with err filled when the box
 * refused; RETRY when the box went away before answering.
 */
static int run_program(int conn, int sfd, const struct box_run_opts *opts, const struct run_ctx *ctx,
		       struct error *err)
{
	_cleanup_free_ char *cwd = get_current_dir_name();
	_cleanup_close_ int pidfd = -1;
	_cleanup_close_ int master = -1;
	_cleanup_close_ int timer = -1;
	char why[512];
	struct request req = {
		.flags = (tty_wanted() ? REQUEST_PTY : 0) | (opts->as_root ? REQUEST_ROOT : 0),
		.fingerprint = ctx->fingerprint,
		.plan_hash = ctx->plan_hash,
		.argv = opts->argv,
		.envp = environ,
	};
	char msg[4097], tag;
	int fds[CONTROL_MAX_FDS];
	size_t nfds = 0;
	ssize_t n;
	int code;

	if (!cwd)
		return error_set(err, errno, "cannot find the current directory");
	req.cwd = cwd;
	req.umask = umask(022);
	umask((mode_t)req.umask);
	if (request_send(conn, &req, err) < 0)
		return errno == EPIPE || errno == ECONNRESET ? RETRY : -1;
	n = control_recv(conn, &tag, msg, sizeof(msg) - 1, fds, &nfds);
	if (n < 0) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return RETRY;
	}
	if (tag == CONTROL_ERROR) {
		msg[n] = '\0';
		return error_set(err, 0, "cannot run in box '%s': %s", opts->name, msg);
	}
	if (tag == CONTROL_RESTART)
		return RETRY; /* an idle box, not this run's: it ends, start a new one */
	if (tag != CONTROL_PROGRAM || nfds < 1) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		return error_set(err, EPROTO, "cannot run in box '%s'", opts->name);
	}
	if (ctx->joins && opts->policy->verbose)
		note("box '%s' was up: this run joined it (a box that runs programs keeps the "
		     "policy it started with)", opts->name);
	pidfd = fds[0];
	if (nfds > 1) {
		/* The terminal is ready: 'G' lets the program start. */
		master = fds[1];
		tty_setup_pty(master);
		tty_make_raw();
		if (write_all(conn, &(char){CONTROL_GO}, 1) < 0)
			return RETRY;
	}
	if (opts->policy->timeout_ms) {
		struct itimerspec its = {
			.it_value = {.tv_sec = (time_t)(opts->policy->timeout_ms / 1000),
				     .tv_nsec = (long)(opts->policy->timeout_ms % 1000) * 1000000},
		};
		timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		if (timer < 0 || timerfd_settime(timer, 0, &its, NULL) < 0)
			return error_set(err, errno, "cannot set the --timeout");
	}
	code = relay(conn, sfd, pidfd, master, timer, why, sizeof(why));
	if (code == RELAY_LOST) {
		code = LOST;
	} else if (code == RELAY_TIMEOUT) {
		/* "Kills the whole box": PID 1's end ends every process in it. */
		if (ctx->init > 0)
			kill(ctx->init, SIGKILL);
		else
			pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
		snprintf(why, sizeof(why), "box '%s' reached its --timeout of %llu ms and was killed",
			 opts->name, (unsigned long long)opts->policy->timeout_ms);
		eventlog_write(ctx->log_fd, 0, "limit", "{\"limit\":\"timeout\"}", "killed", why);
		code = EXIT_TIMEOUT;
	} else if (code >= 0 && !why[0] && ctx->limits &&
		   limits_explain(ctx->limits, code, why, sizeof(why)) > 0) {
		eventlog_write(ctx->log_fd, 0, "limit", "{}", "killed", why);
	}
	if (master >= 0)
		drain(master);
	tty_restore();
	if (code >= 0 && why[0])
		note("%s", why);
	return code;
}

/* Opened while PID 1 lives, they keep the box's mounts until the holder detaches them. */
static void open_box_ns(pid_t init, int ns_fds[2])
{
	static const char *const names[] = {"user", "mnt"};

	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *path = xasprintf("/proc/%d/ns/%s", (int)init, names[i]);
		ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
}

static void close_box_ns(int ns_fds[2])
{
	for (size_t i = 0; i < 2; i++)
		if (ns_fds[i] >= 0)
			close(ns_fds[i]);
	ns_fds[0] = ns_fds[1] = -1;
}

static void close_box_nsp(int (*ns_fds)[2])
{
	close_box_ns(*ns_fds);
}

/*
 * Unmounting a box syncs each overlay's upper filesystem (ovl_sync_fs), a
 * few milliseconds that nobody needs to wait for: every process of the box
 * is gone once PID 1 sent the last code. A small process outside the box
 * keeps the box's "mounted" lock until the box is unmounted, so that the
 * next run of this box, or a commit, waits for it and never finds the
 * layers still mounted. It holds the box's mount namespace open, so PID 1
 * exits at once; then it detaches the overlays on parallel threads (one
 * sync's time instead of one per overlay, which the next run would wait
 * for), moves the layers' work dirs out of the way (box_work_release) and,
 * the lock released, empties the box's trash.
 */
static void hand_over_unmount(pid_t init, int mounted_lock, int box_dirfd, struct limits *limits,
			      int ns_fds[2])
{
	_cleanup_close_ int pidfd = pidfd_open(init, 0);
	pid_t pid;

	if (pidfd < 0 || (pid = fork()) < 0) {
		int status;
		close_box_ns(ns_fds);
		while (waitpid(init, &status, 0) < 0 && errno == EINTR)
			;
		limits_release(limits);
		return;
	}
	if (pid > 0)
		return;
	/* Closed below with the rest; its number may be one of the fds kept. */
	limits->cgroup_fd = -1;
	/* Hold nothing of the caller's: a pipe reading hutch's output ends now. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	/* Kept as fds 3 (the lock), 4, 5, and 6 and 7 when the namespaces are open. */
	bool ns = ns_fds[0] >= 0 && ns_fds[1] >= 0;
	int keep[] = {mounted_lock, pidfd, box_dirfd, ns_fds[0], ns_fds[1]};
	size_t nkeep = ns ? 5 : 3;
	for (size_t i = 0; i < nkeep; i++)
		if ((keep[i] = fcntl(keep[i], F_DUPFD, 3 + (int)ARRAY_SIZE(keep))) < 0)
			_exit(1);
	for (size_t i = 0; i < nkeep; i++)
		if (dup2(keep[i], 3 + (int)i) < 0)
			_exit(1);
	close_range(3 + (unsigned)nkeep, ~0U, 0);
	setsid();
	struct pollfd p = {.fd = 4, .events = POLLIN};
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	/* A cgroup can go only once the box's last task has. */
	limits_release(limits);
	/* Opened now: once in the box's mount namespace, this process sees no store. */
	int refresh = box_lock_open_at(5, BOX_LOCK_REFRESH);
	if (ns) {
		(void)box_root_detach(6, 7);
		close_range(6, 7, 0); /* whatever else the box mounted goes now */
	}
	/* A joining run refreshing the box holds its overlays too: let it finish. */
	while (refresh >= 0 && flock(refresh, LOCK_EX) < 0 && errno == EINTR)
		;
	box_work_release(5);
	close(3);
	if (refresh >= 0)
		close(refresh);
	box_trash_empty(5);
	_exit(0);
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

/* -v: what of the kernel features a box uses is not in force here, and what does instead. */
static void say_kernel_gaps(const char *name)
{
	_cleanup_free_ char *gaps = kernel_gaps_describe();
	char *save = NULL;

	if (!*gaps) {
		note("box '%s': kernel: every feature hutch uses is in force", name);
		return;
	}
	for (char *line = strtok_r(gaps, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		note("box '%s': kernel: %s", name, line);
}

/* -v: what is in force for this box. */
static void say_policy(const struct box_run_opts *opts, const struct limits *limits)
{
	static const char *const modes[] = {"default", "strict", "off"};
	const struct policy *p = opts->policy;

	if (p->profile)
		note("box '%s': profile '%s'", opts->name, p->profile);
	note("box '%s': syscall filter '%s'%s", opts->name, modes[p->seccomp],
	     p->seccomp == FILTER_OFF ? ", no supervisor"
				      : "; the supervisor logs exec, connect, bind and denials");
	note("box '%s': %zu hidden, %zu read-only, %zu direct paths, %zu --deny-exec patterns",
	     opts->name, p->hide.n, p->read_only.n, p->direct.n, p->deny_exec.n);
	note("box '%s': limits: %s", opts->name, limits_describe(limits));
	note("box '%s': /tmp: %s", opts->name,
	     p->private_tmp ? "the box's own (--private-tmp)" : "the host's, copy-on-write");
	say_kernel_gaps(opts->name);
}

static int start_box(const struct store *store, const struct box_run_opts *opts,
		     const char *box_dir, int box_dirfd, int *running, int *setup, int sfd,
		     int log_fd, bool created, uint64_t fingerprint, int *listener,
		     struct limits *limits, bool *handed_over, struct error *err);

/* A box's PID 1 started, but its program never ran: undo the start. */
static int abort_start(pid_t init, int box_dirfd, const char *name, struct error *err)
{
	int status;

	kill(init, SIGKILL);
	waitpid(init, &status, 0);
	unlinkat(box_dirfd, "control", 0);
	return error_prefix(err, "cannot start box '%s'", name);
}

/* Start the box's PID 1 and run the program as its first client. */
static int create_and_run(const struct store *store, const struct box_run_opts *opts,
			  const char *box_dir, int box_dirfd, int *running, int *setup, int sfd,
			  int log_fd, bool created, uint64_t fingerprint, struct error *err)
{
	struct limits limits;
	_cleanup_close_ int listener = -1;
	int code;

	if (limits_prepare(opts->policy, opts->name, &limits, err) < 0)
		return -1;
	if (opts->policy->verbose)
		say_policy(opts, &limits);
	listener = listen_box(box_dirfd, err);
	if (listener < 0) {
		limits_release(&limits);
		return -1;
	}
	bool handed_over = false;
	code = start_box(store, opts, box_dir, box_dirfd, running, setup, sfd, log_fd, created,
			 fingerprint, &listener, &limits, &handed_over, err);
	if (!handed_over)
		limits_release(&limits);
	return code;
}

/* create_and_run() once the limits are prepared. */
static int start_box(const struct store *store, const struct box_run_opts *opts,
		     const char *box_dir, int box_dirfd, int *running, int *setup, int sfd,
		     int log_fd, bool created, uint64_t fingerprint, int *listener,
		     struct limits *limits, bool *handed_over, struct error *err)
{
	_cleanup_free_ char *newroot = xasprintf("%s/mnt", box_dir);
	_cleanup_free_ char *cwd = get_current_dir_name();
	_cleanup_close_ int mounted = -1;
	_cleanup_close_ int sock = -1;
	struct box_init init;
	__attribute__((cleanup(close_box_nsp))) int ns_fds[2] = {-1, -1};
	int sv[2], status, code;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return error_set(err, errno, "cannot create a socket pair");
	sock = sv[0];
	init = (struct box_init){
		.root = {.store_home = store->home,
			 .box_dir = box_dir,
			 .newroot = newroot,
			 .policy = opts->policy,
			 .log_fd = log_fd},
		.host_root = getuid() == 0,
		.fingerprint = fingerprint,
		.as_root = opts->as_root,
		.cwd = cwd,
		.sock = sv[1],
		.listener = *listener,
		.box_dirfd = box_dirfd,
		.lock_fds = {*running, *setup},
		.policy = opts->policy,
		.limits = limits,
		.log_fd = log_fd,
	};

	if (limits->cgroup_fd >= 0) {
		/*
		 * Born in its cgroup: the box's cgroup namespace is then rooted
		 * there, and no mount of cgroup2 inside can reach the parent's
		 * cgroup.procs to move out of the limits.
		 */
		struct clone_args ca = {
			.flags = BOX_CLONE_FLAGS | CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)limits->cgroup_fd,
		};
		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	} else {
		pid = (pid_t)syscall(SYS_clone, BOX_CLONE_FLAGS | SIGCHLD, NULL, NULL, NULL, NULL);
	}
	if (pid < 0) {
		int e = errno;
		close(sv[1]);
		userns_explain(e, err);
		unlinkat(box_dirfd, "control", 0);
		if (created) {
			/* Bad input leaves nothing behind. */
			struct error ignored;
			remove_tree(box_dir, &ignored);
		}
		return -1;
	}
	if (pid == 0) {
		close(sock);
		box_init_main(&init);
	}
	close(sv[1]);
	/* Only PID 1 may hold it: a run must not join a box whose PID 1 is gone. */
	close(steal_fd(listener));
	open_box_ns(pid, ns_fds);
	/* PID 1 listens now: later runs may queue up to join. */
	close(steal_fd(setup));

	if (userns_write_maps(pid, getuid(), getgid(), opts->as_root, err) < 0 ||
	    limits_attach(limits, pid, err) < 0)
		return abort_start(pid, box_dirfd, opts->name, err);
	/* 'M': PID 1 may plan and mount all but the box's layers... */
	if (send(sock, &(char){CONTROL_MOUNT}, 1, MSG_NOSIGNAL) != 1) {
		waitpid(pid, &status, 0);
		return exit_status_code(status);
	}
	/*
	 * ...'O': and its layers too, once the previous run of this box has
	 * unmounted them (its unmount holder, below), which it may still be
	 * doing while PID 1 gets on with the rest.
	 */
	mounted = box_lock(box_dir, BOX_LOCK_MOUNTED, BOX_LOCK_EXCLUSIVE, 10000, err);
	if (mounted < 0)
		return abort_start(pid, box_dirfd, opts->name, err);
	if (send(sock, &(char){CONTROL_LAYERS}, 1, MSG_NOSIGNAL) != 1) {
		waitpid(pid, &status, 0);
		return exit_status_code(status);
	}
	struct run_ctx ctx = {
		.init = pid, .log_fd = log_fd, .limits = limits, .fingerprint = fingerprint};
	code = run_program(sock, sfd, opts, &ctx, err);
	if (code == RETRY || code == LOST) {
		/* PID 1 could not set the box up (and said why), was killed, or ended. */
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return error_set(err, 0, "box '%s' ended before its program ran",
					 opts->name);
		return exit_status_code(status);
	}
	if (code == -1)
		kill(pid, SIGKILL);
	if (code < 0) {
		/* PID 1 failed to set the box up (and said why) or was killed. */
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		return code == -1 ? -1 : exit_status_code(status);
	}
	/* The run is over; the unmount holder must not carry this lock on. */
	close(steal_fd(running));
	hand_over_unmount(pid, mounted, box_dirfd, limits, ns_fds);
	*handed_over = true;
	return code;
}

/*
 * Everything that shapes the box a run would build: its policy, --root,
 * and the host's mount table and top-level entries, which the box's plan
 * is made from. A box that lingers after its last program serves a run
 * only if they match (box/init.c); else the run gets a new box.
 */
static uint64_t run_fingerprint(const struct box_run_opts *opts)
{
	_cleanup_closedir_ DIR *d = opendir("/");
	_cleanup_free_ char *mounts = NULL;
	uint64_t h = HASH_SEED;
	char as_root = opts->as_root;
	struct dirent *e;
	struct error err;

	if (opts->policy)
		h = policy_hash(opts->policy, h);
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

static enum fsplan_flags plan_flags(const struct box_run_opts *opts)
{
	return opts->policy && opts->policy->private_tmp ? FSPLAN_PRIVATE_TMP : 0;
}

/* The name of id in /etc/passwd or /etc/group (a static binary has no NSS), or NULL. */
static char *id_name(const char *file, unsigned id)
{
	struct error ignored;
	_cleanup_free_ char *text = read_file(file, 4 << 20, &ignored);
	char *save = NULL;

	for (char *line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *end;
		if (!c2)
			continue;
		unsigned long v = strtoul(c2 + 1, &end, 10);
		if (end != c2 + 1 && *end == ':' && v == id)
			return xasprintf("%.*s", (int)(c1 - line), line);
	}
	return NULL;
}

/*
 * An unprivileged box maps only the caller's uid and primary gid, and the
 * kernel cannot copy up a file owned by any other: writing to it fails
 * with EOVERFLOW ("Value too large for defined data type"), which says
 * nothing of why. Folders of that kind in and around the working directory
 * are layers of their own (fsplan_add_cwd), so new files there work; the
 * files themselves cannot be helped, so say so before the program runs.
 */
static void explain_cwd(const char *cwd)
{
	_cleanup_free_ char *first = NULL;
	struct stat st;
	size_t n = cwd ? fsplan_unmapped_files(cwd, &first, &st) : 0;

	if (!n)
		return;
	bool by_owner = st.st_uid != getuid();
	unsigned id = by_owner ? st.st_uid : st.st_gid;
	_cleanup_free_ char *name = id_name(by_owner ? "/etc/passwd" : "/etc/group", id);
	_cleanup_free_ char *more =
		n > 1 ? xasprintf(" and %zu more files there belong", n - 1) : xstrdup(" belongs");
	warn("'%s/%s'%s to %s '%s' (%u), which a box cannot map: the box can "
	     "create and remove files in '%s', but writing to or renaming these fails (EOVERFLOW)",
	     strcmp(cwd, "/") ? cwd : "", first, more, by_owner ? "user" : "group",
	     name ? name : "?", id, cwd);
}

/*
 * Before joining a box, let it see the host as it is now: PID 1 sends the
 * fds of its user and mount namespaces first ('N', control.h). Returns -1
 * when the box went away.
 */
static int refresh_box(const char *box_dir, int conn)
{
	int fds[CONTROL_MAX_FDS];
	size_t nfds = 0;
	char tag, msg[16];
	struct error err;

	if (control_recv(conn, &tag, msg, sizeof(msg), fds, &nfds) < 0 || tag != CONTROL_NS || nfds != 2) {
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

int box_run(const struct store *store, const struct box_run_opts *opts, struct error *err)
{
	_cleanup_free_ char *box_dir = store_box_dir(store, opts->name);
	_cleanup_free_ char *newroot = xasprintf("%s/mnt", box_dir);
	_cleanup_close_ int box_dirfd = -1;
	_cleanup_close_ int running = -1;
	_cleanup_close_ int sfd = -1;
	_cleanup_close_ int log_fd = -1;
	bool created = access(box_dir, F_OK) < 0;
	sigset_t set, old;
	int code = RETRY;

	if (created && mkdir_p(newroot, 0700, err) < 0)
		return error_prefix(err, "cannot create box '%s'", opts->name);
	box_dirfd = open(box_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (box_dirfd < 0)
		return error_set(err, errno, "cannot open box '%s'", opts->name);
	/* Shared with every other run of the box; a commit or reset takes it alone. */
	running = box_lock(box_dir, BOX_LOCK_RUNNING, BOX_LOCK_SHARED, 2000, err);
	if (running < 0 && err->errnum == EWOULDBLOCK) {
		warn("waiting for box '%s': a commit, reset or rm is using it", opts->name);
		running = box_lock(box_dir, BOX_LOCK_RUNNING, BOX_LOCK_SHARED, -1, err);
	}
	if (running < 0)
		return error_prefix(err, "cannot use box '%s'", opts->name);
	struct stat st;
	if (fstat(box_dirfd, &st) < 0 || st.st_nlink == 0)
		return error_set(err, 0, "box '%s' was removed while this run waited for it",
				 opts->name);
	futimens(running, NULL); /* "last used", for hutch list */
	log_fd = eventlog_open(box_dir, err);
	if (log_fd < 0)
		return -1;

	uint64_t fingerprint = run_fingerprint(opts);
	_cleanup_free_ char *cwd = get_current_dir_name();
	explain_cwd(cwd);
	/* Blocked before any child exists, so no signal slips past the signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(relayed); i++)
		sigaddset(&set, relayed[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);

	for (int attempt = 0; attempt < JOIN_ATTEMPTS && code == RETRY; attempt++) {
		_cleanup_close_ int setup = -1;
		_cleanup_close_ int conn = -1;

		setup = box_lock(box_dir, BOX_LOCK_SETUP, BOX_LOCK_EXCLUSIVE, 10000, err);
		if (setup < 0) {
			code = -1;
			break;
		}
		conn = control_connect(box_dirfd);
		if (conn >= 0) {
			close(steal_fd(&setup));
			struct run_ctx ctx = {.log_fd = log_fd,
					      .fingerprint = fingerprint,
					      .joins = true,
					      .plan_hash = fsplan_hash_host(plan_flags(opts), cwd)};
			code = refresh_box(box_dir, conn) < 0 ? RETRY
							       : run_program(conn, sfd, opts, &ctx, err);
			if (code == LOST)
				code = error_set(err, 0, "box '%s' stopped before the program finished",
						 opts->name);
		} else {
			code = create_and_run(store, opts, box_dir, box_dirfd, &running, &setup,
					      sfd, log_fd, created, fingerprint, err);
		}
	}
	if (code == RETRY)
		code = error_set(err, 0, "box '%s' stopped while this run was joining it",
				 opts->name);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return code;
}
