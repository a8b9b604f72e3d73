/*
 * Calling kernels through libffi.
 *
 * An actor kernel is int f(struct ipc_kernel *, args...): one ffi_call with
 * the topology's typed args after the kernel pointer.
 *
 * A function kernel is a plain C function R f(A0, A1, ...). Its driver takes
 * one item from each of in0, in1, ... (ipc_next: items come many to a
 * record, so the function is called in a loop over each batch; a number is
 * an item of exactly its size in host byte order, copied into the argument;
 * a str is a NUL-terminated item, passed in place), calls f, and emits the
 * result on out (ipc_emit: results are packed into output batches):
 *   - a number: an item of its size;
 *   - str: the string f returns, copied into the batch (NULL emits nothing);
 *   - bool: in0's item is emitted when true (a filter);
 *   - void: nothing (a sink).
 * The call goes through libffi (its cif prepared once), or directly for the
 * commonest signatures (fast_of). It stops at the first input that ends:
 * returns 0 at EOF, 1 when an input was aborted (its producer failed or died) or an
 * item does not fit its type. A consumer that left (-EPIPE) ends it quietly
 * with 0.
 */
#include <errno.h>
#include <ffi.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ipcrun.h"

union slot {
	int8_t i8;
	int16_t i16;
	int32_t i32;
	int64_t i64;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	float f32;
	double f64;
	const char *s;
	ffi_arg ret; /* integer results come back widened to ffi_arg */
	ffi_sarg sret;
};

static ffi_type *ffi_of(enum ir_type t)
{
	switch (t) {
	case IR_VOID: return &ffi_type_void;
	case IR_BOOL: return &ffi_type_uint8;
	case IR_I8: return &ffi_type_sint8;
	case IR_I16: return &ffi_type_sint16;
	case IR_I32: return &ffi_type_sint32;
	case IR_I64: return &ffi_type_sint64;
	case IR_U8: return &ffi_type_uint8;
	case IR_U16: return &ffi_type_uint16;
	case IR_U32: return &ffi_type_uint32;
	case IR_U64: return &ffi_type_uint64;
	case IR_F32: return &ffi_type_float;
	case IR_F64: return &ffi_type_double;
	case IR_STR: return &ffi_type_pointer;
	default: return NULL;
	}
}

/* The topology's value v as argument type t. */
static void store_value(union slot *s, const struct ir_value *v)
{
	switch (v->type) {
	case IR_I8: s->i8 = (int8_t)v->v.i; break;
	case IR_I16: s->i16 = (int16_t)v->v.i; break;
	case IR_I32: s->i32 = (int32_t)v->v.i; break;
	case IR_I64: s->i64 = v->v.i; break;
	case IR_U8: s->u8 = (uint8_t)v->v.u; break;
	case IR_U16: s->u16 = (uint16_t)v->v.u; break;
	case IR_U32: s->u32 = (uint32_t)v->v.u; break;
	case IR_U64: s->u64 = v->v.u; break;
	case IR_F32: s->f32 = (float)v->v.d; break;
	case IR_F64: s->f64 = v->v.d; break;
	case IR_STR: s->s = v->s; break;
	default: break;
	}
}

int ir_call_actor(const struct ir_kernel *gk, struct ipc_kernel *k)
{
	ffi_cif cif;
	ffi_type *types[1 + IR_MAX_ARGS];
	void *values[1 + IR_MAX_ARGS];
	union slot store[IR_MAX_ARGS];
	types[0] = &ffi_type_pointer;
	values[0] = &k;
	for (size_t i = 0; i < gk->narg; i++) {
		types[i + 1] = ffi_of(gk->arg[i].type);
		store_value(&store[i], &gk->arg[i]);
		values[i + 1] = &store[i];
	}
	if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)gk->narg + 1,
	                 &ffi_type_sint, types) != FFI_OK) {
		fprintf(stderr, "%s: libffi cannot prepare the call\n", gk->name);
		return 1;
	}
	ffi_arg rc = 0;
	ffi_call(&cif, FFI_FN(gk->fn), &rc, values);
	return (int)(ffi_sarg)rc;
}

/* Check item (n bytes) from input i against type t and point the argument
 * slot at its value: a number is copied into the slot (items need not be
 * aligned), a str is passed in place. */
static int take_arg(const struct ir_kernel *gk, size_t i, const void *item,
                    size_t n, union slot *s, void **value)
{
	enum ir_type t = gk->param[i];
	if (t == IR_STR) {
		if (!memchr(item, 0, n)) {
			fprintf(stderr, "%s: in%zu: an item of %zu bytes without a NUL "
			        "where str needs a NUL-terminated string\n", gk->name, i, n);
			return -1;
		}
		s->s = item;
		*value = s;
		return 0;
	}
	if (n != ir_type_size(t)) {
		fprintf(stderr, "%s: in%zu: an item of %zu bytes where %s needs %zu\n",
		        gk->name, i, n, ir_type_name(t), ir_type_size(t));
		return -1;
	}
	memcpy(s, item, n);
	*value = s;
	return 0;
}

