/* sandbox-audit verify: walk the hash chain over a file or a rotated set,
 * oldest first, and name the first line where it breaks. */
#include <string.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "../auditlog/audit.h"
#include "review.h"

static const char usage[] =
	"usage: sandbox-audit verify [--strict] [--json] FILE...\n"
	"  Checks the hash chain of audit logs. FILE with FILE.1, FILE.2 ...\n"
	"  present is read as the rotated set FILE.N ... FILE.1 FILE.\n"
	"  --strict  also require that the chain starts at the genesis value\n"
	"            and ends with the proxy's closing record (no cut at\n"
	"            either end)\n"
	"  --json    one JSON object with the result\n"
	"  Exit status: 0 intact, 1 broken, 2 usage or I/O error.\n";

static bool hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

struct result {
	bool intact, from_genesis, closed;
	unsigned long records, fragments;
	const char *bad_file, *why;
	unsigned long bad_line;
};

static void report(const struct opts *o, const struct result *r,
		   size_t nfiles)
{
	if (o->json) {
		printf("{\"intact\":%s,\"records\":%lu,\"files\":%zu,"
		       "\"from_genesis\":%s,\"closed\":%s,\"fragments\":%lu",
		       r->intact ? "true" : "false", r->records, nfiles,
		       r->from_genesis ? "true" : "false",
		       r->closed ? "true" : "false", r->fragments);
		if (!r->intact) {
			printf(",\"file\":");
			put_json_str(stdout, r->bad_file);
			printf(",\"line\":%lu,\"error\":", r->bad_line);
			put_json_str(stdout, r->why);
		}
		printf("}\n");
		return;
	}
	if (!r->intact) {
		fputs("BROKEN: ", stdout);
		term_fputs(r->bad_file, stdout, false);
		printf(":%lu: ", r->bad_line);
		term_fputs(r->why, stdout, false);
		fputc('\n', stdout);
		return;
	}
	printf("intact: %lu records in %zu file%s\n", r->records, nfiles,
	       nfiles == 1 ? "" : "s");
	if (!r->from_genesis)
		printf("note: the chain does not start at the genesis value "
		       "(older files rotated away, or the start was cut)\n");
	if (!r->closed)
		printf("note: no closing record at the end (the proxy is "
		       "running or crashed, or the end was cut)\n");
	if (r->fragments)
		printf("note: %lu incomplete line%s from interrupted writes "
		       "(not records; the chain continues across them)\n",
		       r->fragments, r->fragments == 1 ? "" : "s");
}

int cmd_verify(int argc, char **argv)
{
	struct opts o;
	int rc = opts_parse(argc, argv, O_JSON | O_STRICT, usage, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (o.nfiles == 0) {
		fprintf(stderr, "sandbox-audit verify: no FILE given\n%s",
			usage);
		opts_free(&o);
		return 2;
	}
	size_t nf;
	char **files = expand_rotated(o.files, o.nfiles, &nf);
	char *scratch = malloc(LINE_MAX_BYTES + 1);
	if (!files || !scratch) {
		fprintf(stderr, "sandbox-audit: out of memory\n");
		return 2;
	}
	struct result res = {.intact = true};
	char prev[65] = "";
	bool io_error = false;
	for (size_t i = 0; res.intact && i < nf; i++) {
		struct line_reader lr;
		int e = lr_open(&lr, files[i]);
		if (e < 0) {
			fprintf(stderr, "sandbox-audit: %s: %s\n", files[i],
				strerror(-e));
			io_error = true;
			break;
		}
		const char *line;
		size_t len;
		bool torn;
		int r = 0;
		while (res.intact && (r = lr_next(&lr, &line, &len, &torn)) > 0) {
			bool big = len > AUDIT_HASH_TAIL + 74;
			const char *tail = big ? line + len - AUDIT_HASH_TAIL
					       : line;
			bool shaped = big && !torn &&
				      memcmp(tail, ",\"hash\":\"", 9) == 0 &&
				      hex64(tail + 9) &&
				      memcmp(tail + 73, "\"}", 2) == 0 &&
				      memcmp(tail - 74, ",\"prev\":\"", 9) ==
					      0 &&
				      hex64(tail - 65) && tail[-1] == '"';
			if (!shaped) {
				/* A line without a hash tail is not a record;
				 * the writer leaves one only when a write was
				 * interrupted. It is harmless if the chain
				 * continues across it (checked by the next
				 * record's prev). */
				res.fragments++;
				continue;
			}
			char got[65];
			audit_sha256_hex(line, len - AUDIT_HASH_TAIL, got);
			const char *p = tail - 65;
			if (!prev[0]) {
				res.from_genesis =
					memcmp(p, AUDIT_GENESIS, 64) == 0;
			} else if (memcmp(p, prev, 64) != 0) {
				res.intact = false;
				res.why = "prev does not match the hash of the "
					  "record before: a record was "
					  "deleted, reordered or inserted here";
			}
			if (res.intact && memcmp(got, tail + 9, 64) != 0) {
				res.intact = false;
				res.why = "hash does not match the record: this "
					  "record was edited";
			}
			if (!res.intact) {
				res.bad_file = files[i];
				res.bad_line = lr.lineno;
				break;
			}
			memcpy(prev, tail + 9, 64);
			prev[64] = '\0';
			res.records++;
			static const char closing[] =
				"\"event\":\"log\",\"reason\":\"closed\"";
			res.closed = memmem(line, len, closing,
					    sizeof(closing) - 1) != NULL;
		}
		if (r < 0) {
			fprintf(stderr, "sandbox-audit: %s:%lu: %s\n",
				files[i], lr.lineno + 1,
				r == -E2BIG ? "line longer than 1 MiB"
					    : strerror(-r));
			io_error = true;
		}
		lr_close(&lr);
	}
	if (res.intact && res.records == 0) {
		res.intact = false;
		res.bad_file = nf ? files[nf - 1] : "-";
		res.bad_line = 0;
		res.why = "no chained record at all";
	}
	if (res.intact && o.strict && (!res.from_genesis || !res.closed)) {
		res.intact = false;
		res.bad_file = files[nf - 1];
		res.why = !res.from_genesis
				  ? "--strict: the chain does not start at "
				    "genesis (the start is missing)"
				  : "--strict: no closing record at the end "
				    "(the end is missing or the proxy did not "
				    "exit cleanly)";
	}
	if (!io_error)
		report(&o, &res, nf);
	free(scratch);
	free_strv(files, nf);
	opts_free(&o);
	return io_error ? 2 : res.intact ? 0 : 1;
}
