/* parse/boot_timing.c: the guest's boot timeline lines. */
#include <string.h>

#include "../../parse/boot_timing.h"
#include "tap.h"

static enum boot_timing_status p(const char *s, struct boot_timing *t)
{
	return boot_timing_parse(s, strlen(s), t);
}

int main(void)
{
	struct boot_timing t;
	ok(p("sandbox-init: timing init 2143", &t) == BOOT_TIMING_OK &&
		   !strcmp(t.step, "init") && t.ms == 2143,
	   "a timing line");
	ok(p("sandbox-init: timing exec 7\r", &t) == BOOT_TIMING_OK && t.ms == 7,
	   "a trailing CR");
	ok(p("sandbox-init: ready: serving", &t) == BOOT_TIMING_NOT_OURS,
	   "other init lines are not ours");
	ok(p("[ 1.0] sandbox-init: timing init 1", &t) == BOOT_TIMING_NOT_OURS,
	   "only at the start of a line");
	ok(p("sandbox-init: timing init", &t) == BOOT_TIMING_BAD, "no time");
	ok(p("sandbox-init: timing init 1x", &t) == BOOT_TIMING_BAD, "junk");
	ok(p("sandbox-init: timing Init 1", &t) == BOOT_TIMING_BAD, "upper case");
	ok(p("sandbox-init: timing \x1b[2J 1", &t) == BOOT_TIMING_BAD,
	   "escape sequences");
	ok(p("sandbox-init: timing abcdefghijklmnopq 1", &t) == BOOT_TIMING_BAD,
	   "step too long");
	ok(p("sandbox-init: timing init 99999999999", &t) == BOOT_TIMING_BAD,
	   "time too large");
	return done_testing();
}
