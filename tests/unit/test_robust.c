/*
 * Where users start libipc: a small /dev/shm, containers (PID namespaces),
 * another local user's planted objects, damaged headers, clock steps, gc of
 * the other backend, sizes from the environment.
 *
 * Run under the four IPC_SHM/IPC_SEM combinations. The namespace and user
 * tests need root (mount, unshare, setresuid): without it they are skipped,
 * saying why. Everything they mount is in a private mount namespace of a
 * child process (the tiny tmpfs over /dev/shm, a PID namespace's own /proc):
 * the machine's mounts are never touched.
 */
#include "testutil.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "shm.h"
#include "util.h"

#define FIX(state) ((struct tu_fix *)*(state))
#define NOBODY 65534 /* the throwaway identity: setresuid in a forked child */

static enum ipc_shm_kind env_shm(void)
{
	const char *v = getenv("IPC_SHM");
	return v && !strcmp(v, "sysv") ? IPC_SHM_SYSV : IPC_SHM_POSIX;
}

static enum ipc_sem_kind env_sem(void)
{
	const char *v = getenv("IPC_SEM");
	return v && !strcmp(v, "sysv") ? IPC_SEM_SYSV : IPC_SEM_POSIX;
}

static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "# skipped: needs root (mount namespaces, PID namespaces, "
	        "setresuid); run make test as root to cover it\n");
	return false;
}

static struct ipc_buffer *open_env(const char *h, size_t size)
{
	struct ipc_buffer_opts o = {.size = size, .shm = env_shm(), .sem = env_sem()};
	return ipc_buffer_open(h, &o);
}

