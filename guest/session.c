/* Serve one command on the control channel (framing in parse/cmd_channel.h):
 * read the SPEC, start the command, carry stdin/stdout/stderr, window size
 * and signals, reap, report EXIT. The host is trusted less than nothing
 * here only in the sense that every frame is size-checked; it decides what
 * runs. */
#include "guest.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "../parse/cmd_channel.h"
#include "../common/util.h"

#define STDIN_QUEUE_MAX (1u << 20)

static uint8_t rbuf[CONTROL_HEADER_LEN + CONTROL_MAX_PAYLOAD];
static size_t rlen;
static struct control_spec spec;
static uint8_t specbuf[CONTROL_MAX_PAYLOAD];
static uint8_t inq[STDIN_QUEUE_MAX + CONTROL_MAX_PAYLOAD];
static size_t inq_len;
static int in_eof;

static int send_frame(int c, uint8_t type, const void *p, size_t len)
{
	uint8_t h[CONTROL_HEADER_LEN];
	control_header_encode(type, (uint32_t)len, h);
	int r = write_all(c, h, sizeof(h));
	return r ? r : write_all(c, p, len);
}

static void send_exit(int c, uint8_t how, uint32_t code)
{
	uint8_t f[10];
	control_exit_frame(how, code, f);
	write_all(c, f, sizeof(f));
}

/* Read until one whole frame is buffered. 1: got one; 0: EOF; <0 error. */
static int read_frame(int c, struct control_frame *f, const char **why)
{
	for (;;) {
		size_t used;
		enum control_status st = control_frame_parse(rbuf, rlen, f, &used);
		if (st == CONTROL_OK)
			return 1;
		if (st != CONTROL_INCOMPLETE) {
			*why = control_status_str(st);
			return -EPROTO;
		}
		ssize_t n = read_retry(c, rbuf + rlen, sizeof(rbuf) - rlen);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;
		rlen += (size_t)n;
	}
}

static void consume(const struct control_frame *f)
{
	size_t used = CONTROL_HEADER_LEN + f->len;
	memmove(rbuf, rbuf + used, rlen - used);
	rlen -= used;
}

static void fail_session(int c, const char *msg, uint32_t code)
{
	log_msg("control: %s", msg);
	send_frame(c, CONTROL_ERROR, msg, strlen(msg));
	send_exit(c, CONTROL_EXITED, code);
}

/* Handle one host frame while the command runs. <0: protocol error. */
static int host_frame(const struct control_frame *f, struct spawned *sp,
		      const char **why)
{
	enum control_status st = CONTROL_OK;
	uint16_t rows, cols;
	int sig;
	switch (f->type) {
	case CONTROL_STDIN:
		if (in_eof)
			break;
		if (f->len == 0) {
			in_eof = 1;
		} else {
			if (f->len > sizeof(inq) - inq_len) {
				*why = "stdin queue overflow";
				return -EPROTO;
			}
			memcpy(inq + inq_len, f->payload, f->len);
			inq_len += f->len;
		}
		break;
	case CONTROL_WINSZ:
		st = control_winsz_parse(f->payload, f->len, &rows, &cols);
		if (st == CONTROL_OK && sp->master >= 0) {
			struct winsize ws = {.ws_row = rows, .ws_col = cols};
			ioctl(sp->master, TIOCSWINSZ, &ws);
		}
		break;
	case CONTROL_SIGNAL:
		st = control_signal_parse(f->payload, f->len, &sig);
		if (st == CONTROL_OK)
			kill(-sp->pid, sig);
		break;
	default:
		*why = "unexpected frame type from host";
		return -EPROTO;
	}
	if (st != CONTROL_OK) {
		*why = control_status_str(st);
		return -EPROTO;
	}
	return 0;
}

