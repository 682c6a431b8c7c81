/* The host end of the control channel (framing: parse/cmd_channel.h).
 *
 * The launcher reaches guest vsock port 1024 through the bridge's CONNECT
 * socket, sends one SPEC, then relays: host stdin -> STDIN frames, STDOUT
 * and STDERR frames -> our fds 1 and 2 (kept apart), SIGWINCH -> WINSZ,
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT -> SIGNAL to the command's process group,
 * until EXIT. The guest is untrusted: every frame is size-checked by the
 * shared parsers before use.
 */
#include "launch.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../parse/cmd_channel.h"
#include "../common/clock.h"
#include "../common/util.h"

/* A second signal, or this long after the first, gives up on the guest. */
#define INTERRUPT_GRACE_MS 5000
/* Between tries to reach the guest's control channel while it boots. */
#define CONNECT_RETRY_MS 20

static uint8_t rbuf[CONTROL_HEADER_LEN + CONTROL_MAX_PAYLOAD];
static uint8_t sbuf[CONTROL_HEADER_LEN + CONTROL_MAX_PAYLOAD];

static bool terminating(int signo)
{
	return signo == SIGINT || signo == SIGTERM || signo == SIGHUP ||
	       signo == SIGQUIT;
}

/* One pending signal from sigfd, 0 if none. */
static int next_signal(int sigfd)
{
	struct signalfd_siginfo si;
	ssize_t n = read(sigfd, &si, sizeof(si));
	return n == sizeof(si) ? (int)si.ssi_signo : 0;
}

/* Send CONNECT and read the reply line. 1: OK; 0: refused (guest not
 * listening yet); 2: a signal is pending on sigfd (not read); <0: error.
 * The wait for the reply watches sigfd too: a guest that is slow to boot
 * must not keep Ctrl-C waiting until the boot timeout. */
static int try_connect(int fd, const char *path, unsigned port,
		       uint64_t deadline, int sigfd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char line[64];
	if (fmt_buf(sa.sun_path, sizeof(sa.sun_path), "%s", path))
		return -ENAMETOOLONG;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno == ENOENT || errno == ECONNREFUSED ? 0 : -errno;
	fmt_buf(line, sizeof(line), "CONNECT %u\n", port);
	if (write_all(fd, line, strlen(line)))
		return 0;
	size_t len = 0;
	/* Byte by byte: frames may follow the reply in the stream. */
	while (len + 1 < sizeof(line)) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = sigfd, .events = POLLIN}};
		uint64_t now = mono_ms();
		if (now >= deadline)
			return 0;
		int r = poll(p, 2, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if (p[1].revents & POLLIN)
			return 2;
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = read(fd, line + len, 1);
		if (n <= 0)
			return 0;
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	return strncmp(line, "OK ", 3) == 0 ? 1 : 0;
}

int control_connect(const char *bridge_sock, unsigned port,
		    uint64_t deadline_ms, int sigfd, bool (*abort_check)(void))
{
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int r = try_connect(fd, bridge_sock, port, deadline_ms, sigfd);
		if (r == 1)
			return fd;
		close(fd);
		if (r < 0)
			return r;
		if (r == 2) {
			int s;
			while ((s = next_signal(sigfd)))
				if (terminating(s)) {
					/* Pending again (it is blocked), so
					 * that the caller exits with it. */
					raise(s);
					return -EINTR;
				}
		}
		if (abort_check && abort_check())
			return -ECHILD;
		uint64_t now = mono_ms();
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		/* Wait a little before the next try, watching for signals.
		 * The wait is what the command's start can lag the guest's
		 * listen; a refused try costs the bridge and the guest one
		 * packet each. */
		struct pollfd p = {.fd = sigfd, .events = POLLIN};
		uint64_t wait = deadline_ms - now < CONNECT_RETRY_MS
					? deadline_ms - now
					: CONNECT_RETRY_MS;
		if (poll(&p, 1, (int)wait) > 0) {
			int s;
			while ((s = next_signal(sigfd)))
				if (terminating(s)) {
					raise(s);
					return -EINTR;
				}
		}
	}
}

