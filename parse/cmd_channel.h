/* The control channel between the launcher (host) and sandbox-init (guest).
 *
 * The host connects to guest vsock port CONTROL_VSOCK_PORT, once per
 * command. Both directions carry frames:
 *
 *   offset size field
 *   0      1    type     enum control_type
 *   1      4    len      payload length, big-endian, <= CONTROL_MAX_PAYLOAD
 *   5      len  payload
 *
 * Host -> guest:
 *   SPEC    first frame, exactly once: what to run (layout below).
 *   STDIN   bytes for the command's stdin; len 0 = EOF (stdin closed).
 *   WINSZ   u16 rows, u16 cols (BE): terminal size changed (tty only).
 *   SIGNAL  u32 signal number (BE): deliver to the command's process group.
 * Guest -> host:
 *   STDOUT  bytes; len 0 = EOF. In tty mode all output is STDOUT.
 *   STDERR  bytes; len 0 = EOF.
 *   EXIT    u8 how (CONTROL_EXITED or CONTROL_SIGNALED), u32 code (BE):
 *           the exit status or the signal number. Last frame; the guest
 *           powers off afterwards.
 *   ERROR   a UTF-8 message: the guest could not run the command (bad
 *           SPEC, exec failed); EXIT with code 127 follows.
 *
 * SPEC payload (all integers big-endian):
 *   u32 uid, u32 gid, u8 flags (bit 0: tty), u16 rows, u16 cols,
 *   u32 argc (>= 1), u32 envc,
 *   then argc + envc + 1 NUL-terminated strings: argv[0..argc), env[0..envc)
 *   ("NAME=VALUE", NAME non-empty) and finally cwd (absolute or empty =
 *   the workspace). Nothing may follow the last NUL.
 *
 * The guest is not trusted by the host and vice versa: both sides check
 * every length before use. The parsers below are pure (no I/O, no
 * allocation); spec strings point into the caller's buffer.
 */
#ifndef COMMON_CONTROL_H
#define COMMON_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#define CONTROL_VSOCK_PORT 1024
#define CONTROL_HEADER_LEN 5
#define CONTROL_MAX_PAYLOAD (256u * 1024u)
#define CONTROL_MAX_ARGS 1024
#define CONTROL_MAX_ENV 1024
#define CONTROL_SPEC_FIXED 21 /* bytes before the strings */

enum control_type {
	CONTROL_SPEC = 1,
	CONTROL_STDIN = 2,
	CONTROL_WINSZ = 3,
	CONTROL_SIGNAL = 4,
	CONTROL_STDOUT = 0x81,
	CONTROL_STDERR = 0x82,
	CONTROL_EXIT = 0x83,
	CONTROL_ERROR = 0x84,
};

enum control_exit_how {
	CONTROL_EXITED = 0,
	CONTROL_SIGNALED = 1,
};

#define CONTROL_SPEC_TTY 0x01

enum control_status {
	CONTROL_OK = 0,
	CONTROL_INCOMPLETE, /* need more bytes */
	CONTROL_BAD_TYPE,
	CONTROL_TOO_LONG,   /* len > CONTROL_MAX_PAYLOAD */
	CONTROL_BAD_LENGTH, /* payload size wrong for its type */
	CONTROL_BAD_FLAGS,
	CONTROL_BAD_COUNT,  /* argc 0, or counts over the limits */
	CONTROL_BAD_STRING, /* missing NUL, bytes after the last one, bad env */
	CONTROL_BAD_VALUE,  /* rows/cols/signal/how out of range */
};

struct control_frame {
	uint8_t type;   /* enum control_type */
	uint32_t len;   /* payload length */
	const uint8_t *payload;
};

struct control_spec {
	uint32_t uid, gid;
	int tty;
	uint16_t rows, cols;
	uint32_t argc, envc;
	/* Point into the parsed buffer; NULL-terminated arrays. */
	const char *argv[CONTROL_MAX_ARGS + 1];
	const char *env[CONTROL_MAX_ENV + 1];
	const char *cwd;
};

/* Frame at the start of buf. On CONTROL_OK, *used is the frame's whole
 * size (header + payload); on CONTROL_INCOMPLETE, *used is how many bytes
 * are needed in total (when the header is known) or CONTROL_HEADER_LEN. */
enum control_status control_frame_parse(const uint8_t *buf, size_t len,
					struct control_frame *out,
					size_t *used);

enum control_status control_spec_parse(const uint8_t *buf, size_t len,
				       struct control_spec *out);
enum control_status control_winsz_parse(const uint8_t *buf, size_t len,
					uint16_t *rows, uint16_t *cols);
enum control_status control_signal_parse(const uint8_t *buf, size_t len,
					 int *signo);
enum control_status control_exit_parse(const uint8_t *buf, size_t len,
				       uint8_t *how, uint32_t *code);

/* Encoders. Return the number of bytes written, or -ENOSPC / -EINVAL. */
void control_header_encode(uint8_t type, uint32_t len,
			   uint8_t out[CONTROL_HEADER_LEN]);
long control_spec_encode(const struct control_spec *spec, uint8_t *out,
			 size_t size);
/* A whole WINSZ, SIGNAL or EXIT frame, header included. */
long control_winsz_frame(uint16_t rows, uint16_t cols, uint8_t out[9]);
long control_signal_frame(int signo, uint8_t out[9]);
long control_exit_frame(uint8_t how, uint32_t code, uint8_t out[10]);

const char *control_status_str(enum control_status s);
const char *control_type_str(uint8_t type);

#endif
