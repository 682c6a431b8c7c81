/* The host's package state for a guest over the host's /usr: dpkg's
 * database and apt's configuration, so that dpkg in the guest knows what
 * the shared /usr holds and `apt-get install` / `dpkg -i` work, landing in
 * the sandbox's own writable layer (docs/guest.md). */
#ifndef LAUNCHER_HOST_PKG_H
#define LAUNCHER_HOST_PKG_H

#include <stdbool.h>
#include <stddef.h>

#define HOST_DPKG_DIR "/var/lib/dpkg"
#define HOST_APT_DIR "/etc/apt"

/* Make dst (0700), the directory shared with the guest as tag hostetc:
 *   dst/apt     HOST_APT_DIR without what holds credentials (auth.conf,
 *               auth.conf.d: apt's passwords for private repositories, and
 *               any file with a URL that carries a user or password) and
 *               without anything but directories, regular files and
 *               symlinks; files the user cannot read are left out;
 *   dst/passwd, dst/group   the host's system accounts only (ids below
 *               1000, and 65534), group member lists emptied, so that
 *               dpkg's statoverride and packages' owners resolve while no
 *               person's account or group membership reaches the guest.
 * Returns 0 or -errno with err filled. */
int host_etc_prepare(const char *dst, char *err, size_t errsz);

/* The system-account lines of an /etc/passwd or /etc/group text (id in
 * field 3, below 1000 or 65534), group members dropped, into out (NUL
 * terminated, at most outsz - 1 bytes kept). Pure: for the unit test. */
size_t host_system_accounts(const char *text, int is_group, char *out,
			    size_t outsz);

/* Is dir a name apt reads credentials from? (Exposed for the unit test.) */
int host_apt_is_secret(const char *name);

/* Does an apt file's text hold a URL with userinfo (scheme://user:pw@...):
 * a token in a sources line, a proxy password? Such files are left out of
 * the copy. Pure: for the unit test. */
bool host_apt_text_has_credentials(const char *text, size_t len);

#endif
