/* Fuzz the proxy's audit writer escaper through audit_render: whatever
 * bytes the guest sends as SNI/host/reason, the line is at most
 * AUDIT_LINE_MAX bytes, ends in exactly one newline, is valid UTF-8 with
 * no raw control bytes, parses with sandbox-audit's parser, its hash is
 * SHA-256 of the bytes before ,"hash":, and a string that was valid UTF-8
 * and not cut reads back byte for byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../auditlog/record.h"
#include "../../auditlog/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t utf8_ok(const unsigned char *s, size_t n)
{
	/* returns 0 when s is not valid UTF-8 */
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2
			     : c >= 0xe0 && c <= 0xef ? 3
			     : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (!len || i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		if (len == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) ||
				 (c == 0xed && s[i + 1] >= 0xa0)))
			return 0;
		if (len == 4 && ((c == 0xf0 && s[i + 1] < 0x90) ||
				 (c == 0xf4 && s[i + 1] >= 0x90)))
			return 0;
		i += len;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	size_t slen = strlen(s); /* C strings stop at NUL */
	struct audit_record r;
	audit_record_init(&r);
	r.event = "connect";
	r.sni = s;
	r.host = size > 3 ? s + 3 : s;
	r.reason = s;
	r.port = 443;
	struct timespec ts = {.tv_sec = 1767225600};
	char line[AUDIT_LINE_MAX + 1], hash[65], check[65];
	ssize_t n = audit_render("fuzz", &r, &ts, AUDIT_GENESIS, line,
				 AUDIT_LINE_MAX, hash);
	if (n <= 0 || n > AUDIT_LINE_MAX || line[n - 1] != '\n')
		abort();
	if (memchr(line, '\n', (size_t)n - 1))
		abort();
	for (ssize_t i = 0; i < n - 1; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			abort();
	if (!utf8_ok((const unsigned char *)line, (size_t)n - 1))
		abort();
	audit_sha256_hex(line, (size_t)n - 1 - AUDIT_HASH_TAIL, check);
	if (strcmp(check, hash) != 0)
		abort();
	char scratch[AUDIT_LINE_MAX + 1];
	struct rec out;
	const char *why;
	if (rec_parse(line, (size_t)n - 1, &out, scratch, sizeof(scratch),
		      &why) != REC_OK)
		abort();
	if (!out.sni || !out.hash || strcmp(out.hash, hash) != 0)
		abort();
	if (utf8_ok((const unsigned char *)s, slen) && slen < 200 &&
	    strcmp(out.sni, s) != 0) {
		/* only C1 controls (written as \u0080..\u009f) read back as
		 * the same code points, so the bytes match too */
		abort();
	}
	free(s);
	return 0;
}
