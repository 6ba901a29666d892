/*
 * hutch-init: PID 1 of hutch's micro-VM (built static, runs in the guest).
 *
 * Mounts the pseudo filesystems, tells the VMM it is up (marker port),
 * loads the kernel modules listed in /etc/hutch/modules with their
 * dependencies from modules.dep, runs the command hutch appended to the
 * initramfs (/hutch/cmd), reports its exit status (128+N for signal N) on
 * the exit port and powers the VM off. Guest stdout is ttyS0, stderr ttyS1.
 * Everything here trusts nothing but the kernel: bad input ends in status 125.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "guest/hutch-ports.h"

#define STATUS_INIT_FAILED 125
#define MAX_ARGS 4096
#define MAX_CMD_FILE (1 << 20)
#define MAX_DEP_DEPTH 16

static int console_fd = -1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	dprintf(console_fd >= 0 ? console_fd : 2, "hutch-init: %.*s\n", n, buf);
}

static bool ports_ok;

static void port_write(unsigned short port, unsigned char v)
{
	if (ports_ok)
		outb(v, port);
}

/* Report status to the VMM and power off; never returns. */
static _Noreturn void finish(int status)
{
	if (console_fd >= 0)
		tcdrain(console_fd);
	tcdrain(STDERR_FILENO);
	port_write(HUTCH_PORT_EXIT, (unsigned char)status);
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void mount_one(const char *src, const char *dst, const char *type, unsigned long flags,
		      const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0 && errno != EBUSY)
		say("cannot mount %s on %s: %s", type, dst, strerror(errno));
}

