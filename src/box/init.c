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
#include "box/fsplan.h"
#include "policy/eventlog.h"
#include "policy/landlock.h"
#include "policy/limits.h"
#include "policy/seccomp.h"
#include "common/cleanup.h"
#include "common/error.h"
#include "common/util.h"
#include "common/banned.h"

/* poll() slots before the clients': signals, the control socket, the event log's wake-up. */
#define FIXED_FDS 3
/* How often PID 1 measures the box's memory when no cgroup limits it. */
#define WATCHDOG_MS 50

/* The box's log, written by the supervisor's thread and the main loop. */
static struct eventlog box_log = {.fd = -1, .wake_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

/* How long the supervisor's events may wait in its buffer. */
#define LOG_DELAY_MS 50

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Programs running at once in one box, from all the runs that joined it. */
#define MAX_CLIENTS 256
/* What a box's programs may change in it besides files, as the box began. */
static struct utsname box_uts;
/* fsplan_hash() of the plan the box was built from. */
static uint64_t box_plan_hash;

/* serve(): the box, idle, was asked to end (see control.h, 'R'). */
#define SERVE_END -2
/*
 * After its last program has exited, a box stays up this long, doing
 * nothing, for the next run of the same box: that run joins it (after
 * refreshing its view of the host, see box_run), which takes about half
 * of what building a new box takes.
 */
#define LINGER_MS 1000

struct client {
	int conn;  /* the hutch run that asked for the program */
	pid_t pid; /* the program; -1 before the request, 0 once it exited */
	int code;  /* its exit code, once pid is 0 */
	const char *why; /* the limit that ended it, or NULL */
	bool gone; /* the client hung up: its program was killed */
};

/* Signals sent to PID 1 itself go on to every program's process group. */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCONT};

/* execv, running a script without #! with /bin/sh as execvp does. */
static void exec_file(const char *path, char **argv)
{
	size_t argc = 0;

	execv(path, argv);
	if (errno != ENOEXEC)
		return;
	while (argv[argc])
		argc++;
	char **sh_argv = xcalloc(argc + 2, sizeof(*sh_argv));
	sh_argv[0] = (char *)"sh";
	sh_argv[1] = (char *)path;
	for (size_t i = 1; i < argc; i++)
		sh_argv[i + 1] = argv[i];
	execv("/bin/sh", sh_argv);
	errno = ENOEXEC;
}

/*
 * Search PATH like execvp, but tell "not found" (127) from "found and not
 * executable" (126) by the first match that exists, as a shell does;
 * execvp reports EACCES for any unreadable PATH entry on the way.
 */
