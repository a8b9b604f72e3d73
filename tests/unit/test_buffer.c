/*
 * Unit tests of the buffer: create, attach, close and what is left behind;
 * many processes opening at once; creators that die half-way; permissions;
 * bad handles and options; handles; backends; stats.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm.h"

#define FIX(state) ((struct tu_fix *)*(state))

static enum ipc_shm_kind env_shm(void)
{
	const char *v = getenv("IPC_SHM");
	return v && strcmp(v, "sysv") == 0 ? IPC_SHM_SYSV : IPC_SHM_POSIX;
}

static enum ipc_sem_kind env_sem(void)
{
	const char *v = getenv("IPC_SEM");
	return v && strcmp(v, "sysv") == 0 ? IPC_SEM_SYSV : IPC_SEM_POSIX;
}

static bool posix_exists(const char *handle)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/ipc.%s", handle);
	return stat(path, &st) == 0;
}

static bool buffer_exists(const char *handle, enum ipc_shm_kind kind)
{
	if (kind == IPC_SHM_SYSV)
		return shmget(ipc__sysv_key(handle, 0), 0, 0) >= 0;
	return posix_exists(handle);
}

static void test_buffer_open_close_leaves_nothing(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer_stats s;
	struct ipc_buffer *b;

	for (int unlink = 0; unlink <= 1; unlink++) {
		b = tu_open(h, 1u << 20);
		assert_non_null(b);
		assert_string_equal(ipc_buffer_handle(b), h);
		assert_true(buffer_exists(h, ipc_buffer_shm_kind(b)));
		assert_int_equal(ipc_buffer_stats(b, &s), 0);
		assert_true(s.size >= (1u << 20));
		assert_true(s.size < (1u << 20) + 2 * 4096);
		assert_true(s.free > 0 && s.free <= s.size);
		assert_int_equal(s.processes, 1);
		assert_int_equal(s.channels, 0);
		assert_int_equal(s.records, 0);
		assert_int_equal(s.record_count, 0);
		assert_false(ipc_buffer_has_channels(b));
		assert_int_equal(ipc_buffer_close(b, unlink != 0), 0);
		tu_assert_clean(h);
	}
}

static void test_buffer_reopen_after_close_fresh(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer_stats s1, s2;
	struct ipc_buffer *b;
	struct ipc_tls *t;

	b = tu_open(h, 1u << 20);
	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s1), 0);
	t = ipc_tls_open(b, 1);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 5, IPC_PRODUCER), 0);
	assert_int_equal(ipc_buffer_close(b, false), 0); /* closes t too */
	tu_assert_clean(h);
	b = tu_open(h, 1u << 20);
	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s2), 0);
	assert_int_equal(s2.channels, 0);
	assert_int_equal(s2.free, s1.free);
	assert_int_equal(s2.processes, 1);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- two processes -------------------------------------------------------- */

struct duo {
	const char *handle;
	int to_child[2], to_parent[2];
};

/* Open the buffer, start child on it and wait until it is attached. */
static pid_t duo_start(struct duo *d, int (*child)(void *), struct ipc_buffer **b)
{
	pid_t pid;

	tu_pipe(d->to_child);
	tu_pipe(d->to_parent);
	*b = tu_open(d->handle, 1u << 20);
	assert_non_null(*b);
	pid = tu_spawn(child, d);
	assert_int_equal(tu_await(d->to_parent[0], 10000), 'a');
	return pid;
}

static int duo_child(void *arg)
{
	struct duo *d = arg;
	struct ipc_buffer_stats s;
	struct ipc_buffer *b = tu_open(d->handle, 1u << 20);

	CHECK(b != NULL);
	CHECK_EQ(ipc_buffer_stats(b, &s), 0);
	CHECK_EQ(s.processes, 2);
	tu_notify(d->to_parent[1], 'a');           /* attached */
	CHECK_EQ(tu_await(d->to_child[0], 10000), 'c'); /* parent closed */
	CHECK_EQ(ipc_buffer_stats(b, &s), 0);
	CHECK_EQ(s.processes, 1);
	CHECK(buffer_exists(d->handle, ipc_buffer_shm_kind(b)));
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_buffer_last_close_removes_without_unlink(void **state)
{
	const char *h = FIX(state)->handle;
	struct duo d = { .handle = h };
	struct ipc_buffer_stats s;
	struct ipc_buffer *b;
	pid_t pid;

	pid = duo_start(&d, duo_child, &b);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 2);
	assert_int_equal(ipc_buffer_close(b, false), 0); /* not the last */
	tu_notify(d.to_child[1], 'c');
	tu_wait_ok(pid, 10000);
	tu_assert_clean(h);
}

