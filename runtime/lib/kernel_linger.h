/*
 * Between kernel.c and kernel_linger.c, inside libipc (not installed).
 */
#ifndef IPC_KERNEL_LINGER_H
#define IPC_KERNEL_LINGER_H

#include <stdint.h>

#include "kernel_impl.h"

/* linger when the kernel does not say (ipcrun always does) */
#define IPC__LINGER_DEFAULT_NS 1000000u

/* 1: the kernel's side of the hand-over is plain stores and a load, the
 * linger thread issues membarrier(2); 0: both sides compare-and-swap busy
 * (no membarrier, or ThreadSanitizer, which cannot see it). */
extern ipc_a32 ipc__kernel_membarrier;

/* kernel.c: send out's open batch (see flush_port); the monotonic clock. */
int ipc__kernel_flush_port(struct ipc_port *out, int timeout_ms);
uint64_t ipc__kernel_now_ns(void);

/* kernel_linger.c: join (a kernel that opens its first batch, from inside
 * the API), leave (ipc__kernel_finish), and wake the thread if it sleeps
 * with nothing to watch (a batch just opened). */
void ipc__linger_register(struct ipc_kernel *k);
void ipc__linger_unregister(struct ipc_kernel *k);
void ipc__linger_poke(void);

#endif /* IPC_KERNEL_LINGER_H */
