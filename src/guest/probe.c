/*
 * hutch-probe: reports guest state for hutch's VM tests, straight from the
 * kernel instead of scraped from tools' output (built static, runs in the
 * guest).
 *
 *   hutch-probe cpus            online CPUs
 *   hutch-probe memory          bytes in the firmware memory map (all, and RAM)
 *   hutch-probe port PORT       inb then outb(0x5a) on an I/O port
 *   hutch-probe mmio ADDR       32-bit read then write at a physical address
 *   hutch-probe virtio          a hostile driver on every virtio-mmio device
 *                               (probe_virtio.c)
 *   hutch-probe bytes           every byte value, 64 times over (16 KiB)
 *   hutch-probe pty ROWS COLS CMD...
 *                               run CMD on a new pseudo-terminal of that size,
 *                               relaying stdin to it and its output to stdout
 *   hutch-probe foreground CMD  exec CMD with SIGINT and SIGQUIT at their defaults,
 *                               as a terminal's foreground job has them (shells
 *                               ignore them in background jobs)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include "guest/probe-virtio.h"
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned long long read_hex(const char *dir, const char *name)
{
	char path[512], buf[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/firmware/memmap/%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtoull(buf, NULL, 16);
}

static int memory(void)
{
	DIR *d = opendir("/sys/firmware/memmap");
	unsigned long long total = 0, ram = 0;
	struct dirent *e;

	if (!d) {
		perror("hutch-probe: /sys/firmware/memmap");
		return 1;
	}
	while ((e = readdir(d))) {
		char path[512], type[64] = "";
		unsigned long long start, end;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		start = read_hex(e->d_name, "start");
		end = read_hex(e->d_name, "end");
		snprintf(path, sizeof(path), "/sys/firmware/memmap/%s/type", e->d_name);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(type, sizeof(type), f))
				type[0] = '\0';
			fclose(f);
		}
		total += end - start + 1;
		if (!strncmp(type, "System RAM", 10))
			ram += end - start + 1;
	}
	closedir(d);
	printf("memmap-total=%llu memmap-ram=%llu\n", total, ram);
	return 0;
}

static int port(const char *arg)
{
	unsigned long p = strtoul(arg, NULL, 0);
	unsigned v;

	if (p > 0xffff || ioperm(p, 1, 1) < 0) {
		perror("hutch-probe: ioperm");
		return 1;
	}
	v = inb((unsigned short)p);
	outb(0x5a, (unsigned short)p);
	printf("port 0x%lx read 0x%02x\n", p, v);
	return 0;
}

static int mmio(const char *arg)
{
	unsigned long long addr = strtoull(arg, NULL, 0);
	long page = sysconf(_SC_PAGESIZE);
	int fd = open("/dev/mem", O_RDWR | O_SYNC);
	volatile uint32_t *p;
	void *map;
	uint32_t v;

	if (fd < 0) {
		perror("hutch-probe: /dev/mem");
		return 1;
	}
	map = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		   (off_t)(addr & ~(unsigned long long)(page - 1)));
	if (map == MAP_FAILED) {
		perror("hutch-probe: mmap /dev/mem");
		return 1;
	}
	p = (volatile uint32_t *)((char *)map + (addr & (unsigned long long)(page - 1)));
	v = *p;
	*p = 0x5a5a5a5a;
	printf("mmio 0x%llx read 0x%08x\n", addr, v);
	return 0;
}

static int bytes(void)
{
	unsigned char buf[256 * 64];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 7 + i / 256);
	return fwrite(buf, 1, sizeof(buf), stdout) == sizeof(buf) && fflush(stdout) == 0 ? 0 : 1;
}

static int pty(char **argv)
{
	struct winsize ws = {.ws_row = (unsigned short)atoi(argv[0]),
			     .ws_col = (unsigned short)atoi(argv[1])};
	int master = posix_openpt(O_RDWR | O_NOCTTY), st = 0;
	bool in_open = true;
	pid_t pid;

	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
		perror("hutch-probe: pty");
		return 1;
	}
	ioctl(master, TIOCSWINSZ, &ws);
	pid = fork();
	if (pid == 0) {
		int slave;
		setsid();
		slave = open(ptsname(master), O_RDWR);
		if (slave < 0)
			_exit(126);
		ioctl(slave, TIOCSCTTY, 0);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		close(master);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = master, .events = POLLIN},
				      {.fd = 0, .events = POLLIN}};
		char buf[4096];
		ssize_t n;

		if (poll(p, in_open ? 2 : 1, -1) < 0)
			continue;
		if (p[0].revents) {
			n = read(master, buf, sizeof(buf));
			if (n <= 0)
				break; /* EIO: the last process on the terminal is gone */
			fwrite(buf, 1, (size_t)n, stdout);
			fflush(stdout);
		}
		if (in_open && p[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0)
				in_open = false;
			else if (write(master, buf, (size_t)n) < 0)
				in_open = false;
		}
	}
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "pty"))
		return pty(argv + 2);
	if (argc == 2 && !strcmp(argv[1], "bytes"))
		return bytes();
	if (argc >= 3 && !strcmp(argv[1], "foreground")) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		execvp(argv[2], argv + 2);
		perror("hutch-probe: exec");
		return 127;
	}
	if (argc == 2 && !strcmp(argv[1], "cpus")) {
		printf("%ld\n", sysconf(_SC_NPROCESSORS_ONLN));
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "memory"))
		return memory();
	if (argc == 3 && !strcmp(argv[1], "port"))
		return port(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "mmio"))
		return mmio(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "virtio"))
		return probe_virtio();
	fprintf(stderr,
		"usage: hutch-probe cpus|memory|bytes|port PORT|mmio ADDR|virtio|pty ROWS COLS CMD...|"
		"foreground CMD...\n");
	return 2;
}