/* A bounded byte queue. The relay never blocks on a write: bytes for the
 * control socket and for our stdout/stderr wait here, and a full queue
 * stops the reads that would fill it (host stdin for the socket queue, the
 * control socket for stdout/stderr), so the guest's output keeps flowing
 * while a command ignores its stdin, and memory stays bounded. */
struct byteq {
	uint8_t *buf;
	size_t cap, off, len;
	int fd;
	bool gone; /* EPIPE/EIO: drop what comes, as a closed pipe would */
};

/* Host stdin is read only while a whole STDIN frame fits, leaving room for
 * the small WINSZ/SIGNAL frames. */
#define SOCKQ_CAP (256u * 1024u)
#define SOCKQ_RESERVE 4096u
#define OUTQ_CAP (2u * CONTROL_MAX_PAYLOAD)
#define STDIN_CHUNK 65536u

static uint8_t sockq_buf[SOCKQ_CAP + SOCKQ_RESERVE];
static uint8_t outq_buf[2][OUTQ_CAP];

static size_t q_room(const struct byteq *q)
{
	return q->cap - q->len;
}

static bool q_put(struct byteq *q, const void *p, size_t n)
{
	if (q->gone || n == 0) /* an empty frame body may come as NULL */
		return true;
	if (n > q_room(q))
		return false;
	if (q->off + q->len + n > q->cap) {
		memmove(q->buf, q->buf + q->off, q->len);
		q->off = 0;
	}
	memcpy(q->buf + q->off + q->len, p, n);
	q->len += n;
	return true;
}

static bool q_frame(struct byteq *q, uint8_t type, const void *p, size_t n)
{
	uint8_t h[CONTROL_HEADER_LEN];
	if (n + sizeof(h) > q_room(q))
		return false;
	control_header_encode(type, (uint32_t)n, h);
	q_put(q, h, sizeof(h));
	return q_put(q, p, n);
}

/* Write what the fd takes now without blocking. A fd we must not make
 * O_NONBLOCK (our stdout may be a terminal shared with the shell) gets
 * PIPE_BUF-sized writes, each after poll said it is writable, which a pipe
 * or terminal then accepts without blocking; regular files never block.
 * 0: progress or nothing to do; <0: the fd is gone (queue dropped). */
static int q_flush(struct byteq *q, bool nonblocking)
{
	struct stat st;
	bool small = !nonblocking && !(fstat(q->fd, &st) == 0 &&
				       (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)));
	for (int i = 0; q->len && !q->gone && i < 64; i++) {
		if (small && i) {
			struct pollfd p = {.fd = q->fd, .events = POLLOUT};
			if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLOUT))
				break;
		}
		size_t n = small && q->len > PIPE_BUF ? PIPE_BUF : q->len;
		ssize_t w = write(q->fd, q->buf + q->off, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			q->gone = true;
			q->len = 0;
			return -EPIPE;
		}
		q->off += (size_t)w;
		q->len -= (size_t)w;
		if (!q->len)
			q->off = 0;
	}
	return 0;
}

/* Before returning: what the guest wrote reaches our stdout/stderr, even
 * if that has to wait for the reader. */
static void q_drain(struct byteq *q)
{
	while (q->len && !q->gone) {
		struct pollfd p = {.fd = q->fd, .events = POLLOUT};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
		q_flush(q, false);
	}
}

static int send_spec(int fd, const struct session_params *p)
{
	static struct control_spec spec;
	memset(&spec, 0, sizeof(spec));
	spec.uid = p->uid;
	spec.gid = p->gid;
	spec.tty = p->tty;
	if (p->tty)
		tty_winsize(1, &spec.rows, &spec.cols);
	else
		spec.rows = 24, spec.cols = 80;
	for (; p->argv[spec.argc]; spec.argc++) {
		if (spec.argc >= CONTROL_MAX_ARGS)
			return -E2BIG;
		spec.argv[spec.argc] = p->argv[spec.argc];
	}
	if (p->envc > CONTROL_MAX_ENV)
		return -E2BIG;
	for (size_t i = 0; i < p->envc; i++)
		spec.env[i] = p->env[i];
	spec.envc = (uint32_t)p->envc;
	spec.cwd = p->cwd;
	long n = control_spec_encode(&spec, sbuf + CONTROL_HEADER_LEN,
				     sizeof(sbuf) - CONTROL_HEADER_LEN);
	if (n < 0)
		return (int)n;
	control_header_encode(CONTROL_SPEC, (uint32_t)n, sbuf);
	return write_all(fd, sbuf, CONTROL_HEADER_LEN + (size_t)n);
}

