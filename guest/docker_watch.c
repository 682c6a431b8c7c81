/* Which container has a source address (docs/docker.md, "Which container
 * made a connection").
 *
 * A watcher, started by docker_start() as guest root, follows dockerd's
 * network events (`docker events`) and, for each network that changes,
 * writes the network's endpoints to DOCKER_MAP_DIR/nets/NETWORK-ID, one
 * "ADDR/PREFIX CONTAINER-ID NAME" line each (`docker network inspect`).
 * While it rewrites a file after an event, DOCKER_MAP_DIR/busy exists.
 *
 * The transparent forwarder (fwd_tcp.c, as nobody, one process per
 * connection) looks the connection's source address up in those files and
 * sends the container's name and short id in the wire header's container
 * extension (parse/wire.h). A connection from an address the files do not
 * know yet, while the watcher is busy, waits for it (bounded): a
 * container's first connection can come before the watcher has asked
 * dockerd about its network.
 *
 * All of it is the guest's claim: a label in the audit log, never policy.
 * Containers with --network host have no address of their own, so no name.
 */
#include "guest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "../parse/wire.h"

#define DOCKER_MAP_DIR "/run/sandbox-docker"
#define DOCKER_CLI "/usr/bin/docker"
#define WATCH_LOG "/var/log/docker-watch.log"
/* How long a connection from an unknown address waits while the watcher
 * is busy: `docker network inspect` under TCG takes a few seconds. */
#define LOOKUP_WAIT_MS 10000

/* Network ids are checked to be hex before they become file names. */
static const char watch_script[] =
	"D=" DOCKER_MAP_DIR "; N=$D/nets\n"
	"F='{{range $id, $c := .Containers}}{{$c.IPv4Address}} {{$id}} "
	"{{$c.Name}}{{\"\\n\"}}{{end}}'\n"
	"upd() {\n"
	"  case $1 in ''|*[!0-9a-f]*) return;; esac\n"
	"  if docker network inspect --format \"$F\" \"$1\" >\"$N/.$1\"; then\n"
	"    mv -f \"$N/.$1\" \"$N/$1\"\n"
	"  else rm -f \"$N/.$1\" \"$N/$1\"; fi\n"
	"}\n"
	"docker events --filter type=network --format '{{.Actor.ID}}' |\n"
	"while read -r n; do : >\"$D/busy\"; upd \"$n\"; rm -f \"$D/busy\"; done &\n"
	"for n in $(docker network ls -q --no-trunc); do upd \"$n\"; done\n"
	"wait\n";

int docker_watch_start(void)
{
	if (access(DOCKER_CLI, X_OK) < 0) {
		log_msg("docker: no %s: records will not name containers",
			DOCKER_CLI);
		return 0;
	}
	if ((mkdir(DOCKER_MAP_DIR, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(DOCKER_MAP_DIR "/nets", 0755) < 0 && errno != EEXIST))
		return -errno;
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : 0;
	int fd = open(WATCH_LOG, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0644);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 ||
	    dup2(fd, 2) < 0)
		_exit(126);
	setsid();
	umask(022);
	static char *const envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
		"/sbin:/bin",
		"HOME=/root", "DOCKER_HOST=unix:///run/docker.sock", NULL};
	const char *argv[] = {"/bin/sh", "-c", watch_script, NULL};
	execve(argv[0], (char *const *)argv, envp);
	_exit(127);
}

/* One "ADDR/PREFIX ID NAME" line: is ADDR want? Then the id's first 12
 * digits and the name, if they fit the wire header's alphabet. */
static int match_line(char *line, const char *want, char *id, size_t idsz,
		      char *name, size_t namesz)
{
	char *sp1 = strchr(line, ' ');
	if (!sp1)
		return 0;
	char *slash = memchr(line, '/', (size_t)(sp1 - line));
	size_t al = (size_t)((slash ? slash : sp1) - line);
	if (al != strlen(want) || memcmp(line, want, al) != 0)
		return 0;
	char *i = sp1 + 1, *sp2 = strchr(i, ' ');
	if (!sp2)
		return 0;
	char *n = sp2 + 1;
	size_t il = (size_t)(sp2 - i), nl = strcspn(n, "\r\n");
	if (il > 12)
		il = 12;
	if (!wire_ctr_id_ok(i, il) || !wire_ctr_name_ok(n, nl) ||
	    il >= idsz || nl >= namesz)
		return 0;
	memcpy(id, i, il);
	id[il] = '\0';
	memcpy(name, n, nl);
	name[nl] = '\0';
	return il || nl;
}

static int lookup_once(const char *want, char *id, size_t idsz, char *name,
		       size_t namesz)
{
	DIR *d = opendir(DOCKER_MAP_DIR "/nets");
	if (!d)
		return 0;
	int found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		if (fmt_buf(path, sizeof(path), DOCKER_MAP_DIR "/nets/%s",
			    e->d_name))
			continue;
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		char line[256];
		for (int k = 0; !found && k < 4096 && fgets(line, sizeof(line), f);
		     k++)
			found = match_line(line, want, id, idsz, name, namesz);
		fclose(f);
	}
	closedir(d);
	return found;
}

int docker_container_of(const struct in_addr *src, char *id, size_t idsz,
			char *name, size_t namesz)
{
	char want[INET_ADDRSTRLEN];
	if (!inet_ntop(AF_INET, src, want, sizeof(want)) ||
	    access(DOCKER_MAP_DIR, F_OK) < 0)
		return 0;
	/* The guest's own traffic and --network host containers come from
	 * its own addresses: nothing to look up, never a wait. */
	if (!strncmp(want, "127.", 4) || !strcmp(want, GUEST_ADDR))
		return 0;
	for (int waited = 0;; waited += 50) {
		if (lookup_once(want, id, idsz, name, namesz))
			return 1;
		if (waited >= LOOKUP_WAIT_MS ||
		    access(DOCKER_MAP_DIR "/busy", F_OK) < 0)
			return 0;
		struct timespec ts = {.tv_nsec = 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}
