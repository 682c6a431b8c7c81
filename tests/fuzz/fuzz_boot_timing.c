/* Fuzz the boot timeline line parser: never crash; what it accepts has a
 * step of [a-z_]{1,16} and a bounded time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/boot_timing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct boot_timing t;
	if (boot_timing_parse((const char *)data, size, &t) != BOOT_TIMING_OK)
		return 0;
	size_t n = strlen(t.step);
	if (n == 0 || n > BOOT_TIMING_STEP_MAX || t.ms > 1000000000ull)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((t.step[i] >= 'a' && t.step[i] <= 'z') || t.step[i] == '_'))
			abort();
	return 0;
}
