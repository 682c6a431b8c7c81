/* The guest's boot timeline lines ("sandbox-init: timing STEP MS", written
 * by guest/timing.c on the console), read back by `sandbox-launch
 * --timings` from console.log, which the guest writes: hostile bytes. */
#ifndef PARSE_BOOT_TIMING_H
#define PARSE_BOOT_TIMING_H

#include <stddef.h>
#include <stdint.h>

#define BOOT_TIMING_PREFIX "sandbox-init: timing "
#define BOOT_TIMING_STEP_MAX 16

struct boot_timing {
	char step[BOOT_TIMING_STEP_MAX + 1]; /* [a-z_]{1,16}, terminated */
	uint64_t ms; /* guest uptime, at most 10^9 */
};

enum boot_timing_status {
	BOOT_TIMING_OK = 0,
	BOOT_TIMING_NOT_OURS, /* not a timing line: skip it */
	BOOT_TIMING_BAD,      /* a timing line, malformed */
};

/* One line without its newline (a trailing '\r' is allowed: the serial
 * console may add one). Pure. */
enum boot_timing_status boot_timing_parse(const char *line, size_t len,
					  struct boot_timing *out);

#endif
