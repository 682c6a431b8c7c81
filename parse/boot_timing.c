#include "boot_timing.h"

#include <string.h>

enum boot_timing_status boot_timing_parse(const char *line, size_t len,
					  struct boot_timing *out)
{
	const size_t plen = sizeof(BOOT_TIMING_PREFIX) - 1;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len < plen || memcmp(line, BOOT_TIMING_PREFIX, plen) != 0)
		return BOOT_TIMING_NOT_OURS;
	size_t i = plen, n = 0;
	while (i < len && ((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_')) {
		if (n == BOOT_TIMING_STEP_MAX)
			return BOOT_TIMING_BAD;
		out->step[n++] = line[i++];
	}
	out->step[n] = '\0';
	if (n == 0 || i >= len || line[i] != ' ')
		return BOOT_TIMING_BAD;
	i++;
	if (i >= len)
		return BOOT_TIMING_BAD;
	uint64_t ms = 0;
	for (size_t d = 0; i < len; i++, d++) {
		if (line[i] < '0' || line[i] > '9' || d == 10)
			return BOOT_TIMING_BAD;
		ms = ms * 10 + (uint64_t)(line[i] - '0');
	}
	if (ms > 1000000000ull)
		return BOOT_TIMING_BAD;
	out->ms = ms;
	return BOOT_TIMING_OK;
}
