/*
 * Sequence headers of ordered replicas (`order = keep`, see config/README.md):
 * on the channels from an ordered split to the replicas and from the replicas
 * to merge_ordered, every record starts with this 16-byte header, and the
 * payload follows it (so that it stays 16-byte aligned). The kernel API
 * (kernel.c) hides the header from the replica's kernel on ports marked seq;
 * the stock seq_split_* and merge_ordered (kernels/ordered.c) write and read
 * it. Internal: not installed.
 */
#ifndef IPC_SEQ_H
#define IPC_SEQ_H

#include <stdint.h>

#define IPC__SEQ_HDR 16u
#define IPC__SEQ_MAGIC 0x31514553u /* "SEQ1" little-endian */
#define IPC__SEQ_LAST 1u  /* the last output for input `seq` */
#define IPC__SEQ_EMPTY 2u /* no payload: input `seq` gave no output */
#define IPC__SEQ_TAIL 4u  /* sent after the replica's input ended */

struct ipc__seq_hdr {
	uint64_t seq;   /* the input's number, from 0 at the split */
	uint32_t flags; /* IPC__SEQ_* */
	uint32_t magic; /* IPC__SEQ_MAGIC */
};

#endif /* IPC_SEQ_H */
