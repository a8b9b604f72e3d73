/*
 * Calling kernels through libffi.
 *
 * An actor kernel is int f(struct ipc_kernel *, args...): one ffi_call with
 * the topology's typed args after the kernel pointer.
 *
 * A function kernel is a plain C function R f(A0, A1, ...). Its driver takes
 * one record from each of in0, in1, ... (a number is a record of exactly its
 * size in host byte order; a str is a NUL-terminated record, passed in place),
 * calls f, and sends the result on out:
 *   - a number: in place in in0's record when A0 has R's type (no copy),
 *     else in a new record;
 *   - str: forwarded as is when f returns one of its argument records,
 *     copied otherwise; NULL sends nothing;
 *   - bool: in0's record is forwarded when true (a filter, no copy);
 *   - void: nothing (a sink).
 * It stops at the first input that ends: returns 0 at EOF, 1 when an input
 * was aborted (its producer failed or died) or a record does not fit its type. A
 * consumer that left (-EPIPE) ends it quietly with 0.
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

/* Check record rec of n bytes from input i against type t and point the
 * argument slot at its value. */
static int take_arg(const struct ir_kernel *gk, size_t i, void *rec, size_t n,
                    union slot *s, void **value)
{
	enum ir_type t = gk->param[i];
	if (t == IR_STR) {
		if (!memchr(rec, 0, n)) {
			fprintf(stderr, "%s: in%zu: a record of %zu bytes without a NUL "
			        "where str needs a NUL-terminated string\n", gk->name, i, n);
			return -1;
		}
		s->s = rec;
		*value = s;
		return 0;
	}
	if (n != ir_type_size(t)) {
		fprintf(stderr, "%s: in%zu: a record of %zu bytes where %s needs %zu\n",
		        gk->name, i, n, ir_type_name(t), ir_type_size(t));
		return -1;
	}
	*value = rec; /* records are 16-byte aligned: any number reads in place */
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

static void release_all(struct ipc_kernel *k, void **rec, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rec[i]) {
			ipc_release(ipc_port_at(k, false, i), rec[i]);
			rec[i] = NULL;
		}
}

/* Send the result of one call. Returns 0, or -EPIPE / another error. */
static int emit(const struct ir_kernel *gk, struct ipc_kernel *k,
                struct ipc_port *out, void **rec, const union slot *r)
{
	size_t np = gk->nparam;
	void *msg = NULL;
	switch (gk->ret) {
	case IR_VOID:
		release_all(k, rec, np);
		return 0;
	case IR_BOOL:
		if ((uint8_t)r->ret) {
			msg = rec[0];
			rec[0] = NULL;
		}
		release_all(k, rec, np);
		return msg ? ipc_send(out, msg) : 0;
	case IR_STR: {
		const char *s = r->s;
		if (!s) {
			release_all(k, rec, np);
			return 0;
		}
		for (size_t i = 0; i < np && !msg; i++)
			if (s == rec[i] && gk->param[i] == IR_STR) {
				msg = rec[i];
				rec[i] = NULL;
			}
		if (!msg) {
			size_t len = strlen(s) + 1;
			msg = ipc_alloc(out, len);
			if (!msg) {
				int e = errno;
				release_all(k, rec, np);
				fprintf(stderr, "%s: cannot allocate a record of %zu bytes: "
				        "%s\n", gk->name, len, strerror(e));
				return -e;
			}
			memcpy(msg, s, len);
		}
		release_all(k, rec, np);
		return ipc_send(out, msg);
	}
	default:
		if (gk->param[0] == gk->ret) {
			msg = rec[0];
			rec[0] = NULL;
		} else {
			msg = ipc_alloc(out, ir_type_size(gk->ret));
			if (!msg) {
				int e = errno;
				release_all(k, rec, np);
				fprintf(stderr, "%s: cannot allocate a record: %s\n", gk->name,
				        strerror(e));
				return -e;
			}
		}
		put_result(msg, gk->ret, r);
		release_all(k, rec, np);
		return ipc_send(out, msg);
	}
}

int ir_call_function(const struct ir_kernel *gk, struct ipc_kernel *k)
{
	size_t np = gk->nparam;
	ffi_cif cif;
	ffi_type *types[IR_MAX_PARAMS];
	for (size_t i = 0; i < np; i++)
		types[i] = ffi_of(gk->param[i]);
	if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)np, ffi_of(gk->ret),
	                 types) != FFI_OK) {
		fprintf(stderr, "%s: libffi cannot prepare the call\n", gk->name);
		return 1;
	}
	struct ipc_port *out = ipc_out(k, "out");
	void *rec[IR_MAX_PARAMS] = {0};
	void *values[IR_MAX_PARAMS];
	union slot args[IR_MAX_PARAMS];
	for (;;) {
		for (size_t i = 0; i < np; i++) {
			size_t n = 0;
			int rc = ipc_recv(ipc_port_at(k, false, i), &rec[i], &n);
			if (rc != 0) {
				release_all(k, rec, np);
				if (rc == IPC_TX_EOF)
					return 0;
				fprintf(stderr, "%s: in%zu: %s\n", gk->name, i,
				        rc == IPC_TX_ABORTED ? "aborted (its producer failed or died)"
				                             : ipc_strerror(rc));
				return 1;
			}
			if (take_arg(gk, i, rec[i], n, &args[i], &values[i])) {
				release_all(k, rec, np);
				return 1;
			}
		}
		union slot r;
		memset(&r, 0, sizeof r);
		ffi_call(&cif, FFI_FN(gk->fn), &r, values);
		int rc = emit(gk, k, out, rec, &r);
		if (rc == -EPIPE)
			return 0; /* the consumer left: whatever failed is reported there */
		if (rc != 0) {
			if (rc != -ENOMEM)
				fprintf(stderr, "%s: out: %s\n", gk->name, ipc_strerror(rc));
			return 1;
		}
	}
}
