/* Console output, fatal errors and power-off for PID 1. */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

static int shell_on_fatal;

void fatal_set_shell(int on)
{
	shell_on_fatal = on;
}

/* The kernel gives PID 1 no stdio when the initramfs has no /dev/console;
 * open it once devtmpfs is mounted. */
void console_setup(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
	setvbuf(stderr, NULL, _IONBF, 0);
}

void log_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sandbox-init: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	/* Not PID 1 (tests), or reboot refused: do not pretend. */
	_exit(1);
}

static void debug_shell(void)
{
	const char *shells[] = {"/bin/sh", "/bin/busybox"};
	for (size_t i = 0; i < 2; i++) {
		if (access(shells[i], X_OK) != 0)
			continue;
		const char *argv[] = {shells[i], NULL, NULL};
		if (i == 1)
			argv[1] = "sh";
		log_msg("debug shell (%s); exit to power off", shells[i]);
		run_wait(argv);
		return;
	}
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sandbox-init: FATAL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	if (shell_on_fatal && getpid() == 1)
		debug_shell();
	if (getpid() != 1)
		_exit(1);
	power_off();
}

/* Run a helper (ldconfig, the debug shell) with the console as stdio;
 * returns its exit status, or a negative errno when it could not run. */
int run_wait(const char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		static char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
					     "HOME=/root", "TERM=linux", NULL};
		execve(argv[0], (char *const *)argv, envp);
		fprintf(stderr, "sandbox-init: exec %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}