/* Entries in /dev/shm (as this process sees it). */
static int shm_entries(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* stderr into a memfd, to read back what libipc said. */
static int capture_stderr(void)
{
	int fd = memfd_create("stderr", 0);
	CHECK(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	CHECK(dup2(fd, 2) == 2);
	close(fd);
	return saved;
}

static void captured(int saved, char *out, size_t len)
{
	fflush(stderr);
	off_t n = lseek(2, 0, SEEK_CUR);
	ssize_t got = pread(2, out, len - 1, 0);
	out[got > 0 ? got : 0] = '\0';
	(void)n;
	dup2(saved, 2);
	close(saved);
	fputs(out, stderr); /* still shown in the test's log */
}

/* A private mount namespace for this (child) process. */
static void private_mounts(void)
{
	CHECK(unshare(CLONE_NEWNS) == 0);
	CHECK(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0);
}

/* ---- 2. a /dev/shm smaller than the buffer --------------------------------- */

static int small_shm_child(void *arg)
{
	const char *h = arg;
	char msg[4096];

	private_mounts();
	CHECK(mount("ipc-small", "/dev/shm", "tmpfs", 0, "size=1m,mode=1777") == 0);
	CHECK_EQ(shm_entries(), 0);

	int saved = capture_stderr();
	struct ipc_buffer *b = open_env(h, 2u << 20);
	int err = errno;
	captured(saved, msg, sizeof(msg));
	if (env_shm() == IPC_SHM_SYSV) {
		/* the fix the message suggests: SysV memory is not in /dev/shm */
		CHECK_MSG(b != NULL, "sysv open on a small /dev/shm: %s", strerror(err));
		CHECK_EQ(ipc_buffer_close(b, false), 0);
		/* SysV's own limit, in an IPC namespace of this child alone
		 * (shmmax is per namespace: the machine's is untouched) */
		CHECK(unshare(CLONE_NEWIPC) == 0);
		int fd = open("/proc/sys/kernel/shmmax", O_WRONLY | O_CLOEXEC);
		CHECK(fd >= 0 && write(fd, "1048576", 7) == 7);
		close(fd);
		saved = capture_stderr();
		b = open_env(h, 2u << 20);
		err = errno;
		captured(saved, msg, sizeof(msg));
		CHECK_MSG(b == NULL && err == ENOSPC, "2 MiB SysV buffer, shmmax 1 MiB: %s",
		          b ? "opened" : strerror(err));
		CHECK_MSG(strstr(msg, "needs 2.") && strstr(msg, "System V") &&
		          strstr(msg, "shmmax") && strstr(msg, "buffer =") &&
		          strstr(msg, "shm = posix"), "message lacks the size or a fix: %s", msg);
		CHECK(shmget(ipc__sysv_key(h, 0), 0, 0) < 0 && errno == ENOENT);
		CHECK(semget(ipc__sysv_key(h, 1), 0, 0) < 0 && errno == ENOENT);
	} else {
		CHECK_MSG(b == NULL && err == ENOSPC, "2 MiB buffer on a 1 MiB /dev/shm: %s",
		          b ? "opened" : strerror(err));
		CHECK_MSG(strstr(msg, "needs 2.") && strstr(msg, "/dev/shm has only") &&
		          strstr(msg, "free") && strstr(msg, "buffer =") &&
		          strstr(msg, "shm = sysv") && strstr(msg, "--shm-size"),
		          "message lacks the size, the room or a fix: %s", msg);
	}
	CHECK_EQ(shm_entries(), 0); /* nothing left behind */

	/* A buffer that fits is reserved whole: every record it can hold can
	 * be written (ENOMEM at the end, never SIGBUS). */
	b = open_env(h, 512u << 10);
	CHECK_MSG(b != NULL, "512 KiB buffer on a 1 MiB /dev/shm: %s", strerror(errno));
	struct ipc_tls *t = ipc_tls_open(b, 0);
	CHECK(t != NULL);
	CHECK_EQ(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	size_t total = 0;
	for (;;) {
		char *r = ipc_record_alloc(t, 16u << 10, 1);
		if (!r)
			break;
		memset(r, 0x5a, 16u << 10);
		total += 16u << 10;
	}
	CHECK_MSG(errno == ENOMEM, "alloc ended with %s", strerror(errno));
	CHECK(total >= 256u << 10);
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	CHECK_EQ(shm_entries(), 0);
	return 0;
}

static void test_robust_small_dev_shm_enospc(void **state)
{
	if (!need_root())
		return;
	pid_t p = tu_spawn(small_shm_child, FIX(state)->handle);
	tu_wait_ok(p, 30000);
	tu_assert_clean(FIX(state)->handle);
}

/* ---- 3. PID namespaces ------------------------------------------------------ */

#define NS_RECORDS 150

struct ns_job {
	const char *handle;
	int ready[2];   /* grandchild -> test: 'R' attached */
	int pidp[2];    /* namespace maker -> test: the grandchild's pid here */
	int go[2];      /* test -> grandchild */
	int role;       /* 0 consumer of NS_RECORDS, 1 holder that waits, 2 producer */
};

/* In the new PID namespace (pid 1), with its own /proc as a container has. */
static int ns_inner(struct ns_job *j)
{
	CHECK(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0);
	CHECK_EQ(getpid(), 1);
	CHECK(ipc__pidns_self() != 0); /* its own /proc: pids judged in here */
	struct ipc_buffer *b = open_env(j->handle, 1u << 20);
	CHECK_MSG(b != NULL, "open in the PID namespace: %s", strerror(errno));
	struct ipc_tls *t = ipc_tls_open(b, 0);
	CHECK(t != NULL);
	if (j->role == 0) {
		CHECK_EQ(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
		tu_notify(j->ready[1], 'R');
		for (uint64_t i = 0; i < NS_RECORDS; i++) {
			void *r = NULL;
			int rc = ipc_record_recv_wait(t, 1, &r, 10000);
			CHECK_MSG(rc == 0, "record %llu of %d: %s", (unsigned long long)i,
			          NS_RECORDS, ipc_strerror(rc));
			CHECK_EQ(*(uint64_t *)r, i);
			ipc_record_free(t, r);
		}
		void *r = NULL;
		CHECK_EQ(ipc_record_recv_wait(t, 1, &r, 10000), IPC_TX_EOF);
	} else if (j->role == 1) {
		tu_notify(j->ready[1], 'R');
		CHECK(tu_await(j->go[0], 30000) == 'G');
	} else {
		CHECK_EQ(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
		tu_notify(j->ready[1], 'R');
		for (uint64_t i = 0;; i++) { /* until killed */
			uint64_t *r = ipc_record_alloc(t, sizeof(*r), 1);
			CHECK(r != NULL);
			*r = i;
			CHECK_EQ(ipc_record_send_wait(t, 1, (void **)&r, 10000), 0);
			usleep(500);
		}
	}
	ipc_tls_close(t);
	CHECK_EQ(ipc_buffer_close(b, false), 0);
	return 0;
}

/* unshare -p --fork: this child makes the namespace, its child is pid 1
 * there; the grandchild's pid as the test sees it goes up the pipe. */
static int ns_outer(void *arg)
{
	struct ns_job *j = arg;
	private_mounts();
	CHECK(unshare(CLONE_NEWPID) == 0);
	pid_t p = fork();
	CHECK(p >= 0);
	if (p == 0)
		_exit(ns_inner(j));
	int32_t hp = (int32_t)p;
	CHECK(write(j->pidp[1], &hp, sizeof(hp)) == 4);
	int st;
	CHECK(waitpid(p, &st, 0) == p);
	if (j->role == 2)
		return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL ? 0 : 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static pid_t ns_start(struct ns_job *j, pid_t *inner)
{
	tu_pipe(j->ready);
	tu_pipe(j->go);
	tu_pipe(j->pidp);
	pid_t p = tu_spawn(ns_outer, j);
	int32_t hp = 0;
	/* slow under valgrind and load: 30 s */
	struct pollfd pf = {.fd = j->pidp[0], .events = POLLIN};
	CHECK_MSG(poll(&pf, 1, 30000) == 1, "the PID namespace was not made");
	CHECK(read(j->pidp[0], &hp, sizeof(hp)) == 4 && hp > 0);
	*inner = hp;
	CHECK_MSG(tu_await(j->ready[0], 30000) == 'R', "the namespaced process did not attach");
	return p;
}

static void ns_close(struct ns_job *j)
{
	close(j->ready[0]);
	close(j->ready[1]);
	close(j->go[0]);
	close(j->go[1]);
	close(j->pidp[0]);
	close(j->pidp[1]);
}

static void test_robust_pidns_consumer_gets_every_record(void **state)
{
	const char *h = FIX(state)->handle;
	if (!need_root())
		return;
	struct ipc_buffer *b = open_env(h, 1u << 20);
	assert_non_null(b);
	struct ipc_tls *t = ipc_tls_open(b, 0);
	assert_non_null(t);
	assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
	struct ns_job j = {.handle = h, .role = 0};
	pid_t inner, p = ns_start(&j, &inner);
	for (uint64_t i = 0; i < NS_RECORDS; i++) {
		uint64_t *r = ipc_record_alloc(t, sizeof(*r), 1);
		assert_non_null(r);
		*r = i;
		assert_int_equal(ipc_record_send_wait(t, 1, (void **)&r, 10000), 0);
		if (i % 16 == 0)
			usleep(1000); /* let the consumer sleep now and then */
	}
	assert_int_equal(ipc_channel_close(t, 1), 0);
	tu_wait_ok(p, 30000);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	ns_close(&j);
	tu_assert_clean(h);
}

static void test_robust_gc_spares_live_run_in_other_pidns(void **state)
{
	const char *h = FIX(state)->handle;
	if (!need_root())
		return;
	struct ns_job j = {.handle = h, .role = 1};
	pid_t inner, p = ns_start(&j, &inner);
	/* Its pid there is 1: here that is init, or with another start time
	 * some other process: pid numbers say nothing about it. */
	assert_int_equal(ipc_buffer_gc(h, env_shm()), -EBUSY);
	assert_int_equal(ipc_buffer_gc(h, env_shm() == IPC_SHM_SYSV ? IPC_SHM_POSIX
	                                                             : IPC_SHM_SYSV),
	                 env_sem() == IPC_SEM_SYSV ? -EBUSY : 0); /* its semaphore set */
	/* and an attach (which reaps the dead) does not reap it */
	struct ipc_buffer *b = open_env(h, 1u << 20);
	assert_non_null(b);
	struct ipc_buffer_stats s;
	assert_int_equal(ipc_buffer_reap(b), 0);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 2);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	assert_int_equal(ipc_buffer_gc(h, env_shm()), -EBUSY);
	tu_notify(j.go[1], 'G');
	tu_wait_ok(p, 30000);
	ns_close(&j);
	tu_assert_clean(h);
}

static void test_robust_dead_peer_in_other_pidns_noticed(void **state)
{
	const char *h = FIX(state)->handle;
	if (!need_root())
		return;
	struct ipc_buffer *b = open_env(h, 1u << 20);
	assert_non_null(b);
	struct ipc_tls *t = ipc_tls_open(b, 0);
	assert_non_null(t);
	struct ns_job j = {.handle = h, .role = 2};
	pid_t inner, p = ns_start(&j, &inner);
	assert_int_equal(ipc_channel_add(t, 1, IPC_CONSUMER), 0);
	void *r = NULL;
	for (int i = 0; i < 20; i++) { /* it runs */
		assert_int_equal(ipc_record_recv_wait(t, 1, &r, 10000), 0);
		ipc_record_free(t, r);
	}
	uint64_t t0 = tu_now_ns();
	assert_int_equal(kill(inner, SIGKILL), 0);
	int rc;
	while ((rc = ipc_record_recv_wait(t, 1, &r, 10000)) == 0)
		ipc_record_free(t, r);
	uint64_t ms = (tu_now_ns() - t0) / 1000000;
	fprintf(stderr, "# producer in another PID namespace killed: noticed in %llu ms\n",
	        (unsigned long long)ms);
	assert_int_equal(rc, IPC_TX_ABORTED);
	assert_true(ms < 100);
	tu_wait_ok(p, 10000);
	/* dead, and proven so: its slot is reaped */
	struct ipc_buffer_stats s;
	assert_true(ipc_buffer_reap(b) >= 0);
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 1);
	ipc_tls_close(t);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	ns_close(&j);
	tu_assert_clean(h);
}

/* A run whose only process died in another PID namespace: gc from here
 * proves it dead by its life word and removes it. */
static void test_robust_gc_removes_dead_run_of_other_pidns(void **state)
{
	const char *h = FIX(state)->handle;
	if (!need_root())
		return;
	struct ns_job j = {.handle = h, .role = 2};
	pid_t inner, p = ns_start(&j, &inner);
	assert_int_equal(ipc_buffer_gc(h, env_shm()), -EBUSY);
	assert_int_equal(kill(inner, SIGKILL), 0);
	tu_wait_ok(p, 10000);
	assert_int_equal(ipc_buffer_gc(h, env_shm()), 1);
	ns_close(&j);
	tu_assert_clean(h);
}

/* ---- 4. another local user --------------------------------------------------- */

static void become_nobody(void)
{
	CHECK(setgroups(0, NULL) == 0);
	CHECK(setresgid(NOBODY, NOBODY, NOBODY) == 0);
	CHECK(setresuid(NOBODY, NOBODY, NOBODY) == 0);
}

/* As another user: plant an object under the handle's name, mode 0666. */
static int plant_child(void *arg)
{
	const char *h = arg;
	char name[128];
	become_nobody();
	if (env_shm() == IPC_SHM_SYSV) {
		CHECK(shmget(ipc__sysv_key(h, 0), 2u << 20, IPC_CREAT | IPC_EXCL | 0666) >= 0);
	} else {
		snprintf(name, sizeof(name), "/ipc.%s", h);
		int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0666);
		CHECK(fd >= 0);
		CHECK(fchmod(fd, 0666) == 0 && ftruncate(fd, 2u << 20) == 0);
		close(fd);
	}
	return 0;
}

static void expect_refused(const char *h, const char *needle)
{
	char msg[4096];
	int saved = capture_stderr();
	uint64_t t0 = tu_now_ns();
	struct ipc_buffer *b = open_env(h, 1u << 20);
	int err = errno;
	uint64_t ms = (tu_now_ns() - t0) / 1000000;
	captured(saved, msg, sizeof(msg));
	assert_null(b);
	assert_int_equal(err, EPERM);
	assert_true(ms < 1000); /* at once, not after the 5 s open timeout */
	assert_non_null(strstr(msg, h));
	if (!strstr(msg, needle)) {
		fprintf(stderr, "# message lacks '%s'\n", needle);
		fail();
	}
}

static void test_robust_squatted_name_refused(void **state)
{
	const char *h = FIX(state)->handle;
	if (!need_root())
		return;
	tu_wait_ok(tu_spawn(plant_child, (void *)h), 10000);
	expect_refused(h, "belongs to another user");
	expect_refused(h, "nobody");
	/* untouched: not ours to remove */
	if (env_shm() == IPC_SHM_SYSV) {
		assert_true(shmget(ipc__sysv_key(h, 0), 0, 0) >= 0);
	} else {
		char path[128];
		snprintf(path, sizeof(path), "/dev/shm/ipc.%s", h);
		assert_int_equal(access(path, F_OK), 0);
	}
	/* another user's gc of it is refused too; ours says so */
	assert_int_equal(ipc_buffer_gc(h, env_shm()), -EPERM);
	tu_remove_all(h);
	tu_assert_clean(h);
}

static void test_robust_fifo_symlink_mode_refused(void **state)
{
	const char *h = FIX(state)->handle;
	char path[128], target[64];
	if (env_shm() == IPC_SHM_SYSV) {
		/* SysV keys name no file: the owner/mode checks are the test above */
		skip();
	}
	snprintf(path, sizeof(path), "/dev/shm/ipc.%s", h);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_refused(h, "a FIFO");
	assert_int_equal(unlink(path), 0);

	/* a symlink into our own temporary folder: never followed */
	char dir[] = "/tmp/test_robust.XXXXXX";
	assert_non_null(mkdtemp(dir));
	snprintf(target, sizeof(target), "%s/t", dir);
	assert_int_equal(symlink(target, path), 0);
	expect_refused(h, "symlink");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(access(target, F_OK), -1); /* nothing created there */
	assert_int_equal(rmdir(dir), 0);

	/* our own object with a mode libipc never gives */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	assert_int_equal(ftruncate(fd, 2u << 20), 0);
	close(fd);
	expect_refused(h, "mode");
	assert_int_equal(unlink(path), 0);
	tu_assert_clean(h);
}

/* A buffer of ours whose header names another user's semaphore set. */
static int plant_sem_child(void *arg)
{
	become_nobody();
	int id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0666);
	CHECK(id >= 0);
	CHECK(write(*(int *)arg, &id, sizeof(id)) == sizeof(id));
	return 0;
}

static int attach_expect(void *arg)
{
	struct ipc_buffer *b = open_env((const char *)arg, 1u << 20);
	int err = errno;
	CHECK_MSG(b == NULL, "attached to a buffer it should refuse");
	return err;
}

static void test_robust_foreign_semaphore_refused(void **state)
{
	const char *h = FIX(state)->handle;
	int fd[2], id = -1;
	if (env_sem() != IPC_SEM_SYSV)
		skip();
	if (!need_root())
		return;
	struct ipc_buffer *b = open_env(h, 1u << 20);
	assert_non_null(b);
	tu_pipe(fd);
	tu_wait_ok(tu_spawn(plant_sem_child, &fd[1]), 10000);
	assert_int_equal(read(fd[0], &id, sizeof(id)), (ssize_t)sizeof(id));
	int32_t mine = b->hdr->lock.semid;
	b->hdr->lock.semid = id;
	int st = tu_wait(tu_spawn(attach_expect, (void *)h), 10000);
	b->hdr->lock.semid = mine;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), EPERM);
	assert_int_equal(semctl(id, 0, IPC_RMID), 0);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	close(fd[0]);
	close(fd[1]);
	tu_assert_clean(h);
}

