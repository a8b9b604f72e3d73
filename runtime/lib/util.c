#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The start of a small /proc file, NUL-terminated in buf (len bytes);
 * false when it cannot be read or is empty. */
static bool read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

uint64_t ipc__proc_start(pid_t pid)
{
	char path[64], buf[512];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!read_small(path, buf, sizeof(buf)))
		return 0;
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	p += 2;
	if (*p == 'Z' || *p == 'X' || *p == 'x')
		return 0;
	/* Field 3 is the state; starttime is field 22. */
	unsigned long long start = 0;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	if (sscanf(p, "%llu", &start) != 1)
		return 0;
	return start ? (uint64_t)start : 1;
}

bool ipc__pid_alive(pid_t pid, uint64_t start)
{
	if (pid <= 0)
		return false;
	uint64_t now = ipc__proc_start(pid);
	if (now == 0)
		return false;
	return start == 0 || now == start;
}

uint64_t ipc__pidns_self(void)
{
	char buf[2048];
	struct stat st;

	/* /proc/self/status's NSpid lists our pid in every namespace from the
	 * one /proc was mounted for down to ours: one entry, and it is our
	 * getpid(), exactly when this /proc is our namespace's. */
	if (!read_small("/proc/self/status", buf, sizeof(buf)))
		return 0;
	char *p = strstr(buf, "\nNSpid:");
	if (!p)
		return 0;
	p += 7;
	char *end;
	long pid = strtol(p, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (end == p || pid != (long)getpid() || (*end != '\n' && *end != '\0'))
		return 0;
	if (stat("/proc/self/ns/pid", &st) != 0)
		return 0;
	return (uint64_t)st.st_ino;
}

int ipc__parse_u64(const char *s, bool size, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift = 0;
	const char *p = s;

	if (!s || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (size) {
		switch (*p) {
		case 'k': case 'K': shift = 10; p++; break;
		case 'm': case 'M': shift = 20; p++; break;
		case 'g': case 'G': shift = 30; p++; break;
		case 't': case 'T': shift = 40; p++; break;
		default: break;
		}
		if (shift && p[0] == 'i' && p[1] == 'B')
			p += 2;
		else if ((shift && p[0] == 'i') || *p == 'B')
			p++;
		if (shift && v > (UINT64_MAX >> shift))
			return -EINVAL;
		v <<= shift;
	}
	if (*p || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int ipc__futex_wait(ipc_a32 *word, uint32_t expected, int timeout_ms)
{
	return ipc__futex_wait_us(word, expected, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000);
}

int ipc__futex_wait_us(ipc_a32 *word, uint32_t expected, int64_t timeout_us)
{
	struct timespec ts, *tp = NULL;

	if (timeout_us >= 0) {
		ts.tv_sec = (time_t)(timeout_us / 1000000);
		ts.tv_nsec = (long)(timeout_us % 1000000) * 1000L;
		tp = &ts;
	}
	/* Shared futex (no FUTEX_PRIVATE_FLAG): the word is in a shared mapping. */
	if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tp, NULL, 0) < 0)
		return -errno;
	return 0;
}

void ipc__futex_wake(ipc_a32 *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

_Bool ipc__has_prefetchw;

__attribute__((constructor)) static void detect_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	if (__get_cpuid(0x80000001u, &a, &b, &c, &d))
		ipc__has_prefetchw = (c & (1u << 8)) != 0; /* PRFCHW */
#endif
}

int64_t ipc__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ipc__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
