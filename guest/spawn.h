#ifndef GUEST_SPAWN_H
#define GUEST_SPAWN_H

#include <sys/types.h>

#include "../parse/cmd_channel.h"

struct spawned {
	pid_t pid;      /* session and process group leader */
	int master;     /* PTY master (tty mode), else -1 */
	int in, out, err; /* pipes (pipe mode), else -1 */
	int exec_errno; /* nonzero: the command did not start */
};

int spawn_command(const struct control_spec *s, const char *workspace,
		  struct spawned *sp);

#endif
