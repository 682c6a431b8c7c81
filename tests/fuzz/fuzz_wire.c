/* Fuzz the wire header parser: never crash, and anything it accepts must
 * re-encode to the same bytes (the parser accepts only canonical headers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_header h;
	if (wire_header_parse(data, size, &h) != WIRE_OK)
		return 0;
	uint8_t again[WIRE_HEADER_MAX];
	if (h.len > size ||
	    wire_header_encode(&h, again) != (int)h.len ||
	    memcmp(again, data, h.len) != 0)
		abort();
	return 0;
}
