/*
 * Sinks: one input "in", no output. Each drains its input, item by item, to
 * the end. "records" in what they print counts items. Those that print a result print it once, at
 * IPC_TX_EOF, in one flushed write per line; an aborted input prints no
 * result (see kx.h).
 */
#include "kx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

IPC_KERNEL(discard_sink, "in", "", "",
           "releases every record; at the end prints \"<name>: records=N bytes=B\"");
KX_EXPORT int discard_sink(struct ipc_kernel *k);

IPC_KERNEL(digest_sink, "in", "", "",
           "at the end prints records, bytes, CRC-32 of the stream and an order-free checksum");
KX_EXPORT int digest_sink(struct ipc_kernel *k);

IPC_KERNEL(print_sink, "in", "", "",
           "prints each record on a line: text as is, other records as numbers or hex");
KX_EXPORT int print_sink(struct ipc_kernel *k);

IPC_KERNEL(print_as, "in", "", "str",
           "prints each record as values of a type: i8..u64, f32, f64, text or hex");
KX_EXPORT int print_as(struct ipc_kernel *k, const char *type);

IPC_KERNEL(write_lines, "in", "", "str",
           "writes each record and a newline to a file (\"-\": standard output)");
KX_EXPORT int write_lines(struct ipc_kernel *k, const char *path);

IPC_KERNEL(write_bytes, "in", "", "str",
           "writes the records' bytes back to back to a file (\"-\": standard output)");
KX_EXPORT int write_bytes(struct ipc_kernel *k, const char *path);

/* Take every item of "in" and hand it to fn. fn returns false to fail the
 * kernel (after reporting). */
typedef bool (*sink_fn)(void *ctx, const void *rec, size_t n);

static enum kx_end drain(struct ipc_kernel *k, sink_fn fn, void *ctx)
{
	struct ipc_port *in = kx__need_in(k, "in");

	if (!in)
		return KX_FAILED;
	for (;;) {
		const void *item;
		size_t n;
		int rc = ipc_next(in, &item, &n);

		if (rc != 0)
			return kx__input_end(k, "in", rc);
		if (!fn(ctx, item, n))
			return KX_FAILED;
	}
}

struct tally {
	uint64_t records, bytes;
	uint64_t sum;   /* sum of the records' FNV-1a hashes: order-free */
	uint32_t crc;   /* CRC-32 of all bytes in arrival order */
	bool digest;
};

static bool tally_add(void *ctx, const void *rec, size_t n)
{
	struct tally *t = ctx;

	t->records++;
	t->bytes += n;
	if (t->digest) {
		t->sum += kx__fnv1a(rec, n);
		t->crc = kx__crc32(t->crc, rec, n);
	}
	return true;
}

int discard_sink(struct ipc_kernel *k)
{
	struct ipc_port *in = kx__need_in(k, "in");
	struct tally t = {0};
	enum kx_end e;

	if (!in)
		return kx__end(k, KX_FAILED);
	for (;;) { /* a run of items at a time: nothing to do per item */
		const void *items;
		size_t w, m;
		int rc = ipc_next_many(in, &items, &w, &m);

		if (rc != 0) {
			e = kx__input_end(k, "in", rc);
			break;
		}
		t.records += m;
		t.bytes += (uint64_t)m * w;
	}

	if (e == KX_DONE) {
		printf("%s: records=%" PRIu64 " bytes=%" PRIu64 "\n",
		       ipc_kernel_name(k), t.records, t.bytes);
		fflush(stdout);
	}
	return kx__end(k, e);
}

int digest_sink(struct ipc_kernel *k)
{
	struct tally t = {.digest = true};
	enum kx_end e = drain(k, tally_add, &t);

	if (e == KX_DONE) {
		printf("%s: records=%" PRIu64 " bytes=%" PRIu64
		       " crc32=%08" PRIx32 " sum=%016" PRIx64 "\n",
		       ipc_kernel_name(k), t.records, t.bytes, t.crc, t.sum);
		fflush(stdout);
	}
	return kx__end(k, e);
}

/* Printing. Each record becomes one line of f. */
enum print_type {
	PT_AUTO, PT_TEXT, PT_HEX, PT_I8, PT_I16, PT_I32, PT_I64,
	PT_U8, PT_U16, PT_U32, PT_U64, PT_F32, PT_F64,
};

static const struct {
	const char *name;
	enum print_type type;
	size_t size;
} print_types[] = {
	{"text", PT_TEXT, 1}, {"hex", PT_HEX, 1},
	{"i8", PT_I8, 1}, {"i16", PT_I16, 2}, {"i32", PT_I32, 4}, {"i64", PT_I64, 8},
	{"u8", PT_U8, 1}, {"u16", PT_U16, 2}, {"u32", PT_U32, 4}, {"u64", PT_U64, 8},
	{"f32", PT_F32, 4}, {"f64", PT_F64, 8},
};

