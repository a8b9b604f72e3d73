/* Shared-memory and semaphore backends (see shm.h). */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "util.h"

/* ThreadSanitizer sees sem_wait/sem_post but not semop: tell it that the
 * System V lock orders what it guards. */
#if defined(__SANITIZE_THREAD__)
#define IPC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IPC_TSAN 1
#endif
#endif
#ifdef IPC_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tsan_acquire(p) __tsan_acquire(p)
#define tsan_release(p) __tsan_release(p)
#else
#define tsan_acquire(p) ((void)(p))
#define tsan_release(p) ((void)(p))
#endif

key_t ipc__sysv_key(const char *handle, int which)
{
	uint32_t h = 2166136261u;
	for (const char *p = handle; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	/* Never IPC_PRIVATE (0); shm and sem keys differ in the low bit. */
	h = (h & 0x3ffffffeu) | 0x40000000u;
	return (key_t)(h | (uint32_t)(which & 1));
}

static void posix_name(char *out, size_t len, const char *handle)
{
	snprintf(out, len, "/ipc.%s", handle);
}

static void memfd_env(char *out, size_t len, const char *handle)
{
	size_t i = (size_t)snprintf(out, len, "IPC_MEMFD_");
	for (const char *p = handle; *p && i + 1 < len; p++)
		out[i++] = (*p == '.' || *p == '-') ? '_' : *p;
	out[i] = '\0';
}

static void shm_reset(struct ipc__shm *s, enum ipc_shm_kind kind)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->fd = -1;
	s->shmid = -1;
}

/* "12.5 MiB" */
static void human(char *out, size_t len, uint64_t bytes)
{
	if (bytes >= (UINT64_C(1) << 30))
		snprintf(out, len, "%.1f GiB", (double)bytes / (double)(UINT64_C(1) << 30));
	else if (bytes >= (UINT64_C(1) << 20))
		snprintf(out, len, "%.1f MiB", (double)bytes / (double)(UINT64_C(1) << 20));
	else
		snprintf(out, len, "%.1f KiB", (double)bytes / 1024.0);
}

/* The memory for a new buffer could not be had: say how much was asked,
 * how much there is, and what to change. */
static void no_room(enum ipc_shm_kind kind, const char *handle, size_t size, int fd, int err)
{
	char want[32], have[32] = "";
	struct statvfs vfs;

	human(want, sizeof(want), size);
	if (fd >= 0 && fstatvfs(fd, &vfs) == 0)
		human(have, sizeof(have), (uint64_t)vfs.f_bavail * vfs.f_frsize);
	if (kind == IPC_SHM_POSIX)
		fprintf(stderr, "libipc: buffer '%s' needs %s of shared memory, but /dev/shm has "
		        "%s%s free (%s)\n", handle, want, have[0] ? "only " : "?",
		        have, strerror(err));
	else if (kind == IPC_SHM_MEMFD)
		fprintf(stderr, "libipc: buffer '%s' needs %s of memory for its memfd, "
		        "which the system refused (%s)\n", handle, want, strerror(err));
	else
		fprintf(stderr, "libipc: buffer '%s' needs %s of System V shared memory, which "
		        "is more than the system allows (%s; see /proc/sys/kernel/shmmax, "
		        "shmall)\n", handle, want, strerror(err));
	if (kind == IPC_SHM_SYSV)
		fprintf(stderr, "libipc: fixes: a smaller buffer (ipcrun: `buffer =` in [graph]; "
		        "env IPC_BUFFER_SIZE), POSIX memory (ipcrun: `shm = posix`; env "
		        "IPC_SHM=posix), or higher limits (sysctl kernel.shmmax and kernel.shmall; "
		        "in Docker: docker run --sysctl kernel.shmmax=BYTES)\n");
	else
		fprintf(stderr, "libipc: fixes: a smaller buffer (ipcrun: `buffer =` in [graph]; "
		        "env IPC_BUFFER_SIZE), System V memory, outside /dev/shm (ipcrun: "
		        "`shm = sysv`; env IPC_SHM=sysv), or in Docker a larger /dev/shm "
		        "(docker run --shm-size=SIZE, or --ipc=host)\n");
}

