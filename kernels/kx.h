/*
 * Helpers shared by the stock kernels of libipckernels.so. Not installed: the
 * library exports only the kernel functions and their IPC_KERNEL specs.
 *
 * Conventions every stock kernel follows (documented for users in README.md):
 *  - Kernels move items (ipc_emit / ipc_next), packed many to a record as
 *    the topology's batch says. Text items hold the text followed by one
 *    NUL, and their size counts the NUL, so a function kernel taking `str`
 *    reads them in place. Kernels reading text accept items with or without
 *    that NUL.
 *  - An input ending with IPC_TX_ABORTED (its producer died) makes the kernel
 *    stop, say so on stderr and return 1: a kernel that sees the abort never
 *    reports a partial stream as a complete result.
 *  - ipc_send returning -EPIPE (the consumer is gone) makes the kernel stop
 *    and return 0, as a Unix filter does on SIGPIPE: whatever failed
 *    downstream is reported by ipcrun on its own.
 *  - Sources return 0 as soon as ipc_stopping() is true; other kernels drain
 *    their inputs so that Ctrl-C leaves consistent results.
 */
#ifndef IPC_KERNELS_KX_H
#define IPC_KERNELS_KX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipc/kernel.h>

/* The library is built with -fvisibility=hidden; kernels are exported. */
#define KX_EXPORT __attribute__((visibility("default")))

/* Outcome of a kernel's main loop, turned into its return value by kx__end. */
enum kx_end {
	KX_DONE = 0,    /* inputs ended or the source finished */
	KX_GONE,        /* a consumer left (-EPIPE): stop quietly */
	KX_ABORTED,     /* an input was aborted: its producer died */
	KX_FAILED,      /* an error of our own, already reported */
};

/* A record of n bytes on out, retrying every millisecond while the buffer is
 * exhausted (downstream still holds records). NULL on a hard error or after
 * KX_ALLOC_PATIENCE_S seconds of exhaustion (both reported on stderr), and
 * without a word when ipc_stopping() and the caller is a source. */
#define KX_ALLOC_PATIENCE_S 30
void *kx__alloc_ex(struct ipc_kernel *k, struct ipc_port *out, size_t n,
                   bool source);
#define kx__alloc(k, out, n) kx__alloc_ex(k, out, n, false)
#define kx__alloc_src(k, out, n) kx__alloc_ex(k, out, n, true)

/* Send rec on out. KX_DONE, KX_GONE (-EPIPE: rec was freed) or KX_FAILED. */
enum kx_end kx__send(struct ipc_kernel *k, struct ipc_port *out, void *rec);

/* Allocate n bytes on out, copy src into it and send it. A source (see
 * kx__alloc_ex) gets KX_DONE when it stopped waiting for memory because the
 * graph is stopping. */
enum kx_end kx__send_copy(struct ipc_kernel *k, struct ipc_port *out,
                          const void *src, size_t n, bool source);

/* Send text (len bytes, not NUL-terminated) as a text record. */
enum kx_end kx__send_text(struct ipc_kernel *k, struct ipc_port *out,
                          const char *text, size_t len, bool source);

/* Emit one item on out (see ipc_emit). KX_DONE, KX_GONE (-EPIPE) or
 * KX_FAILED (reported). Inline: it is on every kernel's per-item path. */
enum kx_end kx__emit_failed(struct ipc_kernel *k, struct ipc_port *out, int rc);
static inline enum kx_end kx__emit(struct ipc_kernel *k, struct ipc_port *out,
                                   const void *item, size_t n)
{
	int rc = ipc_emit(out, item, n);

	return rc == 0 ? KX_DONE : kx__emit_failed(k, out, rc);
}

/* ipc_emit_many on out: KX_DONE, KX_GONE or KX_FAILED as kx__emit. */
static inline enum kx_end kx__emit_many(struct ipc_kernel *k, struct ipc_port *out,
                                        const void *items, size_t width, size_t count)
{
	int rc = ipc_emit_many(out, items, width, count);

	return rc == 0 ? KX_DONE : kx__emit_failed(k, out, rc);
}

/* Longest line the line sources accept (bytes, without the newline): a
 * longer one is an error naming the file and the line, never a buffer
 * growing without limit. */
#define KX_LINE_MAX (1u << 20)

/* Classify the end of an input: EOF -> KX_DONE, ABORTED -> KX_ABORTED,
 * anything else (a negative errno) -> KX_FAILED, reported on stderr. */
enum kx_end kx__input_end(struct ipc_kernel *k, const char *port, int rc);

/* The kernel's return value for e, with a line on stderr for the failures. */
int kx__end(struct ipc_kernel *k, enum kx_end e);

/* A required port, or NULL after a message on stderr naming it. */
struct ipc_port *kx__need_in(struct ipc_kernel *k, const char *port);
struct ipc_port *kx__need_out(struct ipc_kernel *k, const char *port);

/* Length of a text record without its trailing NUL, if it has one. */
size_t kx__text_len(const char *rec, size_t n);

/* 64-bit FNV-1a of n bytes: h = KX_FNV_OFFSET, then per byte h ^= byte,
 * h *= KX_FNV_PRIME (Fowler, Noll, Vo; the parameters of its 64-bit form). */
#define KX_FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define KX_FNV_PRIME UINT64_C(0x100000001b3)
uint64_t kx__fnv1a(const void *p, size_t n);

/* CRC-32 (IEEE 802.3, as gzip and zlib compute it) of n more bytes;
 * start with crc = 0. */
uint32_t kx__crc32(uint32_t crc, const void *p, size_t n);

/* Counts per byte-string key (counter.c). Zero-initialise; slots[0..cap)
 * with used set are the keys, their bytes at arena + key. */
struct kx_count_slot {
	uint64_t hash;
	uint64_t count;
	size_t key; /* offset of the key in the arena */
	size_t len;
	bool used;
};

struct kx_counter {
	struct kx_count_slot *slots;
	size_t cap, used; /* cap: 0 or a power of two; used <= cap / 2 */
	char *arena;
	size_t arena_len, arena_cap;
};

/* Add inc to key's count (a new key starts at 0). false: out of memory.
 * _hashed: the same, given kx__fnv1a(key, len) (a caller that hashed the
 * key while it read it). */
bool kx__counter_add(struct kx_counter *c, const char *key, size_t len,
                     uint64_t inc);
bool kx__counter_add_hashed(struct kx_counter *c, const char *key, size_t len,
                            uint64_t hash, uint64_t inc);
void kx__counter_free(struct kx_counter *c);

/* Seconds on the monotonic clock. */
double kx__now(void);

/* Print "<kernel>: <message>" on stderr. */
void kx__errorf(struct ipc_kernel *k, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif /* IPC_KERNELS_KX_H */
