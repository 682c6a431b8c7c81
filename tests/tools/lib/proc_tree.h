/* Memory of a process tree from /proc, for the idle-tunnel benchmark
 * (tls_bench idle): what a proxy and all its children hold. */
#ifndef TESTS_TOOLS_PROC_TREE_H
#define TESTS_TOOLS_PROC_TREE_H

/* Proportional set size (KiB) of one process, falling back to VmRSS; -1
 * if it is gone. */
long proc_kib(int pid);
/* The sum over the processes in pids ("P,Q,...", at most 16) and all
 * their descendants, in KiB; *nprocs gets how many; -1 if none. */
long proc_tree_kib(const char *pids, int *nprocs);

#endif