static int unlink_child(void *arg)
{
	struct duo *d = arg;
	struct ipc_buffer_stats s;
	struct ipc_buffer *b = tu_open(d->handle, 1u << 20);
	struct ipc_tls *t;
	void *r;

	CHECK(b != NULL);
	tu_notify(d->to_parent[1], 'a');
	CHECK_EQ(tu_await(d->to_child[0], 10000), 'u'); /* name removed */
	/* still works: allocate and free */
	t = ipc_tls_open(b, 2);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, 9, IPC_PRODUCER), 0);
	r = ipc_record_alloc(t, 100, 9);
	CHECK(r != NULL);
	ipc_record_free(t, r);
	CHECK_EQ(ipc_buffer_stats(b, &s), 0);
	CHECK_EQ(s.processes, 1); /* the parent's new buffer is another one */
	tu_notify(d->to_parent[1], 'w');
	CHECK_EQ(tu_await(d->to_child[0], 10000), 'x');
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_buffer_unlink_early_next_open_creates_new(void **state)
{
	const char *h = FIX(state)->handle;
	struct duo d = { .handle = h };
	struct ipc_buffer_stats s;
	struct ipc_buffer *b;
	pid_t pid;

	pid = duo_start(&d, unlink_child, &b);
	assert_int_equal(ipc_buffer_close(b, true), 0);
	/* a new open makes a new buffer while the child keeps the old one */
	b = tu_open(h, 1u << 20);
	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 1);
	tu_notify(d.to_child[1], 'u');
	assert_int_equal(tu_await(d.to_parent[0], 10000), 'w');
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 1);
	assert_int_equal(s.channels, 0); /* the child's channel is elsewhere */
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_notify(d.to_child[1], 'x');
	tu_wait_ok(pid, 10000);
	tu_assert_clean(h);
}

/* ---- many processes at once ----------------------------------------------- */

#define CROWD 8

struct crowd {
	const char *handle;
	int go[2];      /* parent closes the write end: everyone starts */
	int ready[2];   /* each child writes one byte once attached */
	int check[2];   /* parent closes the write end: everyone is attached */
	int checked[2]; /* each child writes one byte once it has checked */
	int leave[2];   /* parent closes the write end: everyone closes */
};