/* Every header field, damaged one at a time: an opener gets EBADMSG (or
 * EPROTO for the version), never a crash. */
static void test_robust_damaged_header_fields_ebadmsg(void **state)
{
	const char *h = FIX(state)->handle;
	struct ipc_buffer *b = open_env(h, 1u << 20);
	assert_non_null(b);
	struct ipc__hdr *hd = b->hdr, saved;
	memcpy(&saved, hd, sizeof(saved));
	struct ipc__heap *heap = b->heap;
	uint32_t nblocks = heap->nblocks;
	const struct {
		const char *what;
		int err;
	} cases[] = {
		{"version", EPROTO}, {"hdr_size", EPROTO}, {"map_size", EBADMSG},
		{"data_off", EBADMSG}, {"data_size", EBADMSG}, {"procs_off", EBADMSG},
		{"tls_off", EBADMSG}, {"dir_off", EBADMSG}, {"heap_off", EBADMSG},
		{"max_procs", EBADMSG}, {"max_tls", EBADMSG}, {"dir_cap", EBADMSG},
		{"slab_blocks", EBADMSG}, {"nblocks", EBADMSG}, {"sem_kind", EBADMSG},
		{"shm_kind", EBADMSG}, {"nprocs", EBADMSG}, {"dir_used", EBADMSG},
		{"handle", EBADMSG}, {"def_capacity", EBADMSG},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *w = cases[i].what;
		if (!strcmp(w, "version")) hd->version = 99;
		else if (!strcmp(w, "hdr_size")) hd->hdr_size = 8;
		else if (!strcmp(w, "map_size")) hd->map_size = UINT64_C(1) << 40;
		else if (!strcmp(w, "data_off")) hd->data_off = UINT64_C(1) << 40;
		else if (!strcmp(w, "data_size")) hd->data_size += 4096;
		else if (!strcmp(w, "procs_off")) hd->procs_off = UINT64_C(1) << 40;
		else if (!strcmp(w, "tls_off")) hd->tls_off = UINT64_MAX - 7;
		else if (!strcmp(w, "dir_off")) hd->dir_off += 64;
		else if (!strcmp(w, "heap_off")) hd->heap_off = 4096;
		else if (!strcmp(w, "max_procs")) hd->max_procs = UINT32_MAX;
		else if (!strcmp(w, "max_tls")) hd->max_tls = 1u << 30;
		else if (!strcmp(w, "dir_cap")) hd->dir_cap = 1u << 31;
		else if (!strcmp(w, "slab_blocks")) hd->slab_blocks = UINT32_MAX;
		else if (!strcmp(w, "nblocks")) heap->nblocks = UINT32_MAX;
		else if (!strcmp(w, "sem_kind")) hd->sem_kind = 7;
		else if (!strcmp(w, "shm_kind")) hd->shm_kind = 9;
		else if (!strcmp(w, "nprocs")) hd->nprocs = 100000;
		else if (!strcmp(w, "dir_used")) hd->dir_used = UINT32_MAX;
		else if (!strcmp(w, "handle")) memset(hd->handle, 'x', sizeof(hd->handle));
		else if (!strcmp(w, "def_capacity")) hd->def_capacity = 0;
		int st = tu_wait(tu_spawn(attach_expect, (void *)h), 10000);
		memcpy(hd, &saved, sizeof(saved));
		heap->nblocks = nblocks;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != cases[i].err) {
			fprintf(stderr, "# damaged %s: opener %s %d, expected exit %d\n", w,
			        WIFEXITED(st) ? "exited" : "killed by signal",
			        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), cases[i].err);
			fail();
		}
	}
	/* the buffer itself is still fine */
	struct ipc_buffer_stats s;
	assert_int_equal(ipc_buffer_stats(b, &s), 0);
	assert_int_equal(s.processes, 1);
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- 5. clock steps ----------------------------------------------------------- */

