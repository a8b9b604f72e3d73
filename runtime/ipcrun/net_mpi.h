/*
 * ipcrun-net's two files: net_mpi.c (the program: start barrier, hosts,
 * the loop, the end) and net_edge.c (one bridged edge: tx sends a local
 * channel's records as frames, rx passes frames on into a local channel).
 * See net_mpi.c for the whole design. Single-threaded: everything here
 * belongs to the bridge's one thread (MPI_THREAD_FUNNELED).
 */
#ifndef IPCRUN_NET_MPI_H
#define IPCRUN_NET_MPI_H

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipc/buffer.h>

#include "frame.h"
#define BATCH (64u * 1024)      /* bytes of a DATA frame */
#define BIG_MIN (32u * 1024)    /* records this large go alone, zero-copy */
#define TAG_CTRL 1              /* STOP, HELLO */
#define TAG_BASE 16
#define TAG_DATA(e) (TAG_BASE + 4 * (e))
#define TAG_PAYLOAD(e) (TAG_BASE + 4 * (e) + 1)
#define TAG_BACK(e) (TAG_BASE + 4 * (e) + 2) /* CREDIT, CLOSED */
#define HELLO_NS 1000000000ull
#define SPIN_NS 50000ull
#define SLEEP_MAX_NS 1000000ull
#define HOSTS_NS 5000000ull
#define CTL_SLOTS 8

enum { E_OPEN, E_FINAL, E_DONE };

struct ctl_slot {
	uint8_t buf[IR_FRAME_HDR];
	MPI_Request req;
};

struct edge {
	char tx;              /* 't' or 'r' */
	uint32_t idx;
	uint64_t chan;
	int peer;
	uint32_t window;
	uint32_t capacity;    /* of the local channel, as the topology says */
	const char *name;
	int state;
	uint64_t seq;         /* next record number */
	uint8_t **buf;        /* window frame buffers */
	MPI_Request *req;     /* tx: DATA sends; rx: pre-posted receives */
	MPI_Request *breq;    /* tx: BIG payload sends */
	void **big;           /* tx: the record a BIG send reads; rx: target */
	uint64_t nframes;     /* frames sent (tx) or taken (rx) */
	uint64_t credited;    /* tx: frames credited */
	void *held;           /* tx: a record taken that did not fit */
	int held_rc;          /* tx: the end the watcher met (IPC_TX_EOF...), or 0 */
	bool consumer_gone;   /* tx: CLOSED came; rx: -EPIPE locally */
	uint8_t back[IR_FRAME_HDR];
	MPI_Request back_req; /* tx: the pre-posted CREDIT/CLOSED receive */
	/* rx: frames taken (nrecv), BIG payloads posted (nposted), passed on
	 * (nframes): nframes <= nposted <= nrecv <= nframes + window */
	uint64_t nrecv, nposted;
	bool final_recv;
	struct ir_frame_hdr *hs; /* per slot: the checked header */
	bool *heap;              /* per slot: payload in malloc'd memory */
	bool active;             /* the oldest frame is being passed on */
	struct ir_frame_iter it;
	void *pend;           /* a record allocated, not yet sent */
	bool closed_sent;
	struct ctl_slot ctl[CTL_SLOTS];
	/* tx: the local end has its own thread slot, so that a watcher thread
	 * can sleep in the channel (futex) while the bridge is idle; rx: the
	 * bridge's. `watched` (1) hands tls to the watcher until it finds a
	 * record or the end (held, held_rc) and gives it back (0). net_wait.c */
	struct ipc_tls *tls;
	pthread_t watcher;
	bool has_watcher;
	bool lent;               /* main's view: handed to the watcher */
	_Atomic uint32_t watched;
	_Atomic bool close_req;  /* CLOSED came while lent: watcher closes */
	bool closed_local;       /* our consumer end of chan is closed */
};

/* The bridge's state shared by both files; written by net_mpi.c's main
 * before the loop starts, except last_seen (any frame from a peer). */
struct ir_bridge {
	int rank, nranks;
	char **host;           /* host names, by rank */
	struct edge *edges;
	size_t nedge;
	uint32_t nidx;         /* edges of the topology, for frame checks */
	struct ipc_tls *tls;
	uint64_t max_record;   /* a quarter of this host's buffer */
	uint64_t *last_seen;   /* per rank: when something last came */
	uint64_t mpi_events;   /* receives completed: frames, credits, hellos */
	int ctrl_fd;           /* ipcrun's control pipe (read) */
	bool corrupt;          /* tests (IPCRUN_NET_TEST_CORRUPT=rank): spoil
	                          the first DATA frame this host sends */
};
extern struct ir_bridge ir_br;

/* net_mpi.c */
uint64_t ir_bridge_now_ns(void);
/* A fault the job cannot survive: tell ipcrun and every host, abort. */
void ir_bridge_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* A request done (or null); never blocks. */
bool ir_bridge_test(MPI_Request *r);
/* A 32-byte control frame from a free slot; false when all are busy. */
bool ir_bridge_send_ctl(struct ctl_slot *slots, size_t n, int peer, int tag,
                        const struct ir_frame_hdr *h);

/* net_edge.c: each returns true when it made progress */
bool ir_bridge_tx_step(struct edge *e);
bool ir_bridge_rx_step(struct edge *e);
void ir_bridge_rx_post(struct edge *e, size_t slot);
bool ir_bridge_in_flight(struct edge *e);
/* Something local holds the edge up (a full channel or buffer on rx): only
 * polling finds when it clears. */
bool ir_bridge_stalled(struct edge *e);
/* Close this host's consumer end of a tx edge (the remote consumer left),
 * dropping a record held; main's, when the edge is not lent. */
void ir_bridge_tx_close(struct edge *e);

/* net_wait.c: sleeping without CPU while idle */
int ir_wait_start(void);   /* watcher threads of the tx edges, the eventfd */
void ir_wait_stop(void);   /* join them (every tx edge is done) */
/* Results of watchers that gave their edge back; true when some did. */
bool ir_wait_collect(void);
/* Lend every tx edge that can take records to its watcher. */
void ir_wait_lend(void);
enum ir_wake { IR_WAKE_TIMEOUT, IR_WAKE_LOCAL, IR_WAKE_MPI };
/* Sleep until ipcrun writes, a watcher gives an edge back, one of MPI's
 * sockets is readable, or timeout_ns passes. */
enum ir_wake ir_wait_sleep(uint64_t timeout_ns);
/* After the pass that followed a wake: did MPI complete a receive? Learns
 * whether MPI's sockets announce what comes (then idle sleeps are long). */
void ir_wait_account(enum ir_wake w, bool mpi_progress);
bool ir_wait_trusted(void);
/* Bytes this thread has read so far (0 when unknown). */
uint64_t ir_wait_reads(void);

#endif
