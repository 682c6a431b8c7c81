/* Fuzz the ServerHello / HelloRetryRequest parser. Invariants: a status in
 * range; MALFORMED carries a why; a complete answer says how far it read
 * (consumed within the input, unless the message ended inside a record
 * still arriving); and no prefix of an input is a different complete
 * answer (more bytes never turn a HelloRetryRequest into a ServerHello). */
#include <stdint.h>
#include <stdlib.h>

#include "../../parse/tls_server_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_server_hello h, p;
	enum tls_sh_status st = tls_server_hello_parse(data, size, &h);
	if (st > TLS_SH_MALFORMED)
		abort();
	if (st == TLS_SH_MALFORMED && !h.why)
		abort();
	if (st == TLS_SH_MORE || st == TLS_SH_MALFORMED)
		return 0;
	if (h.consumed == 0 || (h.consumed > size && !h.more_in_record))
		abort();
	if ((st == TLS_SH_SERVER_HELLO || st == TLS_SH_HRR) &&
	    h.version >> 8 != 3)
		abort();
	if (size > 0) {
		enum tls_sh_status ps = tls_server_hello_parse(data, size - 1, &p);
		if (ps != TLS_SH_MORE && ps != TLS_SH_MALFORMED && ps != st)
			abort();
	}
	return 0;
}