/* Move queued stdin to the command. */
static void feed_stdin(struct spawned *sp)
{
	int fd = sp->master >= 0 ? sp->master : sp->in;
	if (fd < 0)
		return;
	if (inq_len > 0) {
		ssize_t n = write(fd, inq, inq_len);
		if (n > 0) {
			memmove(inq, inq + n, inq_len - (size_t)n);
			inq_len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			inq_len = 0; /* reader gone: drop, like a closed pipe */
		}
	}
	if (in_eof && inq_len == 0) {
		if (sp->master >= 0) {
			/* A terminal has no close: send the EOF character. */
			struct termios t;
			char eof = 4;
			if (tcgetattr(sp->master, &t) == 0)
				eof = (char)t.c_cc[VEOF];
			(void)!write(sp->master, &eof, 1);
		} else {
			close(sp->in);
			sp->in = -1;
		}
		in_eof = 2; /* delivered */
	}
}

/* Relay one chunk of output. 0: EOF or gone. */
static int pump(int c, int *fd, uint8_t type)
{
	static uint8_t buf[65536];
	ssize_t n = read(*fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n <= 0) { /* EIO on a PTY master when the slave side is gone */
		close(*fd);
		*fd = -1;
		send_frame(c, type, NULL, 0);
		return 0;
	}
	send_frame(c, type, buf, (size_t)n);
	return 1;
}

/* Handle every whole frame buffered so far. <0: protocol error. */
static int process_buffered(struct spawned *sp)
{
	struct control_frame f;
	size_t used;
	const char *why = NULL;
	enum control_status st;
	while ((st = control_frame_parse(rbuf, rlen, &f, &used)) == CONTROL_OK) {
		if (host_frame(&f, sp, &why) < 0) {
			log_msg("control: bad frame from host: %s", why);
			return -EPROTO;
		}
		consume(&f);
	}
	if (st != CONTROL_INCOMPLETE) {
		log_msg("control: bad frame from host: %s", control_status_str(st));
		return -EPROTO;
	}
	return 0;
}

