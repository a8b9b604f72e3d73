/*
 * Values of a topology: type names, numbers, sizes, actor args, function
 * signatures, port sets, names, and "did you mean" hints. Pure functions:
 * nothing here prints or exits.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipcrun.h"

static const struct {
	const char *name;
	enum ir_type type;
	size_t size;
} types[] = {
	{"void", IR_VOID, 0}, {"bool", IR_BOOL, 1},
	{"i8", IR_I8, 1},     {"i16", IR_I16, 2},   {"i32", IR_I32, 4},
	{"i64", IR_I64, 8},   {"u8", IR_U8, 1},     {"u16", IR_U16, 2},
	{"u32", IR_U32, 4},   {"u64", IR_U64, 8},   {"f32", IR_F32, 4},
	{"f64", IR_F64, 8},   {"str", IR_STR, 0},
};

void *ir_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fputs("ipcrun: out of memory\n", stderr);
		exit(IR_EXIT_FAILED);
	}
	return q;
}

char *ir_strndup(const char *s, size_t n)
{
	char *d = ir_xrealloc(NULL, n + 1);
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

char *ir_strdup(const char *s)
{
	return s ? ir_strndup(s, strlen(s)) : NULL;
}

char *ir_trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	return s;
}

const char *ir_type_name(enum ir_type t)
{
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (types[i].type == t)
			return types[i].name;
	return "?";
}

enum ir_type ir_type_parse(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strlen(types[i].name) == n && memcmp(types[i].name, s, n) == 0)
			return types[i].type;
	return IR_NONE;
}

size_t ir_type_size(enum ir_type t)
{
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (types[i].type == t)
			return types[i].size;
	return 0;
}

bool ir_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > IR_NAME_MAX)
		return false;
	if (!isalpha((unsigned char)s[0]) && s[0] != '_')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

int ir_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return errno ? -ERANGE : -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* "64M", "512KiB", "1G", "65536": binary multiples. */
int ir_parse_size(const char *s, uint64_t *out)
{
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	unsigned shift = 0;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && *end == 'i')
		end++;
	if (*end == 'B' || (shift && *end == 'b'))
		end++;
	if (*end)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int ir_parse_duration_ms(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return -1;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -1;
	double scale = !strcmp(end, "ms") ? 1 : (!*end || !strcmp(end, "s")) ?
	               1000 : !strcmp(end, "m") ? 60000 : -1;
	if (scale < 0 || v * scale > 86400000.0)
		return -1;
	*out = (uint64_t)(v * scale + 0.5);
	return 0;
}

static int parse_signed(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 0);
	if (errno || *end)
		return errno ? -ERANGE : -EINVAL;
	if (v < lo || v > hi)
		return -ERANGE;
	*out = v;
	return 0;
}

int ir_parse_value(enum ir_type t, const char *s, struct ir_value *out,
                   const char **why)
{
	struct ir_value v = {.type = t};
	int rc = 0;
	uint64_t umax = 0;
	int64_t lo = 0, hi = 0;
	switch (t) {
	case IR_I8: lo = INT8_MIN; hi = INT8_MAX; break;
	case IR_I16: lo = INT16_MIN; hi = INT16_MAX; break;
	case IR_I32: lo = INT32_MIN; hi = INT32_MAX; break;
	case IR_I64: lo = INT64_MIN; hi = INT64_MAX; break;
	case IR_U8: umax = UINT8_MAX; break;
	case IR_U16: umax = UINT16_MAX; break;
	case IR_U32: umax = UINT32_MAX; break;
	case IR_U64: umax = UINT64_MAX; break;
	default: break;
	}
	switch (t) {
	case IR_I8: case IR_I16: case IR_I32: case IR_I64:
		rc = parse_signed(s, lo, hi, &v.v.i);
		if (rc)
			*why = rc == -ERANGE ? "out of range" : "not an integer";
		break;
	case IR_U8: case IR_U16: case IR_U32: case IR_U64:
		rc = ir_parse_uint(s, umax, &v.v.u);
		if (rc)
			*why = rc == -ERANGE ? "out of range"
			                     : "not a non-negative integer";
		break;
	case IR_F32: case IR_F64: {
		char *end;
		errno = 0;
		v.v.d = strtod(s, &end);
		if (!*s || *end || isspace((unsigned char)*s)) {
			rc = -EINVAL;
			*why = "not a number";
		} else if (errno == ERANGE && fabs(v.v.d) > 1.0) {
			rc = -ERANGE;
			*why = "out of range";
		} else if (t == IR_F32 && isfinite(v.v.d) && fabs(v.v.d) > 3.4028234663852886e38) {
			rc = -ERANGE;
			*why = "out of range for f32";
		}
		break;
	}
	case IR_STR:
		v.s = ir_strdup(s);
		break;
	default:
		rc = -EINVAL;
		*why = "not a value type";
	}
	if (rc == 0)
		*out = v;
	return rc;
}

