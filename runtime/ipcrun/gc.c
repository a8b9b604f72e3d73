/*
 * The record of runs, so that what a killed ipcrun leaves can be found.
 *
 * Every run's buffer is named "ipcrun.<pid>.<random>". While it runs, a file
 * of that name in the state folder ($IPCRUN_STATE_DIR, else
 * ${XDG_RUNTIME_DIR:-/tmp}/ipcrun-<uid>, mode 0700) holds
 * "<pid> <start time> <shm kind>". A run that ends removes it. `ipcrun --gc`
 * and every new run look for records whose ipcrun is dead (its pid gone, or
 * reused by a process with another start time) and remove the buffer's OS
 * objects with ipc_buffer_gc(), which refuses while any process is still
 * attached. POSIX segments of dead runs are also found in /dev/shm by name
 * ("ipc.ipcrun.<pid>.<random>"), even without a record.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipcrun.h"

#define PREFIX "ipcrun."

static int state_dir(char *out, size_t len)
{
	const char *d = getenv("IPCRUN_STATE_DIR");
	if (d && *d) {
		snprintf(out, len, "%s", d);
	} else {
		const char *x = getenv("XDG_RUNTIME_DIR");
		snprintf(out, len, "%s/ipcrun-%u", x && *x ? x : "/tmp",
		         (unsigned)getuid());
	}
	if (mkdir(out, 0700) && errno != EEXIST)
		return -errno;
	struct stat st;
	if (lstat(out, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid())
		return -EPERM;
	return 0;
}

/* Start time of pid in clock ticks since boot, or 0 if it is gone. */
static unsigned long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command may hold spaces */
	if (!p)
		return 0;
	unsigned long long v = 0;
	/* fields after the command: state is field 3, starttime field 22 */
	int field = 2;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		if (++field == 22) {
			v = strtoull(tok, NULL, 10);
			break;
		}
	}
	return v;
}

static bool alive(pid_t pid, unsigned long long started)
{
	if (pid <= 0)
		return false;
	if (kill(pid, 0) != 0 && errno != EPERM)
		return false;
	unsigned long long now = start_time(pid);
	return now && (!started || now == started);
}

int ir_gc_record(struct ir_run *r)
{
	char dir[2048];
	int rc = state_dir(dir, sizeof dir);
	if (rc < 0) {
		fprintf(stderr, "ipcrun: state folder %s: %s (set IPCRUN_STATE_DIR)\n",
		        dir, strerror(-rc));
		return rc;
	}
	snprintf(r->record, sizeof r->record, "%s/%s", dir, r->handle);
	char tmp[sizeof r->record + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", r->record);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "ipcrun: %s: %s\n", tmp, strerror(errno));
		r->record[0] = 0;
		return -1;
	}
	int shm = r->buf ? (int)ipc_buffer_shm_kind(r->buf) : (int)r->bopts.shm;
	fprintf(f, "%d %llu %d\n", (int)getpid(), start_time(getpid()), shm);
	if (fclose(f) || rename(tmp, r->record)) {
		fprintf(stderr, "ipcrun: %s: %s\n", r->record, strerror(errno));
		unlink(tmp);
		r->record[0] = 0;
		return -1;
	}
	return 0;
}

void ir_gc_forget(struct ir_run *r)
{
	if (r->record[0])
		unlink(r->record);
	r->record[0] = 0;
}

/* Remove a dead run's buffer. Returns 1 when something was removed. */
static int collect(const char *handle, int shm, bool verbose)
{
	int found = 0;
	static const enum ipc_shm_kind kinds[] = {IPC_SHM_POSIX, IPC_SHM_SYSV};
	for (size_t i = 0; i < 2; i++) {
		if (shm != IPC_SHM_DEFAULT && shm != (int)kinds[i])
			continue;
		int rc = ipc_buffer_gc(handle, kinds[i]);
		if (rc > 0)
			found = 1;
		else if (rc < 0 && rc != -ENOENT && verbose)
			fprintf(stderr, "ipcrun: --gc %s: %s\n", handle, ipc_strerror(rc));
	}
	if (found)
		fprintf(stderr, "ipcrun: removed the shared memory of dead run %s\n",
		        handle);
	return found;
}

static bool handle_ok(const char *h)
{
	int pid;
	char rnd[16];
	int n = 0;
	if (strlen(h) > IPC_HANDLE_MAX)
		return false;
	return sscanf(h, PREFIX "%d.%15[0-9a-f]%n", &pid, rnd, &n) == 2 &&
	       h[n] == 0 && pid > 0;
}

int ir_gc_collect(bool verbose)
{
	int removed = 0;
	char dir[2048];
	if (state_dir(dir, sizeof dir) == 0) {
		DIR *d = opendir(dir);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!handle_ok(e->d_name))
				continue;
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			FILE *f = fopen(path, "r");
			int pid = 0, shm = 0;
			unsigned long long st = 0;
			if (!f)
				continue;
			int got = fscanf(f, "%d %llu %d", &pid, &st, &shm);
			fclose(f);
			if (got != 3 || alive(pid, st))
				continue;
			removed += collect(e->d_name, shm, verbose);
			unlink(path);
		}
		if (d)
			closedir(d);
	}
	/* POSIX segments of dead runs that left no record */
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		const char *h = e->d_name;
		if (strncmp(h, "ipc.", 4) != 0 || !handle_ok(h + 4))
			continue;
		int pid = atoi(h + 4 + strlen(PREFIX));
		if (alive(pid, 0))
			continue;
		removed += collect(h + 4, IPC_SHM_POSIX, verbose);
	}
	if (d)
		closedir(d);
	if (verbose && !removed)
		fprintf(stderr, "ipcrun: nothing to collect\n");
	return removed;
}
