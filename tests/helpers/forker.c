/*
 * forker N: start N children that sleep, wait a second with them all
 * alive (long enough for a watchdog sampling the box to see them), print
 * how many forks succeeded ("forked K of N"), then end them all.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10, k = 0;

	for (; k < n; k++) {
		pid_t pid = fork();
		if (pid < 0)
			break;
		if (pid == 0) {
			pause();
			_exit(0);
		}
	}
	sleep(1);
	printf("forked %d of %d\n", k, n);
	fflush(stdout);
	signal(SIGTERM, SIG_IGN);
	kill(0, SIGTERM);
	while (wait(NULL) > 0)
		;
	return 0;
}