static int crowd_child(void *arg)
{
	struct crowd *c = arg;
	struct ipc_buffer_stats s;
	struct ipc_buffer *b;

	close(c->go[1]);
	close(c->check[1]);
	close(c->leave[1]);
	CHECK_EQ(tu_await(c->go[0], 10000), -1); /* EOF: go */
	b = tu_open(c->handle, 1u << 20);
	CHECK_MSG(b != NULL, "open: %s", strerror(errno));
	tu_notify(c->ready[1], 'r');
	CHECK_EQ(tu_await(c->check[0], 20000), -1); /* EOF: all attached */
	CHECK_EQ(ipc_buffer_stats(b, &s), 0);
	CHECK_EQ(s.processes, CROWD);
	CHECK(s.size >= (1u << 20));
	tu_notify(c->checked[1], 'c');
	CHECK_EQ(tu_await(c->leave[0], 20000), -1); /* EOF: all checked */
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_buffer_concurrent_open_one_buffer(void **state)
{
	const char *h = FIX(state)->handle;
	int rounds = (int)tu_arg("open_rounds", 10);

	for (int r = 0; r < rounds; r++) {
		struct crowd c = { .handle = h };
		pid_t pids[CROWD];

		tu_pipe(c.go);
		tu_pipe(c.ready);
		tu_pipe(c.check);
		tu_pipe(c.checked);
		tu_pipe(c.leave);
		for (int i = 0; i < CROWD; i++)
			pids[i] = tu_spawn(crowd_child, &c);
		close(c.go[1]);
		for (int i = 0; i < CROWD; i++)
			assert_int_equal(tu_await(c.ready[0], 20000), 'r');
		close(c.check[1]);
		for (int i = 0; i < CROWD; i++)
			assert_int_equal(tu_await(c.checked[0], 20000), 'c');
		close(c.leave[1]);
		for (int i = 0; i < CROWD; i++)
			tu_wait_ok(pids[i], 20000);
		close(c.go[0]);
		close(c.ready[0]);
		close(c.ready[1]);
		close(c.check[0]);
		close(c.checked[0]);
		close(c.checked[1]);
		close(c.leave[0]);
		tu_assert_clean(h);
	}
}

/* ---- creators that die half-way ------------------------------------------- */

static void expect_open_fails(const char *h, int timeout_ms, bool garbage)
{
	struct ipc_buffer_opts o = { .open_timeout_ms = timeout_ms };
	uint64_t t0 = tu_now_ns(), ms;
	struct ipc_buffer *b;

	errno = 0;
	b = ipc_buffer_open(h, &o);
	ms = (tu_now_ns() - t0) / 1000000;
	assert_null(b);
	if (garbage)
		assert_true(errno == ETIMEDOUT || errno == EOWNERDEAD || errno == EPROTO);
	else
		assert_true(errno == ETIMEDOUT || errno == EOWNERDEAD);
	/* bounded: the timeout plus scheduling noise, never a hang */
	assert_true(ms <= (uint64_t)timeout_ms + 2000);
	fprintf(stderr, "# open failed after %llu ms: %s\n", (unsigned long long)ms,
	        strerror(errno));
}

static void test_buffer_creator_died_before_sizing_open_fails(void **state)
{
	const char *h = FIX(state)->handle;
	char name[80];
	int fd, id;

	if (env_shm() == IPC_SHM_SYSV) {
		/* SysV memory is sized at creation: a creator that died before
		 * writing its header leaves zeroed memory */
		id = shmget(ipc__sysv_key(h, 0), 1u << 20, IPC_CREAT | IPC_EXCL | 0600);
		assert_true(id >= 0);
	} else {
		snprintf(name, sizeof(name), "/ipc.%s", h);
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd); /* size 0, nobody holds it */
	}
	expect_open_fails(h, 300, false);
	/* the object is not ours to remove until gc proves nobody uses it */
	assert_true(buffer_exists(h, env_shm()));
	assert_int_equal(ipc_buffer_gc(h, env_shm()), 1);
	tu_assert_clean(h);
}

static void test_buffer_garbage_header_open_fails(void **state)
{
	const char *h = FIX(state)->handle;
	uint64_t rng = tu_seed();
	size_t n = 1u << 20;
	char name[80];
	void *p;
	int fd, id;

	if (env_shm() == IPC_SHM_SYSV) {
		id = shmget(ipc__sysv_key(h, 0), n, IPC_CREAT | IPC_EXCL | 0600);
		assert_true(id >= 0);
		p = shmat(id, NULL, 0);
		assert_true(p != (void *)-1);
		tu_fill(p, n, tu_rand(&rng));
		shmdt(p);
	} else {
		snprintf(name, sizeof(name), "/ipc.%s", h);
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, (off_t)n), 0);
		p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		assert_true(p != MAP_FAILED);
		tu_fill(p, n, tu_rand(&rng));
		munmap(p, n);
		close(fd);
	}
	expect_open_fails(h, 300, true);
	assert_true(buffer_exists(h, env_shm()));
	tu_remove_all(h);
	tu_assert_clean(h);
}

static int creator_child(void *arg)
{
	struct ipc_buffer *b = tu_open(arg, 8u << 20);

	CHECK(b != NULL);
	for (;;)
		pause(); /* killed by the parent */
	return 0;
}

