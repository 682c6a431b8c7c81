/* Drives launcher/trust.c the way sandbox-launch will, for the
 * integration tests:
 *   trust_check --workspace W --run-dir R [--trust-dir T] [--presets D]
 *               [--trust] [--interactive] [--interrupted] [BASEFILE...]
 * --interactive asks on stdin/stdout when stdin is a terminal.
 * --interrupted: a SIGINT is pending on a signalfd given to the check, as
 * in sandbox-launch after Ctrl-C (exit 130 when the check noticed it).
 * Prints "present=.. widens=.. approved_now=.. sha256=.. copy=.." and exits
 * 0; on refusal prints the one-line error and exits 3 (-EACCES) or 1. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <string.h>
#include <unistd.h>

#include "../../launcher/trust.h"

int main(int argc, char **argv)
{
	struct trust_opts o = {0};
	const char *base[64];
	size_t nbase = 0;
	bool interactive = false, interrupted = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--workspace") && v)
			o.workspace = argv[++i];
		else if (!strcmp(a, "--run-dir") && v)
			o.run_dir = argv[++i];
		else if (!strcmp(a, "--trust-dir") && v)
			o.trust_dir = argv[++i];
		else if (!strcmp(a, "--presets") && v)
			o.preset_dir = argv[++i];
		else if (!strcmp(a, "--trust"))
			o.assume_yes = true;
		else if (!strcmp(a, "--interactive"))
			interactive = true;
		else if (!strcmp(a, "--interrupted"))
			interrupted = true;
		else if (a[0] != '-' && nbase < 64)
			base[nbase++] = a;
		else {
			fprintf(stderr, "trust_check: bad argument %s\n", a);
			return 2;
		}
	}
	if (!o.workspace || !o.run_dir) {
		fprintf(stderr, "trust_check: --workspace and --run-dir needed\n");
		return 2;
	}
	if (interactive && isatty(0)) {
		o.tty_in = stdin;
		o.tty_out = stdout;
	}
	int sfd = -1;
	if (interrupted) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_BLOCK, &set, NULL);
		sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
		raise(SIGINT);
		o.sigfd = &sfd;
	}
	o.base_files = base;
	o.n_base = nbase;
	struct trust_result res;
	char err[1024];
	int r = trust_check_repo_policy(&o, &res, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "sandbox-launch: %s\n", err);
		return r == -EACCES ? 3 : r == -EINTR ? 130 : 1;
	}
	printf("present=%d widens=%d approved_now=%d sha256=%s copy=%s\n",
	       res.present, res.widens, res.approved_now,
	       res.present ? res.sha256 : "-",
	       res.present ? res.copy_path : "-");
	return 0;
}