static char *slurp(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, n = 0;
	char *buf;

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	while (buf) {
		ssize_t r;
		if (n == cap) {
			char *nb;
			if (cap >= max)
				break;
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = n;
	}
	return buf;
}

/* --- modules: modules.dep lists every module's full dependency closure --- */

static char *moddir;
static char *moddep;

/* Module name of a path like kernel/drivers/virtio/virtio_mmio.ko, '-' as '_'. */
static void modname(const char *path, size_t len, char *out, size_t outlen)
{
	const char *slash = memrchr(path, '/', len);
	size_t i = 0;

	if (slash) {
		len -= (size_t)(slash + 1 - path);
		path = slash + 1;
	}
	if (len > 3 && !memcmp(path + len - 3, ".ko", 3))
		len -= 3;
	for (; i < len && i + 1 < outlen; i++)
		out[i] = path[i] == '-' ? '_' : path[i];
	out[i] = '\0';
}

/* The modules.dep line of module name: start of line, or NULL. */
static const char *dep_line(const char *name)
{
	const char *line = moddep;

	while (line && *line) {
		const char *colon = strchr(line, ':'), *eol = strchr(line, '\n');
		char n[128];

		if (!eol)
			eol = line + strlen(line);
		if (colon && colon < eol) {
			modname(line, (size_t)(colon - line), n, sizeof(n));
			if (!strcmp(n, name))
				return line;
		}
		line = *eol ? eol + 1 : eol;
	}
	return NULL;
}

static int insert(const char *relpath, size_t len)
{
	char path[512];
	int fd, r;

	if (snprintf(path, sizeof(path), "%s/%.*s", moddir, (int)len, relpath) >= (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		say("cannot open module %s: %s", path, strerror(errno));
		return -1;
	}
	r = (int)syscall(SYS_finit_module, fd, "", 0);
	close(fd);
	if (r < 0 && errno != EEXIST) {
		say("cannot load module %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Load name after its dependencies; modprobe's order: the last listed goes first. */
static int load_module(const char *name, int depth)
{
	const char *line = dep_line(name), *colon, *eol, *p, *end;

	if (!line) {
		say("module %s is not in modules.dep", name);
		return -1;
	}
	if (depth > MAX_DEP_DEPTH)
		return -1;
	colon = strchr(line, ':');
	eol = strchr(line, '\n');
	if (!eol)
		eol = line + strlen(line);
	end = eol;
	/* Walk the dependency list backwards. */
	while (end > colon + 1) {
		char n[128];
		p = end;
		while (p > colon + 1 && p[-1] == ' ')
			p--;
		end = p;
		while (p > colon + 1 && p[-1] != ' ')
			p--;
		if (end > p) {
			modname(p, (size_t)(end - p), n, sizeof(n));
			if (load_module(n, depth + 1) < 0)
				return -1;
		}
		end = p;
	}
	return insert(line, (size_t)(colon - line));
}

static void load_modules(void)
{
	struct utsname u;
	char *list, *save = NULL, *tok;
	char path[300];

	if (uname(&u) < 0)
		return;
	list = slurp("/etc/hutch/modules", 1 << 16, NULL);
	if (!list)
		return;
	snprintf(path, sizeof(path), "/lib/modules/%s", u.release);
	moddir = strdup(path);
	snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", u.release);
	moddep = slurp(path, 1 << 22, NULL);
	if (!moddep || !moddir) {
		say("no modules.dep for kernel %s: modules not loaded", u.release);
		free(list);
		return;
	}
	for (tok = strtok_r(list, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		char n[128];
		modname(tok, strlen(tok), n, sizeof(n));
		load_module(n, 0);
	}
	free(list);
}

/* --- the command --- */

struct request {
	bool shell;
	const char *term;
	char *argv[MAX_ARGS + 1];
};

static int read_request(struct request *req)
{
	size_t len = 0, i = 0;
	char *buf = slurp("/hutch/cmd", MAX_CMD_FILE, &len), *p, *end;
	int n = 0;

	if (!buf) {
		say("no /hutch/cmd: was this initramfs booted by hutch?");
		return -1;
	}
	end = buf + len;
	if (len == 0 || end[-1] != '\0') {
		say("malformed /hutch/cmd");
		return -1;
	}
	for (p = buf; p < end; p += strlen(p) + 1, i++) {
		if (i == 0)
			req->shell = !strcmp(p, "shell");
		else if (i == 1)
			req->term = p;
		else if (n < MAX_ARGS)
			req->argv[n++] = p;
	}
	req->argv[n] = NULL;
	if (!req->shell && n == 0) {
		say("no command to run");
		return -1;
	}
	return 0;
}

static int open_tty(const char *path, bool raw_output)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct termios t;

	if (fd < 0)
		return -1;
	if (tcgetattr(fd, &t) == 0) {
		if (raw_output) {
			/* Byte for byte: no \n -> \r\n, no echo of anything. */
			t.c_oflag &= ~(tcflag_t)OPOST;
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
		} else {
			t.c_oflag |= OPOST | ONLCR;
			t.c_lflag |= ECHO | ECHOE | ECHOK | ICANON | ISIG | IEXTEN;
			t.c_iflag |= ICRNL;
		}
		tcsetattr(fd, TCSANOW, &t);
	}
	return fd;
}

static void set_winsize(int fd, unsigned *last)
{
	unsigned v;
	struct winsize ws;

	if (!ports_ok)
		return;
	v = inl(HUTCH_PORT_WINSIZE);
	if (v == 0 || v == 0xffffffffu || v == *last)
		return;
	*last = v;
	memset(&ws, 0, sizeof(ws));
	ws.ws_row = (unsigned short)(v >> 16);
	ws.ws_col = (unsigned short)(v & 0xffff);
	/* The kernel sends SIGWINCH to the foreground process group. */
	ioctl(fd, TIOCSWINSZ, &ws);
}

static int run(struct request *req)
{
	static char *shell_argv[] = {"/bin/sh", NULL};
	char **argv = req->shell ? shell_argv : req->argv;
	int out = console_fd, err_fd, in;
	unsigned last_ws = 0;
	sigset_t set;
	pid_t pid;

	err_fd = req->shell ? -1 : open_tty("/dev/ttyS1", true);
	if (err_fd < 0)
		err_fd = out;
	in = req->shell ? out : open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (req->shell)
		set_winsize(out, &last_ws);

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);

	pid = fork();
	if (pid < 0) {
		say("cannot fork: %s", strerror(errno));
		return STATUS_INIT_FAILED;
	}
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		setsid();
		if (req->shell)
			ioctl(out, TIOCSCTTY, 0);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err_fd, 2) < 0)
			_exit(STATUS_INIT_FAILED);
		execvp(argv[0], argv);
		{
			int e = errno;
			dprintf(2, "hutch-init: cannot run '%s': %s\n", argv[0], strerror(e));
			tcdrain(2);
			_exit(e == ENOENT ? 127 : 126);
		}
	}
	for (;;) {
		struct timespec poll_ws = {0, 250 * 1000 * 1000};
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, req->shell ? &poll_ws : NULL);

		if (sig < 0) {
			if (req->shell)
				set_winsize(out, &last_ws);
			continue;
		}
		if (sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGTERM) {
			/* busybox halt/poweroff/reboot: end the run as if the command exited 0. */
			kill(-pid, SIGKILL);
			tcdrain(out);
			return 0;
		}
		if (sig != SIGCHLD)
			continue;
		for (;;) {
			int st;
			pid_t r = waitpid(-1, &st, WNOHANG);
			if (r <= 0)
				break;
			if (r != pid)
				continue; /* an orphan reparented to init */
			tcdrain(out);
			if (err_fd != out)
				tcdrain(err_fd);
			if (WIFEXITED(st))
				return WEXITSTATUS(st);
			return 128 + WTERMSIG(st);
		}
	}
}

int main(void)
{
	struct request req;

	if (getpid() != 1) {
		fprintf(stderr, "hutch-init: must run as PID 1 of a hutch VM\n");
		return 1;
	}
	ports_ok = ioperm(HUTCH_PORT_BASE, HUTCH_PORT_COUNT, 1) == 0;
	port_write(HUTCH_PORT_MARKER, 1);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	/*
	 * Without /dev/console in the initramfs the kernel starts init with fds
	 * 0-2 closed; fill them so the consoles opened below never land there.
	 */
	for (;;) {
		int fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			break;
		if (fd > 2) {
			close(fd);
			break;
		}
	}
	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "ptmxmode=0666");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");

	memset(&req, 0, sizeof(req));
	if (read_request(&req) < 0)
		finish(STATUS_INIT_FAILED);
	console_fd = open_tty("/dev/ttyS0", !req.shell);
	if (console_fd < 0) {
		say("cannot open /dev/ttyS0: %s", strerror(errno));
		finish(STATUS_INIT_FAILED);
	}
	load_modules();

	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("TERM", req.term && *req.term ? req.term : "dumb", 1);
	if (chdir("/root") < 0 && chdir("/") < 0)
		say("cannot change directory: %s", strerror(errno));
	finish(run(&req));
}