/* The library's waits, seen from here: this binary's definitions take the
 * place of libc's for libipc.a (linked statically into it). */
static _Atomic int timedwait_calls, timedwait_late, clockwait_calls, clockwait_bad_clock;

/* Counts; a deadline more than 5 s past the real wall clock (the stepped
 * clock at work) is counted late and cut to 1 s, so that a regression
 * fails at once instead of sleeping an hour. */
int sem_timedwait(sem_t *s, const struct timespec *abs)
{
	static int (*real)(sem_t *, const struct timespec *);
	struct timespec now, cut;
	atomic_fetch_add(&timedwait_calls, 1);
	if (!real)
		real = (int (*)(sem_t *, const struct timespec *))dlsym(RTLD_NEXT, "sem_timedwait");
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &now);
	if (abs->tv_sec > now.tv_sec + 5) {
		atomic_fetch_add(&timedwait_late, 1);
		cut = now;
		cut.tv_sec += 1;
		abs = &cut;
	}
	return real(s, abs);
}

int sem_clockwait(sem_t *s, clockid_t clock, const struct timespec *abs)
{
	static int (*real)(sem_t *, clockid_t, const struct timespec *);
	atomic_fetch_add(&clockwait_calls, 1);
	if (clock != CLOCK_MONOTONIC)
		atomic_fetch_add(&clockwait_bad_clock, 1);
	if (!real)
		real = (int (*)(sem_t *, clockid_t, const struct timespec *))
		       dlsym(RTLD_NEXT, "sem_clockwait");
	return real(s, clock, abs);
}