void exec_search(char **argv)
{
	const char *name = argv[0];
	const char *path = getenv("PATH");
	int found_errno = 0;

	if (strchr(name, '/')) {
		exec_file(name, argv);
		if (errno == ENOENT || errno == ENOTDIR)
			die(EXIT_NOT_FOUND, "'%s': no such file", name);
		die_errno(EXIT_CANNOT_EXECUTE, "cannot execute '%s'", name);
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (;;) {
		const char *end = strchrnul(path, ':');
		size_t dirlen = (size_t)(end - path);
		_cleanup_free_ char *file = xasprintf("%.*s%s%s", (int)dirlen, path,
						      dirlen ? "/" : "", name);
		struct stat st;

		if (stat(file, &st) == 0 && !S_ISDIR(st.st_mode)) {
			exec_file(file, argv);
			found_errno = errno;
			break;
		}
		if (!*end)
			break;
		path = end + 1;
	}
	if (!found_errno)
		die(EXIT_NOT_FOUND, "'%s': command not found", name);
	errno = found_errno;
	die_errno(EXIT_CANNOT_EXECUTE, "cannot execute '%s'", name);
}

/* In the forked child: become the requested program. */
static _Noreturn void start_program(struct request *req, int conn, const char *pts,
				    const struct policy *policy, const struct limits *limits)
{
	sigset_t none;
	char go;

	sigemptyset(&none);
	/* Dispositions stay the caller's, as if it ran the program itself. */
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own session: terminal signals and job control belong to it alone. */
	setsid();
	for (int i = 0; i < CONTROL_MAX_FDS; i++)
		if (req->fds[i] >= 0 && dup2(req->fds[i], i) < 0)
			_exit(EXIT_HUTCH_FAILED);
	if (pts) {
		int fd = open(pts, O_RDWR | O_NOCTTY);
		if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
			die_errno(EXIT_HUTCH_FAILED, "cannot open the box's terminal");
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (isatty(STDERR_FILENO))
			dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	/* With a terminal, wait until the client has set its size. */
	if (pts && (read_all(conn, &go, 1) != 1 || go != CONTROL_GO))
		_exit(EXIT_HUTCH_FAILED);
	umask((mode_t)req->umask);
	limits_apply_child(policy, limits);
	/*
	 * Nothing of PID 1's may reach the program (its fds are close-on-exec
	 * anyway), and the supervisor must read the program's memory at its
	 * execve: dumpable again, as PID 1 is not (box_init_main).
	 */
	close_range(3, ~0U, 0);
	prctl(PR_SET_DUMPABLE, 1);
	if (chdir(req->cwd) < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot enter the working directory '%s' in the box",
			  req->cwd);
	environ = req->envp;
	exec_search(req->argv);
}

static void reply_error(int conn, const char *msg)
{
	control_send(conn, CONTROL_ERROR, msg, strlen(msg), NULL, 0);
}

/*
 * An idle box (lingering after its last program) serves a run only if the
 * run would have built the same box: the same policy, --root or not, the
 * same host mounts and top-level entries (the run's fingerprint), and the
 * same plan of its root (which the run makes again to join). Else,
 * and when asked to quit, it ends, saying 'R': the run then starts a new
 * box. A busy box takes every run of its user, under its own policy.
 */
static bool end_for(const struct box_init *init, const struct request *req, bool idle)
{
	return idle && ((req->flags & REQUEST_QUIT) || req->fingerprint != init->fingerprint ||
			req->plan_hash != box_plan_hash ||
			!(req->flags & REQUEST_ROOT) != !init->as_root);
}

/*
 * Read a request from conn and start its program; returns its pid, -1, or
 * SERVE_END when the box must end now (it told the client so).
 */
static pid_t serve(const struct box_init *init, int conn, bool idle)
{
	_cleanup_free_ char *pts = NULL;
	_cleanup_close_ int master = -1;
	_cleanup_close_ int pidfd = -1;
	struct request req;
	struct error err;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fds[2];
	pid_t pid;

	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != getuid())
		return -1;
	if (request_recv(conn, &req, &err) < 0) {
		request_release(&req);
		return -1;
	}
	if (end_for(init, &req, idle)) {
		/* Gone before the client hears: its retry must not find this box. */
		unlinkat(init->box_dirfd, "control", 0);
		control_send(conn, CONTROL_RESTART, NULL, 0, NULL, 0);
		request_release(&req);
		return SERVE_END;
	}
	if (req.flags & REQUEST_QUIT) {
		reply_error(conn, "the box is running");
		request_release(&req);
		return -1;
	}
	if (!(req.flags & REQUEST_ROOT) != !init->as_root) {
		reply_error(conn, init->as_root
					  ? "the box is running with --root: join it with --root"
					  : "the box is running without --root: join it without");
		request_release(&req);
		return -1;
	}
	if (req.flags & REQUEST_PTY) {
		char name[64];
		master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
		    ptsname_r(master, name, sizeof(name)) != 0) {
			reply_error(conn, "cannot create the box's terminal");
			request_release(&req);
			return -1;
		}
		pts = xstrdup(name);
	}
	pid = fork();
	if (pid == 0)
		start_program(&req, conn, pts, init->policy, init->limits);
	request_release(&req);
	if (pid < 0) {
		reply_error(conn, "cannot start the program");
		return -1;
	}
	/* A pidfd lets the client signal the program from outside the box. */
	pidfd = pidfd_open(pid, 0);
	fds[0] = pidfd;
	fds[1] = master;
	if (pidfd < 0 || control_send(conn, CONTROL_PROGRAM, NULL, 0, fds, master >= 0 ? 2 : 1) < 0) {
		kill(pid, SIGKILL);
		return pid; /* reaped like any other; the client is gone */
	}
	return pid;
}

