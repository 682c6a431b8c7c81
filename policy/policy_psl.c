/* Public suffixes: "*.co.uk" or "**.github.io" would allow names that anyone
 * can register, so allow rules may not put a wildcard directly over one. The
 * list comes from Debian's publicsuffix package when installed, else from a
 * short built-in list of the suffixes people most often get wrong. */
#include <string.h>

#include "../common/util.h"
#include "policy_internal.h"

#define PSL_SYSTEM_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

/* PSL_BELOW: some public suffix lies strictly below this name, so "**." over
 * it reaches names anyone can register ("**.amazonaws.com" covers every
 * bucket under s3.amazonaws.com). */
enum psl_kind { PSL_EXACT = 1, PSL_WILD = 2, PSL_EXCEPT = 4, PSL_BELOW = 8 };

struct psl_ent {
	const char *name; /* arena */
	uint8_t kinds;
};

struct psl {
	struct arena arena;
	struct psl_ent *slots; /* owned */
	size_t mask, count;
};

static const char *const builtin[] = {
	"com", "net", "org", "io", "dev", "app", "co", "uk", "co.uk",
	"org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.jp",
	"co.nz", "com.br", "com.cn", "co.in", "co.za", "com.mx", "de", "fr",
	"github.io", "githubusercontent.com", "gitlab.io", "herokuapp.com",
	"appspot.com", "blogspot.com", "cloudfront.net", "azurewebsites.net",
	"netlify.app", "vercel.app", "pages.dev", "workers.dev",
	"s3.amazonaws.com", "web.app", "firebaseapp.com", "fly.dev",
};

static struct psl_ent *slot(struct psl *p, const char *name)
{
	size_t i = policy_hash(name, strlen(name)) & p->mask;
	while (p->slots[i].name && strcmp(p->slots[i].name, name) != 0)
		i = (i + 1) & p->mask;
	return &p->slots[i];
}

static int grow(struct psl *p)
{
	struct psl old = *p;
	size_t cap = old.slots ? (old.mask + 1) * 2 : 1024;
	p->slots = calloc(cap, sizeof(*p->slots));
	if (!p->slots) {
		p->slots = old.slots;
		return -ENOMEM;
	}
	p->mask = cap - 1;
	for (size_t i = 0; old.slots && i <= old.mask; i++)
		if (old.slots[i].name)
			*slot(p, old.slots[i].name) = old.slots[i];
	free(old.slots);
	return 0;
}

static int mark(struct psl *p, const char *norm, uint8_t kind)
{
	if ((p->count + 1) * 2 > (p->slots ? p->mask + 1 : 0) && grow(p) < 0)
		return -ENOMEM;
	struct psl_ent *e = slot(p, norm);
	if (!e->name) {
		e->name = arena_strndup(&p->arena, norm, strlen(norm));
		if (!e->name)
			return -ENOMEM;
		p->count++;
	}
	e->kinds |= kind;
	return 0;
}

static int add(struct psl *p, const char *rule, size_t len)
{
	uint8_t kind = PSL_EXACT;
	if (len > 0 && rule[0] == '!')
		kind = PSL_EXCEPT, rule++, len--;
	else if (len > 2 && rule[0] == '*' && rule[1] == '.')
		kind = PSL_WILD, rule += 2, len -= 2;
	char norm[256];
	if (policy_normalize_name(rule, len, norm, sizeof(norm)) < 0)
		return 0; /* a rule we cannot spell is a rule no pattern can hit */
	if (mark(p, norm, kind) < 0)
		return -ENOMEM;
	if (kind == PSL_EXCEPT)
		return 0;
	/* "*.d" makes every child of d a suffix: d has suffixes below it. */
	const char *up = norm;
	if (kind == PSL_EXACT)
		up = strchr(norm, '.');
	while (up) {
		if (*up == '.')
			up++;
		if (mark(p, up, PSL_BELOW) < 0)
			return -ENOMEM;
		up = strchr(up, '.');
	}
	return 0;
}

struct psl *psl_load(const char *path)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	struct psl *p = calloc(1, sizeof(*p));
	if (!p || grow(p) < 0)
		goto fail;
	if (read_file(path ? path : PSL_SYSTEM_PATH, 16 << 20, &data, &len) == 0) {
		for (char *line = data; line < data + len;) {
			char *end = memchr(line, '\n', (size_t)(data + len - line));
			if (!end)
				end = data + len;
			/* A rule is the line's first whitespace-free word. */
			size_t n = strcspn(line, " \t\r\n");
			if (line + n > end)
				n = (size_t)(end - line);
			if (n > 0 && !(n >= 2 && line[0] == '/' && line[1] == '/') &&
			    add(p, line, n) < 0)
				goto fail;
			line = end + 1;
		}
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(builtin); i++)
			if (add(p, builtin[i], strlen(builtin[i])) < 0)
				goto fail;
	}
	return p;
fail:
	psl_free(p);
	return NULL;
}

bool psl_is_public_suffix(const struct psl *cp, const char *name)
{
	struct psl *p = (struct psl *)cp; /* slot() does not modify */
	if (!strchr(name, '.'))
		return true; /* the PSL's implicit "*" rule: every TLD */
	struct psl_ent *e = slot(p, name);
	if (e->name && (e->kinds & PSL_EXCEPT))
		return false;
	if (e->name && (e->kinds & PSL_EXACT))
		return true;
	const char *parent = strchr(name, '.') + 1;
	e = slot(p, parent);
	return e->name && (e->kinds & PSL_WILD);
}

bool psl_has_suffix_below(const struct psl *cp, const char *name)
{
	struct psl *p = (struct psl *)cp; /* slot() does not modify */
	struct psl_ent *e = slot(p, name);
	return e->name && (e->kinds & PSL_BELOW);
}

void psl_free(struct psl *p)
{
	if (!p)
		return;
	free(p->slots);
	arena_free(&p->arena);
	free(p);
}
