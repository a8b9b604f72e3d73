/* Shared-memory and semaphore backends (see shm.h). */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
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

int ipc__shm_create(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle,
                    size_t size)
{
	char name[IPC_HANDLE_MAX + 16];
	int err;

	shm_reset(s, kind);
	switch (kind) {
	case IPC_SHM_SYSV:
		s->shmid = shmget(ipc__sysv_key(handle, 0), size, IPC_CREAT | IPC_EXCL | 0600);
		if (s->shmid < 0)
			return -errno;
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
		s->fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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

int ipc__shm_open(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle)
{
	char name[IPC_HANDLE_MAX + 16];

	shm_reset(s, kind);
	switch (kind) {
	case IPC_SHM_SYSV:
		s->shmid = shmget(ipc__sysv_key(handle, 0), 0, 0600);
		return s->shmid < 0 ? -errno : 0;
	case IPC_SHM_MEMFD: {
		char env[IPC_HANDLE_MAX + 16], path[64];
		const char *v;
		int pid, fd;
		memfd_env(env, sizeof(env), handle);
		v = getenv(env);
		if (!v || sscanf(v, "%d:%d", &pid, &fd) != 2)
			return -ENOENT;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		s->fd = open(path, O_RDWR | O_CLOEXEC);
		if (s->fd < 0) {
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
			s->fd = open(path, O_RDWR | O_CLOEXEC);
		}
		return s->fd < 0 ? -ENOENT : 0;
	}
	default:
		posix_name(name, sizeof(name), handle);
		s->fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
		return s->fd < 0 ? -errno : 0;
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
		int id = semget(ipc__sysv_key(handle, 1), 1, IPC_CREAT | IPC_EXCL | 0600);
		if (id < 0 && errno == EEXIST) /* held by an unlinked older buffer */
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
 * is the word `holder`: the holder's pid, set by the CAS that takes the lock,
 * so a dead holder is always known. The semaphore (starting at 0) only puts
 * waiters to sleep: a waiter counts itself in `waiters` and sleeps at most
 * 20 ms; the unlocker clears holder and posts when somebody waits. Both
 * sides store then load (seq_cst), so either the unlocker sees the waiter or
 * the waiter sees the lock free; a post that finds nobody only causes one
 * spurious look. A waiter that finds the holder dead takes the lock over.
 */
int ipc__lock(struct ipc__lock *l)
{
	if (l->kind == IPC_SEM_SYSV) {
		struct sembuf op = {.sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO};
		while (semop(l->semid, &op, 1) < 0) {
			if (errno != EINTR)
				return -errno;
		}
		tsan_acquire(l);
		/* A holder that died had its semaphore given back, not its pid
		 * cleared: say so, the caller repairs what it was changing. */
		int32_t prev = ipc__xchg_acq_rel(&l->holder, (int32_t)getpid());
		if (prev > 0 && prev != (int32_t)getpid()) {
			fprintf(stderr, "libipc: allocation lock held by dead pid %d: taken over\n",
			        (int)prev);
			return 1;
		}
		return 0;
	}
	int32_t me = (int32_t)getpid();
	for (int spins = 0;; spins++) {
		int32_t h = 0;
		if (ipc__cas_acq_rel(&l->holder, &h, me))
			return 0;
		if (spins < 100) {
			ipc__cpu_relax();
			continue;
		}
		atomic_fetch_add(&l->waiters, 1); /* seq_cst: see above */
		if (ipc__load_seq_cst(&l->holder) == h) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (sem_timedwait(&l->sem, &ts) < 0 && errno != ETIMEDOUT && errno != EINTR) {
				ipc__add_acq_rel(&l->waiters, (uint32_t)-1);
				return -errno;
			}
		}
		ipc__add_acq_rel(&l->waiters, (uint32_t)-1);
		if (h > 0 && ipc__load_acquire(&l->holder) == h && !ipc__pid_alive((pid_t)h, 0) &&
		    ipc__cas_acq_rel(&l->holder, &h, me)) {
			fprintf(stderr, "libipc: allocation lock held by dead pid %d: taken over\n",
			        (int)h);
			return 1;
		}
	}
}

void ipc__unlock(struct ipc__lock *l)
{
	if (l->kind == IPC_SEM_SYSV) {
		struct sembuf op = {.sem_num = 0, .sem_op = 1, .sem_flg = SEM_UNDO};
		ipc__store_release(&l->holder, 0);
		tsan_release(l);
		while (semop(l->semid, &op, 1) < 0 && errno == EINTR)
			;
		return;
	}
	ipc__store_seq_cst(&l->holder, 0);
	if (ipc__load_seq_cst(&l->waiters) > 0)
		sem_post(&l->sem);
}