/* The client's last message: the exit code and, if a limit ended it, why. */
static void send_code(const struct client *c)
{
	char buf[sizeof(int) + 512];
	size_t len = sizeof(int);

	memcpy(buf, &c->code, sizeof(int));
	if (c->why) {
		size_t n = strnlen(c->why, sizeof(buf) - sizeof(int));
		memcpy(buf + sizeof(int), c->why, n);
		len += n;
	}
	control_send(c->conn, CONTROL_EXIT, buf, len, NULL, 0);
}

/*
 * PID 1's watchdog, for the limits no cgroup enforces here (policy/limits.h):
 * past --memory, or past --pids where nothing refuses new processes, it
 * kills the box; at --pids under RLIMIT_NPROC, which refuses them, it says
 * so, once, and goes on watching the memory. Returns the reason when a
 * limit is first reached, else NULL; *killed tells whether the box was
 * killed, after which there is nothing left to watch.
 */
static const char *watch(const struct box_init *init, char *why, size_t len, bool *killed)
{
	static bool pids_reported;
	const struct policy *p = init->policy;
	uint64_t bytes, tasks, kill_tasks = limits_watch_tasks(init->limits);
	const char *limit = "pids";

	limits_proc_scan("/proc", &bytes, &tasks);
	*killed = true;
	if (p->memory && !limits_enforce_memory(init->limits) && bytes > p->memory) {
		char size[32];
		format_size(size, sizeof(size), p->memory);
		snprintf(why, len, "memory limit of %s reached: the box was killed", size);
		limit = "memory";
	} else if (kill_tasks && tasks > kill_tasks) {
		snprintf(why, len, "process limit of %llu reached: the box was killed",
			 (unsigned long long)p->pids);
	} else if (!kill_tasks && p->pids && !pids_reported &&
		   tasks >= p->pids + limits_hutch_tasks(p)) {
		/*
		 * Only where the kernel refuses the next task: where the
		 * watchdog is what enforces --pids, a box at the limit may
		 * still pass it, and must then be killed.
		 */
		snprintf(why, len, "process limit of %llu reached: the box may start no more",
			 (unsigned long long)p->pids);
		pids_reported = true;
		*killed = false;
	} else {
		*killed = false;
		return NULL;
	}
	_cleanup_free_ char *args = xasprintf("{\"limit\":\"%s\"}", limit);
	eventlog_add(&box_log, 1, "limit", args, *killed ? "killed" : "denied", why);
	if (*killed)
		kill(-1, SIGKILL);
	return why;
}

/*
 * A box's programs are done once its last program has exited. End every
 * process left in it, and only then tell the last client: nothing in the
 * box can write after hutch has returned. The box lingers (LINGER_MS),
 * then PID 1 exits, and the box's unmount holder unmounts it (box_run).
 */
static void end_programs(void)
{
	int status;

	kill(-1, SIGKILL);
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
}



/*
 * Before an idle box takes the next run, undo what its last programs left
 * besides files, so that a run never sees more of the run before than a
 * new box would: sockets and their TIME_WAIT, System V IPC objects, the
 * host name, files in /dev/shm, and changes to /dev. New network and IPC
 * namespaces for the programs PID 1 starts from now on; /sys still shows
 * the first network namespace, which also has only "lo". Only boxes
 * box_may_linger() allows. Returns -1 if anything could not be undone:
 * the box must end then.
 */
static int reset_box(const struct box_init *init)
{
	struct error err;

	if (!box_may_linger(init->policy, init->as_root) ||
	    unshare(CLONE_NEWNET | CLONE_NEWIPC) < 0 || net_loopback_up(&err) < 0)
		return -1;
	if (sethostname(box_uts.nodename, strlen(box_uts.nodename)) < 0 ||
	    setdomainname(box_uts.domainname, strlen(box_uts.domainname)) < 0)
		return -1;
	return box_dev_reset();
}

static _Noreturn void finish(const struct box_init *init, int listener)
{
	eventlog_flush(&box_log);
	unlinkat(init->box_dirfd, "control", 0);
	close(listener);
	end_programs();
	_exit(0);
}

