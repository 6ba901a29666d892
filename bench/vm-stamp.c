/*
 * vm-stamp: run a VMM and time it from the outside, the same way for hutch
 * and QEMU. Prints one line:
 *
 *   first_output_ms=F exit_ms=E status=S vmm_rss_kib=R guest_rss_kib=G
 *   vmm_rss_max_kib=RM vmm_dirty_max_kib=DM guest_rss_max_kib=GM
 *
 * F: process start to the first byte on the VMM's stdout (the guest command
 * printing); E: to the VMM's exit. R: resident memory of the VMM process
 * outside guest RAM (every mapping at least GUEST_MIB large is taken for
 * guest RAM), sampled SAMPLE_MS after the first byte; G: resident guest RAM.
 * With VM_STAMP_EVERY_MS=T in the environment the sample is taken again
 * every T ms until the VMM exits, and RM, DM and GM are the largest Rss,
 * Private_Dirty outside guest RAM and guest Rss seen (else those of the one
 * sample). VM_STAMP_OUT=FILE keeps what the VMM printed on stdout in FILE.
 * VM_STAMP_TIMEOUT_S=S kills the VMM (SIGKILL) S seconds after its start:
 * an L2 guest of the L1 bench can hang (docs/vm.md, "Known flakes").
 *
 *   vm-stamp GUEST_MIB SAMPLE_MS VMM [ARG...]
 *
 * Built static so it runs inside the L1 bench guest as is.
 */
#include <errno.h>
#include <fcntl.h>
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

struct sample {
	unsigned long long vmm_kib, vmm_dirty_kib, guest_kib;
};

/*
 * Sum Rss (and Private_Dirty) of pid's mappings, split at mappings of at
 * least guest bytes.
 */
static void sample_rss(pid_t pid, unsigned long long guest, struct sample *s)
{
	char path[64], line[512];
	unsigned long long start, end, size = 0, kib;
	FILE *f;

	*s = (struct sample){0};
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
				s->guest_kib += kib;
			else
				s->vmm_kib += kib;
		}
		if (sscanf(line, "Private_Dirty: %llu kB", &kib) == 1 && size < guest)
			s->vmm_dirty_kib += kib;
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	unsigned long long guest;
	struct sample first_sample = {0}, max = {0}, s;
	double t0, first = -1, sample_at = -1, sample_ms, every_ms = 0;
	const char *every = getenv("VM_STAMP_EVERY_MS"), *keep = getenv("VM_STAMP_OUT");
	const char *limit = getenv("VM_STAMP_TIMEOUT_S");
	double timeout_ms = limit ? strtod(limit, NULL) * 1e3 : 0;
	int killed = 0;
	int out[2], st, keep_fd = -1;
	int sampled = 0;
	pid_t pid;

	if (argc < 4) {
		fprintf(stderr, "usage: vm-stamp GUEST_MIB SAMPLE_MS VMM [ARG...]\n");
		return 2;
	}
	guest = strtoull(argv[1], NULL, 10) << 20;
	sample_ms = strtod(argv[2], NULL);
	if (every)
		every_ms = strtod(every, NULL);
	if (keep) {
		keep_fd = open(keep, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (keep_fd < 0) {
			perror(keep);
			return 2;
		}
	}
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
			if (n > 0 && keep_fd >= 0 && write(keep_fd, buf, n) != n) {
				perror(keep);
				return 2;
			}
			if (n > 0 && first < 0) {
				first = now_ms() - t0;
				sample_at = first + sample_ms;
			}
			if (n == 0)
				break;
		}
		if (timeout_ms > 0 && !killed && now_ms() - t0 >= timeout_ms) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		if ((!sampled || every_ms > 0) && sample_at >= 0 && now_ms() - t0 >= sample_at) {
			sample_rss(pid, guest, &s);
			if (!sampled)
				first_sample = s;
			/* The last read of smaps can come after the VMM has exited: skip it. */
			if (s.vmm_kib > max.vmm_kib)
				max.vmm_kib = s.vmm_kib;
			if (s.vmm_dirty_kib > max.vmm_dirty_kib)
				max.vmm_dirty_kib = s.vmm_dirty_kib;
			if (s.guest_kib > max.guest_kib)
				max.guest_kib = s.guest_kib;
			sampled = 1;
			sample_at += every_ms;
		}
	}
	waitpid(pid, &st, 0);
	printf("first_output_ms=%.1f exit_ms=%.1f status=%d vmm_rss_kib=%llu guest_rss_kib=%llu "
	       "vmm_rss_max_kib=%llu vmm_dirty_max_kib=%llu guest_rss_max_kib=%llu\n",
	       first, now_ms() - t0, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
	       first_sample.vmm_kib, first_sample.guest_kib, max.vmm_kib, max.vmm_dirty_kib,
	       max.guest_kib);
	return 0;
}
