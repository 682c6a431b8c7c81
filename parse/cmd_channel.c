#include "cmd_channel.h"

#include <errno.h>
#include <string.h>

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static int known_type(uint8_t t)
{
	switch (t) {
	case CONTROL_SPEC:
	case CONTROL_STDIN:
	case CONTROL_WINSZ:
	case CONTROL_SIGNAL:
	case CONTROL_STDOUT:
	case CONTROL_STDERR:
	case CONTROL_EXIT:
	case CONTROL_ERROR:
		return 1;
	}
	return 0;
}

enum control_status control_frame_parse(const uint8_t *buf, size_t len,
					struct control_frame *out,
					size_t *used)
{
	*used = CONTROL_HEADER_LEN;
	if (len < CONTROL_HEADER_LEN)
		return CONTROL_INCOMPLETE;
	if (!known_type(buf[0]))
		return CONTROL_BAD_TYPE;
	uint32_t plen = get32(buf + 1);
	if (plen > CONTROL_MAX_PAYLOAD)
		return CONTROL_TOO_LONG;
	/* Fixed-size frames are checked here so a reader can reject them
	 * before buffering. */
	if ((buf[0] == CONTROL_WINSZ && plen != 4) ||
	    (buf[0] == CONTROL_SIGNAL && plen != 4) ||
	    (buf[0] == CONTROL_EXIT && plen != 5) ||
	    (buf[0] == CONTROL_SPEC && plen < CONTROL_SPEC_FIXED + 2))
		return CONTROL_BAD_LENGTH;
	*used = CONTROL_HEADER_LEN + (size_t)plen;
	if (len < *used)
		return CONTROL_INCOMPLETE;
	out->type = buf[0];
	out->len = plen;
	out->payload = buf + CONTROL_HEADER_LEN;
	return CONTROL_OK;
}

/* Take the next NUL-terminated string at *pos; NULL if there is none. */
static const char *next_string(const uint8_t *buf, size_t len, size_t *pos)
{
	if (*pos >= len)
		return NULL;
	const uint8_t *nul = memchr(buf + *pos, '\0', len - *pos);
	if (!nul)
		return NULL;
	const char *s = (const char *)buf + *pos;
	*pos = (size_t)(nul - buf) + 1;
	return s;
}

enum control_status control_spec_parse(const uint8_t *buf, size_t len,
				       struct control_spec *out)
{
	if (len < CONTROL_SPEC_FIXED)
		return CONTROL_BAD_LENGTH;
	out->uid = get32(buf);
	out->gid = get32(buf + 4);
	uint8_t flags = buf[8];
	if (flags & ~CONTROL_SPEC_TTY)
		return CONTROL_BAD_FLAGS;
	out->tty = flags & CONTROL_SPEC_TTY;
	out->rows = get16(buf + 9);
	out->cols = get16(buf + 11);
	out->argc = get32(buf + 13);
	out->envc = get32(buf + 17);
	if (out->argc < 1 || out->argc > CONTROL_MAX_ARGS ||
	    out->envc > CONTROL_MAX_ENV)
		return CONTROL_BAD_COUNT;
	size_t pos = CONTROL_SPEC_FIXED;
	for (uint32_t i = 0; i < out->argc; i++) {
		out->argv[i] = next_string(buf, len, &pos);
		if (!out->argv[i])
			return CONTROL_BAD_STRING;
	}
	out->argv[out->argc] = NULL;
	if (out->argv[0][0] == '\0')
		return CONTROL_BAD_STRING;
	for (uint32_t i = 0; i < out->envc; i++) {
		const char *e = next_string(buf, len, &pos);
		/* "NAME=VALUE" with a non-empty NAME: anything else would
		 * confuse getenv() in the command. */
		if (!e || e[0] == '=' || !strchr(e, '='))
			return CONTROL_BAD_STRING;
		out->env[i] = e;
	}
	out->env[out->envc] = NULL;
	out->cwd = next_string(buf, len, &pos);
	if (!out->cwd || pos != len)
		return CONTROL_BAD_STRING;
	if (out->cwd[0] != '\0' && out->cwd[0] != '/')
		return CONTROL_BAD_STRING;
	return CONTROL_OK;
}

enum control_status control_winsz_parse(const uint8_t *buf, size_t len,
					uint16_t *rows, uint16_t *cols)
{
	if (len != 4)
		return CONTROL_BAD_LENGTH;
	*rows = get16(buf);
	*cols = get16(buf + 2);
	return CONTROL_OK;
}

enum control_status control_signal_parse(const uint8_t *buf, size_t len,
					 int *signo)
{
	if (len != 4)
		return CONTROL_BAD_LENGTH;
	uint32_t s = get32(buf);
	if (s < 1 || s > 64)
		return CONTROL_BAD_VALUE;
	*signo = (int)s;
	return CONTROL_OK;
}