/* "i64(i64, f64)" */
int ir_parse_signature(const char *s, enum ir_type *ret, enum ir_type *param,
                       size_t *n, char *err, size_t errlen)
{
	const char *p = s;
	while (isspace((unsigned char)*p))
		p++;
	const char *r0 = p;
	while (isalnum((unsigned char)*p))
		p++;
	enum ir_type rt = ir_type_parse(r0, (size_t)(p - r0));
	if (rt == IR_NONE) {
		snprintf(err, errlen, "unknown result type '%.*s' (types: void bool "
		         "i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 str)", (int)(p - r0), r0);
		return -EINVAL;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '(') {
		snprintf(err, errlen, "expected '(' after the result type, as in "
		         "i64(i64, i64)");
		return -EINVAL;
	}
	p++;
	size_t k = 0;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == ')' && k == 0)
			break;
		const char *a0 = p;
		while (isalnum((unsigned char)*p))
			p++;
		enum ir_type at = ir_type_parse(a0, (size_t)(p - a0));
		if (at == IR_NONE || at == IR_VOID || at == IR_BOOL) {
			if (p == a0)
				snprintf(err, errlen, "expected a parameter type at '%s'",
				         *a0 ? a0 : "end of line");
			else
				snprintf(err, errlen, "'%.*s' cannot be a parameter type "
				         "(types: i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 str)",
				         (int)(p - a0), a0);
			return -EINVAL;
		}
		if (k == IR_MAX_PARAMS) {
			snprintf(err, errlen, "more than %d parameters", IR_MAX_PARAMS);
			return -EINVAL;
		}
		param[k++] = at;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == ')')
			break;
		snprintf(err, errlen, "expected ',' or ')' at '%s'",
		         *p ? p : "end of line");
		return -EINVAL;
	}
	p++;
	while (isspace((unsigned char)*p))
		p++;
	if (*p) {
		snprintf(err, errlen, "unexpected '%s' after ')'", p);
		return -EINVAL;
	}
	if (k == 0) {
		snprintf(err, errlen, "a function kernel takes at least one parameter "
		         "(its input records)");
		return -EINVAL;
	}
	*ret = rt;
	*n = k;
	return 0;
}

void ir_free_args(struct ir_arg_token *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].type);
		free(a[i].value);
	}
	free(a);
}