static int run_session(int c, int sfd, const struct boot_config *cfg)
{
	const char *why = "connection closed before SPEC";
	struct control_frame f;
	int r = read_frame(c, &f, &why);
	if (r <= 0 || f.type != CONTROL_SPEC) {
		fail_session(c, r < 0 ? why : "first frame must be SPEC", 127);
		return -EPROTO;
	}
	memcpy(specbuf, f.payload, f.len);
	enum control_status st = control_spec_parse(specbuf, f.len, &spec);
	consume(&f);
	if (st != CONTROL_OK) {
		fail_session(c, control_status_str(st), 127);
		return -EPROTO;
	}
	const char *cawhat = NULL;
	if ((r = guest_ca_take(&spec, &cawhat)) < 0) {
		char msg[300];
		fmt_buf(msg, sizeof(msg), "cannot install %s: %s", cawhat,
			strerror(-r));
		fail_session(c, msg, 127);
		return -EPROTO;
	}
	struct spawned sp;
	r = spawn_command(&spec, cfg->workspace, &sp);
	if (r < 0 || sp.exec_errno) {
		char msg[512];
		fmt_buf(msg, sizeof(msg), "cannot run %s: %s", spec.argv[0],
			strerror(r < 0 ? -r : sp.exec_errno));
		if (r == 0)
			waitpid(sp.pid, NULL, 0);
		fail_session(c, msg,
			     (r == 0 && sp.exec_errno == ENOENT) ? 127 : 126);
		return 0;
	}
	timing_mark("exec");
	int fds[] = {sp.master, sp.in, sp.out, sp.err};
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);

	/* Frames that came in with the SPEC are handled first. */
	int status = 0, exited = 0, host_open = 1, buffered = 1;
	int *out = sp.master >= 0 ? &sp.master : &sp.out;
	for (;;) {
		struct pollfd p[5];
		int n = 0;
		int ic = -1, io = -1, ie = -1;
		if (host_open && inq_len < STDIN_QUEUE_MAX)
			ic = n, p[n++] = (struct pollfd){.fd = c, .events = POLLIN};
		if (*out >= 0)
			io = n, p[n++] = (struct pollfd){.fd = *out, .events = POLLIN};
		if (sp.err >= 0)
			ie = n, p[n++] = (struct pollfd){.fd = sp.err, .events = POLLIN};
		if (sp.in >= 0 && inq_len > 0)
			p[n++] = (struct pollfd){.fd = sp.in, .events = POLLOUT};
		p[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		/* After the command exits, output still in the pipes is sent;
		 * a background process holding them open does not keep the
		 * session alive past a quiet 200 ms. */
		/* Frames already buffered (those that came with the SPEC)
		 * are handled without waiting for more bytes: poll must not
		 * block while they sit in rbuf. */
		int ready = poll(p, (nfds_t)n, buffered ? 0 : exited ? 200 : -1);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready == 0 && exited && !buffered)
			break;
		if (p[n - 1].revents) {
			struct signalfd_siginfo si;
			(void)!read(sfd, &si, sizeof(si));
		}
		int wst;
		pid_t w;
		while ((w = waitpid(-1, &wst, WNOHANG)) > 0)
			if (w == sp.pid)
				status = wst, exited = 1;
		if (ic >= 0 && p[ic].revents) {
			ssize_t got = read(c, rbuf + rlen, sizeof(rbuf) - rlen);
			if (got <= 0) {
				/* Host went away: the command has no one to
				 * report to. */
				host_open = 0;
				kill(-sp.pid, SIGKILL);
			} else {
				rlen += (size_t)got;
				buffered = 1;
			}
		}
		if (buffered && host_open && process_buffered(&sp) < 0) {
			host_open = 0;
			kill(-sp.pid, SIGKILL);
		}
		buffered = 0;
		feed_stdin(&sp);
		if (io >= 0 && p[io].revents)
			pump(c, out, CONTROL_STDOUT);
		if (ie >= 0 && p[ie].revents)
			pump(c, &sp.err, CONTROL_STDERR);
		if (exited && *out < 0 && sp.err < 0)
			break;
	}
	if (*out >= 0)
		send_frame(c, CONTROL_STDOUT, NULL, 0);
	if (sp.err >= 0)
		send_frame(c, CONTROL_STDERR, NULL, 0);
	if (WIFSIGNALED(status))
		send_exit(c, CONTROL_SIGNALED, (uint32_t)WTERMSIG(status));
	else
		send_exit(c, CONTROL_EXITED, (uint32_t)WEXITSTATUS(status));
	return 0;
}

/* One connection, in its own process: run the command, report EXIT, then
 * let the last frames drain: wait for the host to close its side, for at
 * most two seconds. */
static void __attribute__((noreturn))
serve_one(int c, const struct boot_config *cfg)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	run_session(c, sfd, cfg);
	shutdown(c, SHUT_WR);
	struct pollfd p = {.fd = c, .events = POLLIN};
	char junk[4096];
	while (poll(&p, 1, 2000) > 0 && read(c, junk, sizeof(junk)) > 0)
		;
	_exit(0);
}

/* Serve connections side by side, one process each (each has its own
 * buffers and reaps only its own command): the first is the sandbox's
 * main command, later ones are `sandbox-launch exec`. When the main one
 * ends, the guest powers off; commands started by exec end with it. PID 1
 * also reaps orphans here. */
int session_serve(int lfd, const struct boot_config *cfg)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	pid_t main_pid = 0;
	for (;;) {
		struct pollfd p[2] = {{.fd = lfd, .events = POLLIN},
				      {.fd = sfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (p[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			int wst;
			pid_t w;
			while ((w = waitpid(-1, &wst, WNOHANG)) > 0)
				if (w == main_pid) {
					close(sfd);
					return 0;
				}
		}
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EAGAIN)
				continue;
			return -errno;
		}
		if (!main_pid)
			timing_mark("connected");
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			close(sfd);
			serve_one(c, cfg);
		}
		if (pid < 0)
			log_msg("control: fork: %s", strerror(errno));
		else if (!main_pid)
			main_pid = pid;
		close(c);
	}
}