enum control_status control_exit_parse(const uint8_t *buf, size_t len,
				       uint8_t *how, uint32_t *code)
{
	if (len != 5)
		return CONTROL_BAD_LENGTH;
	if (buf[0] != CONTROL_EXITED && buf[0] != CONTROL_SIGNALED)
		return CONTROL_BAD_VALUE;
	*how = buf[0];
	*code = get32(buf + 1);
	if ((*how == CONTROL_EXITED && *code > 255) ||
	    (*how == CONTROL_SIGNALED && (*code < 1 || *code > 64)))
		return CONTROL_BAD_VALUE;
	return CONTROL_OK;
}

void control_header_encode(uint8_t type, uint32_t len,
			   uint8_t out[CONTROL_HEADER_LEN])
{
	out[0] = type;
	put32(out + 1, len);
}

static long put_string(const char *s, uint8_t *out, size_t size, size_t *pos)
{
	size_t n = strlen(s) + 1;
	if (n > size - *pos)
		return -ENOSPC;
	memcpy(out + *pos, s, n);
	*pos += n;
	return 0;
}

long control_spec_encode(const struct control_spec *spec, uint8_t *out,
			 size_t size)
{
	if (spec->argc < 1 || spec->argc > CONTROL_MAX_ARGS ||
	    spec->envc > CONTROL_MAX_ENV)
		return -EINVAL;
	if (size < CONTROL_SPEC_FIXED)
		return -ENOSPC;
	put32(out, spec->uid);
	put32(out + 4, spec->gid);
	out[8] = spec->tty ? CONTROL_SPEC_TTY : 0;
	put16(out + 9, spec->rows);
	put16(out + 11, spec->cols);
	put32(out + 13, spec->argc);
	put32(out + 17, spec->envc);
	size_t pos = CONTROL_SPEC_FIXED;
	for (uint32_t i = 0; i < spec->argc; i++)
		if (!spec->argv[i] || put_string(spec->argv[i], out, size, &pos))
			return spec->argv[i] ? -ENOSPC : -EINVAL;
	for (uint32_t i = 0; i < spec->envc; i++)
		if (!spec->env[i] || put_string(spec->env[i], out, size, &pos))
			return spec->env[i] ? -ENOSPC : -EINVAL;
	if (put_string(spec->cwd ? spec->cwd : "", out, size, &pos))
		return -ENOSPC;
	if (pos > CONTROL_MAX_PAYLOAD)
		return -ENOSPC;
	return (long)pos;
}

long control_winsz_frame(uint16_t rows, uint16_t cols, uint8_t out[9])
{
	control_header_encode(CONTROL_WINSZ, 4, out);
	put16(out + 5, rows);
	put16(out + 7, cols);
	return 9;
}

long control_signal_frame(int signo, uint8_t out[9])
{
	if (signo < 1 || signo > 64)
		return -EINVAL;
	control_header_encode(CONTROL_SIGNAL, 4, out);
	put32(out + 5, (uint32_t)signo);
	return 9;
}

long control_exit_frame(uint8_t how, uint32_t code, uint8_t out[10])
{
	control_header_encode(CONTROL_EXIT, 5, out);
	out[5] = how;
	put32(out + 6, code);
	return 10;
}

const char *control_status_str(enum control_status s)
{
	switch (s) {
	case CONTROL_OK:
		return "ok";
	case CONTROL_INCOMPLETE:
		return "incomplete frame";
	case CONTROL_BAD_TYPE:
		return "unknown frame type";
	case CONTROL_TOO_LONG:
		return "frame longer than the limit";
	case CONTROL_BAD_LENGTH:
		return "wrong payload length for the frame type";
	case CONTROL_BAD_FLAGS:
		return "unknown flags in SPEC";
	case CONTROL_BAD_COUNT:
		return "argc/envc out of range in SPEC";
	case CONTROL_BAD_STRING:
		return "malformed string list in SPEC";
	case CONTROL_BAD_VALUE:
		return "value out of range";
	}
	return "unknown status";
}

const char *control_type_str(uint8_t type)
{
	switch (type) {
	case CONTROL_SPEC:
		return "SPEC";
	case CONTROL_STDIN:
		return "STDIN";
	case CONTROL_WINSZ:
		return "WINSZ";
	case CONTROL_SIGNAL:
		return "SIGNAL";
	case CONTROL_STDOUT:
		return "STDOUT";
	case CONTROL_STDERR:
		return "STDERR";
	case CONTROL_EXIT:
		return "EXIT";
	case CONTROL_ERROR:
		return "ERROR";
	}
	return "unknown";
}
