/*
 * Shared-memory and semaphore backends: POSIX or System V shared memory (or
 * an anonymous memfd), each with POSIX or System V semaphores.
 *
 * Names derived from a handle:
 *   POSIX shm   /dev/shm/ipc.<handle>         (shm_open "/ipc.<handle>")
 *   SysV shm    key ipc__sysv_key(handle, 0)
 *   SysV sem    key ipc__sysv_key(handle, 1); if that key is still held by an
 *               older buffer of the same handle, a private set. The set's id
 *               is kept in the buffer header.
 *   POSIX sem   a process-shared sem_t inside the buffer: no name at all.
 *   memfd       "ipc.<handle>"; other processes attach through an inherited
 *               descriptor named by env IPC_MEMFD_<handle>=<pid>:<fd>.
 */
#ifndef IPC_SHM_H
#define IPC_SHM_H

#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipc/buffer.h>

struct ipc__shm {
	enum ipc_shm_kind kind;
	int fd;          /* POSIX, memfd */
	int shmid;       /* SysV */
	void *base;
	size_t size;
};

/* SysV key for a handle: which = 0 the shared memory, 1 the semaphore set. */
key_t ipc__sysv_key(const char *handle, int which);

/* Create exclusively, 0600, sized, its memory reserved (POSIX, memfd:
 * posix_fallocate) and mapped. POSIX and memfd keep an exclusive flock
 * until ipc__shm_ready(). -EEXIST when the name exists; -ENOSPC, with a
 * message on stderr naming the size asked, the room free and the fixes,
 * when the memory cannot be had (a small /dev/shm, SysV limits). */
int ipc__shm_create(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle,
                    size_t size);
/* The creator is done: drop the creation lock. */
void ipc__shm_ready(struct ipc__shm *s);
/* Open an existing object without mapping it. -ENOENT when there is none;
 * -EPERM, with a message naming it and its owner, when it is not what
 * ipc__shm_create makes (a regular object of our euid, mode 0600): another
 * user's object, a FIFO or a symlink planted under the name. */
int ipc__shm_open(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle);
/* The same test on an open descriptor, and on a System V object's
 * permissions; what names the object in the message. 0 or -EPERM. */
struct ipc_perm;
int ipc__shm_check_fd(int fd, const char *handle, const char *what);
int ipc__sysv_check(const struct ipc_perm *p, const char *handle, const char *what);
/* Current size of the object (0 while its creator has not sized it). */
size_t ipc__shm_size(struct ipc__shm *s);
/* 1 while a creator still holds the creation lock, 0 when none does,
 * -1 when the backend cannot tell (SysV). */
int ipc__shm_creator_busy(struct ipc__shm *s);
/* Map size bytes (the whole object). */
int ipc__shm_map(struct ipc__shm *s, size_t size);
/* Unmap and close descriptors; the object stays. */
void ipc__shm_detach(struct ipc__shm *s);
/* Remove the name (POSIX) or mark the segment for removal (SysV). */
void ipc__shm_unlink(struct ipc__shm *s, const char *handle);

/* The allocation lock, in the buffer header. */
struct ipc__lock {
	sem_t sem;        /* POSIX backend */
	int32_t semid;    /* SysV backend */
	uint32_t kind;    /* enum ipc_sem_kind */
	_Atomic uint64_t holder; /* IPC__HOLDER(pid, PID namespace) of the holder,
	                            0 free; POSIX: the lock itself */
	_Atomic uint32_t waiters; /* POSIX: sleepers on sem */
};

/* A holder: its pid (in its own PID namespace) and the low 32 bits of that
 * namespace's inode (the kernel's are 32 bits), 0 when unknown; one word, so
 * a waiter never pairs a pid with another holder's namespace. */
#define IPC__HOLDER(pid, ns) (((uint64_t)(uint32_t)(ns) << 32) | (uint32_t)(pid))
#define IPC__HOLDER_PID(h) ((int32_t)(uint32_t)(h))
#define IPC__HOLDER_NS(h) ((uint32_t)((h) >> 32))

/* Whether holder h is provably dead (live.c: its process slot's life
 * word, or /proc in our own PID namespace); ctx is the caller's. */
typedef bool (*ipc__holder_dead_fn)(void *ctx, uint64_t h);

int ipc__lock_create(struct ipc__lock *l, enum ipc_sem_kind kind, const char *handle);
void ipc__lock_destroy(struct ipc__lock *l);
/* Take the lock as holder me (IPC__HOLDER). 0; 1 when the lock was taken
 * over from a holder that died holding it (what it guards may be
 * half-updated); or -EIDRM when the buffer was destroyed under us. Every
 * wait runs on CLOCK_MONOTONIC: a step of the wall clock changes nothing. */
int ipc__lock(struct ipc__lock *l, uint64_t me, ipc__holder_dead_fn dead, void *ctx);
void ipc__unlock(struct ipc__lock *l);

#endif