static void test_buffer_creator_killed_midway_open_clear(void **state)
{
	const char *h = FIX(state)->handle;
	uint64_t rng = tu_seed() ^ 0xc0ffee;
	int rounds = (int)tu_arg("creator_rounds", 30);
	int opened = 0, failed = 0;

	for (int r = 0; r < rounds; r++) {
		struct ipc_buffer_opts o = { .open_timeout_ms = 500, .size = 1u << 20 };
		struct timespec ts = { 0, (long)tu_rand_range(&rng, 0, 3000) * 1000 };
		struct ipc_buffer *b;
		uint64_t t0;
		pid_t pid;
		int st;

		pid = tu_spawn(creator_child, (void *)h);
		nanosleep(&ts, NULL); /* a random moment of its creation */
		kill(pid, SIGKILL);
		st = tu_wait(pid, 5000);
		assert_true(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != TU_CHILD_FAILED));
		t0 = tu_now_ns();
		errno = 0;
		b = ipc_buffer_open(h, &o);
		assert_true((tu_now_ns() - t0) / 1000000 <= 500 + 2000);
		if (b != NULL) {
			struct ipc_buffer_stats s;
			struct ipc_tls *t = ipc_tls_open(b, 1);
			void *rec;

			assert_non_null(t);
			assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
			rec = ipc_record_alloc(t, 64, 1);
			assert_non_null(rec);
			ipc_record_free(t, rec);
			assert_int_equal(ipc_buffer_stats(b, &s), 0);
			assert_true(s.free <= s.size);
			assert_int_equal(ipc_buffer_close(b, false), 0);
			opened++;
		} else {
			assert_true(errno == ETIMEDOUT || errno == EOWNERDEAD);
			failed++;
		}
		/* whatever a dead creator left, gc removes: nobody is alive */
		assert_true(ipc_buffer_gc(h, env_shm()) >= 0);
		tu_assert_clean(h);
	}
	fprintf(stderr, "# %d rounds: %d opened a finished buffer, %d failed clearly\n",
	        rounds, opened, failed);
}

/* ---- permissions, arguments, handles, backends ----------------------------- */

static mode_t object_mode(const char *h, enum ipc_shm_kind shm, bool sem)
{
	if (sem) {
		struct semid_ds ds;
		union { int val; struct semid_ds *buf; } u = { .buf = &ds };
		int id = semget(ipc__sysv_key(h, 1), 0, 0);
		if (id < 0 || semctl(id, 0, IPC_STAT, u) < 0)
			return (mode_t)-1;
		return ds.sem_perm.mode & 0777;
	}
	if (shm == IPC_SHM_SYSV) {
		struct shmid_ds ds;
		int id = shmget(ipc__sysv_key(h, 0), 0, 0);
		if (id < 0 || shmctl(id, IPC_STAT, &ds) < 0)
			return (mode_t)-1;
		return ds.shm_perm.mode & 0777;
	} else {
		char path[128];
		struct stat st;
		snprintf(path, sizeof(path), "/dev/shm/ipc.%s", h);
		if (stat(path, &st) < 0)
			return (mode_t)-1;
		return st.st_mode & 0777;
	}
}

static void test_buffer_mode_0600_any_umask(void **state)
{
	const char *h = FIX(state)->handle;
	const mode_t masks[] = { 0, 022, 077, 0777 };
	mode_t old = umask(0);

	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		struct ipc_buffer *b;

		umask(masks[i]);
		b = tu_open(h, 1u << 20);
		umask(0);
		assert_non_null(b);
		assert_int_equal(object_mode(h, ipc_buffer_shm_kind(b), false), 0600);
		if (ipc_buffer_sem_kind(b) == IPC_SEM_SYSV)
			assert_int_equal(object_mode(h, 0, true), 0600);
		assert_int_equal(ipc_buffer_close(b, false), 0);
		tu_assert_clean(h);
	}
	umask(old);
}

static void test_buffer_bad_handle_einval(void **state)
{
	const char *bad[] = { "", ".hidden", "a/b", "/abs", "sp ace", "tab\t",
	                      "dollar$", "star*", "\xc3\xa4", "x\n" };
	char longest[IPC_HANDLE_MAX + 2];
	struct ipc_buffer *b;

	(void)state;
	errno = 0;
	assert_null(ipc_buffer_open(NULL, NULL));
	assert_int_equal(errno, EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		b = ipc_buffer_open(bad[i], NULL);
		if (b != NULL)
			ipc_buffer_close(b, true);
		assert_null(b);
		assert_int_equal(errno, EINVAL);
	}
	memset(longest, 'a', sizeof(longest));
	longest[IPC_HANDLE_MAX + 1] = '\0'; /* one too long */
	errno = 0;
	assert_null(ipc_buffer_open(longest, NULL));
	assert_int_equal(errno, EINVAL);
	/* exactly IPC_HANDLE_MAX is fine */
	{
		char h[TU_HANDLE_LEN];
		tu_handle(h);
		memset(longest, 'z', sizeof(longest));
		memcpy(longest, h, strlen(h));
		longest[IPC_HANDLE_MAX] = '\0';
		b = tu_open(longest, 1u << 20);
		assert_non_null(b);
		assert_int_equal(ipc_buffer_close(b, false), 0);
		tu_assert_clean(longest);
	}
}

