/* The control-channel framing shared by sandbox-init and sandbox-launch. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "../../parse/cmd_channel.h"
#include "tap.h"

static struct control_spec in, out;
static uint8_t buf[4096];

int main(void)
{
	in.uid = 1000;
	in.gid = 1001;
	in.tty = 1;
	in.rows = 40;
	in.cols = 120;
	in.argc = 3;
	in.argv[0] = "sh";
	in.argv[1] = "-c";
	in.argv[2] = "echo hi";
	in.envc = 1;
	in.env[0] = "A=b";
	in.cwd = "/home/u/ws";
	long n = control_spec_encode(&in, buf, sizeof(buf));
	ok(n > CONTROL_SPEC_FIXED, "spec encodes (%ld bytes)", n);
	is_int(control_spec_parse(buf, (size_t)n, &out), CONTROL_OK,
	       "spec parses back");
	is_int(out.uid, 1000, "uid");
	is_int(out.gid, 1001, "gid");
	is_int(out.tty, 1, "tty flag");
	is_int(out.rows, 40, "rows");
	is_int(out.cols, 120, "cols");
	is_int(out.argc, 3, "argc");
	is_str(out.argv[2], "echo hi", "argv[2]");
	ok(out.argv[3] == NULL, "argv NULL-terminated");
	is_str(out.env[0], "A=b", "env[0]");
	ok(out.env[1] == NULL, "env NULL-terminated");
	is_str(out.cwd, "/home/u/ws", "cwd");

	is_int(control_spec_parse(buf, (size_t)n - 1, &out),
	       CONTROL_BAD_STRING, "truncated spec rejected");
	buf[n] = 'x';
	is_int(control_spec_parse(buf, (size_t)n + 1, &out),
	       CONTROL_BAD_STRING, "trailing bytes rejected");
	buf[8] = 0x80;
	is_int(control_spec_parse(buf, (size_t)n, &out), CONTROL_BAD_FLAGS,
	       "unknown flag rejected");
	buf[8] = 0;
	buf[16] = 0; /* argc low byte -> 0 */
	is_int(control_spec_parse(buf, (size_t)n, &out), CONTROL_BAD_COUNT,
	       "argc 0 rejected");
	buf[13] = 0xff; /* argc huge */
	is_int(control_spec_parse(buf, (size_t)n, &out), CONTROL_BAD_COUNT,
	       "argc over the limit rejected");

	in.env[0] = "NOEQUALS";
	n = control_spec_encode(&in, buf, sizeof(buf));
	is_int(control_spec_parse(buf, (size_t)n, &out), CONTROL_BAD_STRING,
	       "env without '=' rejected");
	in.env[0] = "A=b";
	in.cwd = "relative";
	n = control_spec_encode(&in, buf, sizeof(buf));
	is_int(control_spec_parse(buf, (size_t)n, &out), CONTROL_BAD_STRING,
	       "relative cwd rejected");
	ok(control_spec_encode(&in, buf, 10) == -ENOSPC, "encode: no space");

	struct control_frame f;
	size_t used;
	uint8_t fr[16];
	is_int(control_frame_parse(fr, 3, &f, &used), CONTROL_INCOMPLETE,
	       "short header incomplete");
	control_header_encode(CONTROL_STDIN, 4, fr);
	memcpy(fr + 5, "abcd", 4);
	is_int(control_frame_parse(fr, 7, &f, &used), CONTROL_INCOMPLETE,
	       "short payload incomplete");
	is_int(used, 9, "needed size reported");
	is_int(control_frame_parse(fr, 9, &f, &used), CONTROL_OK, "frame ok");
	ok(f.type == CONTROL_STDIN && f.len == 4 && !memcmp(f.payload, "abcd", 4),
	   "frame fields");
	control_header_encode(CONTROL_STDIN, CONTROL_MAX_PAYLOAD + 1, fr);
	is_int(control_frame_parse(fr, 9, &f, &used), CONTROL_TOO_LONG,
	       "oversized frame rejected before buffering");
	fr[0] = 0x42;
	is_int(control_frame_parse(fr, 9, &f, &used), CONTROL_BAD_TYPE,
	       "unknown type rejected");
	control_header_encode(CONTROL_WINSZ, 5, fr);
	is_int(control_frame_parse(fr, 10, &f, &used), CONTROL_BAD_LENGTH,
	       "WINSZ of wrong size rejected");

	uint16_t r, c;
	control_winsz_frame(50, 132, fr);
	is_int(control_winsz_parse(fr + 5, 4, &r, &c), CONTROL_OK, "winsz");
	ok(r == 50 && c == 132, "winsz values");
	int sig;
	is_int(control_signal_frame(0, fr), -EINVAL, "signal 0 not encoded");
	control_signal_frame(SIGINT, fr);
	is_int(control_signal_parse(fr + 5, 4, &sig), CONTROL_OK, "signal");
	is_int(sig, SIGINT, "signal value");
	fr[8] = 200;
	is_int(control_signal_parse(fr + 5, 4, &sig), CONTROL_BAD_VALUE,
	       "signal out of range");
	uint8_t how;
	uint32_t code;
	control_exit_frame(CONTROL_SIGNALED, 9, fr);
	is_int(control_exit_parse(fr + 5, 5, &how, &code), CONTROL_OK, "exit");
	ok(how == CONTROL_SIGNALED && code == 9, "exit values");
	control_exit_frame(CONTROL_EXITED, 256, fr);
	is_int(control_exit_parse(fr + 5, 5, &how, &code), CONTROL_BAD_VALUE,
	       "exit code over 255 rejected");
	return done_testing();
}