int ipc__shm_create(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle,
                    size_t size)
{
	char name[IPC_HANDLE_MAX + 16];
	int err;

	shm_reset(s, kind);
	switch (kind) {
	case IPC_SHM_SYSV:
		s->shmid = shmget(ipc__sysv_key(handle, 0), size, IPC_CREAT | IPC_EXCL | 0600);
		if (s->shmid < 0) {
			err = errno;
			if (err == ENOSPC || err == ENOMEM || (err == EINVAL && size > 0)) {
				/* EINVAL: larger than shmmax (an existing key of
				 * another size gives EEXIST first, with IPC_EXCL) */
				no_room(kind, handle, size, -1, err);
				return -ENOSPC;
			}
			return -err;
		}
		break;
	case IPC_SHM_MEMFD: {
		char env[IPC_HANDLE_MAX + 16], val[48];
		memfd_env(env, sizeof(env), handle);
		if (getenv(env))
			return -EEXIST;
		snprintf(name, sizeof(name), "ipc.%s", handle);
		/* Forked children inherit it (and attach through it); a program
		 * exec'd does not get a read-write descriptor of the whole buffer:
		 * it attaches through /proc/<creator>/fd while the creator lives. */
		s->fd = memfd_create(name, MFD_CLOEXEC);
		if (s->fd < 0)
			return -errno;
		snprintf(val, sizeof(val), "%d:%d", (int)getpid(), s->fd);
		setenv(env, val, 1);
		break;
	}
	default:
		posix_name(name, sizeof(name), handle);
		s->fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (s->fd < 0)
			return -errno;
		break;
	}
	if (s->fd >= 0) {
		/* Openers see the lock held until ipc__shm_ready(); dies with us. */
		if (flock(s->fd, LOCK_EX) < 0 || fchmod(s->fd, 0600) < 0 ||
		    ftruncate(s->fd, (off_t)size) < 0) {
			err = -errno;
			goto undo;
		}
		/* Reserve every page now: a tmpfs (/dev/shm: 64 MB in a Docker
		 * container) that cannot back the buffer says so here, not with
		 * a SIGBUS on the first record that lands on a missing page. */
		err = posix_fallocate(s->fd, 0, (off_t)size);
		if (err == ENOSPC || err == ENOMEM || err == EFBIG) {
			no_room(kind, handle, size, s->fd, err);
			err = -ENOSPC;
			goto undo;
		}
		if (err != 0 && err != EOPNOTSUPP && err != EINVAL) {
			err = -err;
			goto undo;
		}
	}
	err = ipc__shm_map(s, size);
	if (err)
		goto undo;
	return 0;
undo:
	ipc__shm_unlink(s, handle);
	ipc__shm_detach(s);
	return err;
}

void ipc__shm_ready(struct ipc__shm *s)
{
	if (s->fd >= 0)
		flock(s->fd, LOCK_UN);
}

/* The owner of uid, by name when it has one. */
static void owner_name(char *out, size_t len, uid_t uid)
{
	struct passwd pw, *r = NULL;
	char buf[1024];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &r) == 0 && r)
		snprintf(out, len, "%s (uid %u)", r->pw_name, (unsigned)uid);
	else
		snprintf(out, len, "uid %u", (unsigned)uid);
}

static const char *file_kind(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a folder" : S_ISCHR(m) ? "a character device" :
	       S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : S_ISLNK(m) ? "a symlink" :
	       "not a regular file";
}

/* An object we attach to must be what ipc__shm_create makes: a regular
 * object, owned by our effective uid, mode 0600. Anything else was made by
 * somebody else (or is not a buffer at all): refused at once, named. */
static int refuse(const char *handle, const char *what, const char *why, uid_t uid, mode_t mode)
{
	char who[160];
	owner_name(who, sizeof(who), uid);
	fprintf(stderr, "libipc: buffer '%s': %s %s (owner %s, mode %04o): not attaching; "
	        "if it is stale, its owner can remove it (ipcrun --gc, or ipcrm/rm), or use "
	        "another handle\n", handle, what, why, who, (unsigned)(mode & 07777));
	return -EPERM;
}

int ipc__shm_check_fd(int fd, const char *handle, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return refuse(handle, what, file_kind(st.st_mode), st.st_uid, st.st_mode);
	if (st.st_uid != geteuid())
		return refuse(handle, what, "belongs to another user", st.st_uid, st.st_mode);
	if ((st.st_mode & 07777) != 0600)
		return refuse(handle, what, "has a mode libipc never gives", st.st_uid, st.st_mode);
	return 0;
}

int ipc__sysv_check(const struct ipc_perm *p, const char *handle, const char *what)
{
	uid_t me = geteuid();
	if (p->uid != me || p->cuid != me)
		return refuse(handle, what, "belongs to another user", p->cuid != me ? p->cuid : p->uid,
		              p->mode);
	if ((p->mode & 0777) != 0600)
		return refuse(handle, what, "has a mode libipc never gives", p->uid, p->mode);
	return 0;
}

