/*
 * A box's PID 1 after the box is built: the control loop. It serves the
 * runs that ask for programs (the client table), relays signals, reaps
 * every process, runs the watchdog, lingers when idle and resets the box
 * for the next run, and ends the box.
 */
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
#include "box/mounts.h"
#include "net/net.h"
#include "policy/eventlog.h"
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

/* What serve() returns when it starts no program. */
enum serve_end {
	SERVE_DROP = -1, /* the client is dropped: refused, or it broke the protocol */
	SERVE_END = -2,  /* the box, idle, was asked to end (control.h, CONTROL_RESTART) */
};
/*
 * After its last program has exited, a box stays up this long, doing
 * nothing, for the next run of the same box: that run joins it (after
 * refreshing its view of the host, see box_run), which takes about half
 * of what building a new box takes.
 */
#define LINGER_MS 1000

/* What the watchdog remembers between its rounds. */
struct watchdog {
	bool pids_reported; /* --pids under RLIMIT_NPROC was reached and said so */
};

struct client {
	int conn;  /* the hutch run that asked for the program */
	pid_t pid; /* the program; -1 before the request, 0 once it exited */
	int code;  /* its exit code, once pid is 0 */
	const char *why; /* the limit that ended it, or NULL */
	bool gone; /* the client hung up: its program was killed */
};

/* Signals sent to PID 1 itself go on to every program's process group. */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCONT};

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
 * box. A busy box takes the runs of its user with its policy (differs()).
 */
static bool end_for(const struct box_init *init, const struct request *req, bool idle)
{
	return idle && ((req->flags & REQUEST_QUIT) || req->fingerprint != init->fingerprint ||
			req->plan_hash != init->built.plan_hash ||
			!(req->flags & REQUEST_ROOT) != !init->as_root);
}

/*
 * A busy box serves only runs of its own policy: a program is never under
 * fewer rules, or another network, than its run asked for (the box cannot
 * change them while its programs run). Else it says how the policy
 * differs ('D'), naming its network when that is what differs.
 */
static bool differs(const struct box_init *init, const struct request *req, int conn)
{
	char msg[512] = "another policy (its --hide, --read-only, --direct, --deny-exec, "
			"--seccomp or limits are not this run's)";
	char net[400];

	if (req->policy_hash == init->policy_hash && req->net_hash == init->net_hash)
		return false;
	if (req->net_hash != init->net_hash) {
		policy_net_describe(init->policy, net, sizeof(net));
		snprintf(msg, sizeof(msg), "another network (%s)", net);
	}
	control_send(conn, CONTROL_DIFFERS, msg, strlen(msg), NULL, 0);
	return true;
}

/*
 * Read a request from conn and start its program; returns its pid, or
 * SERVE_DROP or SERVE_END (the box must end now: it told the client so).
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
		return SERVE_DROP;
	if (request_recv(conn, &req, &err) < 0) {
		request_release(&req);
		return SERVE_DROP;
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
		return SERVE_DROP;
	}
	if (!(req.flags & REQUEST_ROOT) != !init->as_root) {
		reply_error(conn, init->as_root
					  ? "the box is running with --root: join it with --root"
					  : "the box is running without --root: join it without");
		request_release(&req);
		return SERVE_DROP;
	}
	if (!idle && differs(init, &req, conn)) {
		request_release(&req);
		return SERVE_DROP;
	}
	if (req.flags & REQUEST_PTY) {
		char name[64];
		master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
		    ptsname_r(master, name, sizeof(name)) != 0) {
			reply_error(conn, "cannot create the box's terminal");
			request_release(&req);
			return SERVE_DROP;
		}
		pts = xstrdup(name);
	}
	pid = fork();
	if (pid == 0)
		start_program(&req, conn, pts, init->policy, init->limits);
	request_release(&req);
	if (pid < 0) {
		reply_error(conn, "cannot start the program");
		return SERVE_DROP;
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
static const char *watch(const struct box_init *init, struct watchdog *w, char *why, size_t len,
			 bool *killed)
{
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
	} else if (!kill_tasks && p->pids && !w->pids_reported &&
		   tasks >= p->pids + limits_hutch_tasks(p)) {
		/*
		 * Only where the kernel refuses the next task: where the
		 * watchdog is what enforces --pids, a box at the limit may
		 * still pass it, and must then be killed.
		 */
		snprintf(why, len, "process limit of %llu reached: the box may start no more",
			 (unsigned long long)p->pids);
		w->pids_reported = true;
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
	    unshare(CLONE_NEWIPC) < 0 || netns_renew(&err) < 0)
		return -1;
	/* --net user: a fresh pasta for the fresh namespace (net/net.h). */
	if (init->built.net.keeper > 0) {
		_cleanup_close_ int net = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (net < 0 || usernet_attach(&init->built.net, net, &err) < 0 ||
		    usernet_ready(&init->built.net, &err) < 0)
			return -1;
	}
	if (sethostname(init->built.uts.nodename, strlen(init->built.uts.nodename)) < 0 ||
	    setdomainname(init->built.uts.domainname, strlen(init->built.uts.domainname)) < 0)
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

_Noreturn void box_loop(const struct box_init *init, int notify_fd)
{
	struct watchdog wd = {0};
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
			const char *hit = watch(init, &wd, limit_why, sizeof(limit_why), &limit_killed);
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
