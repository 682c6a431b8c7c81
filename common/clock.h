/* The one monotonic clock: milliseconds since an arbitrary start, never
 * going back (CLOCK_MONOTONIC). Every timeout and rate in the programs is
 * measured with it. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <stdint.h>

uint64_t mono_ms(void);

#endif
