/* DNS as wire_client's dns mode speaks it (dns_text.c). */
#ifndef TESTS_TOOLS_DNS_TEXT_H
#define TESTS_TOOLS_DNS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room for the longest query dns_text_query() makes (with its 2-byte
 * stream length prefix). */
#define DNS_TEXT_QUERY_MAX (2 + 12 + 256 + 4)

/* A type name (A, AAAA, HTTPS, SVCB, TXT, MX, CNAME, PTR, ANY, ...) or a
 * number 0..65535 -> *out; -EINVAL otherwise. */
int dns_text_type(const char *s, uint16_t *out);
/* One recursive query for name (class IN) with id, as sent on a DNS
 * stream: 2-byte length, then the message. -EINVAL for a bad name. */
int dns_text_query(const char *name, uint16_t qtype, uint16_t id,
		   uint8_t *out, size_t cap, size_t *len);
/* Print a response to our query id: "rcode NAME", then one line per
 * answer ("A 198.18.0.1", "AAAA ::1", "CNAME x.test", "TYPE65 <n>
 * bytes"). -EINVAL (with a message on stderr) if it is not one. */
int dns_text_print_response(const uint8_t *msg, size_t len, uint16_t id);

#endif
