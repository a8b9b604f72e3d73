/*
 * What a run shows to `ipcrun status` / `ipcrun top` (status.c, top.c).
 *
 * The ports' counters: every kernel's struct ipc_port array lives in one
 * static segment of the run's buffer (id IR_SEG_ID), so that ipcrun's
 * supervisor can read the counters the kernel threads keep anyway
 * (kernel.c: plain stores by the one thread that runs the kernel, no atomics
 * and nothing added on the data path) while the run goes on, after a kernel
 * process was killed, and when a restarted process takes its kernels over.
 *
 *   offset   what                                   who writes
 *   0        struct ir_seg_hdr (64 bytes)           the supervisor, before
 *                                                   any kernel process exists
 *   64       struct ipc_port[], kernel by kernel    the runner sets the fields
 *            in topology order, each kernel's       but st at attach; st: the
 *            ports as ir_kernel.port, each          kernel's thread only
 *            kernel's block rounded up to 64
 *            bytes (no line shared by two kernels)
 *
 * The supervisor reads st with relaxed 64-bit loads: a value may be one
 * record behind, never torn. The layout is private to one ipcrun build
 * (port_size guards against another's).
 *
 * The registry: a run listens on a UNIX socket "<handle>.sock" beside its
 * record in ipcrun's per-user state folder (gc.c; mode 0700, checked owned
 * by the user) and
 * serves one request per connection, from the same user only (SO_PEERCRED):
 *
 *   summary        one tab-separated line: name, topology, pid, age (s),
 *                  state, kernels, restarts
 *   summary-json   the same as a JSON object
 *   sample         remember the counters now (rates are measured from the
 *                  last sample at least 200 ms old); answers "ok"
 *   json           the whole state as JSON (see status.c)
 *   text COLS      the same for people, COLS wide
 *   top COLS ROWS  one screen of `ipcrun top`, with the bottleneck marked
 *
 * While someone asks (within the last 10 s), the supervisor samples once a
 * second so that rates stay current; nobody looking costs nothing.
 */
#ifndef IPCRUN_STATUS_H
#define IPCRUN_STATUS_H

#include <stdint.h>

#include "ipcrun.h"

#define IR_SEG_ID UINT64_C(0x69706372756e0001) /* "ipcrun", 1 */
#define IR_SEG_MAGIC UINT64_C(0x3154415453524931) /* "1IRSTAT1" */

struct ir_seg_hdr {
	uint64_t magic;
	uint32_t nports;
	uint32_t port_size;   /* sizeof(struct ipc_port) */
	uint64_t pad[6];
};
_Static_assert(sizeof(struct ir_seg_hdr) == 64, "segment header");

/* Byte offset of kernel k's first port in the segment (k == nkernel: the
 * segment's size). */
size_t ir_seg_port_off(const struct ir_graph *g, size_t k);

/* runner.c: the ports of kernel k in the segment of buffer b (through tls
 * t), or NULL when the segment is not there. */
struct ipc_port *ir_seg_ports(struct ipc_tls *t, const struct ir_graph *g,
                              size_t k);

#endif