/* And the wall clock as the library sees it: a step of an hour, in this
 * process only (the machine's clock is never touched). A deadline computed
 * from CLOCK_REALTIME for sem_timedwait (which the kernel measures against
 * the real wall clock) would then lie an hour away. */
static _Atomic long realtime_step_s;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
	long rc = syscall(SYS_clock_gettime, clk, ts);
	if (rc == 0 && clk == CLOCK_REALTIME)
		ts->tv_sec += atomic_load(&realtime_step_s);
	return rc == 0 ? 0 : -1;
}

static int die_holding_lock(void *arg)
{
	struct ipc_buffer *b = open_env((const char *)arg, 1u << 20);
	CHECK(b != NULL);
	CHECK_EQ(ipc__lock_buf(b), 0);
	raise(SIGKILL);
	return 1;
}

static void test_robust_lock_takeover_waits_on_monotonic_clock(void **state)
{
	const char *h = FIX(state)->handle;
	if (env_sem() != IPC_SEM_POSIX)
		skip(); /* SysV: semop without a deadline; SEM_UNDO gives it back */
	struct ipc_buffer *b = open_env(h, 1u << 20);
	assert_non_null(b);
	int st = tu_wait(tu_spawn(die_holding_lock, (void *)h), 10000);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	atomic_store(&timedwait_calls, 0);
	atomic_store(&clockwait_calls, 0);
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	atomic_store(&realtime_step_s, 3600); /* the wall clock jumps an hour */
	clock_gettime(CLOCK_REALTIME, &after);
	assert_true(after.tv_sec - before.tv_sec >= 3599);
	uint64_t t0 = tu_now_ns();
	struct ipc_buffer_stats s;
	assert_int_equal(ipc_buffer_stats(b, &s), 0); /* takes the lock over */
	uint64_t ms = (tu_now_ns() - t0) / 1000000;
	atomic_store(&realtime_step_s, 0);
	fprintf(stderr, "# lock taken over from a dead holder in %llu ms, %d monotonic waits\n",
	        (unsigned long long)ms, atomic_load(&clockwait_calls));
	assert_true(ms < 1000);
	assert_true(atomic_load(&clockwait_calls) > 0);
	assert_int_equal(atomic_load(&clockwait_bad_clock), 0);
	assert_int_equal(atomic_load(&timedwait_late), 0);  /* an hour late */
	assert_int_equal(atomic_load(&timedwait_calls), 0); /* CLOCK_REALTIME deadlines */
	assert_int_equal(ipc_buffer_close(b, false), 0);
	tu_assert_clean(h);
}

