/* Where presets live: one answer for every program (the proxy, the policy
 * CLI and the launcher must agree, or `extends: [github]` would mean a
 * different file in each). */
#include "../common/datadir.h"
#include "policy.h"

const char *policy_default_preset_dir(char *buf, size_t size)
{
	/* A missing directory still names where presets were looked for:
	 * 'extends:' then fails naming that path. */
	data_dir(DATA_PRESETS, buf, size);
	return buf;
}
