/* Fuzz sandbox-audit's JSON line parser (it reads files that a sandboxed
 * side may have influenced). Invariants: never reads past len, never
 * writes past the scratch buffer (ASan), a failure carries a why, every
 * string it returns lies inside the scratch buffer and is NUL-terminated,
 * and parsing is deterministic. Also feeds the bytes to the time parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../auditlog/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *s, const char *scratch, size_t n)
{
	if (!s)
		return;
	if (s < scratch || s >= scratch + n)
		abort();
	if (!memchr(s, '\0', (size_t)(scratch + n - s)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	/* an exact-size scratch buffer: ASan catches a single byte too far */
	size_t n = size + 1;
	char *scratch = malloc(n), *scratch2 = malloc(n);
	struct rec r, r2;
	const char *why = NULL, *why2 = NULL;
	if (!line || !scratch || !scratch2)
		abort();
	memcpy(line, data, size);
	enum rec_status st = rec_parse(line, size, &r, scratch, n, &why);
	enum rec_status st2 = rec_parse(line, size, &r2, scratch2, n, &why2);
	if (st != st2)
		abort();
	if (st != REC_OK && (!why || !*why))
		abort();
	if (st == REC_TOO_BIG) /* size + 1 is always enough */
		abort();
	if (st == REC_OK) {
		const char *const *f = &r.time;
		for (size_t i = 0; i < 13; i++)
			inside(f[i], scratch, n);
		if (r.host && r2.host && strcmp(r.host, r2.host) != 0)
			abort();
	}
	/* a small buffer must be refused, never overrun */
	char tiny[8];
	rec_parse(line, size, &r, tiny, sizeof(tiny), &why);
	int64_t ms;
	rfc3339_parse(line, size, &ms);
	free(line);
	free(scratch);
	free(scratch2);
	return 0;
}