int ipc__shm_open(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle)
{
	char name[IPC_HANDLE_MAX + 16], what[IPC_HANDLE_MAX + 48];
	int err;

	shm_reset(s, kind);
	switch (kind) {
	case IPC_SHM_SYSV: {
		struct shmid_ds ds;
		s->shmid = shmget(ipc__sysv_key(handle, 0), 0, 0);
		if (s->shmid < 0)
			return -errno;
		if (shmctl(s->shmid, IPC_STAT, &ds) != 0)
			return errno == EACCES ? -EPERM : -errno;
		snprintf(what, sizeof(what), "System V segment key 0x%08x",
		         (unsigned)ipc__sysv_key(handle, 0));
		return ipc__sysv_check(&ds.shm_perm, handle, what);
	}
	case IPC_SHM_MEMFD: {
		char env[IPC_HANDLE_MAX + 16], path[64];
		const char *v;
		uint64_t pid, fd;
		memfd_env(env, sizeof(env), handle);
		v = getenv(env);
		const char *colon = v ? strchr(v, ':') : NULL;
		if (!colon || colon - v > 10)
			return -ENOENT;
		char pidtxt[12];
		memcpy(pidtxt, v, (size_t)(colon - v));
		pidtxt[colon - v] = '\0';
		if (ipc__parse_u64(pidtxt, false, 1, INT32_MAX, &pid) ||
		    ipc__parse_u64(colon + 1, false, 0, INT32_MAX, &fd))
			return -ENOENT;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", (int)fd);
		s->fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (s->fd < 0) {
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, (int)fd);
			s->fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
		}
		if (s->fd < 0)
			return -ENOENT;
		snprintf(what, sizeof(what), "memfd %s=%s", env, v);
		return ipc__shm_check_fd(s->fd, handle, what);
	}
	default:
		posix_name(name, sizeof(name), handle);
		/* O_NONBLOCK: a FIFO planted under the name must not stall us
		 * (fstat then refuses it). */
		s->fd = shm_open(name, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0);
		if (s->fd < 0) {
			err = -errno;
			if (err == -EACCES || err == -ELOOP) {
				struct stat st;
				snprintf(what, sizeof(what), "/dev/shm%s", name);
				if (lstat(what, &st) == 0)
					return refuse(handle, what, err == -ELOOP ? "is a symlink" :
					              "cannot be opened", st.st_uid, st.st_mode);
			}
			return err;
		}
		snprintf(what, sizeof(what), "/dev/shm%s", name);
		return ipc__shm_check_fd(s->fd, handle, what);
	}
}

size_t ipc__shm_size(struct ipc__shm *s)
{
	if (s->shmid >= 0) {
		struct shmid_ds ds;
		return shmctl(s->shmid, IPC_STAT, &ds) == 0 ? ds.shm_segsz : 0;
	}
	struct stat st;
	return fstat(s->fd, &st) == 0 ? (size_t)st.st_size : 0;
}

