/* sandbox-audit report --html: one self-contained page (inline CSS and
 * SVG, no scripts, no external references) with the summary table and a
 * per-host timeline. Every string from the log goes through put_html: a
 * hostile SNI or host name is text, never markup. */
#include <string.h>

#include "../common/util.h"
#include "review.h"

static const char usage[] =
	"usage: sandbox-audit report --html OUT [FILTERS] FILE...\n"
	"  Write a single self-contained HTML page (no network fetches) with\n"
	"  the per-host summary table and a timeline of DNS queries and\n"
	"  connections per host, coloured by decision.\n"
	"  FILTERS: --sandbox, --host, --decision, --since, --until.\n";

#define BINS 120
#define MAX_ROWS 300

struct timeline {
	struct host_stat *s;
	size_t n;
	uint32_t (*bins)[3][BINS]; /* owned, one per row */
	int64_t t0, t1;
};

static int bin_of(const struct timeline *t, int64_t ms)
{
	if (t->t1 <= t->t0)
		return 0;
	int64_t b = (ms - t->t0) * BINS / (t->t1 - t->t0 + 1);
	return b < 0 ? 0 : b >= BINS ? BINS - 1 : (int)b;
}

static int fill(void *ctx, const struct rec *r, const char *line, size_t len,
		const char *path, unsigned long lineno)
{
	(void)line, (void)len, (void)path, (void)lineno;
	struct timeline *t = ctx;
	if (!r->host || !r->event || rec_is_followup(r) ||
	    !r->decision || r->time_ms == INT64_MIN)
		return 0;
	int d = !strcmp(r->decision, "allow") ? 0
		: !strcmp(r->decision, "deny") ? 1
		: !strcmp(r->decision, "would-deny") ? 2 : -1;
	if (d < 0)
		return 0;
	char key[1024];
	const char *sb = r->sandbox ? r->sandbox : "";
	size_t sl = strlen(sb), hl = strlen(r->host);
	if (sl + hl + 2 > sizeof(key))
		return 0;
	memcpy(key, sb, sl + 1);
	memcpy(key + sl + 1, r->host, hl + 1);
	struct host_stat probe = {.key = key, .host = key + sl + 1};
	if (!t->n)
		return 0;
	struct host_stat *h = bsearch(&probe, t->s, t->n, sizeof(*t->s),
				      by_host);
	if (!h || h - t->s >= MAX_ROWS)
		return 0;
	uint32_t *c = &t->bins[h - t->s][d][bin_of(t, r->time_ms)];
	uint64_t w = rec_weight(r);
	*c = *c + w < UINT32_MAX ? (uint32_t)(*c + w) : UINT32_MAX;
	return 0;
}

static const char css[] =
	"body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
	"table{border-collapse:collapse}td,th{padding:2px 8px;"
	"border-bottom:1px solid #ddd;text-align:right}"
	"td.h,th.h{text-align:left;font-family:monospace;white-space:nowrap}"
	"tr.deny td.h{color:#b00}tr.would td.h{color:#b60}"
	".legend span{display:inline-block;width:12px;height:12px;"
	"margin:0 4px 0 12px}"
	"svg text{font:11px monospace}";