/* 1: EXIT seen (res filled); 0: carry on; <0: protocol error. */
static int guest_frame(const struct control_frame *f, struct byteq *outq,
		       struct session_result *res)
{
	uint8_t how;
	uint32_t code;
	enum control_status st;
	switch (f->type) {
	case CONTROL_STDOUT:
	case CONTROL_STDERR:
		/* The caller checked there is room. A closed stdout on the
		 * host (EPIPE) drops the bytes, as a pipe would; the guest
		 * command is not stopped for it. */
		q_put(&outq[f->type == CONTROL_STDOUT ? 0 : 1], f->payload,
		      f->len);
		return 0;
	case CONTROL_ERROR: {
		char msg[512];
		size_t n = f->len < sizeof(msg) - 1 ? f->len : sizeof(msg) - 1;
		memcpy(msg, f->payload, n);
		msg[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)msg[i] < ' ')
				msg[i] = '?';
		tty_restore();
		fprintf(stderr, "sandbox-launch: in the guest: %s\n", msg);
		return 0;
	}
	case CONTROL_EXIT:
		st = control_exit_parse(f->payload, f->len, &how, &code);
		if (st != CONTROL_OK) {
			fmt_buf(res->why, sizeof(res->why), "bad EXIT frame: %s",
				control_status_str(st));
			return -EPROTO;
		}
		res->end = how == CONTROL_SIGNALED ? SESSION_SIGNALED
						   : SESSION_EXITED;
		res->code = code > 255 && how == CONTROL_EXITED ? 255 : (int)code;
		return 1;
	default:
		fmt_buf(res->why, sizeof(res->why),
			"unexpected frame type 0x%02x from the guest", f->type);
		return -EPROTO;
	}
}

/* Parse and handle the whole frames in rbuf while their destination has
 * room. 1: EXIT seen; 0: carry on; <0: protocol error. */
static int parse_frames(size_t *rlen, struct byteq *outq,
			struct session_result *res)
{
	struct control_frame f;
	size_t used;
	enum control_status st;
	while ((st = control_frame_parse(rbuf, *rlen, &f, &used)) == CONTROL_OK) {
		if ((f.type == CONTROL_STDOUT || f.type == CONTROL_STDERR) &&
		    f.len > q_room(&outq[f.type == CONTROL_STDOUT ? 0 : 1]))
			return 0; /* wait until our reader catches up */
		int r = guest_frame(&f, outq, res);
		if (r)
			return r;
		memmove(rbuf, rbuf + used, *rlen - used);
		*rlen -= used;
	}
	if (st != CONTROL_INCOMPLETE) {
		fmt_buf(res->why, sizeof(res->why), "bad frame from the guest: %s",
			control_status_str(st));
		return -EPROTO;
	}
	return 0;
}

