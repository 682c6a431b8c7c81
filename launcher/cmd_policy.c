/* sandbox-launch policy: change a running sandbox's policy from the host,
 * through its proxy's control socket (docs/policy.md, "Live policy
 * changes"). The proxy checks and audits every change. */
#include "cmds.h"

#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "policy_socket_client.h"

static const char policy_usage[] =
	"usage: sandbox-launch policy NAME COMMAND [SPEC]\n"
	"\n"
	"Changes the policy of the running named sandbox NAME, for new\n"
	"connections, without a restart. Every change is an audit record\n"
	"(\"event\":\"policy\"); runtime rules last as long as that run.\n"
	"Only named sandboxes (run, --name, an agent) can be addressed.\n"
	"\n"
	"Commands:\n"
	"  allow SPEC            allow a host pattern, host:PORT or CIDR[:PORT],\n"
	"                        optionally :PROTOCOLS (e.g. git.example:22:tcp)\n"
	"  deny SPEC             deny one\n"
	"  remove [allow|deny] SPEC\n"
	"                        drop runtime rules with that SPEC\n"
	"  cut                   deny all egress and close every open connection\n"
	"  resume                end a cut\n"
	"  status                egress open or cut, and the runtime rules\n"
	"\n"
	"Prints the proxy's reply. Exit status: 0 done, 1 the proxy refused the\n"
	"change (the reply says why), 2 usage error or the sandbox is not running.\n"
	"\n"
	"Examples:\n"
	"  sandbox-launch policy demo allow api.example.com:443\n"
	"  sandbox-launch policy demo cut\n";

static bool known(const char *w)
{
	static const char *const cmds[] = {"allow", "deny",   "remove",
					   "cut",   "resume", "status"};
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(w, cmds[i]))
			return true;
	return false;
}

int cmd_policy(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(policy_usage, stdout);
			return 0;
		}
	if (argc < 3) {
		fprintf(stderr, "sandbox-launch policy: expected NAME and a "
				"command (try --help)\n");
		return 2;
	}
	const char *name = argv[1];
	if (!known(argv[2])) {
		fprintf(stderr,
			"sandbox-launch policy: unknown command %s (allow, deny, "
			"remove, cut, resume, status)\n",
			argv[2]);
		return 2;
	}
	char line[1024];
	size_t n = 0;
	line[0] = '\0';
	for (int i = 2; i < argc; i++) {
		if (strpbrk(argv[i], "\n\r") ||
		    fmt_append(line, sizeof(line), &n, "%s%s", i > 2 ? " " : "",
			       argv[i])) {
			fprintf(stderr, "sandbox-launch policy: argument %d is "
					"too long or has a line break\n",
				i);
			return 2;
		}
	}
	return proxy_control_command("policy", name, line,
				     "runtime rules live only while it runs");
}
