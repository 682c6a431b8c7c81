/* Subcommand dispatch, agents on the run path, and the registry
 * bookkeeping of one run of a named sandbox (cmds.h). */
#include "cmds.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/datadir.h"
#include "../common/util.h"
#include "secrets.h"
#include "../policy/policy.h"
#include "agents.h"
#include "image.h"


/* Where --image NAME looks (as main.c's find_image). A missing directory
 * is left for image_resolve to report with the name asked for. */
static int images_dir(char *out, size_t outsz)
{
	int r = data_dir(DATA_IMAGES, out, outsz);
	return r == -ENOENT ? 0 : r;
}

/* What a writable layer is made over: the host's /usr, or an image file
 * as it is now (a rebuilt image is another root). */
static int root_identity(const char *image, char *out, size_t outsz,
			 char *err, size_t errsz)
{
	if (!image)
		return fmt_buf(out, outsz, "host /usr");
	char dir[PATH_MAX], path[PATH_MAX], abs[PATH_MAX];
	int r = images_dir(dir, sizeof(dir));
	if (r) {
		fmt_buf(err, errsz, "cannot find the images directory");
		return r;
	}
	if ((r = image_resolve(image, dir, path, sizeof(path), err, errsz)))
		return r;
	struct stat st;
	if (!realpath(path, abs) || stat(abs, &st) < 0) {
		fmt_buf(err, errsz, "image %s: %s", path, strerror(errno));
		return -errno;
	}
	return fmt_buf(out, outsz, "image %s, size %lld, modified %lld", abs,
		       (long long)st.st_size, (long long)st.st_mtime);
}

/* Is --name among the options (all of argv when there is no command)? */
static const char *name_opt(int argc, char **argv, int end)
{
	for (int i = 1; i < end && i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--name") && i + 1 < argc)
			return argv[i + 1];
		if (!strncmp(argv[i], "--name=", 7))
			return argv[i] + 7;
	}
	return NULL;
}

/* A named run without a command ("run", "run NAME", "--name NAME") runs
 * the sandbox's recorded command again: argv gets "--name NAME", the
 * recorded workspace unless --workspace is given, and the words. Returns
 * 0 (argv rewritten, or nothing to do) or an exit status. */
static int replay(int *argc, char ***argv, bool named)
{
	struct launch_opts t;
	char err[512];
	enum launch_opts_status st =
		launch_opts_parse(*argc, *argv, &t, err, sizeof(err));
	int end = *argc; /* the options end here */
	const char *name = name_opt(*argc, *argv, *argc), *word = NULL;
	bool ws_given = t.workspace != NULL;
	if (st == LAUNCH_OPTS_OK && !t.help && !t.version && named && !name &&
	    t.cmd_argc == 1 && strcmp(t.cmd[-1], "--") &&
	    launch_name_valid(t.cmd[0])) {
		/* "run NAME": NAME when such a sandbox exists. */
		char dir[PATH_MAX];
		struct sandbox_meta m;
		if (!sandbox_dir(t.cmd[0], dir, sizeof(dir), false) &&
		    !sandbox_meta_read(dir, &m)) {
			word = t.cmd[0];
			end = (int)(t.cmd - *argv);
		}
	}
	bool no_cmd = st == LAUNCH_OPTS_USAGE && t.no_command;
	launch_opts_free(&t);
	if (!word && !(no_cmd && (named || name)))
		return 0;
	if (word)
		name = word;
	char defname[40], here[PATH_MAX];
	if (!name) {
		const char *w = ws_given ? t.workspace : ".";
		if (!realpath(w, here)) {
			fprintf(stderr, "sandbox-launch: workspace %s: %s\n", w,
				strerror(errno));
			return 2;
		}
		sandbox_default_name(here, defname, sizeof(defname));
		name = defname;
	}
	static char dir[PATH_MAX];
	static struct sandbox_meta m;
	if (!launch_name_valid(name) || sandbox_dir(name, dir, sizeof(dir), false) ||
	    sandbox_meta_read(dir, &m) || !m.n_args) {
		fprintf(stderr,
			"sandbox-launch: no command given, and no sandbox %s "
			"with a recorded command to run again (try --help)\n",
			name);
		return 2;
	}
	if (end > 1 && !strcmp((*argv)[end - 1], "--"))
		end--;
	char **nv = calloc((size_t)end + 6 + m.n_args + 1, sizeof(*nv));
	if (!nv) {
		fprintf(stderr, "sandbox-launch: out of memory\n");
		return 125;
	}
	int n = 0;
	for (int i = 0; i < end; i++)
		nv[n++] = (*argv)[i];
	if (word || !name_opt(*argc, *argv, *argc)) {
		nv[n++] = "--name";
		nv[n++] = (char *)name;
	}
	if (!ws_given) {
		nv[n++] = "--workspace";
		nv[n++] = m.workspace;
	}
	if (!m.agent[0])
		nv[n++] = "--";
	char *w = m.args;
	for (size_t i = 0; i < m.n_args; i++, w += strlen(w) + 1)
		nv[n++] = w;
	*argv = nv;
	*argc = n;
	return 0;
}

