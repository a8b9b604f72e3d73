/*
 * libFuzzer target for the shared segment image: a buffer is built once
 * (channels with records queued, a direct record, a slab, a segment, a
 * thread slot) and its image kept; every input is applied to a fresh copy
 * of that image as patches, and a new opener then attaches to it and runs
 * stats, list, receive, send, alloc and free, and closes. No crash (ASan,
 * UBSan), no hang (libFuzzer's -timeout), whatever the bytes.
 *
 * Input: a list of patches, each [region: 1 byte][offset: 3 bytes LE]
 * [length: 1 byte][bytes]; the region (modulo 7) is the header, the process
 * table, the first thread slots, the directory, the heap's metadata, the
 * first 256 KiB of the heap (where the image's objects are) or the whole
 * mapping, and the offset is taken modulo its size. Not patched: the lock (a forged
 * semaphore or holder pid deadlocks any lock, by design of a lock) and the
 * semaphore kind (a forged System V id would make the last close remove
 * some other program's semaphore set).
 *
 * `make fuzz` runs it with the loader's fuzzer; `make fuzz-short` runs both
 * for FUZZ_SHORT seconds each (.ci/run).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ipc_buffer *creator;
static char handle[IPC_HANDLE_MAX + 1];
static char env_name[IPC_HANDLE_MAX + 16], env_value[64];
static unsigned char *image;
static size_t image_size;
static size_t region_off[7], region_len[7];

static void send_n(struct ipc_tls *t, uint64_t id, size_t n, size_t size)
{
	for (size_t i = 0; i < n; i++) {
		void *r = ipc_record_alloc(t, size, id);
		if (!r || ipc_record_send(t, id, &r) != 0)
			abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("IPC_DEATH_NOTICE", "0", 1); /* no keeper thread per open */
	snprintf(handle, sizeof(handle), "fuzzbuf-%d", (int)getpid());
	struct ipc_buffer_opts o = {.size = 1u << 20, .shm = IPC_SHM_MEMFD, .sem = IPC_SEM_POSIX};
	creator = ipc_buffer_open(handle, &o);
	if (!creator)
		abort();
	struct ipc_tls *t = ipc_tls_open(creator, 1);
	if (!t)
		abort();
	/* 1: records queued for a consumer to come; 2: a consumer waiting */
	if (ipc_channel_add(t, 1, IPC_PRODUCER) || ipc_channel_add(t, 2, IPC_CONSUMER))
		abort();
	send_n(t, 1, 6, 48);
	send_n(t, 1, 1, 40000); /* a run of its own */
	if (!ipc_record_alloc(t, 100, 1)) /* held by the creator */
		abort();
	if (ipc_segment_add(t, 9, 5000, NULL, NULL))
		abort();
	snprintf(env_name, sizeof(env_name), "IPC_MEMFD_");
	for (size_t i = strlen(env_name), j = 0; handle[j] && i + 1 < sizeof(env_name); i++, j++)
		env_name[i] = handle[j] == '-' || handle[j] == '.' ? '_' : handle[j];
	const char *v = getenv(env_name);
	if (!v)
		abort();
	snprintf(env_value, sizeof(env_value), "%s", v);
	image_size = creator->map_size;
	image = malloc(image_size);
	if (!image)
		abort();
	memcpy(image, creator->base, image_size);
	const struct ipc__geo *g = &creator->geo;
	size_t offs[7] = {0, g->procs_off, g->tls_off, g->dir_off, g->heap_off, g->data_off, 0};
	size_t lens[7] = {4096, g->max_procs * sizeof(struct ipc__proc), 8 * sizeof(struct ipc__tslot),
	                  g->dir_cap * sizeof(struct ipc__dirent), g->data_off - g->heap_off,
	                  256u << 10, image_size};
	memcpy(region_off, offs, sizeof(offs));
	memcpy(region_len, lens, sizeof(lens));
	return 0;
}

static bool protected_byte(size_t off)
{
	size_t lock = offsetof(struct ipc__hdr, lock);
	return (off >= lock && off < lock + sizeof(struct ipc__lock)) ||
	       (off >= offsetof(struct ipc__hdr, sem_kind) &&
	        off < offsetof(struct ipc__hdr, sem_kind) + 4);
}

static void apply(const uint8_t *data, size_t size)
{
	unsigned char *m = (unsigned char *)creator->base;
	memcpy(m, image, image_size);
	while (size >= 5) {
		unsigned reg = data[0] % 7;
		size_t off = region_off[reg] +
		             ((size_t)data[1] | (size_t)data[2] << 8 | (size_t)data[3] << 16) %
		                     region_len[reg];
		size_t len = data[4];
		data += 5;
		size -= 5;
		if (len > size)
			len = size;
		for (size_t i = 0; i < len; i++) {
			size_t at = (off + i) % image_size;
			if (!protected_byte(at))
				m[at] = data[i];
		}
		data += len;
		size -= len;
	}
}

static void exercise(void)
{
	struct ipc_buffer_opts o = {.shm = IPC_SHM_MEMFD, .open_timeout_ms = 1};
	struct ipc_buffer *b = ipc_buffer_open(handle, &o);
	struct ipc_buffer_stats s;
	struct ipc_channel_info info[8];
	void *r;

	if (!b)
		return;
	ipc_buffer_stats(b, &s);
	ipc_channel_list(b, info, 8);
	struct ipc_tls *t = ipc_tls_open(b, 2);
	if (t) {
		if (ipc_channel_add(t, 1, IPC_CONSUMER) == 0) {
			for (int i = 0; i < 10; i++) {
				int rc = ipc_record_recv(t, 1, &r);
				if (rc == 0) {
					(void)ipc_record_size(r);
					ipc_record_free(t, r);
				} else if (rc != -EBADMSG) {
					break;
				}
			}
		}
		if (ipc_channel_add(t, 2, IPC_PRODUCER) == 0) {
			for (size_t size = 8; size < 100000; size *= 9) {
				r = ipc_record_alloc(t, size, 2);
				if (r && ipc_record_send(t, 2, &r) != 0)
					ipc_record_free(t, r);
			}
		}
		if (ipc_channel_add(t, 3, IPC_PRODUCER) == 0 &&
		    ipc_channel_add(t, 3, IPC_CONSUMER) == 0) {
			for (size_t size = 8; size < 100000; size *= 7) {
				r = ipc_record_alloc(t, size, 3);
				if (r && ipc_record_send(t, 3, &r) != 0)
					ipc_record_free(t, r);
				if (ipc_record_recv(t, 3, &r) == 0)
					ipc_record_free(t, r);
			}
		}
		(void)ipc_channel_pending(t, 1);
		(void)ipc_channel_has_producer(t, 1);
		(void)ipc_channel_exists(t, 9, 0);
		ipc_buffer_stats(b, &s);
		ipc_tls_close(t);
	}
	ipc_buffer_reap(b);
	ipc_buffer_close(b, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	apply(data, size);
	exercise();
	/* a close that took the image for the last one removed the name */
	setenv(env_name, env_value, 1);
	return 0;
}
