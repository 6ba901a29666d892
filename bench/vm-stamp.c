/*
 * vm-stamp: run a VMM and time it from the outside, the same way for hutch
 * and QEMU. Prints one line:
 *
 *   first_output_ms=F exit_ms=E status=S vmm_rss_kib=R guest_rss_kib=G
 *
 * F: process start to the first byte on the VMM's stdout (the guest command
 * printing); E: to the VMM's exit. R: resident memory of the VMM process
 * outside guest RAM (every mapping at least GUEST_MIB large is taken for
 * guest RAM), sampled SAMPLE_MS after the first byte; G: resident guest RAM.
 *
 *   vm-stamp GUEST_MIB SAMPLE_MS VMM [ARG...]
 *
 * Built static so it runs inside the L1 bench guest as is.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Sum Rss of pid's mappings, split at mappings of at least guest bytes. */
static void sample_rss(pid_t pid, unsigned long long guest, unsigned long long *vmm_kib,
		       unsigned long long *guest_kib)
{
	char path[64], line[512];
	unsigned long long start, end, size = 0, kib;
	FILE *f;

	*vmm_kib = *guest_kib = 0;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			size = end - start;
			continue;
		}
		if (sscanf(line, "Rss: %llu kB", &kib) == 1) {
			if (size >= guest)
				*guest_kib += kib;
			else
				*vmm_kib += kib;
		}
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	unsigned long long guest, vmm_kib = 0, guest_kib = 0;
	double t0, first = -1, sample_at = -1, sample_ms;
	int out[2], st;
	int sampled = 0;
	pid_t pid;

	if (argc < 4) {
		fprintf(stderr, "usage: vm-stamp GUEST_MIB SAMPLE_MS VMM [ARG...]\n");
		return 2;
	}
	guest = strtoull(argv[1], NULL, 10) << 20;
	sample_ms = strtod(argv[2], NULL);
	if (pipe(out) < 0)
		return 2;
	t0 = now_ms();
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		execvp(argv[3], argv + 3);
		_exit(127);
	}
	close(out[1]);
	for (;;) {
		struct pollfd p = {.fd = out[0], .events = POLLIN};
		int timeout = 10;
		char buf[4096];

		if (poll(&p, 1, timeout) > 0) {
			ssize_t n = read(out[0], buf, sizeof(buf));
			if (n > 0 && first < 0) {
				first = now_ms() - t0;
				sample_at = first + sample_ms;
			}
			if (n == 0)
				break;
		}
		if (!sampled && sample_at >= 0 && now_ms() - t0 >= sample_at) {
			sample_rss(pid, guest, &vmm_kib, &guest_kib);
			sampled = 1;
		}
	}
	waitpid(pid, &st, 0);
	printf("first_output_ms=%.1f exit_ms=%.1f status=%d vmm_rss_kib=%llu guest_rss_kib=%llu\n",
	       first, now_ms() - t0, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), vmm_kib,
	       guest_kib);
	return 0;
}
