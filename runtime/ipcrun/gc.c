/*
 * The record of runs, so that what a killed ipcrun leaves can be found.
 *
 * Every run's buffer is named "ipcrun.<pid>.<random>". While it runs, a file
 * of that name in the state folder ($IPCRUN_STATE_DIR, else
 * ${XDG_RUNTIME_DIR:-/tmp}/ipcrun-<uid>, mode 0700) holds
 * "<pid> <start time> <shm kind>". A run that ends removes it. `ipcrun --gc`
 * and every new run look for records whose ipcrun looks dead and remove the
 * buffer's OS objects with ipc_buffer_gc(), which is the judge: it removes
 * only a buffer whose every process is provably dead (robust-futex life
 * words: right across PID namespaces) and says -EBUSY otherwise. A record's
 * pid is looked at first only when it was written in our own PID namespace
 * (the record holds the namespace); a record is dropped only once its
 * buffer is gone. POSIX segments of dead runs are also found in /dev/shm by
 * name ("ipc.ipcrun.<pid>.<random>"), even without a record.
 *
 * The state folder, like the buffers, must be ours: a directory (not a
 * symlink) owned by our uid with no access for anyone else; records are
 * opened without following symlinks and must be regular files of ours.
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
#include <time.h>
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
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
		fprintf(stderr, "ipcrun: state folder %s is %s, owner uid %u, mode %04o: it must be "
		        "a folder of yours (uid %u) with mode 0700; remove it, or set "
		        "IPCRUN_STATE_DIR\n", out,
		        S_ISLNK(st.st_mode) ? "a symlink" : S_ISDIR(st.st_mode) ? "a folder" :
		        "not a folder", (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
		        (unsigned)getuid());
		return -EPERM;
	}
	return 0;
}

/* Our PID namespace's inode when /proc is that namespace's (NSpid has one
 * entry), else 0: then no pid of a record is judged here. */
static unsigned long long pidns_self(void)
{
	char buf[4096];
	FILE *f = fopen("/proc/self/status", "re");
	bool own = false;
	if (!f)
		return 0;
	while (fgets(buf, sizeof buf, f)) {
		long pid;
		char rest[8];
		if (strncmp(buf, "NSpid:", 6) == 0)
			own = sscanf(buf + 6, "%ld %7s", &pid, rest) == 1 && pid == (long)getpid();
	}
	fclose(f);
	struct stat st;
	return own && stat("/proc/self/ns/pid", &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* A record file: a regular file of ours, opened without following a
 * symlink. */
static FILE *open_record(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
		close(fd);
		return NULL;
	}
	FILE *f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
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
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "ipcrun: %s: %s\n", tmp, strerror(errno));
		r->record[0] = 0;
		return -1;
	}
	int shm = r->buf ? (int)ipc_buffer_shm_kind(r->buf) : (int)r->bopts.shm;
	unsigned long long ns = pidns_self();
	fprintf(f, "%d %llu %d %llu\n", (int)getpid(), ns ? start_time(getpid()) : 0ULL, shm, ns);
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

/* Remove a dead run's buffer. Returns 1 when something was removed, 0 when
 * nothing of it is left, -1 while it is in use (or cannot be proven dead). */
static int collect(const char *handle, int shm, bool verbose)
{
	int found = 0, busy = 0;
	static const enum ipc_shm_kind kinds[] = {IPC_SHM_POSIX, IPC_SHM_SYSV};
	for (size_t i = 0; i < 2; i++) {
		if (shm != IPC_SHM_DEFAULT && shm != (int)kinds[i])
			continue;
		int rc = ipc_buffer_gc(handle, kinds[i]);
		if (rc > 0)
			found = 1;
		else if (rc == -EBUSY || rc == -EPERM || rc == -EBADMSG || rc == -EPROTO)
			busy = 1;
		if (rc < 0 && rc != -ENOENT && rc != -EBUSY && verbose)
			fprintf(stderr, "ipcrun: --gc %s: %s\n", handle, ipc_strerror(rc));
	}
	if (found)
		fprintf(stderr, "ipcrun: removed the shared memory of dead run %s\n",
		        handle);
	return busy ? -1 : found;
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
	unsigned long long my_ns = pidns_self();
	if (state_dir(dir, sizeof dir) == 0) {
		DIR *d = opendir(dir);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			if (!handle_ok(e->d_name))
				continue;
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
			FILE *f = open_record(path);
			int pid = 0, shm = 0;
			unsigned long long st = 0, ns = 0;
			if (!f)
				continue;
			int got = fscanf(f, "%d %llu %d %llu", &pid, &st, &shm, &ns);
			fclose(f);
			if (got < 3)
				continue;
			/* its pid means something only in the namespace it came
			 * from; elsewhere ipc_buffer_gc judges by life words */
			if (ns && ns == my_ns && alive(pid, st))
				continue;
			int rc = collect(e->d_name, shm, verbose);
			if (rc < 0)
				continue; /* in use: the record stays */
			/* A run of another namespace writes its record just before
			 * it makes its buffer: nothing there yet proves nothing
			 * for a minute (after that, it died before making it). */
			struct stat rs;
			if (rc == 0 && !(ns && ns == my_ns) && stat(path, &rs) == 0 &&
			    time(NULL) - rs.st_mtime < 60) /* file times: not a wait */
				continue;
			removed += rc;
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
		char path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof path, "/dev/shm/%s", h);
		if (lstat(path, &st) || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue; /* another user's run (or not a buffer): not ours */
		int pid = atoi(h + 4 + strlen(PREFIX));
		if (my_ns && alive(pid, 0))
			continue; /* a quick pass; ipc_buffer_gc decides anyway */
		int rc = collect(h + 4, IPC_SHM_POSIX, verbose);
		if (rc > 0)
			removed += rc;
	}
	if (d)
		closedir(d);
	if (verbose && !removed)
		fprintf(stderr, "ipcrun: nothing to collect\n");
	return removed;
}
