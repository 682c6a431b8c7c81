/* Fuzz the ClientHello parser. Invariants: a status in range; OK means the
 * SNI is a terminated printable string of sni_len (1..253) bytes that occurs
 * in the input; MALFORMED/TOO_LARGE carry a why; and a prefix of an input
 * that parsed OK is never OK with a different SNI (re-calling with more
 * bytes must not change the answer); tls_first_bytes() agrees with the
 * parser on what is TLS at all. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/tls_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct tls_hello *h, enum tls_hello_status st,
		  const uint8_t *data, size_t size)
{
	if (st > TLS_HELLO_TOO_LARGE)
		abort();
	if ((st == TLS_HELLO_MALFORMED || st == TLS_HELLO_TOO_LARGE) && !h->why)
		abort();
	if (st != TLS_HELLO_OK)
		return;
	if (!h->has_sni) {
		if (h->sni_len != 0 || h->sni[0] != '\0')
			abort();
		return;
	}
	if (h->sni_len < 1 || h->sni_len > 253 ||
	    strlen(h->sni) != h->sni_len)
		abort();
	for (size_t i = 0; i < h->sni_len; i++)
		if (h->sni[i] <= 0x20 || h->sni[i] >= 0x7f)
			abort();
	/* Fragmentation can split the name; its first byte must be there. */
	if (!memchr(data, h->sni[0], size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_hello h, p;
	enum tls_hello_status st = tls_hello_parse(data, size, &h);
	check(&h, st, data, size);
	/* The classifier and the parser agree: other protocols are NOT_TLS,
	 * non-handshake records and SSLv2 hellos are refused outright. */
	enum tls_first f = tls_first_bytes(data, size);
	if ((f == TLS_FIRST_OTHER) != (st == TLS_HELLO_NOT_TLS))
		abort();
	if ((f == TLS_FIRST_NOT_HANDSHAKE || f == TLS_FIRST_SSLV2) &&
	    st != TLS_HELLO_MALFORMED)
		abort();
	if (st == TLS_HELLO_OK && size > 0) {
		/* One byte less must not be a different complete hello. */
		enum tls_hello_status ps = tls_hello_parse(data, size - 1, &p);
		check(&p, ps, data, size - 1);
		if (ps == TLS_HELLO_OK &&
		    (p.has_sni != h.has_sni || strcmp(p.sni, h.sni) != 0 ||
		     p.has_ech != h.has_ech))
			abort();
	}
	return 0;
}
