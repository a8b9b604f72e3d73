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
		s->fd = memfd_create(name, 0); /* inherited by children on purpose */
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
	return sem_init(&l->sem, 1, 1) == 0 ? 0 : -errno;
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

#define ANON_HOLDER_MS 2000

int ipc__lock(struct ipc__lock *l)
{
	if (l->kind == IPC_SEM_SYSV) {
		/* SEM_UNDO: a holder that dies gives the lock back. */
		struct sembuf op = {.sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO};
		while (semop(l->semid, &op, 1) < 0) {
			if (errno != EINTR)
				return -errno;
		}
		tsan_acquire(l);
	} else {
		/* A POSIX semaphore is not given back by a dying holder: wait in
		 * slices and take the lock over from a holder that is dead. A
		 * holder that died between taking the semaphore and writing its
		 * pid leaves 0 there: after ANON_HOLDER_MS of that (a critical
		 * section lasts microseconds) the lock is taken over too. */
		int64_t anon_since = 0;
		for (;;) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 20 * 1000000L; /* then check the holder */
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (sem_timedwait(&l->sem, &ts) == 0)
				break;
			if (errno == EINTR)
				continue;
			if (errno != ETIMEDOUT)
				return -errno;
			int32_t h = ipc__load_acquire(&l->holder);
			if (h == 0) {
				int64_t now = ipc__now_ms();
				if (anon_since == 0)
					anon_since = now;
				else if (now - anon_since >= ANON_HOLDER_MS) {
					int32_t expect = 0;
					if (ipc__cas_acq_rel(&l->holder, &expect, (int32_t)getpid())) {
						fprintf(stderr, "libipc: allocation lock held by nobody for %d ms: "
						        "taken over\n", ANON_HOLDER_MS);
						return 0;
					}
				}
				continue;
			}
			anon_since = 0;
			if (h > 0 && !ipc__pid_alive((pid_t)h, 0)) {
				int32_t expect = h;
				if (ipc__cas_acq_rel(&l->holder, &expect, (int32_t)getpid())) {
					fprintf(stderr, "libipc: allocation lock held by dead pid %d: taken over\n",
					        (int)h);
					return 0;
				}
			}
		}
	}
	ipc__store_release(&l->holder, (int32_t)getpid());
	return 0;
}

void ipc__unlock(struct ipc__lock *l)
{
	ipc__store_release(&l->holder, 0);
	if (l->kind == IPC_SEM_SYSV) {
		struct sembuf op = {.sem_num = 0, .sem_op = 1, .sem_flg = SEM_UNDO};
		tsan_release(l);
		while (semop(l->semid, &op, 1) < 0 && errno == EINTR)
			;
	} else {
		sem_post(&l->sem);
	}
}
