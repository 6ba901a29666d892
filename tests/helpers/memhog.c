/*
 * memhog MIB: allocate and touch MIB mebibytes, 4 MiB at a time, with a
 * short pause between steps so a watchdog sampling memory sees the growth;
 * prints "done" if it got them all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 256;
	struct timespec pause = {.tv_nsec = 5 * 1000 * 1000};

	for (long done = 0; done < mib; done += 4) {
		char *p = malloc(4 << 20);
		if (!p) {
			printf("malloc failed at %ld MiB\n", done);
			return 1;
		}
		memset(p, 1, 4 << 20);
		nanosleep(&pause, NULL);
	}
	printf("done\n");
	return 0;
}