static void drop(struct client *clients, size_t *nclients, size_t i)
{
	close(clients[i].conn);
	clients[i] = clients[--*nclients];
}

static _Noreturn void box_loop(const struct box_init *init, int notify_fd)
{
	struct client clients[MAX_CLIENTS];
	struct pollfd fds[FIXED_FDS + MAX_CLIENTS];
	struct supervisor sup;
	struct error err;
	const char *limit_hit = NULL;
	bool limit_killed = false;
	uint64_t log_due = 0; /* when the buffered events must be written, 0: none wait */
	char limit_why[256];
	int wake;
	size_t nclients = 0;
	int listener = init->listener;
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot watch signals");
	clients[nclients++] = (struct client){.conn = init->sock, .pid = -1};
	/* For the runs that join: they refresh the box's view (box_root_refresh). */
	int ns_fds[2] = {open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC),
			 open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)};
	if (ns_fds[0] < 0 || ns_fds[1] < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot open the box's namespaces");
	wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wake < 0)
		die_errno(EXIT_HUTCH_FAILED, "cannot create an eventfd");
	eventlog_init(&box_log, init->log_fd, wake);
	if (notify_fd >= 0 &&
	    (supervisor_init(&sup, notify_fd, &box_log, &init->policy->deny_exec, &err) < 0 ||
	     supervisor_start(&sup, &err) < 0))
		die(EXIT_HUTCH_FAILED, "%s", err.msg);
	/* Where no cgroup holds the box's memory, PID 1 watches it (policy/limits.h). */
	bool watchdog = (init->policy->memory && !limits_enforce_memory(init->limits)) ||
			init->policy->pids;
	uint64_t linger_until = 0; /* when an idle box ends; 0: it has not run yet */

	for (;;) {
		size_t n = 0;

		fds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = nclients < MAX_CLIENTS ? listener : -1,
					   .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = wake, .events = POLLIN};
		/*
		 * Before its request, a client is read; after, only its hang-up
		 * matters: the 'G' it sends (with a terminal) is for the
		 * program, which reads it.
		 */
		for (size_t i = 0; i < nclients; i++)
			fds[n++] = (struct pollfd){.fd = clients[i].gone ? -1 : clients[i].conn,
						   .events = clients[i].pid < 0 ? POLLIN : POLLRDHUP};
		/*
		 * Events wait in the buffer at most LOG_DELAY_MS: a program that
		 * connects in a loop costs one write per burst, not per call.
		 */
		int timeout = watchdog ? WATCHDOG_MS : -1;
		if (log_due) {
			uint64_t now = now_ms();
			if (now >= log_due) {
				eventlog_flush(&box_log);
				log_due = 0;
			} else if (timeout < 0 || (uint64_t)timeout > log_due - now) {
				timeout = (int)(log_due - now);
			}
		}
		if (nclients == 0 && linger_until) {
			uint64_t now = now_ms(), left = linger_until > now ? linger_until - now : 0;
			if (timeout < 0 || (uint64_t)timeout > left)
				timeout = (int)left;
		}
		if (poll(fds, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die_errno(EXIT_HUTCH_FAILED, "cannot wait for the box's programs");
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
				for (size_t i = 0; i < nclients; i++)
					if (clients[i].pid > 0)
						kill(-clients[i].pid, (int)si.ssi_signo);
		}
		if (fds[2].revents & POLLIN) {
			uint64_t count;
			(void)!read(wake, &count, sizeof(count));
			if (!log_due)
				log_due = now_ms() + LOG_DELAY_MS;
		}
		if (watchdog && !limit_killed) {
			const char *hit = watch(init, limit_why, sizeof(limit_why), &limit_killed);
			if (hit)
				limit_hit = hit;
		}
		if (fds[1].revents & POLLIN) {
			int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			struct timeval tv = {.tv_sec = 5};
			/* A request comes at once; a client that stalls must not stall the box. */
			if (conn >= 0 && setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
			    control_send(conn, CONTROL_NS, NULL, 0, ns_fds, 2) == 0)
				clients[nclients++] = (struct client){.conn = conn, .pid = -1};
			else if (conn >= 0)
				close(conn);
		}
		/* fds[2 + i] follow clients[i] as they were when polled: walk backwards. */
		for (size_t i = n - FIXED_FDS; i-- > 0;) {
			short ev = fds[FIXED_FDS + i].revents;
			if (!ev || i >= nclients || fds[FIXED_FDS + i].fd != clients[i].conn)
				continue;
			if (clients[i].pid < 0) {
				/* Idle: it has run a program, and runs none now. */
				bool idle = linger_until != 0;
				for (size_t j = 0; j < nclients; j++)
					idle &= clients[j].pid < 0;
				clients[i].pid = serve(init, clients[i].conn, idle);
				if (clients[i].pid == SERVE_END)
					finish(init, listener);
				if (clients[i].pid < 0)
					drop(clients, &nclients, i);
			} else if (clients[i].pid > 0 && (ev & (POLLRDHUP | POLLHUP | POLLERR))) {
				/* The client went away: its program goes with it. */
				kill(-clients[i].pid, SIGKILL);
				kill(clients[i].pid, SIGKILL);
				clients[i].gone = true;
			}
		}
		/* PID 1 inherits every orphan in the box: reap them all. */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			for (size_t i = 0; i < nclients; i++) {
				if (clients[i].pid != pid)
					continue;
				clients[i].pid = 0;
				clients[i].code = exit_status_code(status);
				clients[i].why = limit_hit;
				if (clients[i].conn == init->sock)
					/* The creating run may return now while others go on. */
					prctl(PR_SET_PDEATHSIG, 0);
				if (nclients == 1) {
					/* The box's last program: no other may outlive it. */
					end_programs();
					eventlog_flush(&box_log);
					send_code(&clients[i]);
					drop(clients, &nclients, i);
					/* A box a limit ended lingers not. */
					if (limit_hit || reset_box(init) < 0)
						finish(init, listener);
					linger_until = now_ms() + LINGER_MS;
					break;
				}
				if (!clients[i].gone)
					send_code(&clients[i]);
				drop(clients, &nclients, i);
				break;
			}
		}
		if (nclients == 0 && (!linger_until || now_ms() >= linger_until))
			finish(init, listener);
	}
}

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
	int r;
};