int subcommand_dispatch(int *argc, char ***argv, bool *named)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {{"exec", cmd_exec}, {"list", cmd_list}, {"ls", cmd_list},
		    {"stop", cmd_stop}, {"rm", cmd_rm},	    {"prune", cmd_prune},
		    {"reset", cmd_reset},	    {"policy", cmd_policy},
		    {"port", cmd_port},	    {"runs", cmd_runs}};
	*named = false;
	if (*argc < 2)
		return -1;
	const char *w = (*argv)[1];
	if (!strcmp(w, "run")) {
		/* sandbox-launch run ARGS == sandbox-launch ARGS, named. */
		(*argv)[1] = (*argv)[0];
		(*argv)++;
		(*argc)--;
		*named = true;
		int r = replay(argc, argv, true);
		return r ? r : -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(w, cmds[i].name))
			return cmds[i].fn(*argc - 1, *argv + 1);
	int r = replay(argc, argv, false);
	return r ? r : -1;
}

int sandbox_recorded_image(const char *name, char *out, size_t outsz)
{
	char dir[PATH_MAX], root[PATH_MAX + 128];
	if (sandbox_dir(name, dir, sizeof(dir), false) ||
	    sandbox_upper_root(dir, root, sizeof(root)) != 1 ||
	    strncmp(root, "image ", 6))
		return 0;
	/* root_identity()'s form: "image PATH, size N, modified T". */
	char *end = strstr(root + 6, ", size ");
	if (!end)
		return 0;
	*end = '\0';
	/* An image that is gone is not taken: the run then stops on the
	 * root check, which names the layer's root and `reset`. */
	if (access(root + 6, F_OK) != 0)
		return 0;
	return fmt_buf(out, outsz, "%s", root + 6) ? 0 : 1;
}

bool name_given(char **argv, const struct launch_opts *o)
{
	for (char **a = argv + 1; a < o->cmd && *a; a++) {
		if (!strcmp(*a, "--"))
			break;
		if (!strncmp(*a, "--name", 6) && ((*a)[6] == '=' || !(*a)[6]))
			return true;
	}
	return false;
}

