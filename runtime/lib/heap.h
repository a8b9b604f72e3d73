/*
 * The priority heap: the buffer's data region is cut into blocks of
 * IPC_BLOCK bytes, grouped in leaves of IPC_LEAF_BLOCKS blocks. Each leaf is
 * a bitmap (1 = allocated) with its longest free run and its free prefix and
 * suffix; leaves sit in a binary max-heap ordered by longest run, each leaf
 * knowing its own heap position, so a free re-sifts one leaf in O(log n),
 * and the top answers "is any run left" at once. A run is the first fit in
 * address order, within a leaf or spanning leaves whose edges are free (so
 * runs of 257 blocks pack end to end rather than one per 512-block leaf);
 * finding it reads each leaf's summary, and one leaf's bitmap. Per block, `len` is the run length
 * at an allocation's first block and 0 elsewhere: free needs no scan, and a
 * double free or a pointer into the middle of a run is detected.
 *
 * Every function here runs under the buffer's allocation lock; the structure
 * lives in shared memory and holds no pointers.
 */
#ifndef IPC_HEAP_H
#define IPC_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_BLOCK 4096u
#define IPC_LEAF_WORDS 8u
#define IPC_LEAF_BLOCKS (IPC_LEAF_WORDS * 64u)

enum ipc__blk_kind {
	IPC__BLK_FREE = 0,
	IPC__BLK_SLAB = 1,
	IPC__BLK_RECORD = 2,
	IPC__BLK_CHANNEL = 3,
	IPC__BLK_SEGMENT = 4,
	IPC__BLK_OTHER = 5,
};

struct ipc__leaf {
	uint64_t bits[IPC_LEAF_WORDS];
	uint32_t longest; /* longest free run in this leaf */
	uint32_t prefix;  /* free blocks at the start */
	uint32_t suffix;  /* free blocks at the end */
	uint32_t pos;     /* index of this leaf in order[] */
};

struct ipc__blk {
	uint32_t len;  /* run length at an allocation's first block, else 0 */
	uint16_t kind; /* enum ipc__blk_kind, at every block of a run */
	uint16_t owner;/* process slot of the allocator, at the first block */
};

struct ipc__heap {
	uint32_t nblocks;
	uint32_t nleaves;
	uint32_t free_blocks;
	uint32_t pad;
	/* followed by: struct ipc__leaf leaf[nleaves]; uint32_t order[nleaves];
	 * struct ipc__blk blk[nblocks] (offsets computed, see heap.c) */
};

/* Where the run table (struct ipc__blk[nblocks]) starts in the metadata of
 * a heap of nblocks blocks: for readers that keep their own copy of nblocks. */
size_t ipc__heap_blk_offset(uint32_t nblocks);
/* Bytes of metadata for a heap of nblocks blocks. */
size_t ipc__heap_meta_size(uint32_t nblocks);
/* Build an empty heap in mem (ipc__heap_meta_size(nblocks) bytes, 8-aligned). */
void ipc__heap_init(struct ipc__heap *h, uint32_t nblocks);
/* First block of a run of n >= 1 blocks, or -ENOMEM / -EINVAL; -EBADMSG when
 * the heap is corrupt beyond repair (reported on stderr). A run the bitmap
 * calls free but the run table does not is never handed out. */
int64_t ipc__heap_alloc(struct ipc__heap *h, uint32_t n, enum ipc__blk_kind kind,
                        uint16_t owner);
/* Free the run starting at block; -EINVAL if block starts no run, -EBADMSG
 * (reported, nothing freed) if the run is not whole as allocated. */
int ipc__heap_free(struct ipc__heap *h, uint32_t block);
/* The per-block record (run start, kind, owner); NULL out of range. */
struct ipc__blk *ipc__heap_blk(struct ipc__heap *h, uint32_t block);
/* Longest free run anywhere (blocks). */
uint32_t ipc__heap_longest(const struct ipc__heap *h);
/* Check every invariant; false with a message on stderr if one fails. */
bool ipc__heap_valid(const struct ipc__heap *h);
/* Rebuild every invariant after a holder of the lock died mid-operation
 * (after_death), or after corruption was found: the run table is the truth
 * (a run's first block has its length and kind, every other block of it the
 * same kind, no length); everything else in it is cleared, and the bitmap,
 * the leaves' figures, their order and free_blocks are recomputed from it.
 * Alloc writes the run table before the bits and free clears it first, so
 * after a death a run with some bits clear was being allocated, and is
 * dropped; after corruption it is kept. Returns the blocks held by slabs. */
uint32_t ipc__heap_repair(struct ipc__heap *h, bool after_death);
/* The header says nblocks blocks (the opener's private copy): if not, report
 * it on stderr, restore it and repair. false when it had to. */
bool ipc__heap_check(struct ipc__heap *h, uint32_t nblocks);

/* Longest run of zero bits in nbits bits of words (bit i = word i/64, bit
 * i%64), and the zero runs at its start and end. */
uint32_t ipc__bits_longest_zero(const uint64_t *words, uint32_t nbits,
                                uint32_t *prefix, uint32_t *suffix);
/* First index of a run of n zero bits, or -1. */
int64_t ipc__bits_find_zero_run(const uint64_t *words, uint32_t nbits, uint32_t n);

#endif
