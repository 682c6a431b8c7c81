/* Fuzz the DNS query parser and the response builder. Invariants: qname is
 * terminated, qname_len == strlen, only [a-z0-9_.-], no empty labels;
 * question_end <= len; every response fits the buffer it was given (a
 * guard byte after outsz stays untouched), and an OK query's response
 * starts with the same id and question bytes as the query. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../parse/dns_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	enum dns_status st = dns_query_parse(data, size, &q);
	static const uint8_t a[3][4] = {{198, 18, 0, 1}, {198, 18, 0, 2}, {1, 2, 3, 4}};
	static uint8_t out[1024];

	if (st > DNS_NOTIMP || (st != DNS_OK && !q.why))
		abort();
	if (st == DNS_MALFORMED)
		return 0;
	if (st == DNS_OK) {
		if (q.qname_len > 253 || strlen(q.qname) != q.qname_len ||
		    q.question_end > size || q.udp_size < 512)
			abort();
		for (size_t i = 0; i < q.qname_len; i++) {
			char c = q.qname[i];
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      c == '-' || c == '_' || c == '.'))
				abort();
			if (c == '.' && (i == 0 || q.qname[i - 1] == '.' ||
					 i + 1 == q.qname_len))
				abort();
		}
	}
	bool valid = st == DNS_OK;
	/* Use the input's size to pick an output size, so short buffers get
	 * exercised too. */
	size_t outsz = size % (sizeof(out) - 1);
	memset(out, 0xa5, sizeof(out));
	int n = dns_build_response(&q, valid, valid ? 0 : (uint8_t)st, a,
				   size % 4, 300, out, outsz);
	if (out[outsz] != 0xa5)
		abort();
	if (n == -ENOSPC)
		return 0;
	if (n < 12 || (size_t)n > outsz)
		abort();
	if (out[0] != data[0] || out[1] != data[1] || !(out[2] & 0x80))
		abort();
	if (valid) {
		/* The echoed question equals the query's, case aside. */
		size_t qlen = q.question_end - 12;
		if ((size_t)n < 12 + qlen)
			abort();
		for (size_t i = 0; i < qlen; i++) {
			uint8_t x = data[12 + i], y = out[12 + i];
			if (i < qlen - 4 && x >= 'A' && x <= 'Z')
				x = (uint8_t)(x + 32);
			if (x != y)
				abort();
		}
	}
	return 0;
}
