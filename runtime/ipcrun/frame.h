/*
 * The bridge's wire format between hosts (SCALE_OUT.md 5.3): pure functions,
 * no MPI, no libipc, so that they are unit-tested and fuzzed alone.
 *
 * Every frame starts with a 32-byte header, all fields little-endian:
 *
 *   offset size field
 *    0     1    version   IR_FRAME_VERSION
 *    1     1    type      enum ir_frame_type
 *    2     2    flags     IR_FRAME_EOF | IR_FRAME_ABORT | IR_FRAME_BIG | ...
 *    4     4    edge      the connection's index in the topology file
 *    8     8    seq       DATA: number of the frame's first record on its
 *                         edge (0, then the previous count added); others 0
 *   16     4    count     DATA: records in the frame; CREDIT: frames credited
 *   20     4    length    bytes after the header (DATA), else 0
 *   24     8    big       DATA with IR_FRAME_BIG: the size of the one record
 *                         that follows as its own message; else 0
 *
 * A DATA frame's body is `count` records, each [u32 len][u32 0][len bytes]
 * padded with zeros to a multiple of 8; `length` is the sum. A BIG frame has
 * count 1 and no body: the record's bytes come as one message of exactly
 * `big` bytes on the edge's payload tag.
 *
 * Concurrency: none; every function works on the caller's memory.
 */
#ifndef IPCRUN_FRAME_H
#define IPCRUN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IR_FRAME_VERSION 1
#define IR_FRAME_HDR 32
#define IR_FRAME_REC_HDR 8

enum ir_frame_type {
	IR_FRAME_DATA = 1,   /* tx -> rx: records */
	IR_FRAME_CREDIT = 2, /* rx -> tx: `count` frames passed on */
	IR_FRAME_CLOSED = 3, /* rx -> tx: the consumer left (-EPIPE upstream) */
	IR_FRAME_STOP = 4,   /* any -> all: stop the graph (flags: FAILED) */
	IR_FRAME_HELLO = 5,  /* any -> all: alive (sent when idle) */
};

enum {
	IR_FRAME_EOF = 1,    /* DATA: the last frame; the producer returned */
	IR_FRAME_ABORT = 2,  /* DATA: the last frame; the producer failed/died */
	IR_FRAME_BIG = 4,    /* DATA: one record sent alone after this header */
	IR_FRAME_FAILED = 8, /* STOP: because a kernel failed */
	IR_FRAME_FLAGS = 15,
};

struct ir_frame_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t edge;
	uint64_t seq;
	uint32_t count;
	uint32_t length;
	uint64_t big;
};

/* Bytes a record of n bytes takes in a DATA body. */
static inline size_t ir_frame_rec_size(size_t n)
{
	return IR_FRAME_REC_HDR + ((n + 7) & ~(size_t)7);
}

/* Write h's 32 bytes at out. */
void ir_frame_put_hdr(uint8_t *out, const struct ir_frame_hdr *h);

/* Read a header; no check beyond the bytes themselves. */
void ir_frame_get_hdr(const uint8_t *in, struct ir_frame_hdr *h);

/* A DATA frame being filled in caller's memory buf of cap bytes. */
struct ir_frame_writer {
	uint8_t *buf;
	size_t cap, len;
	uint32_t count;
};

/* Start a frame in buf (cap >= IR_FRAME_HDR). */
void ir_frame_begin(struct ir_frame_writer *w, uint8_t *buf, size_t cap);

/* true when a record of n bytes still fits. */
bool ir_frame_fits(const struct ir_frame_writer *w, size_t n);

/* Append a record of n bytes (the caller checked ir_frame_fits). */
void ir_frame_add(struct ir_frame_writer *w, const void *rec, size_t n);

/* Write the header; returns the frame's size in bytes. */
size_t ir_frame_end(struct ir_frame_writer *w, uint32_t edge, uint64_t seq,
                    uint16_t flags);

/*
 * Check a received frame of n bytes completely before anything of it is
 * used: version, type, flags, edge < nedges, the length against n, and
 * every record's length against the body and against max_record (the
 * largest record the receiving buffer takes). Returns 0 and *h, or -EPROTO
 * with a static reason in *why.
 */
int ir_frame_parse(const uint8_t *buf, size_t n, uint32_t nedges,
                   uint64_t max_record, struct ir_frame_hdr *h,
                   const char **why);

/* Records of a frame that ir_frame_parse accepted. */
struct ir_frame_iter {
	const uint8_t *p, *end;
};

void ir_frame_iter_init(struct ir_frame_iter *it, const uint8_t *frame);

/* The next record: true with *rec and *n, false at the end. */
bool ir_frame_next(struct ir_frame_iter *it, const uint8_t **rec, size_t *n);

#endif