/* Write result r of type t into dst (ir_type_size(t) bytes). */
static void put_result(void *dst, enum ir_type t, const union slot *r)
{
	switch (t) {
	case IR_I8: { int8_t v = (int8_t)r->sret; memcpy(dst, &v, 1); break; }
	case IR_I16: { int16_t v = (int16_t)r->sret; memcpy(dst, &v, 2); break; }
	case IR_I32: { int32_t v = (int32_t)r->sret; memcpy(dst, &v, 4); break; }
	case IR_I64: memcpy(dst, &r->i64, 8); break;
	case IR_U8: { uint8_t v = (uint8_t)r->ret; memcpy(dst, &v, 1); break; }
	case IR_U16: { uint16_t v = (uint16_t)r->ret; memcpy(dst, &v, 2); break; }
	case IR_U32: { uint32_t v = (uint32_t)r->ret; memcpy(dst, &v, 4); break; }
	case IR_U64: memcpy(dst, &r->u64, 8); break;
	case IR_F32: memcpy(dst, &r->f32, 4); break;
	case IR_F64: memcpy(dst, &r->f64, 8); break;
	default: break;
	}
}

/* Emit the result of one call. Returns 0, or -EPIPE / another error. */
static int emit_result(const struct ir_kernel *gk, struct ipc_port *out,
                       const void *item0, size_t n0, const union slot *r,
                       size_t rsize)
{
	switch (gk->ret) {
	case IR_VOID:
		return 0;
	case IR_BOOL:
		return (uint8_t)r->ret ? ipc_emit(out, item0, n0) : 0;
	case IR_STR:
		return r->s ? ipc_emit_text(out, r->s) : 0;
	default: {
		unsigned char v[8];
		put_result(v, gk->ret, r);
		return ipc_emit(out, v, rsize);
	}
	}
}

/* Signatures called directly, without libffi (measured: a libffi call costs
 * about as much as moving the item through a channel). */
enum fast_call {
	FAST_NONE,
	FAST_I64_I64,    /* int64_t f(int64_t) */
	FAST_U64_U64,
	FAST_F64_F64,
	FAST_I64_I64I64, /* int64_t f(int64_t, int64_t) */
	FAST_F64_F64F64,
};

static enum fast_call fast_of(const struct ir_kernel *gk)
{
	if (gk->nparam == 1 && gk->param[0] == gk->ret)
		return gk->ret == IR_I64 ? FAST_I64_I64 : gk->ret == IR_U64 ? FAST_U64_U64 :
		       gk->ret == IR_F64 ? FAST_F64_F64 : FAST_NONE;
	if (gk->nparam == 2 && gk->param[0] == gk->ret && gk->param[1] == gk->ret)
		return gk->ret == IR_I64 ? FAST_I64_I64I64 :
		       gk->ret == IR_F64 ? FAST_F64_F64F64 : FAST_NONE;
	return FAST_NONE;
}

/* Report the end of input in0 (rc from ipc_next): 0 at EOF, else 1. */
static int input_end(const struct ir_kernel *gk, size_t i, int rc)
{
	if (rc == IPC_TX_EOF)
		return 0;
	fprintf(stderr, "%s: in%zu: %s\n", gk->name, i,
	        rc == IPC_TX_ABORTED ? "aborted (its producer failed or died)" : ipc_strerror(rc));
	return 1;
}

/* A one-argument function of 8-byte numbers (FAST_*: argument and result of
 * one type), called in a loop over each run of items of a batch, its
 * results written straight into the output batch. */
