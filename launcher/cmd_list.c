/* sandbox-launch list [--json]: the named sandboxes, their state, and
 * what their latest run's audit log says. */
#include "cmds.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/termsafe.h"
#include "../common/util.h"
#include "remembered.h"

static const char list_usage[] =
	"usage: sandbox-launch list [--json]\n"
	"\n"
	"Lists the named sandboxes: name, state (running/stopped), workspace,\n"
	"agent or command, uptime, policy files, the connections allowed and\n"
	"denied in its latest run's audit log, and the settings it was made with\n"
	"(reused by later runs; those left at their default are not shown).\n"
	"--json prints one JSON array, for scripts; its \"settings\" has every\n"
	"setting, [] for a default.\n";

static void uptime(long long started, char *out, size_t n)
{
	long long s = (long long)time(NULL) - started;
	if (s < 0)
		s = 0;
	if (s < 3600)
		fmt_buf(out, n, "%lldm%02llds", s / 60, s % 60);
	else
		fmt_buf(out, n, "%lldh%02lldm", s / 3600, s / 60 % 60);
}

/* One remembered setting that is not the default (--json has all). */
static void show_setting(const struct remembered *r, size_t k)
{
	const char *opt = remembered_table[k].option;
	for (size_t i = 0; i < r->val[k].n; i++) {
		printf("%-24s made with %s ", "", opt);
		term_fputs(remembered_show(k, r->val[k].v[i]), stdout, false);
		fputc('\n', stdout);
	}
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int cmd_list(int argc, char **argv)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(list_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "sandbox-launch list: unknown argument "
					"%s (try --help)\n",
				argv[i]);
			return 2;
		}
	}
	char base[PATH_MAX];
	struct dirent **ents = NULL;
	int n = sandboxes_base(base, sizeof(base), false) == 0
			? scandir(base, &ents, NULL, by_name)
			: -1;
	if (json)
		fputs("[", stdout);
	else
		printf("%-24s %-8s %-8s %-9s %7s %6s  %s\n", "NAME", "STATE",
		       "AGENT", "UPTIME", "ALLOWED", "DENIED", "WORKSPACE");
	bool first = true;
	for (int i = 0; i < n; i++) {
		char dir[PATH_MAX];
		struct sandbox_meta m;
		if (ents[i]->d_name[0] == '.' ||
		    fmt_buf(dir, sizeof(dir), "%s/%s", base, ents[i]->d_name) ||
		    sandbox_meta_read(dir, &m))
			continue;
		bool running = sandbox_running(dir);
		struct remembered rec;
		char rerr[PATH_MAX + 128];
		int rr = remembered_read(dir, &rec, rerr, sizeof(rerr));
		if (rr && rr != -ENOENT)
			fprintf(stderr, "sandbox-launch list: %s\n", rerr);
		unsigned long al, de;
		sandbox_audit_counts(m.audit, &al, &de);
		if (json) {
			static char buf[64 * 1024];
			size_t l = 0;
			fmt_append(buf, sizeof(buf), &l, "%s\n  {\"name\": ",
				   first ? "" : ",");
			json_append_str(buf, sizeof(buf), &l, m.name);
			fmt_append(buf, sizeof(buf), &l, ", \"state\": \"%s\"",
				   running ? "running" : "stopped");
			fmt_append(buf, sizeof(buf), &l, ", \"workspace\": ");
			json_append_str(buf, sizeof(buf), &l, m.workspace);
			fmt_append(buf, sizeof(buf), &l, ", \"agent\": ");
			json_append_str(buf, sizeof(buf), &l, m.agent);
			fmt_append(buf, sizeof(buf), &l, ", \"command\": ");
			json_append_str(buf, sizeof(buf), &l, m.command);
			fmt_append(buf, sizeof(buf), &l,
				   ", \"created\": %lld, \"started\": %lld, "
				   "\"uptime_s\": %lld, \"pid\": %d, "
				   "\"policies\": [",
				   m.created, m.started,
				   running ? (long long)time(NULL) - m.started
					   : 0,
				   running ? m.pid : 0);
			for (size_t k = 0; k < m.n_policies; k++) {
				fmt_append(buf, sizeof(buf), &l, k ? ", " : "");
				json_append_str(buf, sizeof(buf), &l,
						m.policies[k]);
			}
			fmt_append(buf, sizeof(buf), &l,
				   "], \"allowed\": %lu, \"denied\": %lu, "
				   "\"audit\": ",
				   al, de);
			json_append_str(buf, sizeof(buf), &l, m.audit);
			fmt_append(buf, sizeof(buf), &l, ", \"settings\": ");
			remembered_json(&rec, buf, sizeof(buf), &l);
			fmt_append(buf, sizeof(buf), &l, "}");
			fputs(buf, stdout);
		} else {
			char up[32] = "-";
			if (running)
				uptime(m.started, up, sizeof(up));
			printf("%-24s %-8s %-8s %-9s %7lu %6lu  %s\n", m.name,
			       running ? "running" : "stopped",
			       m.agent[0] ? m.agent : "-", up, al, de,
			       m.workspace);
			for (size_t k = 0; k < m.n_policies; k++)
				printf("%-24s policy %s\n", "", m.policies[k]);
			for (size_t k = 0; k < remembered_count; k++)
				show_setting(&rec, k);
		}
		remembered_free(&rec);
		first = false;
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	if (json)
		fputs(first ? "]\n" : "\n]\n", stdout);
	return 0;
}
