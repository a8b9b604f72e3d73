/*
 * RaftLib/ipc's README example, in C, on the library API alone: two
 * processes open one shared buffer by its handle; one allocates records on a
 * channel and sends them, the other receives them and checks every one.
 *
 *     buffer_example [records]        (default 100000)
 *
 * Build: cc buffer_example.c $(pkg-config --cflags --libs ipc)
 * Exit status 0 when every record arrived, in order, with its content.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipc/buffer.h>

/* Both processes know the channel by this id, as RaftLib/ipc's example does. */
#define CHANNEL_ID 1

/* What each record carries: its sequence number and a check of it. */
struct sample {
	uint64_t seq;
	uint64_t check;
};

static uint64_t check_of(uint64_t seq)
{
	return seq * 0x9E3779B97F4A7C15u ^ 0xA5A5A5A5A5A5A5A5u;
}

/* The producer: its own open of the buffer, its own TLS, one channel. */
static int produce(const char *handle, uint64_t count)
{
	struct ipc_buffer *buf = ipc_buffer_open(handle, NULL);
	struct ipc_tls *tls;
	int rc = 1, err;

	if (!buf) {
		fprintf(stderr, "producer: ipc_buffer_open: %s\n", strerror(errno));
		return 1;
	}
	tls = ipc_tls_open(buf, (int32_t)getpid());
	if (!tls) {
		fprintf(stderr, "producer: ipc_tls_open: %s\n", strerror(errno));
		goto close_buffer;
	}
	err = ipc_channel_add(tls, CHANNEL_ID, IPC_PRODUCER);
	if (err != 0) {
		fprintf(stderr, "producer: ipc_channel_add: %s\n", ipc_strerror(err));
		goto close_tls;
	}
	for (uint64_t i = 0; i < count; i++) {
		/* Get some memory in the shared heap and fill it. */
		struct sample *rec = ipc_record_alloc(tls, sizeof *rec, CHANNEL_ID);

		if (!rec) {
			fprintf(stderr, "producer: ipc_record_alloc: %s\n",
			        strerror(errno));
			goto close_tls;
		}
		rec->seq = i;
		rec->check = check_of(i);
		/* Send it: RaftLib/ipc's example spins on send_record; the
		 * _wait variant sleeps while the channel is full instead. */
		err = ipc_record_send_wait(tls, CHANNEL_ID, (void **)&rec, -1);
		if (err != IPC_TX_SUCCESS) {
			fprintf(stderr, "producer: ipc_record_send_wait: %s\n",
			        ipc_strerror(err));
			ipc_record_free(tls, rec);
			goto close_tls;
		}
	}
	rc = 0;
close_tls:
	/* Closing the producer's end is the end of the stream. */
	ipc_tls_close(tls);
close_buffer:
	ipc_buffer_close(buf, false);
	return rc;
}

/* The consumer, on the buffer main opened: receives until end-of-stream and
 * checks every record. */
static int consume(struct ipc_buffer *buf, uint64_t count)
{
	struct timespec t0, t1;
	struct ipc_tls *tls;
	uint64_t got = 0;
	int rc = 1, err;
	double s;

	tls = ipc_tls_open(buf, (int32_t)getpid());
	if (!tls) {
		fprintf(stderr, "consumer: ipc_tls_open: %s\n", strerror(errno));
		return 1;
	}
	err = ipc_channel_add(tls, CHANNEL_ID, IPC_CONSUMER);
	if (err != 0) {
		fprintf(stderr, "consumer: ipc_channel_add: %s\n", ipc_strerror(err));
		goto close_tls;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct sample *rec;

		err = ipc_record_recv_wait(tls, CHANNEL_ID, (void **)&rec, -1);
		if (err != IPC_TX_SUCCESS)
			break;
		if (ipc_record_size(rec) != sizeof *rec || rec->seq != got ||
		    rec->check != check_of(got)) {
			fprintf(stderr, "consumer: record %" PRIu64 " is wrong "
			        "(seq %" PRIu64 ", %zu bytes)\n", got, rec->seq,
			        ipc_record_size(rec));
			ipc_record_free(tls, rec);
			goto close_tls;
		}
		/* The consumer gives the record back to the shared heap. */
		ipc_record_free(tls, rec);
		got++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (err != IPC_TX_EOF) {
		fprintf(stderr, "consumer: stream ended with %s after %" PRIu64
		        " records\n", ipc_strerror(err), got);
		goto close_tls;
	}
	if (got != count) {
		fprintf(stderr, "consumer: %" PRIu64 " records, expected %" PRIu64 "\n",
		        got, count);
		goto close_tls;
	}
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("received %" PRIu64 " records in order, all checked, in %.3f s "
	       "(%.0f records/s)\n", got, s, s > 0 ? (double)got / s : 0.0);
	rc = 0;
close_tls:
	ipc_tls_close(tls);
	return rc;
}

int main(int argc, char **argv)
{
	char handle[IPC_HANDLE_MAX + 1];
	struct ipc_buffer *buf;
	uint64_t count = 100000;
	int status, rc;
	pid_t pid;

	if (argc > 2 || (argc == 2 && sscanf(argv[1], "%" SCNu64, &count) != 1)) {
		fprintf(stderr, "usage: %s [records]\n", argv[0]);
		return 2;
	}
	/* A fresh handle, so that two runs never share a buffer. */
	if (ipc_buffer_gen_handle(handle, sizeof handle) != 0) {
		fprintf(stderr, "ipc_buffer_gen_handle failed\n");
		return 1;
	}
	/* Each process opens the buffer by its handle, and the last one to
	 * close it removes it. The consumer opens it before the producer
	 * exists: a producer that sent everything and closed before the
	 * consumer got going would otherwise remove the buffer with its
	 * records, and the consumer would create a new, empty one. */
	buf = ipc_buffer_open(handle, NULL);
	if (!buf) {
		fprintf(stderr, "consumer: ipc_buffer_open: %s\n", strerror(errno));
		return 1;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		ipc_buffer_close(buf, false);
		return 1;
	}
	if (pid == 0)
		_exit(produce(handle, count)); /* its own open, not the inherited one */
	rc = consume(buf, count);
	ipc_buffer_close(buf, false);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "producer failed\n");
		rc = 1;
	}
	return rc;
}
