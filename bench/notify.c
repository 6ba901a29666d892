/*
 * bench/notify: the cost of one call the box's supervisor sees.
 *
 * Times N calls of bind(-1, NULL, 0), which the box's filter sends to the
 * supervisor (it logs the attempt, then lets the kernel answer EBADF), and
 * prints nanoseconds per call. Run natively and in a box; the difference is
 * the supervisor's round trip, logging included. bench/run pins both to one
 * CPU, as the design notes measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		bind(-1, NULL, 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n);
	return 0;
}