/* A thread's own namespace: the box joins it once it is ready. */
static void *net_thread(void *arg)
{
	struct netmaker *n = arg;

	n->fd = -1;
	if (unshare(CLONE_NEWNET) < 0)
		n->r = error_set(&n->err, errno, "cannot create the box's network namespace");
	else if (net_loopback_up(&n->err) < 0)
		n->r = -1;
	else if ((n->fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		n->r = error_set(&n->err, errno, "cannot open the box's network namespace");
	return NULL;
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
static int build_root(const struct box_init *init, struct error *err)
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
	if (net.r < 0 && r == 0) {
		*err = net.err;
		r = -1;
	}
	if (r == 0 && setns(net.fd, CLONE_NEWNET) < 0)
		r = error_set(err, errno, "cannot enter the box's network namespace");
	if (net.fd >= 0)
		close(net.fd);
	if (r == 0)
		r = box_root_sys(&init->root, err);
	if (r == 0) {
		box_plan_hash = fsplan_hash(&p.plan);
		r = box_root_mount(&init->root, &p.plan, err);
	}
	/* 'O': the box's last run has unmounted its layers (box.c). */
	if (r == 0 && (read_all(init->sock, &go, 1) != 1 || go != CONTROL_LAYERS))
		_exit(EXIT_HUTCH_FAILED); /* the host side already said why */
	if (r == 0)
		r = box_root_finish(&init->root, &p.plan, err);
	if (p.r == 0)
		fsplan_release(&p.plan);
	return r;
}

void box_init_main(const struct box_init *init)
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
	if (build_root(init, &err) < 0) {
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
	uname(&box_uts);
	/*
	 * Each program gets its stdio from its own run. Holding the creating
	 * run's would keep a pipe reading it open while others still run.
	 */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		close(null);
	}
	box_loop(init, notify_fd);
}
