/* The server's first handshake message: ServerHello or HelloRetryRequest
 * (RFC 8446 4.1.3, RFC 5246 7.4.1.3), read from the server's records so
 * the proxy knows when a TLS stream is past its plaintext part, and when
 * a second ClientHello must be checked (proxy/tls_watch.c).
 * Pure: no allocation, no I/O, no globals. Fuzzed by
 * tests/fuzz/fuzz_tls_server_hello.c. */
#ifndef PARSE_TLS_SERVER_HELLO_H
#define PARSE_TLS_SERVER_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest ServerHello accepted (a post-quantum key share makes a real one
 * ~1.2 KiB); bounds the buffering of the server's bytes. */
#define TLS_SERVER_HELLO_MAX 8192

enum tls_sh_status {
	TLS_SH_MORE,         /* valid so far; need more bytes */
	TLS_SH_SERVER_HELLO, /* a ServerHello; version says which TLS */
	TLS_SH_HRR,          /* a HelloRetryRequest (its special random) */
	TLS_SH_ALERT,        /* an alert record came first: the server gives up */
	TLS_SH_MALFORMED,    /* why says what was wrong */
};

struct tls_server_hello {
	/* The version chosen: supported_versions' selected_version when
	 * present (0x0304 for TLS 1.3), else legacy_version. */
	uint16_t version;
	/* Bytes from buf's start through the end of the record in which the
	 * message (or, for ALERT, the alert record's header) ends; past len
	 * when the message ended before the rest of its record came. */
	size_t consumed;
	/* Handshake bytes follow the message inside its last record (TLS 1.2
	 * puts the Certificate there; after a HelloRetryRequest they are a
	 * second message the client would take before its retry). */
	bool more_in_record;
	const char *why; /* static string when MALFORMED */
};

/* buf holds the server's bytes from the start of its first flight (or,
 * after a HelloRetryRequest, from the record after it). At most one
 * change_cipher_spec record (middlebox compatibility mode, RFC 8446 D.4)
 * may come before the message; any other record but a handshake or an
 * alert is MALFORMED, and so is a handshake message other than a
 * ServerHello. */
enum tls_sh_status tls_server_hello_parse(const uint8_t *buf, size_t len,
					  struct tls_server_hello *out);

#endif
