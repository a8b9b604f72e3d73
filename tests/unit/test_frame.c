/*
 * The bridge's frame codec (runtime/ipcrun/frame.c) without MPI: exact bytes
 * of a packed frame, a round trip, and every malformed frame rejected with
 * -EPROTO (short, bad version/type/flags, edge, length, record past the end,
 * record over the limit, padding, trailing bytes, BIG rules, control frames
 * with data). Creates no shared memory.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../runtime/ipcrun/frame.h"

#define NEDGES 4
#define MAXREC 4096

static uint8_t buf[8192];

static size_t pack(const char *const *recs, size_t n, uint32_t edge,
                   uint64_t seq, uint16_t flags)
{
	struct ir_frame_writer w;
	ir_frame_begin(&w, buf, sizeof buf);
	for (size_t i = 0; i < n; i++) {
		assert_true(ir_frame_fits(&w, strlen(recs[i])));
		ir_frame_add(&w, recs[i], strlen(recs[i]));
	}
	return ir_frame_end(&w, edge, seq, flags);
}

static int parse(size_t n, struct ir_frame_hdr *h)
{
	const char *why = NULL;
	int rc = ir_frame_parse(buf, n, NEDGES, MAXREC, h, &why);
	if (rc)
		assert_non_null(why);
	return rc;
}

static void test_frame_pack_exact_bytes(void **state)
{
	(void)state;
	const char *r[] = {"abc", "12345678"};
	size_t n = pack(r, 2, 3, 0x0102030405060708ull, IR_FRAME_EOF);
	static const uint8_t want[] = {
		1, 1, 1, 0, 3, 0, 0, 0,                 /* version type flags edge */
		8, 7, 6, 5, 4, 3, 2, 1,                 /* seq, little-endian */
		2, 0, 0, 0, 32, 0, 0, 0,                /* count, length */
		0, 0, 0, 0, 0, 0, 0, 0,                 /* big */
		3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0, 0,
		8, 0, 0, 0, 0, 0, 0, 0, '1', '2', '3', '4', '5', '6', '7', '8',
	};
	assert_int_equal(n, sizeof want);
	assert_memory_equal(buf, want, sizeof want);
}

static void test_frame_round_trip_in_order(void **state)
{
	(void)state;
	const char *r[] = {"one", "a longer record of text", "x", "seven77"};
	size_t n = pack(r, 4, 1, 42, 0);
	struct ir_frame_hdr h;
	assert_int_equal(parse(n, &h), 0);
	assert_int_equal(h.type, IR_FRAME_DATA);
	assert_int_equal(h.edge, 1);
	assert_int_equal(h.seq, 42);
	assert_int_equal(h.count, 4);
	struct ir_frame_iter it;
	ir_frame_iter_init(&it, buf);
	const uint8_t *p;
	size_t len, i = 0;
	while (ir_frame_next(&it, &p, &len)) {
		assert_int_equal(len, strlen(r[i]));
		assert_memory_equal(p, r[i], len);
		i++;
	}
	assert_int_equal(i, 4);
}

static void test_frame_fits_stops_at_capacity(void **state)
{
	(void)state;
	uint8_t small[IR_FRAME_HDR + 24];
	struct ir_frame_writer w;
	ir_frame_begin(&w, small, sizeof small);
	assert_true(ir_frame_fits(&w, 16));   /* 8 + 16 = 24: exactly */
	assert_false(ir_frame_fits(&w, 17));
	ir_frame_add(&w, "0123456789abcdef", 16);
	assert_false(ir_frame_fits(&w, 1));
	assert_false(ir_frame_fits(&w, SIZE_MAX));
}

