/* sandbox-launch: the pieces main.c puts together, one file each.
 *
 *   launch_opts.c    command line -> struct launch_opts (pure, no I/O)
 *   strv.c           a growable argv (the QEMU and proxy command lines)
 *   state_dir.c      the private per-run state dir and the kept run dir
 *   workspace.c      the workspace and the command's start directory
 *   accel.c          KVM where it works, TCG otherwise, remembered
 *   qemu_cmd.c       the QEMU command line (pure: config -> argv)
 *   supervise.c      child processes: PDEATHSIG, logs, teardown
 *   tty.c            host terminal raw mode and window size
 *   cmd_channel_client.c  the host end of the command channel (parse/cmd_channel.h)
 *   launch_plan.c    argv, paths and environment of a run, as data (pure)
 *   locate.c         where the helper programs, the guest and QEMU are
 *
 * docs/launcher.md lists what the launcher does, in order.
 */
#ifndef LAUNCHER_LAUNCH_H
#define LAUNCHER_LAUNCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- launch_opts.c ------------------------------------------------- */

struct launch_rule {
	bool allow;
	const char *spec; /* points into argv */
};

/* Audit log rotation defaults (docs/audit-log.md): at most
 * (KEEP + 1) * MAX_BYTES on disk per run. */
#define LAUNCH_AUDIT_MAX_BYTES (16u << 20)
#define LAUNCH_AUDIT_KEEP 8

struct launch_opts {
	/* Arrays are owned (malloc'd); the strings point into argv. */
	const char **policies;
	size_t n_policies;
	struct launch_rule *rules;
	size_t n_rules;
	const char **env;
	size_t n_env;
	const char **publish; /* -p SPEC, parse/inbound.h */
	size_t n_publish;
	const char **host_ports; /* --host-port PORT (checked digits) */
	size_t n_host_ports;
	/* --secret VAR@HOST[,HOST...] (docs/secrets.md), --upstream-ca */
	const char **secrets;
	size_t n_secrets;
	const char *upstream_ca;
	const char *workspace; /* NULL: the current directory */
	const char *resolver;
	const char *audit;
	/* Rotation of the audit log (sandbox-proxy --audit-max-bytes and
	 * --audit-keep): on by default so a guest cannot fill the disk. */
	unsigned audit_max_bytes; /* 0: never rotate */
	unsigned audit_keep;
	const char *name;      /* sandbox name: audit records, guest hostname */
	const char *image;     /* --image NAME|PATH; NULL: the host's /usr */
	bool root;             /* --root: the command runs as root in the guest */
	unsigned memory_mb;    /* 0: default */
	unsigned cpus;         /* 0: default */
	unsigned boot_timeout; /* seconds */
	bool trust;            /* --trust: approve a widening repo policy */
	bool no_repo_policy;   /* --no-repo-policy: ignore .sandbox/policy.yaml */
	bool timings;          /* --timings: the boot timeline on stderr */
	bool verbose, help, version;
	bool docker;             /* --docker: dockerd in the guest */
	unsigned disk_size_mb;   /* --disk-size; 0: LAUNCH_DOCKER_DISK_MB */
	const char *registry_mirror; /* --registry-mirror URL */
	char **cmd; /* the command, NULL-terminated (points into argv) */
	int cmd_argc;
	bool no_command; /* LAUNCH_OPTS_USAGE because no command was given */
};

enum launch_opts_status {
	LAUNCH_OPTS_OK = 0,
	LAUNCH_OPTS_USAGE, /* err says what is wrong */
	LAUNCH_OPTS_NOMEM,
};

/* Parses argv. On error writes one line (no newline) to err. */
enum launch_opts_status launch_opts_parse(int argc, char **argv,
					  struct launch_opts *o, char *err,
					  size_t errsz);
void launch_opts_free(struct launch_opts *o);
extern const char launch_usage[];

/* Docker's per-run data disk (docs/docker.md): sparse, so the default
 * costs only what Docker writes. */
#define LAUNCH_DOCKER_DISK_MB (16u << 10)
/* docker_opts.c: --disk-size (MB, or NG) and --registry-mirror. The
 * mirror goes on the kernel command line and into daemon.json; the guest
 * checks it again (guest/docker.c). */
int launch_disk_size_parse(const char *s, unsigned *mb);
bool launch_mirror_valid(const char *s);
/* RUN_DIR/docker.img, sparse ext4 of size_mb (0: the default). */
int docker_disk_create(const char *run_dir, unsigned size_mb, char *path,
		       size_t pathsz, char *err, size_t errsz);