/* ---- 6. gc of the other backend --------------------------------------------- */

static int gc_as_nobody(void *arg)
{
	become_nobody();
	const char *h = arg;
	int a = ipc_buffer_gc(h, IPC_SHM_POSIX), b = ipc_buffer_gc(h, IPC_SHM_SYSV);
	fprintf(stderr, "# another user's gc: posix %d, sysv %d\n", a, b);
	CHECK(a <= 0 && b <= 0); /* it removed nothing, and says so */
	return 0;
}

static void test_robust_gc_other_backend_touches_nothing(void **state)
{
	const char *h = FIX(state)->handle;
	/* a live buffer with the environment's backends, and the case of the
	 * report: POSIX memory with System V semaphores */
	for (int round = 0; round < 2; round++) {
		struct ipc_buffer_opts o = {.size = 1u << 20, .shm = env_shm(), .sem = env_sem()};
		if (round == 1) {
			o.shm = IPC_SHM_POSIX;
			o.sem = IPC_SEM_SYSV;
		}
		struct ipc_buffer *b = ipc_buffer_open(h, &o);
		assert_non_null(b);
		enum ipc_shm_kind other = o.shm == IPC_SHM_SYSV ? IPC_SHM_POSIX : IPC_SHM_SYSV;
		int rc = ipc_buffer_gc(h, other);
		assert_true(rc == 0 || rc == -EBUSY); /* nothing removed */
		assert_int_equal(ipc_buffer_gc(h, o.shm), -EBUSY);
		assert_int_equal(ipc_buffer_gc(h, IPC_SHM_MEMFD), 0);
		if (geteuid() == 0)
			tu_wait_ok(tu_spawn(gc_as_nobody, (void *)h), 10000);
		/* everything still works */
		struct ipc_tls *t = ipc_tls_open(b, 0);
		assert_non_null(t);
		assert_int_equal(ipc_channel_add(t, 1, IPC_PRODUCER), 0);
		void *r = ipc_record_alloc(t, 64, 1);
		assert_non_null(r);
		ipc_record_free(t, r);
		ipc_tls_close(t);
		assert_int_equal(ipc_buffer_close(b, false), 0);
		tu_assert_clean(h);
		assert_int_equal(ipc_buffer_gc(h, o.shm), 0);
		assert_int_equal(ipc_buffer_gc(h, other), 0);
	}
}