int control_session(int fd, const struct session_params *p, int sigfd,
		    struct session_result *res)
{
	memset(res, 0, sizeof(*res));
	res->end = SESSION_LOST;
	signal(SIGPIPE, SIG_IGN);
	int r = send_spec(fd, p);
	if (r) {
		fmt_buf(res->why, sizeof(res->why), "cannot send the command: %s",
			strerror(-r));
		return r;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	struct byteq sockq = {.buf = sockq_buf, .cap = sizeof(sockq_buf), .fd = fd};
	struct byteq outq[2] = {
		{.buf = outq_buf[0], .cap = OUTQ_CAP, .fd = 1},
		{.buf = outq_buf[1], .cap = OUTQ_CAP, .fd = 2},
	};
	bool stdin_open = true, winsz_pending = false;
	uint64_t interrupt_deadline = 0;
	size_t rlen = 0;
	static uint8_t inbuf[STDIN_CHUNK];
	for (;;) {
		bool want_stdin = stdin_open &&
				  sockq.len + CONTROL_HEADER_LEN + STDIN_CHUNK <=
					  SOCKQ_CAP;
		struct pollfd pf[5] = {
			{.fd = rlen < sizeof(rbuf) || sockq.len ? fd : -1,
			 .events = (short)((rlen < sizeof(rbuf) ? POLLIN : 0) |
					   (sockq.len ? POLLOUT : 0))},
			{.fd = sigfd, .events = POLLIN},
			{.fd = want_stdin ? 0 : -1, .events = POLLIN},
			{.fd = outq[0].len ? 1 : -1, .events = POLLOUT},
			{.fd = outq[1].len ? 2 : -1, .events = POLLOUT},
		};
		int timeout = -1;
		if (interrupt_deadline) {
			uint64_t now = mono_ms();
			if (now >= interrupt_deadline) {
				res->end = SESSION_INTERRUPTED;
				fmt_buf(res->why, sizeof(res->why),
					"the command did not stop after the signal");
				return 0;
			}
			timeout = (int)(interrupt_deadline - now);
		}
		int n = poll(pf, 5, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if (pf[1].revents) {
			int s;
			while ((s = next_signal(sigfd))) {
				uint8_t fr[9];
				if (s == SIGWINCH && p->tty) {
					winsz_pending = true;
				} else if (terminating(s)) {
					if (interrupt_deadline) {
						res->end = SESSION_INTERRUPTED;
						res->code = s;
						fmt_buf(res->why, sizeof(res->why),
							"interrupted twice");
						return 0;
					}
					control_signal_frame(s, fr);
					/* The reserve always has room. */
					q_put(&sockq, fr, sizeof(fr));
					res->code = s;
					interrupt_deadline =
						mono_ms() + INTERRUPT_GRACE_MS;
				}
			}
		}
		if (winsz_pending && q_room(&sockq) >= 9) {
			/* Sent late when the queue is full: only the latest
			 * size matters. */
			uint8_t fr[9];
			uint16_t rows, cols;
			tty_winsize(1, &rows, &cols);
			control_winsz_frame(rows, cols, fr);
			q_put(&sockq, fr, sizeof(fr));
			winsz_pending = false;
		}
		if (pf[2].revents) {
			ssize_t got = read(0, inbuf, sizeof(inbuf));
			if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
				/* try again on the next round */
			} else if (got <= 0) {
				/* EOF, or an error (EIO on a hung-up
				 * terminal): the command's stdin ends. */
				stdin_open = false;
				q_frame(&sockq, CONTROL_STDIN, NULL, 0);
			} else {
				q_frame(&sockq, CONTROL_STDIN, inbuf, (size_t)got);
			}
		}
		if (sockq.len && q_flush(&sockq, true) < 0)
			stdin_open = false; /* the guest reads no more */
		for (int i = 0; i < 2; i++)
			if (pf[3 + i].revents)
				q_flush(&outq[i], false);
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR) &&
		    rlen < sizeof(rbuf)) {
			ssize_t got = read(fd, rbuf + rlen, sizeof(rbuf) - rlen);
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				got = -2;
			if (got == 0 || got == -1) {
				/* Frames still buffered (EXIT among them)
				 * wait only for our stdout/stderr. */
				size_t before;
				do {
					before = rlen;
					q_drain(&outq[0]);
					q_drain(&outq[1]);
					r = parse_frames(&rlen, outq, res);
				} while (!r && rlen && rlen < before);
				q_drain(&outq[0]);
				q_drain(&outq[1]);
				if (r)
					return r < 0 ? r : 0;
				fmt_buf(res->why, sizeof(res->why),
					"the guest closed the control channel "
					"without an exit status");
				return 0;
			}
			if (got > 0)
				rlen += (size_t)got;
		}
		r = parse_frames(&rlen, outq, res);
		if (r) {
			q_drain(&outq[0]);
			q_drain(&outq[1]);
			return r < 0 ? r : 0;
		}
	}
}

int session_exit_status(const struct session_result *res)
{
	switch (res->end) {
	case SESSION_EXITED:
		return res->code;
	case SESSION_SIGNALED:
		return 128 + res->code;
	default:
		return 128 + (res->code ? res->code : SIGTERM);
	}
}