static void test_buffer_bad_options_einval(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer_opts o;
	struct ipc_buffer *b;

	memset(&o, 0, sizeof(o));
	o.size = 1;
	errno = 0;
	assert_null(ipc_buffer_open(h, &o));
	assert_int_equal(errno, EINVAL);

	o.size = (size_t)1 << 62;
	errno = 0;
	b = ipc_buffer_open(h, &o);
	if (b != NULL)
		ipc_buffer_close(b, true);
	assert_null(b);
	assert_true(errno == EINVAL || errno == ENOMEM || errno == ENOSPC);

	memset(&o, 0, sizeof(o));
	o.shm = (enum ipc_shm_kind)99;
	errno = 0;
	assert_null(ipc_buffer_open(h, &o));
	assert_int_equal(errno, EINVAL);

	memset(&o, 0, sizeof(o));
	o.sem = (enum ipc_sem_kind)99;
	errno = 0;
	assert_null(ipc_buffer_open(h, &o));
	assert_int_equal(errno, EINVAL);

	memset(&o, 0, sizeof(o));
	o.wait = (enum ipc_wait_mode)99;
	errno = 0;
	assert_null(ipc_buffer_open(h, &o));
	assert_int_equal(errno, EINVAL);

	memset(&o, 0, sizeof(o));
	o.open_timeout_ms = -1;
	errno = 0;
	assert_null(ipc_buffer_open(h, &o));
	assert_int_equal(errno, EINVAL);

	/* the other calls reject NULL */
	assert_int_equal(ipc_buffer_close(NULL, false), -EINVAL);
	{
		struct ipc_buffer_stats s;
		assert_int_equal(ipc_buffer_stats(NULL, &s), -EINVAL);
	}
	assert_int_equal(ipc_buffer_gc("bad/handle", IPC_SHM_POSIX), -EINVAL);
	tu_assert_clean(h);
}