struct printer {
	FILE *f;
	enum print_type type;
	size_t size;
	bool lines; /* newline after each record (write_bytes: false) */
	struct ipc_kernel *k;
};

/* Valid UTF-8 without control characters other than tab, CR and LF. */
static bool looks_like_text(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t more;

		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
				return false;
			if (c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			more = 1;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3;
		else
			return false;
		if (n - i <= more)
			return false;
		for (size_t j = 1; j <= more; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		i += more + 1;
	}
	return true;
}

static void print_value(FILE *f, enum print_type t, const unsigned char *p)
{
	union {
		int8_t i8; int16_t i16; int32_t i32; int64_t i64;
		uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
		float f32; double f64;
	} v;

	memcpy(&v, p, sizeof v); /* p holds 8 bytes */
	switch (t) {
	case PT_I8: fprintf(f, "%" PRId8, v.i8); break;
	case PT_I16: fprintf(f, "%" PRId16, v.i16); break;
	case PT_I32: fprintf(f, "%" PRId32, v.i32); break;
	case PT_I64: fprintf(f, "%" PRId64, v.i64); break;
	case PT_U8: fprintf(f, "%" PRIu8, v.u8); break;
	case PT_U16: fprintf(f, "%" PRIu16, v.u16); break;
	case PT_U32: fprintf(f, "%" PRIu32, v.u32); break;
	case PT_U64: fprintf(f, "%" PRIu64, v.u64); break;
	case PT_F32: fprintf(f, "%.9g", (double)v.f32); break;
	case PT_F64: fprintf(f, "%.17g", v.f64); break;
	default: break;
	}
}

static bool print_record(void *ctx, const void *rec, size_t n)
{
	struct printer *pr = ctx;
	const unsigned char *s = rec;
	enum print_type t = pr->type;
	size_t size = pr->size;

	if (!pr->lines) {
		fwrite(rec, 1, n, pr->f);
		goto written;
	}
	if (t == PT_AUTO || t == PT_TEXT) {
		size_t len = kx__text_len(rec, n);

		if (t == PT_TEXT || looks_like_text(s, len)) {
			fwrite(rec, 1, len, pr->f);
			putc('\n', pr->f);
			goto written;
		}
		/* Not text: a number if it has a number's size, else hex. */
		t = n == 8 ? PT_I64 : n == 4 ? PT_I32 : PT_HEX;
		size = n == 8 ? 8 : n == 4 ? 4 : 1;
	}
	if (t == PT_HEX || n % size != 0) {
		for (size_t i = 0; i < n; i++)
			fprintf(pr->f, "%02x", s[i]);
	} else {
		for (size_t i = 0; i < n; i += size) {
			unsigned char v[8] = {0}; /* print_value reads 8 bytes */

			if (i)
				putc(' ', pr->f);
			memcpy(v, s + i, size);
			print_value(pr->f, t, v);
		}
	}
	putc('\n', pr->f);
written:
	if (ferror(pr->f)) {
		kx__errorf(pr->k, "write failed: %s", strerror(errno));
		return false;
	}
	return true;
}

static int print_to(struct ipc_kernel *k, const char *path, enum print_type t,
                    size_t size, bool lines)
{
	struct printer pr = {.type = t, .size = size, .lines = lines, .k = k};
	bool to_stdout = strcmp(path, "-") == 0;
	enum kx_end e;

	pr.f = to_stdout ? stdout : fopen(path, "we");
	if (!pr.f) {
		kx__errorf(k, "cannot create '%s': %s", path, strerror(errno));
		return 1;
	}
	e = drain(k, print_record, &pr);
	if (fflush(pr.f) != 0 && e == KX_DONE) {
		kx__errorf(k, "cannot write '%s': %s", path, strerror(errno));
		e = KX_FAILED;
	}
	if (!to_stdout && fclose(pr.f) != 0 && e == KX_DONE) {
		kx__errorf(k, "cannot write '%s': %s", path, strerror(errno));
		e = KX_FAILED;
	}
	return kx__end(k, e);
}

int print_sink(struct ipc_kernel *k)
{
	return print_to(k, "-", PT_AUTO, 1, true);
}

int print_as(struct ipc_kernel *k, const char *type)
{
	for (size_t i = 0; i < sizeof print_types / sizeof print_types[0]; i++)
		if (strcmp(type, print_types[i].name) == 0)
			return print_to(k, "-", print_types[i].type,
			                print_types[i].size, true);
	kx__errorf(k, "unknown type '%s': use i8, i16, i32, i64, u8, u16, u32, "
	              "u64, f32, f64, text or hex", type);
	return 1;
}

int write_lines(struct ipc_kernel *k, const char *path)
{
	return print_to(k, path, PT_TEXT, 1, true);
}

int write_bytes(struct ipc_kernel *k, const char *path)
{
	return print_to(k, path, PT_TEXT, 1, false);
}
