/* The host terminal: raw mode while a tty session runs, restored on every
 * way out (normal exit, die(), a terminating signal handled by the
 * launcher). A SIGKILL cannot be caught; `reset` fixes the terminal then. */
#include "launch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;
static int saved_fd = -1;

void tty_restore(void)
{
	if (saved_fd < 0)
		return;
	tcsetattr(saved_fd, TCSADRAIN, &saved);
	saved_fd = -1;
}

int tty_raw_enter(int fd)
{
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return -errno;
	saved = t;
	saved_fd = fd;
	atexit(tty_restore);
	/* Everything, Ctrl-C included, goes to the guest's PTY, whose line
	 * discipline turns it into SIGINT for the guest's foreground job. */
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSADRAIN, &t) < 0) {
		saved_fd = -1;
		return -errno;
	}
	return 0;
}

void tty_winsize(int fd, uint16_t *rows, uint16_t *cols)
{
	struct winsize ws;
	memset(&ws, 0, sizeof(ws));
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0 || !ws.ws_row || !ws.ws_col) {
		ws.ws_row = 24;
		ws.ws_col = 80;
	}
	*rows = ws.ws_row;
	*cols = ws.ws_col;
}