static int call_runs(const struct ir_kernel *gk, struct ipc_kernel *k,
                     struct ipc_port *in, struct ipc_port *out,
                     enum fast_call fast)
{
	void *fn = gk->fn;
	for (;;) {
		const void *first, *more = NULL;
		size_t n, m;
		int rc = ipc_next(in, &first, &n);
		if (rc != 0)
			return input_end(gk, 0, rc);
		if (n != 8) {
			fprintf(stderr, "%s: in0: an item of %zu bytes where %s needs 8\n",
			        gk->name, n, ir_type_name(gk->param[0]));
			return 1;
		}
		m = 1 + ipc__next_run(in, 8, &more);
		/* results are computed into res outside the API (a slow
		 * function must not keep the linger thread from sending the
		 * open batch), then copied into the output batch */
		unsigned char res[64 * 8];
		const unsigned char *src = first;
		for (size_t done = 0; done < m && !rc;) {
			size_t c = m - done < 64 ? m - done : 64;
			for (size_t j = 0; j < c; j++) {
				union slot a, r;
				if (done + j == 1)
					src = more; /* the run follows the first item */
				memcpy(&a, src, 8);
				src += 8;
				switch (fast) {
				case FAST_I64_I64:
					r.i64 = ((int64_t (*)(int64_t))fn)(a.i64);
					break;
				case FAST_U64_U64:
					r.u64 = ((uint64_t (*)(uint64_t))fn)(a.u64);
					break;
				default:
					r.f64 = ((double (*)(double))fn)(a.f64);
					break;
				}
				memcpy(res + 8 * j, &r, 8);
			}
			for (size_t w = 0; w < c && !rc;) {
				size_t room;
				unsigned char *dst = ipc__emit_room(out, 8, &room);
				if (dst) {
					size_t k8 = c - w < room ? c - w : room;
					memcpy(dst, res + 8 * w, 8 * k8);
					rc = ipc__emit_commit(out, 8, k8);
					w += k8;
				} else if (room) { /* failed */
					rc = -errno;
				} else { /* a record per item */
					rc = ipc_emit(out, res + 8 * w, 8);
					w++;
				}
			}
			done += c;
		}
		if (rc == -EPIPE)
			return 0;
		if (rc) {
			if (rc != -ENOMEM)
				fprintf(stderr, "%s: out: %s\n", gk->name, ipc_strerror(rc));
			return 1;
		}
	}
}

int ir_call_function(const struct ir_kernel *gk, struct ipc_kernel *k)
{
	size_t np = gk->nparam;
	ffi_cif cif;
	ffi_type *types[IR_MAX_PARAMS];
	for (size_t i = 0; i < np; i++)
		types[i] = ffi_of(gk->param[i]);
	/* prepared once; called once per item */
	if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)np, ffi_of(gk->ret),
	                 types) != FFI_OK) {
		fprintf(stderr, "%s: libffi cannot prepare the call\n", gk->name);
		return 1;
	}
	enum fast_call fast = fast_of(gk);
	void *fn = gk->fn;
	struct ipc_port *out = ipc_out(k, "out");
	struct ipc_port *in[IR_MAX_PARAMS];
	void *values[IR_MAX_PARAMS];
	union slot args[IR_MAX_PARAMS];
	for (size_t i = 0; i < np; i++)
		in[i] = ipc_port_at(k, false, i);
	size_t rsize = gk->ret == IR_VOID || gk->ret == IR_BOOL || gk->ret == IR_STR
	               ? 0 : ir_type_size(gk->ret);
	if (fast == FAST_I64_I64 || fast == FAST_U64_U64 || fast == FAST_F64_F64)
		return call_runs(gk, k, in[0], out, fast);
	for (;;) {
		const void *item0 = NULL;
		size_t n0 = 0;
		for (size_t i = 0; i < np; i++) {
			const void *item;
			size_t n = 0;
			int rc = ipc_next(in[i], &item, &n);
			if (rc != 0) {
				if (rc == IPC_TX_EOF)
					return 0;
				fprintf(stderr, "%s: in%zu: %s\n", gk->name, i,
				        rc == IPC_TX_ABORTED ? "aborted (its producer failed or died)"
				                             : ipc_strerror(rc));
				return 1;
			}
			if (take_arg(gk, i, item, n, &args[i], &values[i]))
				return 1;
			if (i == 0) {
				item0 = item;
				n0 = n;
			}
		}
		union slot r;
		switch (fast) {
		case FAST_I64_I64:
			r.i64 = ((int64_t (*)(int64_t))fn)(args[0].i64);
			break;
		case FAST_U64_U64:
			r.u64 = ((uint64_t (*)(uint64_t))fn)(args[0].u64);
			break;
		case FAST_F64_F64:
			r.f64 = ((double (*)(double))fn)(args[0].f64);
			break;
		case FAST_I64_I64I64:
			r.i64 = ((int64_t (*)(int64_t, int64_t))fn)(args[0].i64, args[1].i64);
			break;
		case FAST_F64_F64F64:
			r.f64 = ((double (*)(double, double))fn)(args[0].f64, args[1].f64);
			break;
		default:
			memset(&r, 0, sizeof r);
			ffi_call(&cif, FFI_FN(fn), &r, values);
			break;
		}
		int rc = emit_result(gk, out, item0, n0, &r, rsize);
		if (rc == -EPIPE)
			return 0; /* the consumer left: whatever failed is reported there */
		if (rc != 0) {
			if (rc != -ENOMEM)
				fprintf(stderr, "%s: out: %s\n", gk->name, ipc_strerror(rc));
			return 1;
		}
	}
}