int ipc__shm_creator_busy(struct ipc__shm *s)
{
	if (s->fd < 0)
		return -1;
	if (flock(s->fd, LOCK_SH | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? 1 : -1;
	flock(s->fd, LOCK_UN);
	return 0;
}

int ipc__shm_map(struct ipc__shm *s, size_t size)
{
	void *p;

	if (s->shmid >= 0) {
		p = shmat(s->shmid, NULL, 0);
		if (p == (void *)-1)
			return -errno;
	} else {
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
		if (p == MAP_FAILED)
			return -errno;
	}
	s->base = p;
	s->size = size;
	return 0;
}

void ipc__shm_detach(struct ipc__shm *s)
{
	if (s->base) {
		if (s->shmid >= 0)
			shmdt(s->base);
		else
			munmap(s->base, s->size);
	}
	if (s->fd >= 0)
		close(s->fd);
	s->base = NULL;
	s->fd = -1;
}

void ipc__shm_unlink(struct ipc__shm *s, const char *handle)
{
	char name[IPC_HANDLE_MAX + 16];

	switch (s->kind) {
	case IPC_SHM_SYSV:
		if (s->shmid >= 0)
			shmctl(s->shmid, IPC_RMID, NULL);
		break;
	case IPC_SHM_MEMFD:
		memfd_env(name, sizeof(name), handle);
		unsetenv(name);
		break;
	default:
		posix_name(name, sizeof(name), handle);
		shm_unlink(name);
		break;
	}
}

/* ---- the allocation lock ---------------------------------------------- */

int ipc__lock_create(struct ipc__lock *l, enum ipc_sem_kind kind, const char *handle)
{
	l->kind = (uint32_t)kind;
	l->semid = -1;
	ipc__store_relaxed(&l->holder, 0);
	if (kind == IPC_SEM_SYSV) {
		/* Keyed, so that gc finds a set whose buffer is gone; but a memfd
		 * buffer (handle NULL) is invisible to gc, whose "no buffer
		 * of this handle exists" must stay true for keyed sets. */
		int id = handle ? semget(ipc__sysv_key(handle, 1), 1, IPC_CREAT | IPC_EXCL | 0600)
		                : -1;
		if (id < 0 && (!handle || errno == EEXIST)) /* held by an older buffer */
			id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
		if (id < 0)
			return -errno;
		union semun { int val; } arg = {.val = 1};
		if (semctl(id, 0, SETVAL, arg) < 0) {
			int err = -errno;
			semctl(id, 0, IPC_RMID);
			return err;
		}
		l->semid = id;
		return 0;
	}
	ipc__store_relaxed(&l->waiters, 0);
	return sem_init(&l->sem, 1, 0) == 0 ? 0 : -errno;
}

void ipc__lock_destroy(struct ipc__lock *l)
{
	if (l->kind == IPC_SEM_SYSV) {
		if (l->semid >= 0)
			semctl(l->semid, 0, IPC_RMID);
	} else {
		sem_destroy(&l->sem);
	}
}

/*
 * With System V semaphores the lock is the semaphore, taken with SEM_UNDO so
 * that a holder that dies gives it back.
 *
 * A POSIX semaphore is never given back by a dying holder, so there the lock
 * is the word `holder`: the holder's pid and PID namespace, set by the CAS
 * that takes the lock, so a dead holder is always known (by its process
 * slot's robust-futex life word, whatever namespace it is in: live.c). The semaphore (starting at 0) only puts
 * waiters to sleep: a waiter counts itself in `waiters` and sleeps at most
 * 20 ms; the unlocker clears holder and posts when somebody waits. Both
 * sides store then load (seq_cst), so either the unlocker sees the waiter or
 * the waiter sees the lock free; a post that finds nobody only causes one
 * spurious look. A waiter that finds the holder dead takes the lock over.
 */
int ipc__lock(struct ipc__lock *l, uint64_t me, ipc__holder_dead_fn dead, void *ctx)
{
	if (l->kind == IPC_SEM_SYSV) {
		struct sembuf op = {.sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO};
		while (semop(l->semid, &op, 1) < 0) {
			if (errno != EINTR)
				return -errno;
		}
		tsan_acquire(l);
		/* A holder that died had its semaphore given back, not its word
		 * cleared: say so, the caller repairs what it was changing.
		 * Pairs with ipc__unlock()'s release store of holder. */
		uint64_t prev = ipc__xchg_acq_rel(&l->holder, me);
		if (prev != 0 && prev != me) {
			fprintf(stderr, "libipc: allocation lock held by dead pid %d: taken over\n",
			        (int)IPC__HOLDER_PID(prev));
			return 1;
		}
		return 0;
	}
	for (int spins = 0;; spins++) {
		uint64_t h = 0;
		/* pairs with ipc__unlock()'s seq_cst store of holder */
		if (ipc__cas_acq_rel(&l->holder, &h, me))
			return 0;
		if (spins < 100) {
			ipc__cpu_relax();
			continue;
		}
		/* seq_cst store, then seq_cst load (see above): pairs with
		 * ipc__unlock()'s store of holder and load of waiters. */
		atomic_fetch_add(&l->waiters, 1);
		if (ipc__load_seq_cst(&l->holder) == h) {
			/* sem_clockwait on CLOCK_MONOTONIC: sem_timedwait's
			 * CLOCK_REALTIME deadline would make a take-over late by
			 * any step of the wall clock. */
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_nsec += 20 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (sem_clockwait(&l->sem, CLOCK_MONOTONIC, &ts) < 0 && errno != ETIMEDOUT &&
			    errno != EINTR) {
				/* pairs with ipc__unlock()'s load of waiters */
				ipc__add_acq_rel(&l->waiters, (uint32_t)-1);
				return -errno;
			}
		}
		/* pairs with ipc__unlock()'s load of waiters */
		ipc__add_acq_rel(&l->waiters, (uint32_t)-1);
		/* Pairs with the CAS that took the lock (here, ipc__lock()) and
		 * with ipc__unlock()'s store: the holder is still h. */
		if (h != 0 && ipc__load_acquire(&l->holder) == h && dead(ctx, h) &&
		    ipc__cas_acq_rel(&l->holder, &h, me)) {
			fprintf(stderr, "libipc: allocation lock held by dead pid %d: taken over\n",
			        (int)IPC__HOLDER_PID(h));
			return 1;
		}
	}
}

void ipc__unlock(struct ipc__lock *l)
{
	if (l->kind == IPC_SEM_SYSV) {
		struct sembuf op = {.sem_num = 0, .sem_op = 1, .sem_flg = SEM_UNDO};
		/* pairs with ipc__lock()'s exchange of holder */
		ipc__store_release(&l->holder, 0);
		tsan_release(l);
		while (semop(l->semid, &op, 1) < 0 && errno == EINTR)
			;
		return;
	}
	/* seq_cst store, then seq_cst load (see ipc__lock()): pairs with
	 * ipc__lock()'s increment of waiters and load of holder. */
	ipc__store_seq_cst(&l->holder, 0);
	if (ipc__load_seq_cst(&l->waiters) > 0)
		sem_post(&l->sem);
}
