/* Shared helpers of the tests: see testutil.h. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm.h" /* ipc__sysv_key */

static int g_argc;
static char **g_argv;
static uint64_t g_seed;
static pid_t g_main_pid;
static pid_t g_main_tid;
static atomic_int g_failed;

#define TU_MAX_CHILDREN 256
static pid_t g_children[TU_MAX_CHILDREN];

static pid_t tu_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

void tu_init(int argc, char **argv)
{
	g_argc = argc;
	g_argv = argv;
	g_main_pid = getpid();
	g_main_tid = tu_gettid();
	g_seed = tu_arg("seed", 0);
	if (g_seed == 0)
		g_seed = (tu_now_ns() ^ ((uint64_t)getpid() << 32)) | 1;
	fprintf(stderr, "# %s: seed=%llu (replay with: %s seed=%llu)\n",
	        argc > 0 ? argv[0] : "test", (unsigned long long)g_seed,
	        argc > 0 ? argv[0] : "test", (unsigned long long)g_seed);
	/* Child processes die with the test; cmocka must not see a stray
	 * SIGPIPE from a handshake with a dead child. */
	signal(SIGPIPE, SIG_IGN);
}

uint64_t tu_arg(const char *name, uint64_t def)
{
	size_t len = strlen(name);

	for (int i = 1; i < g_argc; i++) {
		if (strncmp(g_argv[i], name, len) == 0 && g_argv[i][len] == '=')
			return strtoull(g_argv[i] + len + 1, NULL, 0);
	}
	return def;
}

uint64_t tu_seed(void)
{
	return g_seed;
}

bool tu_failed(void)
{
	return atomic_load(&g_failed) != 0;
}

void tu_check_failed(const char *file, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	atomic_store(&g_failed, 1);
	if (getpid() != g_main_pid) {
		fprintf(stderr, "CHECK failed in child %d at %s:%d: %s\n",
		        (int)getpid(), file, line, msg);
		_exit(TU_CHILD_FAILED);
	}
	if (tu_gettid() != g_main_tid) {
		fprintf(stderr, "CHECK failed in thread %d at %s:%d: %s\n",
		        (int)tu_gettid(), file, line, msg);
		pthread_exit(NULL);
	}
	print_error("CHECK failed: %s\n", msg);
	_fail(file, line);
	abort(); /* _fail does not return */
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t tu_rand_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo + 1;

	return span == 0 ? tu_rand(state) : lo + tu_rand(state) % span;
}

uint64_t tu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void tu_pause(void)
{
	struct timespec ts = { 0, 50 * 1000 };

	nanosleep(&ts, NULL);
}

void tu_handle(char out[TU_HANDLE_LEN])
{
	int rc = ipc_buffer_gen_handle(out, TU_HANDLE_LEN);

	CHECK_EQ(rc, 0);
	CHECK(out[0] != '\0');
}

/* Anything of handle in /dev/shm or the System V tables, described in what. */
bool tu_leftovers(const char *handle, char *what, size_t len)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	size_t used = 0;
	int id;

	what[0] = '\0';
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strstr(e->d_name, handle) != NULL && used < len)
				used += (size_t)snprintf(what + used, len - used,
				                         "/dev/shm/%s ", e->d_name);
		}
		closedir(d);
	}
	id = shmget(ipc__sysv_key(handle, 0), 0, 0);
	if ((id >= 0 || errno != ENOENT) && used < len)
		used += (size_t)snprintf(what + used, len - used,
		                         "sysv shm id %d (errno %d) ", id,
		                         id >= 0 ? 0 : errno);
	id = semget(ipc__sysv_key(handle, 1), 0, 0);
	if ((id >= 0 || errno != ENOENT) && used < len)
		used += (size_t)snprintf(what + used, len - used,
		                         "sysv sem id %d (errno %d) ", id,
		                         id >= 0 ? 0 : errno);
	return used != 0;
}

void tu_remove_all(const char *handle)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	char path[300];
	int id;

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strstr(e->d_name, handle) == NULL)
				continue;
			snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	id = shmget(ipc__sysv_key(handle, 0), 0, 0);
	if (id >= 0)
		shmctl(id, IPC_RMID, NULL);
	id = semget(ipc__sysv_key(handle, 1), 0, 0);
	if (id >= 0)
		semctl(id, 0, IPC_RMID);
}

void tu_assert_clean_at(const char *handle, const char *file, int line)
{
	char what[1024];

	if (!tu_leftovers(handle, what, sizeof(what)))
		return;
	tu_remove_all(handle);
	tu_check_failed(file, line, "left behind for handle %s: %s", handle,
	                what);
}

struct ipc_buffer *tu_open(const char *handle, size_t size)
{
	struct ipc_buffer_opts o;

	memset(&o, 0, sizeof(o));
	o.size = size;
	return ipc_buffer_open(handle, &o);
}

