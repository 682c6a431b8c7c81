/* TLS ClientHello parser: finds the SNI (and ECH) in the client's first
 * flight, reassembling the handshake message across TLS records.
 * Pure: no allocation, no I/O, no globals. Fuzzed by tests/fuzz/fuzz_tls_hello.c. */
#ifndef PROXY_TLS_HELLO_H
#define PROXY_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest ClientHello handshake message accepted (post-quantum key shares
 * make real ones ~2 KiB; 16 KiB leaves ample room and bounds buffering). */
#define TLS_HELLO_MAX 16384

enum tls_hello_status {
	TLS_HELLO_OK = 0,
	TLS_HELLO_INCOMPLETE, /* valid so far; need more bytes */
	TLS_HELLO_NOT_TLS,    /* first byte(s) are not a TLS handshake record */
	TLS_HELLO_MALFORMED,  /* why says what was wrong */
	TLS_HELLO_TOO_LARGE,  /* handshake message over TLS_HELLO_MAX */
};

struct tls_hello {
	bool has_sni;
	char sni[256];     /* host_name as sent, NUL-terminated; validated: 1..253
			      bytes, no NUL, printable ASCII only */
	size_t sni_len;
	bool has_ech;      /* encrypted_client_hello (0xfe0d) or ESNI (0xffce) */
	uint16_t version;  /* legacy_version of the ClientHello */
	size_t consumed;   /* OK: bytes through the record that ends the hello */
	const char *why;   /* static string when status is MALFORMED/TOO_LARGE */
};

/* What the first bytes of a stream are, as far as TLS is concerned: a
 * TLS record header (content type 20..24, version 3.x) or an SSLv2-format
 * CLIENT-HELLO is TLS, to be parsed (and refused unless it is handshake
 * records carrying a ClientHello); anything else is some other protocol. */
enum tls_first {
	TLS_FIRST_MORE,          /* too few bytes to tell */
	TLS_FIRST_OTHER,         /* not TLS */
	TLS_FIRST_HANDSHAKE,     /* a handshake record header */
	TLS_FIRST_NOT_HANDSHAKE, /* alert, CCS, application data, heartbeat */
	TLS_FIRST_SSLV2,         /* SSLv2-format CLIENT-HELLO */
};
enum tls_first tls_first_bytes(const uint8_t *buf, size_t len);

/* buf holds the bytes the client sent so far (starting at its first byte).
 * Only handshake records may come before and during the ClientHello: any
 * other content type, or an SSLv2-format hello, is MALFORMED. */
enum tls_hello_status tls_hello_parse(const uint8_t *buf, size_t len,
				      struct tls_hello *out);

#endif
