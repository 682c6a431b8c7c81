/* Command-line options shared by the subcommands. Each command says which
 * option groups it accepts; anything else is an error naming the option. */
#include <getopt.h>
#include <string.h>

#include "../common/util.h"
#include "review.h"

enum {
	OPT_SANDBOX = 256, OPT_HOST, OPT_DECISION, OPT_SINCE, OPT_UNTIL,
	OPT_JSON, OPT_STRICT, OPT_HTML, OPT_FROM_START, OPT_RECORDS, OPT_MODE,
	OPT_INTERVAL, OPT_HELP,
};

static const struct option all[] = {
	{"sandbox", required_argument, NULL, OPT_SANDBOX},
	{"host", required_argument, NULL, OPT_HOST},
	{"decision", required_argument, NULL, OPT_DECISION},
	{"since", required_argument, NULL, OPT_SINCE},
	{"until", required_argument, NULL, OPT_UNTIL},
	{"json", no_argument, NULL, OPT_JSON},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"html", required_argument, NULL, OPT_HTML},
	{"output", required_argument, NULL, 'o'},
	{"from-start", no_argument, NULL, OPT_FROM_START},
	{"records", required_argument, NULL, OPT_RECORDS},
	{"mode", required_argument, NULL, OPT_MODE},
	{"interval", required_argument, NULL, OPT_INTERVAL},
	{"help", no_argument, NULL, OPT_HELP},
	{NULL, 0, NULL, 0},
};

static unsigned group_of(int opt)
{
	switch (opt) {
	case OPT_SANDBOX: case OPT_HOST: case OPT_DECISION: case OPT_SINCE:
	case OPT_UNTIL:
		return O_FILTER;
	case OPT_JSON: return O_JSON;
	case OPT_STRICT: return O_STRICT;
	case OPT_HTML: return O_HTML;
	case 'o': return O_OUT;
	case OPT_FROM_START: return O_FROM_START;
	case OPT_RECORDS: case OPT_MODE: return O_RECORDS;
	case OPT_INTERVAL: return O_INTERVAL;
	default: return 0;
	}
}

static int fail(const char *usage, const char *msg, const char *arg)
{
	fprintf(stderr, "sandbox-audit: %s%s%s\n%s", msg, arg ? ": " : "",
		arg ? arg : "", usage);
	return 2;
}

int opts_parse(int argc, char **argv, unsigned mask, const char *usage,
	       struct opts *o)
{
	memset(o, 0, sizeof(*o));
	filter_init(&o->filter);
	o->mode = "report";
	o->interval = 0.2;
	optind = 0;
	opterr = 0;
	int opt;
	int64_t now = now_ms();
	while ((opt = getopt_long(argc, argv, ":o:", all, NULL)) != -1) {
		char err[512];
		const char *name = optind > 0 ? argv[optind - 1] : "?";
		if (opt == OPT_HELP) {
			fputs(usage, stdout);
			return 1;
		}
		if (opt == ':')
			return fail(usage, "missing value for", name);
		if (opt == '?' || !(group_of(opt) & mask))
			return fail(usage, "unknown option for this command",
				    name);
		switch (opt) {
		case OPT_SANDBOX:
			o->filter.sandbox = optarg;
			break;
		case OPT_HOST:
			if (filter_add_host(&o->filter, optarg, err,
					    sizeof(err)) < 0)
				return fail(usage, err, NULL);
			break;
		case OPT_DECISION:
			if (strcmp(optarg, "allow") && strcmp(optarg, "deny") &&
			    strcmp(optarg, "would-deny"))
				return fail(usage,
					    "--decision must be allow, deny or "
					    "would-deny, not",
					    optarg);
			o->filter.decision = optarg;
			break;
		case OPT_SINCE:
		case OPT_UNTIL:
			if (parse_when(optarg, now,
				       opt == OPT_SINCE ? &o->filter.since
							: &o->filter.until) < 0)
				return fail(usage,
					    "expected RFC 3339 time or a "
					    "duration like 90s, 15m, 1h, 2d",
					    optarg);
			break;
		case OPT_JSON: o->json = true; break;
		case OPT_STRICT: o->strict = true; break;
		case OPT_HTML: o->html = true, o->out = optarg; break;
		case 'o': o->out = optarg; break;
		case OPT_FROM_START: o->from_start = true; break;
		case OPT_RECORDS: {
			char *end;
			o->records = strtoul(optarg, &end, 10);
			if (*end || !*optarg || o->records > 100000000UL)
				return fail(usage, "bad --records", optarg);
			break;
		}
		case OPT_MODE:
			if (strcmp(optarg, "report") && strcmp(optarg, "enforce"))
				return fail(usage, "--mode must be report or "
						   "enforce, not", optarg);
			o->mode = optarg;
			break;
		case OPT_INTERVAL: {
			char *end;
			o->interval = strtod(optarg, &end);
			if (*end || o->interval < 0.01 || o->interval > 60)
				return fail(usage, "bad --interval", optarg);
			break;
		}
		}
	}
	o->nfiles = (size_t)(argc - optind);
	o->files = calloc(o->nfiles + 1, sizeof(char *));
	if (!o->files)
		return fail(usage, "out of memory", NULL);
	for (size_t i = 0; i < o->nfiles; i++)
		o->files[i] = argv[optind + (int)i];
	return 0;
}

void opts_free(struct opts *o)
{
	filter_free(&o->filter);
	free(o->files);
	o->files = NULL;
}
