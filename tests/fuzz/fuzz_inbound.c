/* Fuzz the inbound header and the publish spec parsers: never crash; an
 * accepted header re-encodes to the same bytes; an accepted spec's
 * canonical form parses again to the same spec. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/inbound.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t port;
	if (inbound_header_parse(data, size, &port) == INBOUND_OK) {
		uint8_t again[INBOUND_HEADER_LEN];
		if (inbound_header_encode(port, again) != 0 ||
		    memcmp(again, data, INBOUND_HEADER_LEN) != 0)
			abort();
	}
	char s[128];
	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct publish_spec p, q;
	const char *why;
	if (publish_spec_parse(s, &p, &why) != 0)
		return 0;
	char canon[96];
	if (publish_spec_format(&p, canon, sizeof(canon)) < 0 ||
	    publish_spec_parse(canon, &q, &why) != 0 ||
	    memcmp(&p, &q, sizeof(p)) != 0)
		abort();
	return 0;
}