static int push_front(const char ***arr, size_t *n, const char *s)
{
	const char **p = realloc(*arr, (*n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memmove(p + 1, p, *n * sizeof(*p));
	p[0] = s;
	*arr = p;
	(*n)++;
	return 0;
}

/* Does --image's manifest (NAME.json next to NAME.img, written by make
 * image) list the agent's npm package? The image itself is ext4, which
 * we cannot look into without root. */
static bool image_has_agent(const char *image, const struct agent *a)
{
	char dir[PATH_MAX], path[PATH_MAX], err[PATH_MAX + 256];
	if (!image || !a->npm[0] || images_dir(dir, sizeof(dir)) ||
	    image_resolve(image, dir, path, sizeof(path), err, sizeof(err)))
		return false;
	size_t n = strlen(path);
	if (n < 4 || strcmp(path + n - 4, ".img") ||
	    fmt_buf(path + n - 4, sizeof(path) - (n - 4), ".json"))
		return false;
	_cleanup_free_ char *text = NULL;
	if (read_file(path, 4u << 20, &text, NULL))
		return false;
	char key[160];
	const char *pk = strstr(text, "\"npm_packages\"");
	if (!pk || fmt_buf(key, sizeof(key), "\"%s\":", a->npm))
		return false;
	const char *end = strchr(pk, '}'), *hit = strstr(pk, key);
	return hit && end && hit < end;
}

/* The command as given, before agent_apply replaces it (meta args). */
static char **user_cmd;
static int user_argc;

int agent_apply(struct launch_opts *o, char **argv,
		char *agent, size_t agentsz, char *err, size_t errsz)
{
	agent[0] = '\0';
	user_cmd = o->cmd;
	user_argc = o->cmd_argc;
	if (o->cmd > argv + 1 && !strcmp(o->cmd[-1], "--"))
		return 0; /* "-- CMD": a command, never an agent */
	char presets[PATH_MAX], path[PATH_MAX], preset[PATH_MAX];
	if (fmt_buf(presets, sizeof(presets), "%s",
		    policy_default_preset_dir(preset, sizeof(preset)))) {
		fmt_buf(err, errsz, "the preset directory path is too long");
		return -ENAMETOOLONG;
	}
	int r = agent_find(o->cmd[0], presets, path, sizeof(path));
	if (r == -ENOENT)
		return 0;
	if (r) {
		/* A descriptor we may not look at is not "no agent": the
		 * command would run without its preset. */
		fmt_buf(err, errsz, "%s: %s (an agent descriptor for %s)", path,
			strerror(-r), o->cmd[0]);
		return r;
	}
	static struct agent a;
	if ((r = agent_load(path, &a, err, errsz)))
		return r;
	if (!agent_installed(&a) && !image_has_agent(o->image, &a)) {
		size_t n = 0;
		err[0] = '\0';
		if (o->image)
			fmt_append(err, errsz, &n,
				   "%s is not installed: neither this machine's "
				   "/usr has %s nor does image %s's manifest "
				   "list %s",
				   o->cmd[0], a.command[0], o->image,
				   a.npm[0] ? a.npm : "it");
		else
			fmt_append(err, errsz, &n,
				   "%s is not installed: the guest's root is "
				   "this machine's /usr, which has no %s",
				   o->cmd[0], a.command[0]);
		if (a.how[0])
			fmt_append(err, errsz, &n, ".\n  Install it: %s", a.how);
		if (a.image[0])
			fmt_append(err, errsz, &n,
				   "\n  Or use an image that has it: "
				   "--image %s",
				   a.image);
		fmt_append(err, errsz, &n,
			   "\n  Or install it inside a named sandbox, which "
			   "keeps it: sandbox-launch run -- bash");
		return -ENOPKG;
	}
	if ((r = agent_preset_path(&a, path, presets, preset,
				   sizeof(preset)))) {
		fmt_buf(err, errsz, "%s: preset %s not found (in %s)", path,
			a.preset, presets);
		return r < 0 ? r : -ENOENT;
	}
	char *pdup = strdup(preset);
	if (!pdup || push_front(&o->policies, &o->n_policies, pdup))
		goto nomem;
	o->docker = o->docker || a.docker;
	for (size_t i = 0; i < a.n_env; i++) {
		char *e = strdup(a.env[i]);
		if (!e || push_front(&o->env, &o->n_env, e))
			goto nomem;
	}
	if (agent_secrets(&a, o) < 0)
		goto nomem;
	size_t n = a.n_command + (size_t)o->cmd_argc - 1;
	char **cmd = calloc(n + 1, sizeof(*cmd));
	if (!cmd)
		goto nomem;
	for (size_t i = 0; i < a.n_command; i++)
		if (!(cmd[i] = strdup(a.command[i])))
			goto nomem;
	for (int i = 1; i < o->cmd_argc; i++)
		cmd[a.n_command + (size_t)i - 1] = o->cmd[i];
	o->cmd = cmd;
	o->cmd_argc = (int)n;
	fmt_buf(agent, agentsz, "%s",
		strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	*strrchr(agent, '.') = '\0';
	return 1;
nomem:
	fmt_buf(err, errsz, "out of memory");
	return -ENOMEM;
}

static void meta_fill(struct sandbox_meta *m, const char *name,
		      const char *workspace, const char *agent,
		      const struct launch_opts *o)
{
	fmt_buf(m->name, sizeof(m->name), "%s", name);
	fmt_buf(m->workspace, sizeof(m->workspace), "%s", workspace);
	fmt_buf(m->agent, sizeof(m->agent), "%s", agent);
	size_t n = 0;
	m->command[0] = '\0';
	for (int i = 0; i < o->cmd_argc; i++)
		fmt_append(m->command, sizeof(m->command), &n, "%s%s",
			   i ? " " : "", o->cmd[i]);
	char **words = user_cmd ? user_cmd : o->cmd;
	int nw = user_cmd ? user_argc : o->cmd_argc;
	size_t used = 0;
	m->n_args = 0;
	for (int i = 0; i < nw; i++) {
		size_t l = strlen(words[i]) + 1;
		if (used + l > sizeof(m->args)) {
			m->n_args = 0; /* too long to keep: not re-runnable */
			break;
		}
		memcpy(m->args + used, words[i], l);
		used += l;
		m->n_args++;
	}
	m->n_policies = 0;
	for (size_t i = 0; i < o->n_policies && i < SANDBOX_MAX_LIST; i++) {
		char abs[PATH_MAX];
		const char *p = realpath(o->policies[i], abs) ? abs
							      : o->policies[i];
		fmt_buf(m->policies[m->n_policies++], sizeof(m->policies[0]),
			"%s", p);
	}
	m->started = (long long)time(NULL);
	if (!m->created)
		m->created = m->started;
	m->pid = (int)getpid();
	fmt_buf(m->state, sizeof(m->state), "running");
}

int registry_begin(struct run_registry *rg, const char *name,
		   const char *workspace, const char *agent,
		   const struct launch_opts *o, char *err, size_t errsz)
{
	memset(rg, 0, sizeof(*rg));
	rg->lock_fd = -1;
	int r = sandbox_dir(name, rg->dir, sizeof(rg->dir), true);
	if (r) {
		fmt_buf(err, errsz,
			"cannot create the sandbox directory for %s under "
			"$XDG_STATE_HOME/sandbox/sandboxes: %s",
			name, strerror(-r));
		return r;
	}
	r = sandbox_lock(rg->dir);
	/* rm or prune removed it between the mkdir and the lock: anew. */
	for (int tries = 0; r == -ESTALE && tries < 3; tries++) {
		r = sandbox_dir(name, rg->dir, sizeof(rg->dir), true);
		r = r ? r : sandbox_lock(rg->dir);
	}
	if (r == -EBUSY) {
		if (sandbox_meta_read(rg->dir, &rg->meta) == 0)
			return -EBUSY;
		fmt_buf(err, errsz, "sandbox %s is starting or stopping; "
				    "try again in a moment", name);
		return -EAGAIN;
	}
	if (r < 0) {
		fmt_buf(err, errsz, "%s/lock: %s", rg->dir, strerror(-r));
		return r;
	}
	rg->lock_fd = r;
	if ((r = root_identity(o->image, rg->root, sizeof(rg->root), err,
			       errsz))) {
		close(rg->lock_fd);
		rg->lock_fd = -1;
		return r;
	}
	struct sandbox_meta old;
	if (sandbox_meta_read(rg->dir, &old) == 0) {
		if (strcmp(old.workspace, workspace)) {
			fmt_buf(err, errsz,
				"sandbox %s belongs to the workspace %s, not %s: "
				"pick another --name, or sandbox-launch rm %s",
				name, old.workspace, workspace, name);
			close(rg->lock_fd);
			rg->lock_fd = -1;
			return -EEXIST;
		}
		rg->meta.created = old.created;
	}
	meta_fill(&rg->meta, name, workspace, agent, o);
	r = sandbox_meta_write(rg->dir, &rg->meta);
	if (r) {
		fmt_buf(err, errsz, "%s/meta.json: %s", rg->dir, strerror(-r));
		close(rg->lock_fd);
		rg->lock_fd = -1;
		return r;
	}
	rg->active = true;
	return 0;
}

int registry_upper(struct run_registry *rg, char *err, size_t errsz)
{
	char img[PATH_MAX], was[sizeof(rg->root)];
	if (fmt_buf(img, sizeof(img), "%s/upper.img", rg->dir))
		return -ENAMETOOLONG;
	bool existed = access(img, F_OK) == 0;
	int r = sandbox_upper_create(rg->dir, SANDBOX_UPPER_MB, rg->upper,
				     sizeof(rg->upper), err, errsz);
	if (r)
		return r;
	int known = existed ? sandbox_upper_root(rg->dir, was, sizeof(was)) : 0;
	if (known < 0) {
		fmt_buf(err, errsz, "%s/upper.root: %s", rg->dir,
			strerror(-known));
		return known;
	}
	if (known == 1 && strcmp(was, rg->root)) {
		fmt_buf(err, errsz,
			"its writable layer was made over %s, but this run's "
			"root is %s.\n  A layer over another root than its own "
			"corrupts both: run it as before, or discard the layer "
			"with: sandbox-launch reset %s",
			was, rg->root, rg->meta.name);
		rg->upper[0] = '\0';
		return -EXDEV;
	}
	if (known == 1)
		return 0;
	/* New, or made before the record existed: it is this root's now. */
	r = sandbox_upper_root_write(rg->dir, rg->root);
	if (r)
		fmt_buf(err, errsz, "%s/upper.root: %s", rg->dir, strerror(-r));
	return r;
}

int registry_started(struct run_registry *rg, const char *state_dir,
		     const char *run_dir, const char *audit)
{
	if (!rg->active)
		return 0;
	fmt_buf(rg->meta.state_dir, sizeof(rg->meta.state_dir), "%s",
		state_dir);
	fmt_buf(rg->meta.run_dir, sizeof(rg->meta.run_dir), "%s", run_dir);
	fmt_buf(rg->meta.audit, sizeof(rg->meta.audit), "%s", audit);
	return sandbox_meta_write(rg->dir, &rg->meta);
}

int registry_end(struct run_registry *rg)
{
	if (!rg->active)
		return 0;
	rg->active = false;
	rg->meta.pid = 0;
	rg->meta.state_dir[0] = '\0';
	rg->meta.proxy_control[0] = '\0';
	fmt_buf(rg->meta.state, sizeof(rg->meta.state), "stopped");
	int r = sandbox_meta_write(rg->dir, &rg->meta);
	close(rg->lock_fd);
	rg->lock_fd = -1;
	return r;
}
