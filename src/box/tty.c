#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "box/tty.h"
#include "common/banned.h"

static struct termios saved;
static bool raw;
static pid_t raw_owner;

bool tty_wanted(void)
{
	return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

void tty_copy_winsize(int master)
{
	struct winsize ws;

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

void tty_setup_pty(int master)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &t) == 0)
		tcsetattr(master, TCSANOW, &t);
	tty_copy_winsize(master);
}

void tty_restore(void)
{
	/* Only the process that changed the modes restores them. */
	if (raw && raw_owner == getpid()) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved);
		raw = false;
	}
}

int tty_make_raw(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &saved) < 0)
		return -1;
	t = saved;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0)
		return -1;
	if (!raw_owner)
		atexit(tty_restore);
	raw = true;
	raw_owner = getpid();
	return 0;
}