/* ---- 7. sizes from the environment ------------------------------------------ */

static void test_robust_env_sizes_checked(void **state)
{
	const char *h = FIX(state)->handle;
	const char *bad[] = {
		"17592186044417M", /* 2^64 + 1 MiB: wrapped to 1 MiB before */
		"18446744073709551616", "99999999999999999999999", "16777216T", "4096",
		"0", "63K", "-1", "1X", "12 M", "M", "16T", "0x100000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("IPC_BUFFER_SIZE", bad[i], 1);
		errno = 0;
		struct ipc_buffer *b = ipc_buffer_open(h, NULL);
		if (b || errno != EINVAL) {
			fprintf(stderr, "# IPC_BUFFER_SIZE=%s: %s\n", bad[i],
			        b ? "opened" : strerror(errno));
			if (b)
				ipc_buffer_close(b, false);
			unsetenv("IPC_BUFFER_SIZE");
			fail();
		}
	}
	const struct {
		const char *v;
		uint64_t size;
	} good[] = {{"64K", 64u << 10}, {"1M", 1u << 20}, {"2MiB", 2u << 20},
	            {"1048576", 1u << 20}, {"3MB", 3u << 20}};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		setenv("IPC_BUFFER_SIZE", good[i].v, 1);
		struct ipc_buffer *b = ipc_buffer_open(h, NULL);
		assert_non_null(b);
		struct ipc_buffer_stats s;
		assert_int_equal(ipc_buffer_stats(b, &s), 0);
		assert_true(s.size >= good[i].size && s.size < good[i].size + 4096);
		assert_int_equal(ipc_buffer_close(b, false), 0);
		tu_assert_clean(h);
	}
	unsetenv("IPC_BUFFER_SIZE");

	/* backend choices: EINVAL, and stderr names what is accepted */
	const char *vars[] = {"IPC_SHM", "IPC_SEM", "IPC_WAIT"};
	for (size_t i = 0; i < 3; i++) {
		char *old = getenv(vars[i]) ? strdup(getenv(vars[i])) : NULL;
		setenv(vars[i], "posixx", 1);
		errno = 0;
		struct ipc_buffer *b = ipc_buffer_open(h, NULL);
		int err = errno;
		if (old) {
			setenv(vars[i], old, 1);
			free(old);
		} else {
			unsetenv(vars[i]);
		}
		assert_null(b);
		assert_int_equal(err, EINVAL);
	}
	tu_assert_clean(h);

	/* the shared parser itself: edges and overflow */
	uint64_t v;
	assert_int_equal(ipc__parse_u64("18446744073709551615", false, 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(ipc__parse_u64("18446744073709551616", false, 0, UINT64_MAX, &v),
	                 -EINVAL);
	assert_int_equal(ipc__parse_u64("16777215T", true, 0, UINT64_MAX, &v), 0);
	assert_int_equal(ipc__parse_u64("16777216T", true, 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ipc__parse_u64("1K", false, 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ipc__parse_u64("", true, 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(ipc__parse_u64("5", false, 6, 9, &v), -EINVAL);
	assert_int_equal(ipc__parse_u64("10", false, 6, 9, &v), -EINVAL);
	assert_int_equal(ipc__parse_u64("1GiB", true, 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_C(1) << 30);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_fixture_setup, tu_fixture_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		T(test_robust_small_dev_shm_enospc),
		T(test_robust_pidns_consumer_gets_every_record),
		T(test_robust_gc_spares_live_run_in_other_pidns),
		T(test_robust_dead_peer_in_other_pidns_noticed),
		T(test_robust_gc_removes_dead_run_of_other_pidns),
		T(test_robust_squatted_name_refused),
		T(test_robust_fifo_symlink_mode_refused),
		T(test_robust_foreign_semaphore_refused),
		T(test_robust_damaged_header_fields_ebadmsg),
		T(test_robust_lock_takeover_waits_on_monotonic_clock),
		T(test_robust_gc_other_backend_touches_nothing),
		T(test_robust_env_sizes_checked),
	};

	tu_init(argc, argv);
	tu_watchdog(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