int tu_fixture_setup(void **state)
{
	struct tu_fix *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (ipc_buffer_gen_handle(f->handle, sizeof(f->handle)) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

int tu_fixture_teardown(void **state)
{
	struct tu_fix *f = *state;
	char what[1024];

	tu_kill_children();
	if (f != NULL) {
		/* The test body asserts cleanliness; this only makes sure a
		 * failed test leaves nothing on the machine. */
		if (tu_leftovers(f->handle, what, sizeof(what)))
			tu_remove_all(f->handle);
		free(f);
	}
	*state = NULL;
	return 0;
}

static void tu_track(pid_t pid)
{
	for (int i = 0; i < TU_MAX_CHILDREN; i++) {
		if (g_children[i] == 0) {
			g_children[i] = pid;
			return;
		}
	}
}

static void tu_untrack(pid_t pid)
{
	for (int i = 0; i < TU_MAX_CHILDREN; i++) {
		if (g_children[i] == pid)
			g_children[i] = 0;
	}
}

pid_t tu_spawn(int (*fn)(void *arg), void *arg)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(NULL);
	pid = fork();
	CHECK_MSG(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* cmocka catches these to report a crash and carry on with the
		 * next test: a child must simply die instead. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGILL, SIG_DFL);
		signal(SIGFPE, SIG_DFL);
		signal(SIGSYS, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		alarm(0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(TU_CHILD_FAILED);
		memset(g_children, 0, sizeof(g_children));
		_exit(fn(arg));
	}
	if (getpid() == g_main_pid)
		tu_track(pid);
	return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
	uint64_t end = tu_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int status = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			tu_untrack(pid);
			return -1;
		}
		if (tu_now_ns() >= end) {
			fprintf(stderr, "# child %d still running after %d ms: "
			        "killing it\n", (int)pid, timeout_ms);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			tu_untrack(pid);
			return -1;
		}
		tu_pause();
	}
	tu_untrack(pid);
	return status;
}

void tu_wait_ok_at(pid_t pid, int timeout_ms, const char *file, int line)
{
	int st = tu_wait(pid, timeout_ms);

	if (st == -1)
		tu_check_failed(file, line, "child %d timed out after %d ms",
		                (int)pid, timeout_ms);
	if (WIFSIGNALED(st))
		tu_check_failed(file, line, "child %d killed by signal %d",
		                (int)pid, WTERMSIG(st));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		tu_check_failed(file, line, "child %d exited with %d", (int)pid,
		                WEXITSTATUS(st));
}

void tu_kill_children(void)
{
	for (int i = 0; i < TU_MAX_CHILDREN; i++) {
		pid_t pid = g_children[i];

		if (pid == 0)
			continue;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		g_children[i] = 0;
	}
}

static void tu_on_alarm(int sig)
{
	static const char msg[] = "\nwatchdog: test binary ran too long, "
	                          "killing it\n";
	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to say */
	}
	for (int i = 0; i < TU_MAX_CHILDREN; i++) {
		if (g_children[i] != 0)
			kill(g_children[i], SIGKILL);
	}
	_exit(124);
}

void tu_watchdog(unsigned seconds)
{
	signal(SIGALRM, tu_on_alarm);
	alarm(seconds);
}

void tu_pipe(int fd[2])
{
	CHECK(pipe2(fd, O_CLOEXEC) == 0);
}

void tu_notify(int fd, uint8_t byte)
{
	ssize_t w;

	do
		w = write(fd, &byte, 1);
	while (w < 0 && errno == EINTR);
	CHECK_EQ(w, 1);
}

int tu_await(int fd, int timeout_ms)
{
	uint64_t end = tu_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint8_t byte;

	for (;;) {
		uint64_t now = tu_now_ns();
		int left = now >= end ? 0 : (int)((end - now) / 1000000ull) + 1;
		int r = poll(&p, 1, left);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (read(fd, &byte, 1) == 1)
			return byte;
		if (errno != EINTR)
			return -1;
	}
}

void tu_fill(void *p, size_t n, uint64_t tag)
{
	uint8_t *b = p;
	uint64_t s = tag * 0x9e3779b97f4a7c15ull + n;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v = tu_rand(&s);
		memcpy(b + i, &v, 8);
	}
	if (i < n) {
		uint64_t v = tu_rand(&s);
		memcpy(b + i, &v, n - i);
	}
}

bool tu_verify(const void *p, size_t n, uint64_t tag)
{
	const uint8_t *b = p;
	uint64_t s = tag * 0x9e3779b97f4a7c15ull + n;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v = tu_rand(&s);
		if (memcmp(b + i, &v, 8) != 0)
			return false;
	}
	if (i < n) {
		uint64_t v = tu_rand(&s);
		if (memcmp(b + i, &v, n - i) != 0)
			return false;
	}
	return true;
}

struct ipc_tls *tu_tls(struct ipc_buffer *b, int32_t id)
{
	struct ipc_tls *t = ipc_tls_open(b, id);
	assert_non_null(t);
	return t;
}

void tu_send_u64(struct ipc_tls *t, uint64_t id, uint64_t v)
{
	uint64_t *r = ipc_record_alloc(t, sizeof(v), id);

	assert_non_null(r);
	*r = v;
	assert_int_equal(ipc_record_send(t, id, (void **)&r), 0);
	assert_null(r);
}
