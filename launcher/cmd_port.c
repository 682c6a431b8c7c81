/* sandbox-launch port: publish, unpublish and list the ports of a running
 * sandbox's guest on the host, through its proxy's control socket (the
 * proxy holds the listeners: proxy/inbound.h, docs/launcher.md,
 * "Published ports"). */
#include "cmds.h"

#include <stdio.h>
#include <string.h>

#include "../common/util.h"
#include "../parse/inbound.h"
#include "policy_socket_client.h"

static const char port_usage[] =
	"usage: sandbox-launch port NAME add [HOST_IP:]HOST_PORT:GUEST_PORT\n"
	"       sandbox-launch port NAME rm [HOST_IP:]HOST_PORT:GUEST_PORT\n"
	"       sandbox-launch port NAME list\n"
	"\n"
	"Publishes a port of the running named sandbox NAME's guest loopback on\n"
	"the host, as -p does at launch, or stops publishing it (open\n"
	"connections are left to finish), or lists what is published. Without\n"
	"HOST_IP the port is published on 127.0.0.1 and ::1 only; any other\n"
	"HOST_IP (0.0.0.0, a LAN address) exposes the guest's server to the\n"
	"network. Every connection is an audit record (\"event\":\"inbound\"),\n"
	"every change a \"policy\" record.\n"
	"\n"
	"add and rm are for this run only: the sandbox does not remember them,\n"
	"and its next run publishes the ports it was made with (-p on its first\n"
	"run; sandbox-launch reset NAME forgets those). The reply says so too.\n"
	"\n"
	"Exit status: 0 done, 1 the proxy refused (the reply says why, e.g. the\n"
	"host port is in use), 2 usage error or the sandbox is not running.\n"
	"\n"
	"Examples:\n"
	"  sandbox-launch port demo add 8080:8000\n"
	"  sandbox-launch port demo list\n";

int cmd_port(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(port_usage, stdout);
			return 0;
		}
	bool list = argc == 3 && !strcmp(argv[2], "list");
	bool change = argc == 4 &&
		      (!strcmp(argv[2], "add") || !strcmp(argv[2], "rm"));
	if (!list && !change) {
		fprintf(stderr, "sandbox-launch port: expected NAME add|rm "
				"SPEC or NAME list (try --help)\n");
		return 2;
	}
	const char *name = argv[1];
	char line[256];
	if (change) {
		struct publish_spec ps;
		const char *why = NULL;
		if (publish_spec_parse(argv[3], &ps, &why) < 0) {
			fprintf(stderr, "sandbox-launch port: %s: %s\n",
				argv[3], why);
			return 2;
		}
		char canon[80];
		publish_spec_format(&ps, canon, sizeof(canon));
		fmt_buf(line, sizeof(line), "port %s %s", argv[2], canon);
	} else {
		fmt_buf(line, sizeof(line), "port list");
	}
	int rc = proxy_control_command("port", name, line,
				       "ports are published only while it runs");
	if (rc == 0 && change)
		printf("for this run only: the next run of %s publishes the "
		       "ports it was made with\n",
		       name);
	return rc;
}