/* [A-Za-z0-9_-]{1,32}: a sandbox name, also the guest's hostname. */
bool launch_name_valid(const char *s);
/* NAME or NAME=VALUE with a shell-style NAME. */
bool launch_env_valid(const char *s);
/* VAR@HOST[,HOST...] (--secret; launcher/secrets.c). */
bool launch_secret_valid(const char *s);

/* ---- timings.c ------------------------------------------------------ */

/* The launcher's side of the boot timeline: the time since the first mark,
 * per step (a static string). */
void timings_mark(const char *step);
/* Print the host's steps and the guest's (read from console_log). */
void timings_print(const char *console_log);

/* ---- strv.c --------------------------------------------------------- */

struct strv {
	char **v; /* owned, NULL-terminated; each string owned */
	size_t n, cap;
	bool failed; /* an add ran out of memory: the vector is unusable */
};

void strv_add(struct strv *s, const char *str);
void strv_addf(struct strv *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void strv_free(struct strv *s);

/* ---- state_dir.c ---------------------------------------------------- */

/* Creates a private (0700) directory for this run's sockets under
 * $XDG_RUNTIME_DIR/sandbox/ or /tmp/sandbox-$UID/, named NAME-PID-XXXXXX.
 * First removes the directories of earlier runs whose launcher is gone
 * (after a SIGKILL nothing else can). */
int state_dir_create(const char *name, char *out, size_t outsz);
/* The run's policy.txt at path: what the proxy was given (pa: pairs of
 * option and value, as plan_policy_args makes them), one per line, in
 * merge order. 0 or -errno. */
int run_write_policy_record(const char *path, const struct strv *pa);
/* Removes the state directory and the files and sockets in it. */
void state_dir_remove(const char *dir);
/* Creates the kept run directory $XDG_STATE_HOME/sandbox/runs/ID (default
 * ~/.local/state/...): audit log, console log, daemon logs. ID is
 * YYYYMMDD-HHMMSS-NAME-PID, local time and the launcher's pid
 * (launcher/cmd_runs.c reads it back). */
int run_dir_create(const char *name, char *out, size_t outsz);
/* Their parent, $XDG_STATE_HOME/sandbox/runs (created 0700 when create
 * is set); -ENOENT when neither XDG_STATE_HOME nor HOME is absolute. */
int run_base(char *out, size_t outsz, bool create);

/* ---- accel.c -------------------------------------------------------- */

enum accel { ACCEL_TCG = 0, ACCEL_KVM = 1 };

/* KVM when /dev/kvm opens read-write and no earlier run found it broken
 * on this kernel. */
enum accel accel_choose(void);
/* Does QEMU's log say that KVM itself failed (as opposed to anything
 * else)? */
bool accel_kvm_failed(const char *qemu_log_text);
/* Remember that KVM does not work here (best effort). */
void accel_remember_broken(void);

/* ---- qemu_cmd.c ----------------------------------------------------- */

struct qemu_config {
	const char *qemu;      /* binary */
	const char *kernel, *initrd;
	const char *workspace; /* absolute, normalised */
	const char *vhost_sock;
	const char *console_log;
	const char *hostname;
	enum accel accel;
	unsigned memory_mb, cpus;
	unsigned uid, gid; /* the sandbox user in the guest */
	const char *root_image; /* absolute path; NULL: the host's /usr */
	const char *upper_disk; /* NULL: tmpfs writable layer */
	bool docker;            /* sandbox.docker=on */
	const char *docker_disk; /* per-run Docker data disk; NULL: none */
	const char *registry_mirror; /* NULL: none */
	/* Host root only: shared read-only, the guest's /etc/apt and system
	 * accounts (host_etc_prepare) and the lower layer of its
	 * /var/lib/dpkg (host_pkg.h); NULL: not shared. */
	const char *host_etc, *host_dpkg;
	/* The workspace's virtiofsd socket (launcher/virtiofs.h); NULL: the
	 * workspace is shared over 9p with mapped-xattr. */
	const char *virtiofs_sock;
};

/* Is the workspace path one the guest accepts on its command line and
 * QEMU in an option value? NULL if so, else why not. */
const char *qemu_workspace_problem(const char *path);

/* ---- workspace.c ---------------------------------------------------- */

/* The workspace (given, or "." when NULL) as an absolute path in ws, and
 * where the command starts (the current directory when it is inside the
 * workspace, else ws) in cwd_guest. 0, or -errno with why in err. */
int workspace_resolve(const char *given, char ws[PATH_MAX],
		      char cwd_guest[PATH_MAX], char *err, size_t errsz);
/* The user's own policy ($XDG_CONFIG_HOME/sandbox/policy.yaml, else
 * ~/.config/sandbox/policy.yaml) in out: 1 when it exists, else 0 with
 * out empty. */
int user_policy_path(char *out, size_t outsz);
/* Fills argv; returns 0 or -ENOMEM / -EINVAL. */
int qemu_cmd_build(const struct qemu_config *c, struct strv *argv);

/* ---- supervise.c ---------------------------------------------------- */

struct child {
	const char *name; /* for messages */
	pid_t pid;        /* 0: not running */
	int status;       /* wait status once reaped */
	bool reaped;
};

/* fork + exec argv with stdin from /dev/null and stdout+stderr appended
 * to log_path, in its own process group, with PR_SET_PDEATHSIG(SIGKILL)
 * and an empty signal mask. Returns 0 or -errno (exec failure included). */
int child_spawn(struct child *c, char *const argv[], const char *log_path);
/* Block SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH and SIGCHLD and return
 * a non-blocking signalfd for them (every wait of the supervisor reads
 * it), or -errno. SIGPIPE is ignored. */
int signals_to_fd(void);
/* The same, and the child inherits fds[i] (at most 8) as descriptor 3+i
 * (a --ready-fd pipe's write end; the caller closes its own copies). */
int child_spawn_fds(struct child *c, char *const argv[], const char *log_path,
		    const int *fds, size_t nfds);
/* Reap c if it has exited; true if it is gone. */
bool child_gone(struct child *c);

enum child_wait {
	CHILD_WAIT_READY,   /* "ready" came on the pipe */
	CHILD_WAIT_GONE,    /* it exited, or closed the pipe without it */
	CHILD_WAIT_TIMEOUT, /* deadline_ms (CLOCK_MONOTONIC) passed */
	CHILD_WAIT_SIGNAL,  /* SIGINT/TERM/HUP/QUIT on sigfd: *signo */
};
/* Waits, without polling on a timer, for ready_fd (the read end of c's
 * --ready-fd pipe, common/ready_fd.h) to say ready or c to exit; with
 * ready_fd -1, for c to exit (then GONE). sigfd is the launcher's
 * signalfd, SIGCHLD among its signals: each wake-up reaps. */
enum child_wait child_wait(struct child *c, int ready_fd, int sigfd,
			   uint64_t deadline_ms, int *signo);
/* How a child ended ("exit status 1", "killed by signal 9 (Killed)"). */
void child_status_text(const struct child *c, char *out, size_t outsz);
/* SIGTERM each running child, wait up to grace_ms in total (woken by
 * SIGCHLD on sigfd; -1: checking every 10 ms), SIGKILL what is left and
 * reap everything. */
void children_stop(struct child *const cs[], size_t n, int grace_ms,
		   int sigfd);

/* The last bytes (from a line start) of a log, escaped for the terminal
 * (the logs quote what the guest sent), on stderr for an error message. */
void log_print_tail(const char *path, size_t bytes);

/* ---- tty.c ---------------------------------------------------------- */

int tty_raw_enter(int fd);
void tty_restore(void); /* safe to call any number of times */
void tty_winsize(int fd, uint16_t *rows, uint16_t *cols);

/* ---- cmd_channel_client.c ------------------------------------------ */

struct session_params {
	char *const *argv;
	const char *const *env; /* NAME=VALUE */
	size_t envc;
	const char *cwd;
	unsigned uid, gid;
	bool tty;
};

enum session_end {
	SESSION_EXITED,    /* code = exit status */
	SESSION_SIGNALED,  /* code = signal number */
	SESSION_LOST,      /* channel closed without EXIT */
	SESSION_INTERRUPTED, /* the launcher got SIGTERM/SIGHUP/a 2nd SIGINT */
};

struct session_result {
	enum session_end end;
	int code;
	char why[256];
};

/* Connect to guest port port through the bridge's CONNECT socket,
 * retrying until the guest listens, deadline_ms (CLOCK_MONOTONIC) passes,
 * abort_check() returns true, or a terminating signal arrives on sigfd.
 * Returns the connected fd or -ETIMEDOUT / -EINTR / -ECHILD / -errno. */
int control_connect(const char *bridge_sock, unsigned port,
		    uint64_t deadline_ms, int sigfd, bool (*abort_check)(void));
/* Send SPEC and relay stdio, signals and window size until EXIT. */
int control_session(int fd, const struct session_params *p, int sigfd,
		    struct session_result *res);
/* The launcher's exit status for an ended session, as a shell would
 * report it: the exit code, or 128+N for signal N (SIGTERM when the
 * launcher itself was interrupted). Not for SESSION_LOST. */
int session_exit_status(const struct session_result *res);

#endif
