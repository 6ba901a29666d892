/* The host side of a box's terminal: relay bytes, window size and modes. */
#ifndef HUTCH_BOX_TTY_H
#define HUTCH_BOX_TTY_H

#include <stdbool.h>

/* True when hutch should give the box a pty: stdin and stdout are terminals. */
bool tty_wanted(void);

/* Copy the host terminal's modes and size to the pty master. */
void tty_setup_pty(int master);

/* Host terminal in raw mode until tty_restore() (also run at exit). */
int tty_make_raw(void);
void tty_restore(void);

/* Copy the host window size to the pty (on SIGWINCH). */
void tty_copy_winsize(int master);

#endif
