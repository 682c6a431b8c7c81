/* Memory of a process tree from /proc (proc_tree.h). */
#include "proc_tree.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../common/util.h"

long proc_kib(int pid)
{
	char path[64], line[256];
	long v = -1;
	fmt_buf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	FILE *f = fopen(path, "r");
	const char *key = "Pss:";
	if (!f) {
		fmt_buf(path, sizeof(path), "/proc/%d/status", pid);
		f = fopen(path, "r");
		key = "VmRSS:";
	}
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			v = atol(line + strlen(key));
			break;
		}
	fclose(f);
	return v;
}

static int parent_of(int pid)
{
	char path[64], buf[512];
	fmt_buf(path, sizeof(path), "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* comm may hold spaces */
	int ppid;
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

static int in_tree(int pid, const int *roots, int nroots)
{
	for (int depth = 0; pid > 1 && depth < 16; depth++) {
		for (int i = 0; i < nroots; i++)
			if (pid == roots[i])
				return 1;
		pid = parent_of(pid);
	}
	return 0;
}

long proc_tree_kib(const char *pids, int *nprocs)
{
	int roots[16], nroots = 0;
	char list[256];
	if (!pids || fmt_buf(list, sizeof(list), "%s", pids) < 0)
		return -1;
	for (char *tok = strtok(list, ","); tok && nroots < 16;
	     tok = strtok(NULL, ","))
		roots[nroots++] = atoi(tok);
	DIR *d = opendir("/proc");
	long sum = 0;
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		int pid = atoi(de->d_name);
		if (!in_tree(pid, roots, nroots))
			continue;
		long k = proc_kib(pid);
		if (k >= 0) {
			sum += k;
			n++;
		}
	}
	if (d)
		closedir(d);
	*nprocs = n;
	return n ? sum : -1;
}
