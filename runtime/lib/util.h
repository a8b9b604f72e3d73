/* Small helpers: process liveness, futexes, clocks. */
#ifndef IPC_UTIL_H
#define IPC_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "atomic.h"

/* Start time of pid (clock ticks since boot, /proc/<pid>/stat field 22), or
 * 0 when pid does not exist or is a zombie. */
uint64_t ipc__proc_start(pid_t pid);
/* pid is running (not a zombie) and, when start != 0, is the same process. */
bool ipc__pid_alive(pid_t pid, uint64_t start);

/* This process's PID namespace (the inode of /proc/self/ns/pid) when the
 * /proc mounted here is that namespace's own, so that /proc/<pid> names the
 * processes we see with getpid(); 0 otherwise (a PID namespace without its
 * own /proc, or no /proc): then no pid may be judged through /proc. */
uint64_t ipc__pidns_self(void);

/* Parse a decimal count, or with sizes (size != 0) a size with an optional
 * suffix k/K, m/M, g/G, t/T (powers of 1024) and an optional "i", "iB" or
 * "B" after it ("64M", "1GiB", "4096"). 0 and *out on success; -EINVAL when
 * the text is not such a number or lies outside [min, max] (overflow
 * included: nothing wraps). */
int ipc__parse_u64(const char *s, bool size, uint64_t min, uint64_t max, uint64_t *out);

/* Sleep while *word == expected, at most timeout_ms (< 0: no limit), on a
 * futex shared between processes. Returns 0 or -ETIMEDOUT / -EINTR / -EAGAIN. */
int ipc__futex_wait(ipc_a32 *word, uint32_t expected, int timeout_ms);
int ipc__futex_wait_us(ipc_a32 *word, uint32_t expected, int64_t timeout_us);
/* Wake every sleeper on word. */
void ipc__futex_wake(ipc_a32 *word);

/* Monotonic milliseconds and nanoseconds. */
int64_t ipc__now_ms(void);
int64_t ipc__now_ns(void);

#endif