static void page(FILE *f, const struct timeline *t, const struct opts *o)
{
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
		   "charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-"
		   "Policy\" content=\"default-src 'none'; style-src "
		   "'unsafe-inline'\">\n<title>sandbox audit report</title>"
		   "<style>%s</style></head><body>\n",
		css);
	fprintf(f, "<h1>Sandbox audit report</h1>\n<p id=\"files\">");
	for (size_t i = 0; i < o->nfiles; i++) {
		put_html(f, o->files[i]);
		fputs(i + 1 < o->nfiles ? ", " : "", f);
	}
	fprintf(f, " &mdash; %zu hosts, from ", t->n);
	put_time(f, t->n ? t->t0 : INT64_MIN);
	fputs(" to ", f);
	put_time(f, t->n ? t->t1 : INT64_MIN);
	fputs("</p>\n<h2>Summary</h2>\n<table id=\"summary\"><thead><tr>"
	      "<th class=\"h\">sandbox</th><th class=\"h\">host</th>"
	      "<th>allow</th><th>deny</th><th>would-deny</th>"
	      "<th>bytes up</th><th>bytes down</th><th class=\"h\">first</th>"
	      "<th class=\"h\">last</th></tr></thead><tbody>\n",
	      f);
	for (size_t i = 0; i < t->n; i++) {
		const struct host_stat *h = &t->s[i];
		fprintf(f, "<tr class=\"%s\"><td class=\"h\">",
			h->n[1] ? "deny" : h->n[2] ? "would" : "allow");
		put_html(f, h->key);
		fputs("</td><td class=\"h\">", f);
		put_html(f, h->host);
		fprintf(f,
			"</td><td>%llu</td><td>%llu</td><td>%llu</td>"
			"<td>%llu</td><td>%llu</td><td class=\"h\">",
			(unsigned long long)h->n[0],
			(unsigned long long)h->n[1],
			(unsigned long long)h->n[2],
			(unsigned long long)h->up,
			(unsigned long long)h->down);
		put_time(f, h->first);
		fputs("</td><td class=\"h\">", f);
		put_time(f, h->last);
		fputs("</td></tr>\n", f);
	}
	fputs("</tbody></table>\n<h2>Timeline</h2>\n<p class=\"legend\">"
	      "<span style=\"background:#2a2\"></span>allow"
	      "<span style=\"background:#d22\"></span>deny"
	      "<span style=\"background:#e90\"></span>would-deny</p>\n",
	      f);
	size_t rows = t->n < MAX_ROWS ? t->n : MAX_ROWS;
	const int label = 300, w = 4, rh = 16;
	fprintf(f,
		"<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%d\" height=\"%zu\">\n",
		label + BINS * w + 10, rows * (size_t)rh + 20);
	static const char *colour[3] = {"#2a2", "#d22", "#e90"};
	for (size_t i = 0; i < rows; i++) {
		int y = (int)i * rh + 4;
		fprintf(f, "<g class=\"row\"><text x=\"0\" y=\"%d\">", y + 11);
		put_html(f, t->s[i].host);
		fputs("</text>", f);
		for (int b = 0; b < BINS; b++) {
			/* deny drawn last: it must stay visible */
			static const int order[3] = {0, 2, 1};
			for (int k = 0; k < 3; k++) {
				int d = order[k];
				uint32_t c = t->bins[i][d][b];
				if (!c)
					continue;
				int hgt = c >= 8 ? 12 : 4 + (int)c;
				fprintf(f,
					"<rect x=\"%d\" y=\"%d\" width=\"%d\" "
					"height=\"%d\" fill=\"%s\"><title>%u"
					"</title></rect>",
					label + b * w, y + 12 - hgt, w - 1, hgt,
					colour[d], c);
			}
		}
		fputs("</g>\n", f);
	}
	/* time axis: start and end of the binned range */
	int ay = (int)rows * rh + 16;
	fprintf(f, "<text x=\"%d\" y=\"%d\">", label, ay);
	put_time(f, t->n ? t->t0 : INT64_MIN);
	fprintf(f, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
		label + BINS * w, ay);
	put_time(f, t->n ? t->t1 : INT64_MIN);
	fputs("</text>", f);
	fprintf(f, "</svg>\n%s</body></html>\n",
		t->n > MAX_ROWS ? "<p>(timeline shows the first 300 hosts)</p>"
				: "");
}

int cmd_report(int argc, char **argv)
{
	struct opts o;
	int rc = opts_parse(argc, argv, O_FILTER | O_HTML, usage, &o);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (!o.html || o.nfiles == 0) {
		fprintf(stderr, "sandbox-audit report: give --html OUT and at "
				"least one FILE\n%s",
			usage);
		opts_free(&o);
		return 2;
	}
	struct timeline t = {0};
	long bad = 0;
	if (summary_collect(&o, &t.s, &t.n, &bad) < 0) {
		opts_free(&o);
		return 2;
	}
	t.t0 = INT64_MAX, t.t1 = INT64_MIN;
	for (size_t i = 0; i < t.n; i++) {
		if (t.s[i].first < t.t0)
			t.t0 = t.s[i].first;
		if (t.s[i].last != INT64_MIN && t.s[i].last > t.t1)
			t.t1 = t.s[i].last;
	}
	size_t rows = t.n < MAX_ROWS ? t.n : MAX_ROWS;
	t.bins = calloc(rows ? rows : 1, sizeof(*t.bins));
	int ret = 0;
	if (!t.bins || for_each_record(&o, fill, &t) < 0) {
		ret = 2;
	} else {
		FILE *f = fopen(o.out, "w");
		if (!f) {
			fprintf(stderr, "sandbox-audit: %s: %s\n", o.out,
				strerror(errno));
			ret = 2;
		} else {
			page(f, &t, &o);
			if (fclose(f) != 0)
				ret = 2;
		}
	}
	free(t.bins);
	free_stats(t.s, t.n);
	opts_free(&o);
	return ret ? ret : bad ? 1 : 0;
}
