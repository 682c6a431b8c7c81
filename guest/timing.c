/* Boot timeline: "sandbox-init: timing STEP MS" on the console, MS the
 * guest's uptime (CLOCK_BOOTTIME) when STEP ended. `sandbox-launch
 * --timings` reads these lines back from console.log. */
#include "guest.h"

#include <time.h>

void timing_mark(const char *step)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
		return;
	log_msg("timing %s %lld", step,
		(long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}
