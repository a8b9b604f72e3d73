/*
 * The bridge's frames: packing and checking (see frame.h for the layout).
 * Byte order is fixed (little-endian) whatever the host's, so that a frame
 * means the same on both ends; the start barrier refuses hosts whose records
 * would not (SCALE_OUT.md 8).
 */
#include <errno.h>
#include <string.h>

#include "frame.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void ir_frame_put_hdr(uint8_t *out, const struct ir_frame_hdr *h)
{
	out[0] = h->version;
	out[1] = h->type;
	put16(out + 2, h->flags);
	put32(out + 4, h->edge);
	put64(out + 8, h->seq);
	put32(out + 16, h->count);
	put32(out + 20, h->length);
	put64(out + 24, h->big);
}

void ir_frame_get_hdr(const uint8_t *in, struct ir_frame_hdr *h)
{
	h->version = in[0];
	h->type = in[1];
	h->flags = get16(in + 2);
	h->edge = get32(in + 4);
	h->seq = get64(in + 8);
	h->count = get32(in + 16);
	h->length = get32(in + 20);
	h->big = get64(in + 24);
}

void ir_frame_begin(struct ir_frame_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = IR_FRAME_HDR;
	w->count = 0;
}

bool ir_frame_fits(const struct ir_frame_writer *w, size_t n)
{
	return n <= w->cap && ir_frame_rec_size(n) <= w->cap - w->len;
}

void ir_frame_add(struct ir_frame_writer *w, const void *rec, size_t n)
{
	uint8_t *p = w->buf + w->len;
	size_t sz = ir_frame_rec_size(n);
	put32(p, (uint32_t)n);
	put32(p + 4, 0);
	memcpy(p + IR_FRAME_REC_HDR, rec, n);
	memset(p + IR_FRAME_REC_HDR + n, 0, sz - IR_FRAME_REC_HDR - n);
	w->len += sz;
	w->count++;
}

size_t ir_frame_end(struct ir_frame_writer *w, uint32_t edge, uint64_t seq,
                    uint16_t flags)
{
	struct ir_frame_hdr h = {
		.version = IR_FRAME_VERSION, .type = IR_FRAME_DATA, .flags = flags,
		.edge = edge, .seq = seq, .count = w->count,
		.length = (uint32_t)(w->len - IR_FRAME_HDR),
	};
	ir_frame_put_hdr(w->buf, &h);
	return w->len;
}

static int bad(const char **why, const char *reason)
{
	*why = reason;
	return -EPROTO;
}

int ir_frame_parse(const uint8_t *buf, size_t n, uint32_t nedges,
                   uint64_t max_record, struct ir_frame_hdr *h,
                   const char **why)
{
	struct ir_frame_hdr x;
	if (n < IR_FRAME_HDR)
		return bad(why, "shorter than a frame header");
	ir_frame_get_hdr(buf, &x);
	if (x.version != IR_FRAME_VERSION)
		return bad(why, "unknown frame version");
	if (x.type < IR_FRAME_DATA || x.type > IR_FRAME_HELLO)
		return bad(why, "unknown frame type");
	if (x.flags & ~IR_FRAME_FLAGS)
		return bad(why, "unknown frame flags");
	if (x.type != IR_FRAME_STOP && x.type != IR_FRAME_HELLO && x.edge >= nedges)
		return bad(why, "no such edge");
	if ((uint64_t)x.length != n - IR_FRAME_HDR)
		return bad(why, "length does not match the bytes received");
	if (x.type != IR_FRAME_DATA) {
		if (x.length || x.big || x.seq ||
		    (x.flags & ~(x.type == IR_FRAME_STOP ? IR_FRAME_FAILED : 0)))
			return bad(why, "a control frame with data fields set");
		if (x.type == IR_FRAME_CREDIT ? x.count == 0 : x.count != 0)
			return bad(why, "bad count in a control frame");
		*h = x;
		return 0;
	}
	if (x.flags & IR_FRAME_FAILED)
		return bad(why, "FAILED on a DATA frame");
	if ((x.flags & IR_FRAME_EOF) && (x.flags & IR_FRAME_ABORT))
		return bad(why, "both EOF and ABORT");
	if (x.flags & IR_FRAME_BIG) {
		if (x.count != 1 || x.length != 0)
			return bad(why, "a BIG frame carries one record and no body");
		if (x.big == 0 || x.big > max_record)
			return bad(why, "record larger than the receiving buffer takes");
		*h = x;
		return 0;
	}
	if (x.big)
		return bad(why, "record size set on a frame that is not BIG");
	const uint8_t *p = buf + IR_FRAME_HDR, *end = buf + n;
	for (uint32_t i = 0; i < x.count; i++) {
		if ((size_t)(end - p) < IR_FRAME_REC_HDR)
			return bad(why, "record header past the end of the frame");
		uint32_t len = get32(p);
		if (get32(p + 4) != 0)
			return bad(why, "record header padding not zero");
		if (len == 0)
			return bad(why, "empty record");
		if (len > max_record)
			return bad(why, "record larger than the receiving buffer takes");
		if (ir_frame_rec_size(len) > (size_t)(end - p))
			return bad(why, "record past the end of the frame");
		p += ir_frame_rec_size(len);
	}
	if (p != end)
		return bad(why, "bytes after the last record");
	*h = x;
	return 0;
}

void ir_frame_iter_init(struct ir_frame_iter *it, const uint8_t *frame)
{
	it->p = frame + IR_FRAME_HDR;
	it->end = it->p + get32(frame + 20);
	if (get16(frame + 2) & IR_FRAME_BIG)
		it->end = it->p;
}

bool ir_frame_next(struct ir_frame_iter *it, const uint8_t **rec, size_t *n)
{
	if (it->p >= it->end)
		return false;
	uint32_t len = get32(it->p);
	*rec = it->p + IR_FRAME_REC_HDR;
	*n = len;
	it->p += ir_frame_rec_size(len);
	return true;
}