static void test_buffer_gen_handle_unique_valid(void **state)
{
	enum { N = 2000 };
	static char hs[N][TU_HANDLE_LEN];
	char small[8];
	int fd[2];
	pid_t pid;

	(void)state;
	assert_int_equal(ipc_buffer_gen_handle(NULL, TU_HANDLE_LEN), -EINVAL);
	assert_int_equal(ipc_buffer_gen_handle(small, 0), -EINVAL);
	assert_int_equal(ipc_buffer_gen_handle(small, sizeof(small)), -EINVAL);
	for (int i = 0; i < N; i++) {
		size_t len;
		assert_int_equal(ipc_buffer_gen_handle(hs[i], TU_HANDLE_LEN), 0);
		len = strlen(hs[i]);
		assert_true(len > 0 && len <= IPC_HANDLE_MAX);
		assert_true(hs[i][0] != '.');
		for (size_t k = 0; k < len; k++) {
			char c = hs[i][k];
			assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			            (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			            c == '-');
		}
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			assert_string_not_equal(hs[i], hs[j]);
	/* another process (same counter state after fork) differs too */
	tu_pipe(fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c[TU_HANDLE_LEN] = {0};
		ssize_t w = -1;
		if (ipc_buffer_gen_handle(c, sizeof(c)) == 0)
			w = write(fd[1], c, sizeof(c));
		_exit(w == (ssize_t)sizeof(c) ? 0 : 1);
	}
	{
		char mine[TU_HANDLE_LEN], theirs[TU_HANDLE_LEN];
		assert_int_equal(ipc_buffer_gen_handle(mine, sizeof(mine)), 0);
		assert_int_equal(read(fd[0], theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
		assert_string_not_equal(mine, theirs);
	}
	tu_wait_ok(pid, 5000);
	close(fd[0]);
	close(fd[1]);
}

static void test_buffer_backend_follows_env(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = tu_open(h, 1u << 20);

	assert_non_null(b);
	assert_int_equal(ipc_buffer_shm_kind(b), env_shm());
	assert_int_equal(ipc_buffer_sem_kind(b), env_sem());
	assert_true(buffer_exists(h, env_shm()));
	if (env_shm() == IPC_SHM_SYSV)
		assert_false(posix_exists(h));
	else
		assert_true(shmget(ipc__sysv_key(h, 0), 0, 0) < 0 && errno == ENOENT);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

struct backend_arg {
	struct ipc_buffer_opts o;
	char h[TU_HANDLE_LEN];
};

static int backend_child(void *p)
{
	struct backend_arg *arg = p;
	const struct ipc_buffer_opts *o = &arg->o;
	struct ipc_buffer *b = ipc_buffer_open(arg->h, o);
	struct ipc_buffer_stats s;

	CHECK(b != NULL);
	CHECK_EQ(ipc_buffer_shm_kind(b), o->shm);
	CHECK_EQ(ipc_buffer_stats(b, &s), 0);
	CHECK_EQ(s.processes, 2);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

static void test_buffer_explicit_backends_work_and_clean(void **state)
{
	const char *h = FIX(state)->handle;
	const enum ipc_shm_kind shms[] = { IPC_SHM_POSIX, IPC_SHM_SYSV };
	const enum ipc_sem_kind sems[] = { IPC_SEM_POSIX, IPC_SEM_SYSV };
	struct backend_arg arg;

	for (int i = 0; i < 2; i++) {
		for (int j = 0; j < 2; j++) {
			struct ipc_buffer_stats s;
			struct ipc_buffer *b;
			struct ipc_tls *t;
			void *rec;
			pid_t pid;

			memset(&arg, 0, sizeof(arg));
			arg.o.shm = shms[i];
			arg.o.sem = sems[j];
			arg.o.size = 1u << 20;
			snprintf(arg.h, sizeof(arg.h), "%s", h);
			b = ipc_buffer_open(h, &arg.o);
			assert_non_null(b);
			assert_int_equal(ipc_buffer_shm_kind(b), shms[i]);
			assert_int_equal(ipc_buffer_sem_kind(b), sems[j]);
			assert_true(buffer_exists(h, shms[i]));
			t = ipc_tls_open(b, 1);
			assert_non_null(t);
			assert_int_equal(ipc_channel_add(t, 3, IPC_PRODUCER), 0);
			rec = ipc_record_alloc(t, 1000, 3);
			assert_non_null(rec);
			pid = tu_spawn(backend_child, &arg);
			tu_wait_ok(pid, 10000);
			ipc_record_free(t, rec);
			assert_int_equal(ipc_buffer_stats(b, &s), 0);
			assert_int_equal(s.processes, 1);
			assert_int_equal(s.records, 0);
			assert_int_equal(ipc_buffer_close(b, false), 0);
			tu_assert_clean(h);
		}
	}
}

static void test_buffer_size_from_opts_env_default(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer_stats s;
	struct ipc_buffer *b, *b2;
	char *saved = getenv("IPC_BUFFER_SIZE");

	saved = saved ? strdup(saved) : NULL;
	unsetenv("IPC_BUFFER_SIZE");
	b = tu_open(h, 0);
	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.size, IPC_BUFFER_SIZE_DEFAULT);
	/* attaching ignores the size asked for */
	b2 = tu_open(h, 2u << 20);
	assert_non_null(b2);
	assert_int_equal(ipc_buffer_stats(b2, &s), 0);
	assert_int_equal(s.size, IPC_BUFFER_SIZE_DEFAULT);
	assert_int_equal(ipc_buffer_close(b2, false), 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);

	setenv("IPC_BUFFER_SIZE", "3M", 1);
	b = tu_open(h, 0);
	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.size, 3u << 20);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);

	b = tu_open(h, 5u << 20); /* opts win over the environment */
	assert_non_null(b);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.size, 5u << 20);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);

	if (saved) {
		setenv("IPC_BUFFER_SIZE", saved, 1);
		free(saved);
	} else {
		unsetenv("IPC_BUFFER_SIZE");
	}
}

static void test_buffer_gc_live_buffer_untouched(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer_stats s;
	struct ipc_buffer *b = tu_open(h, 1u << 20);

	assert_non_null(b);
	assert_int_equal(ipc_buffer_gc(h, ipc_buffer_shm_kind(b)), -EBUSY);
	assert_true(buffer_exists(h, ipc_buffer_shm_kind(b)));
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 1);
	assert_int_equal(ipc_buffer_reap(b), 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
	/* nothing to collect */
	assert_int_equal(ipc_buffer_gc(h, env_shm()), 0);
}