/* One arg: [type:]value or [type:]"quoted, with \" and \\". */
static int one_arg(const char **pp, struct ir_arg_token *t, char *err,
                   size_t errlen)
{
	const char *p = *pp;
	while (isspace((unsigned char)*p))
		p++;
	const char *q = p;
	while (isalnum((unsigned char)*q))
		q++;
	t->type = NULL;
	if (*q == ':' && q > p && ir_type_parse(p, (size_t)(q - p)) != IR_NONE) {
		t->type = ir_strndup(p, (size_t)(q - p));
		p = q + 1;
	} else if (*q == ':' && q > p) {
		snprintf(err, errlen, "unknown type '%.*s' (types: i8 i16 i32 i64 u8 "
		         "u16 u32 u64 f32 f64 str)", (int)(q - p), p);
		return -EINVAL;
	}
	while (isspace((unsigned char)*p))
		p++;
	size_t cap = strlen(p) + 1, n = 0;
	char *v = ir_xrealloc(NULL, cap);
	if (*p == '"') {
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			v[n++] = *p++;
		}
		if (*p != '"') {
			free(v);
			free(t->type);
			snprintf(err, errlen, "a quoted value is missing its closing '\"'");
			return -EINVAL;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p && *p != ',') {
			free(v);
			free(t->type);
			snprintf(err, errlen, "expected ',' after a quoted value");
			return -EINVAL;
		}
	} else {
		while (*p && *p != ',')
			v[n++] = *p++;
		while (n && isspace((unsigned char)v[n - 1]))
			n--;
		if (n == 0) {
			free(v);
			free(t->type);
			snprintf(err, errlen, "an empty value (write \"\" for an empty "
			         "string)");
			return -EINVAL;
		}
	}
	v[n] = 0;
	t->value = v;
	*pp = p;
	return 0;
}

int ir_split_args(const char *s, struct ir_arg_token **out, size_t *n,
                  char *err, size_t errlen)
{
	struct ir_arg_token *a = NULL;
	size_t k = 0;
	const char *p = s;
	while (isspace((unsigned char)*p))
		p++;
	while (*p) {
		if (k == IR_MAX_ARGS) {
			snprintf(err, errlen, "more than %d args", IR_MAX_ARGS);
			ir_free_args(a, k);
			return -EINVAL;
		}
		a = ir_xrealloc(a, (k + 1) * sizeof *a);
		if (one_arg(&p, &a[k], err, errlen)) {
			ir_free_args(a, k);
			return -EINVAL;
		}
		k++;
		if (*p == ',') {
			p++;
			while (isspace((unsigned char)*p))
				p++;
			if (!*p) {
				snprintf(err, errlen, "a trailing ','");
				ir_free_args(a, k);
				return -EINVAL;
			}
		}
	}
	*out = a;
	*n = k;
	return 0;
}

void ir_portset_free(struct ir_portset *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->name[i]);
	free(ps->name);
	free(ps->mode);
	memset(ps, 0, sizeof *ps);
}

static bool port_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > IR_NAME_MAX)
		return false;
	if (!isalpha((unsigned char)s[0]) && s[0] != '_')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

int ir_portset_parse(struct ir_portset *ps, const char *s, char *err,
                     size_t errlen)
{
	memset(ps, 0, sizeof *ps);
	ps->known = true;
	const char *p = s;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		const char *b = p;
		while (*p && *p != ',' && !isspace((unsigned char)*p))
			p++;
		size_t n = (size_t)(p - b);
		char mode = 0;
		if (n > 1 && (b[n - 1] == '*' || b[n - 1] == '?'))
			mode = b[--n];
		if (!port_name_ok(b, n)) {
			snprintf(err, errlen, "'%.*s' is not a port name (letters, digits "
			         "and '_', at most %d, then '*' for a numbered family or "
			         "'?' for an optional port)",
			         (int)(p - b), b, IR_NAME_MAX);
			ir_portset_free(ps);
			return -EINVAL;
		}
		for (size_t i = 0; i < ps->n; i++)
			if (strlen(ps->name[i]) == n && !memcmp(ps->name[i], b, n)) {
				snprintf(err, errlen, "port '%.*s' is listed twice", (int)n, b);
				ir_portset_free(ps);
				return -EINVAL;
			}
		ps->name = ir_xrealloc(ps->name, (ps->n + 1) * sizeof *ps->name);
		ps->mode = ir_xrealloc(ps->mode, ps->n + 1);
		ps->name[ps->n] = ir_strndup(b, n);
		ps->mode[ps->n] = mode;
		ps->n++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == ',')
			p++;
		else if (*p) {
			snprintf(err, errlen, "expected ',' between port names");
			ir_portset_free(ps);
			return -EINVAL;
		}
	}
	return 0;
}

