/*
 * Shared helpers of the cmocka unit and stress tests.
 *
 *  - Arguments: tu_init() keeps argv; tu_arg("rounds", 100) reads
 *    "rounds=N" from it, so a stress binary runs as `stress_kill seed=7
 *    rounds=500`. The seed is printed so a failing run can be replayed.
 *  - Handles: tu_handle() gives each test a fresh buffer handle;
 *    tu_assert_clean() fails the test if anything of that handle is left in
 *    /dev/shm or in the System V tables (and removes it, so a failing test
 *    leaves nothing on the machine). tu_fixture_setup/teardown wrap both.
 *  - Processes and threads: CHECK*() work anywhere. In the test's main thread
 *    they fail the cmocka test; in a forked child they print and _exit(); in
 *    another thread they print, mark the run failed and pthread_exit(), and
 *    the main thread asserts tu_failed() == 0 after joining. Children are
 *    started with tu_spawn() (they die with the test process) and reaped
 *    with tu_wait(), which never blocks past its deadline.
 *  - Time: tu_now_ns() (CLOCK_MONOTONIC, comparable across processes).
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include <ipc/buffer.h>

#define TU_HANDLE_LEN (IPC_HANDLE_MAX + 1)

/* Exit code of a child whose CHECK failed. */
#define TU_CHILD_FAILED 99

/* True when built with AddressSanitizer or ThreadSanitizer (slower runs). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

void tu_init(int argc, char **argv);
uint64_t tu_arg(const char *name, uint64_t def);
uint64_t tu_seed(void);

_Noreturn void tu_check_failed(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool tu_failed(void);

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c))                                                     \
			tu_check_failed(__FILE__, __LINE__, "%s", #c);        \
	} while (0)
#define CHECK_MSG(c, ...)                                                     \
	do {                                                                  \
		if (!(c))                                                     \
			tu_check_failed(__FILE__, __LINE__, __VA_ARGS__);     \
	} while (0)
#define CHECK_EQ(a, b)                                                        \
	do {                                                                  \
		long long tu_a_ = (long long)(a), tu_b_ = (long long)(b);     \
		if (tu_a_ != tu_b_)                                           \
			tu_check_failed(__FILE__, __LINE__,                   \
			                "%s == %s (%lld != %lld)", #a, #b,    \
			                tu_a_, tu_b_);                        \
	} while (0)

/* Random numbers: splitmix64 on a caller-owned state. */
uint64_t tu_rand(uint64_t *state);
uint64_t tu_rand_range(uint64_t *state, uint64_t lo, uint64_t hi); /* [lo, hi] */

uint64_t tu_now_ns(void);

/* Handles and leftovers. */
void tu_handle(char out[TU_HANDLE_LEN]);
bool tu_leftovers(const char *handle, char *what, size_t len);
void tu_remove_all(const char *handle);
#define tu_assert_clean(h) tu_assert_clean_at((h), __FILE__, __LINE__)
void tu_assert_clean_at(const char *handle, const char *file, int line);

/* A buffer of size data bytes with backends from the environment. */
struct ipc_buffer *tu_open(const char *handle, size_t size);
/* ipc_tls_open that asserts it worked. */
struct ipc_tls *tu_tls(struct ipc_buffer *b, int32_t id);
/* Allocate an 8-byte record holding v and send it on channel id, asserting
 * both (and that the record left this thread). */
void tu_send_u64(struct ipc_tls *t, uint64_t id, uint64_t v);

/* cmocka fixture: *state = a struct tu_fix with a fresh handle; teardown
 * kills children still running and removes whatever the test left. */
struct tu_fix {
	char handle[TU_HANDLE_LEN];
};
int tu_fixture_setup(void **state);
int tu_fixture_teardown(void **state);

/* Processes. */
pid_t tu_spawn(int (*fn)(void *arg), void *arg);
/* Wait for pid up to timeout_ms; returns its wait status, or -1 (and kills
 * it with SIGKILL, then reaps it) if it did not end in time. */
int tu_wait(pid_t pid, int timeout_ms);
/* tu_wait and CHECK that it exited with status 0. */
#define tu_wait_ok(pid, ms) tu_wait_ok_at((pid), (ms), __FILE__, __LINE__)
void tu_wait_ok_at(pid_t pid, int timeout_ms, const char *file, int line);
void tu_kill_children(void);

/* Watchdog: the whole binary fails (exit 124) after seconds. */
void tu_watchdog(unsigned seconds);

/* One-way handshakes over a pipe (fd[0] read, fd[1] write). */
void tu_pipe(int fd[2]);
void tu_notify(int fd, uint8_t byte);
/* Returns the byte, or -1 on timeout or EOF. */
int tu_await(int fd, int timeout_ms);

/* Fill and check record contents derived from (tag, n). */
void tu_fill(void *p, size_t n, uint64_t tag);
bool tu_verify(const void *p, size_t n, uint64_t tag);

/* Set ok to the value of cond (an expression), polled until true or until
 * timeout_ms passed. */
#define TU_POLL(ok, cond, timeout_ms)                                         \
	do {                                                                  \
		uint64_t tu_end_ = tu_now_ns() +                              \
		                   (uint64_t)(timeout_ms) * 1000000ull;       \
		while (!((ok) = (cond)) && tu_now_ns() < tu_end_)             \
			tu_pause();                                           \
	} while (0)
/* A short sleep (50 us) between two polls. */
void tu_pause(void);

#endif