static int sleeper_child(void *arg)
{
	struct duo *d = arg;
	struct ipc_buffer *b = tu_open(d->handle, 1u << 20);

	CHECK(b != NULL);
	tu_notify(d->to_parent[1], 'a');
	for (;;)
		pause(); /* killed while attached */
	return 0;
}

static void test_buffer_dead_process_not_counted(void **state)
{
	const char *h = FIX(state)->handle;
	struct duo d = { .handle = h };
	struct ipc_buffer_stats s;
	struct ipc_buffer *b;
	pid_t pid;

	pid = duo_start(&d, sleeper_child, &b);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 2);
	kill(pid, SIGKILL);
	assert_true(WIFSIGNALED(tu_wait(pid, 5000)));
	assert_int_equal(ipc_buffer_reap(b), 1);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 1);
	assert_int_equal(ipc_buffer_reap(b), 0);
	/* the survivor is the last: its close removes everything */
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* The thread ids of this process. */
static int threads(pid_t *tids, int max)
{
	char path[64];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)getpid());
	DIR *d = opendir(path);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.' && n < max)
			tids[n++] = (pid_t)atoi(e->d_name);
	closedir(d);
	return n;
}

/* A thread's blocked signals (its /proc status line SigBlk). */
static unsigned long long sigblk(pid_t tid)
{
	char path[96], line[256];
	unsigned long long m = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)getpid(), (int)tid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &m) == 1)
			break;
	fclose(f);
	return m;
}

/* An open buffer runs one keeper thread (death notices), with every signal
 * blocked so that signals still reach the program's own threads; close
 * stops it. */
static void test_buffer_keeper_thread_blocks_signals(void **state)
{
	const char *h = FIX(state)->handle;
	pid_t before[64], during[64], after[64];
	int nb = threads(before, 64);
	struct ipc_buffer *b = tu_open(h, 0);
	int nd, na, found = 0;

	assert_non_null(b);
	nd = threads(during, 64);
	assert_int_equal(nd, nb + 1);
	for (int i = 0; i < nd; i++) {
		bool old = false;
		for (int j = 0; j < nb; j++)
			old |= during[i] == before[j];
		if (old)
			continue;
		unsigned long long m = sigblk(during[i]);
		assert_true(m & (1ull << (SIGINT - 1)));
		assert_true(m & (1ull << (SIGTERM - 1)));
		assert_true(m & (1ull << (SIGUSR1 - 1)));
		found++;
	}
	assert_int_equal(found, 1);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	na = threads(after, 64);
	assert_int_equal(na, nb);
	tu_assert_clean(h);
}

static void test_buffer_strerror_names_codes(void **state)
{
	const int codes[] = { IPC_TX_SUCCESS, IPC_TX_RETRY, IPC_TX_EOF, IPC_TX_ABORTED,
	                      -ENOENT, -EPROTOTYPE, -EBUSY, -ENOMEM, -EINVAL, -EPIPE };

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = ipc_strerror(codes[i]);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, ipc_strerror(codes[j]));
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_buffer_open_close_leaves_nothing),
		T(test_buffer_reopen_after_close_fresh),
		T(test_buffer_last_close_removes_without_unlink),
		T(test_buffer_unlink_early_next_open_creates_new),
		T(test_buffer_concurrent_open_one_buffer),
		T(test_buffer_creator_died_before_sizing_open_fails),
		T(test_buffer_garbage_header_open_fails),
		T(test_buffer_creator_killed_midway_open_clear),
		T(test_buffer_mode_0600_any_umask),
		T(test_buffer_bad_handle_einval),
		T(test_buffer_bad_options_einval),
		T(test_buffer_gen_handle_unique_valid),
		T(test_buffer_backend_follows_env),
		T(test_buffer_explicit_backends_work_and_clean),
		T(test_buffer_size_from_opts_env_default),
		T(test_buffer_gc_live_buffer_untouched),
		T(test_buffer_dead_process_not_counted),
		T(test_buffer_strerror_names_codes),
		T(test_buffer_keeper_thread_blocks_signals),
	};

	tu_init(argc, argv);
	tu_watchdog(240);
	return cmocka_run_group_tests_name("buffer", tests, NULL, NULL);
}