int ir_portset_match(const struct ir_portset *ps, const char *port)
{
	for (size_t i = 0; i < ps->n; i++) {
		size_t n = strlen(ps->name[i]);
		if (ps->mode[i] == '*') {
			if (strncmp(port, ps->name[i], n) != 0 || !port[n])
				continue;
			const char *d = port + n;
			if (d[0] == '0' && d[1])
				continue; /* no leading zeros: in01 is not in1 */
			while (isdigit((unsigned char)*d))
				d++;
			if (!*d)
				return (int)i;
		} else if (strcmp(port, ps->name[i]) == 0) {
			return (int)i;
		}
	}
	return -1;
}

void ir_portset_format(const struct ir_portset *ps, char *out, size_t len)
{
	size_t o = 0;
	out[0] = 0;
	for (size_t i = 0; i < ps->n && o < len; i++) {
		int w = snprintf(out + o, len - o, "%s%s%s", i ? ", " : "", ps->name[i],
		                 ps->mode[i] == '*' ? "0, 1, ..." :
		                 ps->mode[i] == '?' ? " (optional)" : "");
		if (w < 0)
			break;
		o += (size_t)w;
	}
	if (ps->n == 0)
		snprintf(out, len, "none");
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) !=
			              tolower((unsigned char)b[j - 1]);
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *ir_suggest(const char *word, const char *const *cand, size_t n)
{
	const char *best = NULL;
	size_t bd = SIZE_MAX;
	size_t limit = strlen(word) < 4 ? 1 : 2;
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, cand[i]);
		if (d <= limit && d < bd) {
			bd = d;
			best = cand[i];
		}
	}
	return best;
}

/* ---- parameters: ${NAME}, ${NAME:-default}, $${ ---- */

static bool param_char(char c, bool first)
{
	return c == '_' || isalpha((unsigned char)c) ||
	       (!first && isdigit((unsigned char)c));
}

bool ir_param_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!param_char(s[i], i == 0))
			return false;
	return true;
}

int ir_expand(const char *in, ir_param_lookup look, void *ctx, char **out,
              char *err, size_t errlen)
{
	size_t cap = strlen(in) + 64, len = 0;
	char *o = ir_xrealloc(NULL, cap);
	*out = NULL;
	for (const char *p = in; *p;) {
		const char *piece = p;
		size_t plen = 1;
		char *owned = NULL;
		if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
			piece = "${";
			plen = 2;
			p += 3;
		} else if (p[0] == '$' && p[1] == '{') {
			const char *b = p + 2, *e = b;
			while (*e && param_char(*e, e == b))
				e++;
			const char *def = NULL;
			size_t dlen = 0;
			const char *close;
			if (e[0] == ':' && e[1] == '-') {
				def = e + 2;
				close = strchr(def, '}');
				if (close)
					dlen = (size_t)(close - def);
			} else {
				close = *e == '}' ? e : NULL;
			}
			if (!close || e == b) {
				snprintf(err, errlen, "'%.40s' is not a parameter: write "
				         "${NAME} or ${NAME:-default}, NAME of letters, digits "
				         "and '_' ($${ for a literal ${)", p);
				free(o);
				return -1;
			}
			char name[72];
			size_t nl = (size_t)(e - b);
			if (nl >= sizeof name) {
				snprintf(err, errlen, "parameter name '%.40s...' is longer "
				         "than 64 characters", b);
				free(o);
				return -1;
			}
			memcpy(name, b, nl);
			name[nl] = 0;
			const char *v = look(ctx, name);
			if (!v && def) {
				owned = ir_strndup(def, dlen);
				v = owned;
			}
			if (!v) {
				snprintf(err, errlen, "parameter ${%s} is not set; give it "
				         "with -D %s=VALUE or in the environment, or write "
				         "${%s:-DEFAULT}", name, name, name);
				free(o);
				return -1;
			}
			piece = v;
			plen = strlen(v);
			p = close + 1;
		} else {
			p++;
		}
		if (len + plen + 1 > cap) {
			cap = 2 * (len + plen + 1);
			o = ir_xrealloc(o, cap);
		}
		memcpy(o + len, piece, plen);
		len += plen;
		free(owned);
	}
	o[len] = 0;
	*out = o;
	return 0;
}
