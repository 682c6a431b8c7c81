/* Fuzz the control-channel parsers: walk the input as a stream of frames
 * (as sandbox-init and sandbox-launch do), parse every payload by type, and
 * check that an accepted SPEC re-encodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/cmd_channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct control_spec spec;
static uint8_t again[CONTROL_MAX_PAYLOAD];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size > 0) {
		struct control_frame f;
		size_t used;
		if (control_frame_parse(data, size, &f, &used) != CONTROL_OK)
			return 0;
		if (used > size || used != CONTROL_HEADER_LEN + f.len)
			abort();
		uint16_t r, c;
		int sig;
		uint8_t how;
		uint32_t code;
		switch (f.type) {
		case CONTROL_SPEC:
			if (control_spec_parse(f.payload, f.len, &spec) ==
			    CONTROL_OK) {
				long n = control_spec_encode(&spec, again,
							     sizeof(again));
				if (n != (long)f.len ||
				    memcmp(again, f.payload, f.len) != 0)
					abort();
			}
			break;
		case CONTROL_WINSZ:
			(void)control_winsz_parse(f.payload, f.len, &r, &c);
			break;
		case CONTROL_SIGNAL:
			if (control_signal_parse(f.payload, f.len, &sig) ==
				    CONTROL_OK &&
			    (sig < 1 || sig > 64))
				abort();
			break;
		case CONTROL_EXIT:
			(void)control_exit_parse(f.payload, f.len, &how, &code);
			break;
		default:
			break;
		}
		data += used;
		size -= used;
	}
	return 0;
}
