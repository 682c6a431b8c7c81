/* sandbox-audit: review, verify and summarise the proxy's audit logs. */
#include <string.h>

#include "../common/util.h"
#include "review.h"

static const char usage[] =
	"usage: sandbox-audit COMMAND [OPTIONS] FILE...\n"
	"commands:\n"
	"  verify    check the hash chain (tampering, deletion, reordering)\n"
	"  summary   per sandbox and host: decisions, bytes, first/last seen\n"
	"  denied    the denied (and would-be denied) attempts\n"
	"  follow    print new records live, surviving rotation\n"
	"  suggest   a minimal policy allowing what a report-mode log used\n"
	"  report    --html OUT: a self-contained HTML page\n"
	"  generate  write a synthetic log (tests, benchmarks)\n"
	"Every view takes --sandbox, --host, --decision, --since, --until and\n"
	"--json. 'sandbox-audit COMMAND --help' for details.\n";

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
	{"verify", cmd_verify},   {"summary", cmd_summary},
	{"denied", cmd_denied},   {"follow", cmd_follow},
	{"suggest", cmd_suggest}, {"report", cmd_report},
	{"generate", cmd_generate},
};

int main(int argc, char **argv)
{
	program_name = "sandbox-audit";
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0) {
			int rc = commands[i].fn(argc - 1, argv + 1);
			if (fflush(stdout) != 0) {
				fprintf(stderr, "sandbox-audit: write error\n");
				return 2;
			}
			return rc;
		}
	fprintf(stderr, "sandbox-audit: unknown command '%s'\n%s", argv[1],
		usage);
	return 2;
}
