/* sandbox-launch --timings: the boot timeline. Host steps are marked here
 * as they happen (milliseconds since the launcher started); guest steps
 * are sandbox-init's "timing" lines in console.log (its uptime when each
 * step ended; guest/timing.c), parsed as the hostile bytes they are. */
#include "launch.h"

#include <stdio.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/util.h"
#include "../parse/boot_timing.h"

struct mark {
	const char *step; /* static */
	uint64_t ms;
};

static struct mark marks[16];
static size_t n_marks;
static uint64_t t0;

void timings_mark(const char *step)
{
	uint64_t now = mono_ms();
	if (!t0)
		t0 = now;
	if (n_marks < ARRAY_SIZE(marks))
		marks[n_marks++] = (struct mark){step, now - t0};
}

/* What each guest step covers (guest/init_main.c, guest/session.c). */
static const char *guest_label(const char *step)
{
	static const char *const labels[][2] = {
		{"init", "kernel to /init"},
		{"modules", "modules loaded"},
		{"mounts", "mounts (root, /usr, workspace)"},
		{"etc", "/etc written, root switched"},
		{"ldconfig", "ldconfig"},
		{"netcap", "network capture"},
		{"forwarders", "forwarders"},
		{"control", "control channel listening"},
		{"connected", "host connected"},
		{"exec", "command exec"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(labels); i++)
		if (!strcmp(step, labels[i][0]))
			return labels[i][1];
	return step;
}

void timings_print(const char *console_log)
{
	fprintf(stderr, "sandbox-launch: timings, host (ms since start):\n");
	uint64_t prev = 0;
	for (size_t i = 0; i < n_marks; i++) {
		fprintf(stderr, "  %-28s %7llu  +%llu\n", marks[i].step,
			(unsigned long long)marks[i].ms,
			(unsigned long long)(marks[i].ms - prev));
		prev = marks[i].ms;
	}
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (read_file(console_log, 16u << 20, &text, &len) != 0)
		return;
	fprintf(stderr, "sandbox-launch: timings, guest (ms of guest uptime):\n");
	prev = 0;
	unsigned shown = 0;
	for (char *l = text; l < text + len && shown < 32;) {
		char *nl = memchr(l, '\n', (size_t)(text + len - l));
		size_t ll = nl ? (size_t)(nl - l) : (size_t)(text + len - l);
		struct boot_timing t;
		if (boot_timing_parse(l, ll, &t) == BOOT_TIMING_OK) {
			fprintf(stderr, "  %-28s %7llu  +%llu\n",
				guest_label(t.step), (unsigned long long)t.ms,
				(unsigned long long)(t.ms >= prev ? t.ms - prev : 0));
			prev = t.ms;
			shown++;
		}
		l += ll + 1;
	}
}