static void test_frame_malformed_rejected(void **state)
{
	(void)state;
	const char *r[] = {"hello", "world!!"};
	struct ir_frame_hdr h;
	size_t n = pack(r, 2, 0, 0, 0);
	assert_int_equal(parse(n, &h), 0);

	assert_int_equal(parse(IR_FRAME_HDR - 1, &h), -EPROTO);   /* short */
	assert_int_equal(parse(n - 1, &h), -EPROTO);              /* truncated */
	buf[0] = 2;                                               /* version */
	assert_int_equal(parse(n, &h), -EPROTO);
	buf[0] = 1;
	buf[1] = 9;                                               /* type */
	assert_int_equal(parse(n, &h), -EPROTO);
	buf[1] = 1;
	buf[2] = 0x40;                                            /* flags */
	assert_int_equal(parse(n, &h), -EPROTO);
	buf[2] = IR_FRAME_EOF | IR_FRAME_ABORT;
	assert_int_equal(parse(n, &h), -EPROTO);
	buf[2] = 0;
	buf[4] = NEDGES;                                          /* edge */
	assert_int_equal(parse(n, &h), -EPROTO);
	buf[4] = 0;
	buf[16] = 3;                                              /* count */
	assert_int_equal(parse(n, &h), -EPROTO);
	buf[16] = 1;                                              /* trailing */
	assert_int_equal(parse(n, &h), -EPROTO);
	buf[16] = 2;
	assert_int_equal(parse(n, &h), 0);

	/* a record length past the end, and one over the receiver's limit */
	uint8_t *rec0 = buf + IR_FRAME_HDR;
	rec0[0] = 200;
	assert_int_equal(parse(n, &h), -EPROTO);
	rec0[0] = 0;
	rec0[1] = 0x20;   /* 8192 > MAXREC */
	assert_int_equal(parse(n, &h), -EPROTO);
	rec0[1] = 0;
	assert_int_equal(parse(n, &h), -EPROTO);  /* an empty record */
	rec0[0] = 5;
	rec0[4] = 1;      /* padding of the record header */
	assert_int_equal(parse(n, &h), -EPROTO);
	rec0[4] = 0;
	assert_int_equal(parse(n, &h), 0);
	/* a length field that disagrees with the bytes received */
	buf[20] = (uint8_t)(buf[20] + 8);
	assert_int_equal(parse(n + 8, &h), -EPROTO);
}

static void test_frame_big_and_control_rules(void **state)
{
	(void)state;
	struct ir_frame_hdr h = {.version = 1, .type = IR_FRAME_DATA,
	                         .flags = IR_FRAME_BIG, .edge = 2, .seq = 7,
	                         .count = 1, .big = MAXREC};
	struct ir_frame_hdr out;
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), 0);
	assert_int_equal(out.big, MAXREC);
	struct ir_frame_iter it;
	const uint8_t *p;
	size_t len;
	ir_frame_iter_init(&it, buf);
	assert_false(ir_frame_next(&it, &p, &len));
	h.big = MAXREC + 1;                 /* over the limit */
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);
	h.big = 0;                          /* empty */
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);
	h.big = 10;
	h.count = 2;                        /* one record only */
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);
	h = (struct ir_frame_hdr){.version = 1, .type = IR_FRAME_DATA, .big = 9};
	ir_frame_put_hdr(buf, &h);          /* big without BIG */
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);

	h = (struct ir_frame_hdr){.version = 1, .type = IR_FRAME_CREDIT, .edge = 1,
	                          .count = 3};
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), 0);
	assert_int_equal(out.count, 3);
	h.count = 0;                        /* a credit of nothing */
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);
	h = (struct ir_frame_hdr){.version = 1, .type = IR_FRAME_CLOSED, .seq = 1};
	ir_frame_put_hdr(buf, &h);          /* data fields on a control frame */
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);
	h = (struct ir_frame_hdr){.version = 1, .type = IR_FRAME_STOP,
	                          .flags = IR_FRAME_FAILED, .edge = 999};
	ir_frame_put_hdr(buf, &h);          /* STOP names no edge */
	assert_int_equal(parse(IR_FRAME_HDR, &out), 0);
	h.flags = IR_FRAME_EOF;
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);
	h = (struct ir_frame_hdr){.version = 1, .type = IR_FRAME_DATA,
	                          .flags = IR_FRAME_FAILED};
	ir_frame_put_hdr(buf, &h);
	assert_int_equal(parse(IR_FRAME_HDR, &out), -EPROTO);
}

static void test_frame_empty_final_frame_accepted(void **state)
{
	(void)state;
	size_t n = pack(NULL, 0, 3, 100, IR_FRAME_ABORT);
	struct ir_frame_hdr h;
	assert_int_equal(n, IR_FRAME_HDR);
	assert_int_equal(parse(n, &h), 0);
	assert_int_equal(h.count, 0);
	assert_int_equal(h.flags, IR_FRAME_ABORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_pack_exact_bytes),
		cmocka_unit_test(test_frame_round_trip_in_order),
		cmocka_unit_test(test_frame_fits_stops_at_capacity),
		cmocka_unit_test(test_frame_malformed_rejected),
		cmocka_unit_test(test_frame_big_and_control_rules),
		cmocka_unit_test(test_frame_empty_final_frame_accepted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
