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

/* Create exclusively, 0600, sized and mapped. POSIX and memfd keep an
 * exclusive flock until ipc__shm_ready(). -EEXIST when the name exists. */
int ipc__shm_create(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle,
                    size_t size);
/* The creator is done: drop the creation lock. */
void ipc__shm_ready(struct ipc__shm *s);
/* Open an existing object without mapping it. -ENOENT when there is none. */
int ipc__shm_open(struct ipc__shm *s, enum ipc_shm_kind kind, const char *handle);
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
	_Atomic int32_t holder; /* pid holding it; POSIX: the lock itself */
	_Atomic uint32_t waiters; /* POSIX: sleepers on sem */
};

int ipc__lock_create(struct ipc__lock *l, enum ipc_sem_kind kind, const char *handle);
void ipc__lock_destroy(struct ipc__lock *l);
/* 0; 1 when the lock was taken over from a holder that died holding it
 * (what it guards may be half-updated); or -EIDRM when the buffer was
 * destroyed under us. */
int ipc__lock(struct ipc__lock *l);
void ipc__unlock(struct ipc__lock *l);

#endif
