/*
 * ipcrun's loader without libraries: values, signatures, args, port sets,
 * the INI reader's line numbers and limits, whole-graph checks, and a replay
 * of the fuzz corpus (tests/fuzz/corpus) so that every input that once
 * crashed the loader stays fixed. Creates no shared memory.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../runtime/ipcrun/ipcrun.h"

static const struct ir_load_opts noload = {.load = false};

/* Load text; returns the number of errors, and the first one's line. */
static size_t load(const char *text, struct ir_graph *g, int *first_line)
{
	memset(g, 0, sizeof *g);
	ir_load_mem(g, "t.ini", text, strlen(text), &noload);
	if (first_line)
		*first_line = g->ndiag ? g->diag[0].line : 0;
	return g->ndiag;
}

static bool has_diag(const struct ir_graph *g, int line, const char *part)
{
	for (size_t i = 0; i < g->ndiag; i++)
		if (g->diag[i].line == line && strstr(g->diag[i].msg, part))
			return true;
	return false;
}

static void test_loader_sizes_parse(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(ir_parse_size("64M", &v), 0);
	assert_int_equal(v, 64u << 20);
	assert_int_equal(ir_parse_size("512KiB", &v), 0);
	assert_int_equal(v, 512u << 10);
	assert_int_equal(ir_parse_size("1G", &v), 0);
	assert_int_equal(v, 1u << 30);
	assert_int_equal(ir_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_not_equal(ir_parse_size("64X", &v), 0);
	assert_int_not_equal(ir_parse_size("-1M", &v), 0);
	assert_int_not_equal(ir_parse_size("", &v), 0);
	assert_int_not_equal(ir_parse_size("99999999999999999999T", &v), 0);
}

static void test_loader_values_ranges(void **state)
{
	(void)state;
	struct ir_value v;
	const char *why = NULL;
	assert_int_equal(ir_parse_value(IR_I8, "-128", &v, &why), 0);
	assert_int_equal(v.v.i, -128);
	assert_int_not_equal(ir_parse_value(IR_I8, "128", &v, &why), 0);
	assert_int_not_equal(ir_parse_value(IR_U8, "-1", &v, &why), 0);
	assert_int_equal(ir_parse_value(IR_U64, "18446744073709551615", &v, &why), 0);
	assert_true(v.v.u == UINT64_MAX);
	assert_int_equal(ir_parse_value(IR_U32, "0x10", &v, &why), 0);
	assert_int_equal(v.v.u, 16);
	assert_int_equal(ir_parse_value(IR_F64, "2.5e-3", &v, &why), 0);
	assert_true(v.v.d == 2.5e-3);
	assert_int_not_equal(ir_parse_value(IR_F32, "1e39", &v, &why), 0);
	assert_int_not_equal(ir_parse_value(IR_F64, "x", &v, &why), 0);
	assert_int_equal(ir_parse_value(IR_STR, "a b", &v, &why), 0);
	assert_string_equal(v.s, "a b");
	free(v.s);
}

static void test_loader_signature_parse(void **state)
{
	(void)state;
	enum ir_type r, p[IR_MAX_PARAMS];
	size_t n;
	char err[256];
	assert_int_equal(ir_parse_signature("i64(i64, f64)", &r, p, &n, err,
	                                    sizeof err), 0);
	assert_int_equal(r, IR_I64);
	assert_int_equal(n, 2);
	assert_int_equal(p[1], IR_F64);
	assert_int_equal(ir_parse_signature(" bool ( str ) ", &r, p, &n, err,
	                                    sizeof err), 0);
	assert_int_equal(r, IR_BOOL);
	assert_int_not_equal(ir_parse_signature("i64()", &r, p, &n, err,
	                                        sizeof err), 0);
	assert_int_not_equal(ir_parse_signature("i64(void)", &r, p, &n, err,
	                                        sizeof err), 0);
	assert_int_not_equal(ir_parse_signature("i64(i64", &r, p, &n, err,
	                                        sizeof err), 0);
	assert_int_not_equal(ir_parse_signature("int(i64)", &r, p, &n, err,
	                                        sizeof err), 0);
	assert_int_not_equal(ir_parse_signature("i64(i64) x", &r, p, &n, err,
	                                        sizeof err), 0);
}

static void test_loader_args_split(void **state)
{
	(void)state;
	struct ir_arg_token *a;
	size_t n;
	char err[256];
	assert_int_equal(ir_split_args("u64:5, str:\"a, \\\"b\\\"\", 7", &a, &n, err,
	                               sizeof err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(a[0].type, "u64");
	assert_string_equal(a[1].value, "a, \"b\"");
	assert_null(a[2].type);
	assert_string_equal(a[2].value, "7");
	ir_free_args(a, n);
	assert_int_not_equal(ir_split_args("u64:5,", &a, &n, err, sizeof err), 0);
	assert_int_not_equal(ir_split_args("str:\"open", &a, &n, err, sizeof err), 0);
	assert_int_not_equal(ir_split_args("int:5", &a, &n, err, sizeof err), 0);
}

static void test_loader_portset_match(void **state)
{
	(void)state;
	struct ir_portset ps;
	char err[256];
	assert_int_equal(ir_portset_parse(&ps, "in, out*, opt?", err, sizeof err), 0);
	assert_int_equal(ir_portset_match(&ps, "in"), 0);
	assert_int_equal(ir_portset_match(&ps, "out0"), 1);
	assert_int_equal(ir_portset_match(&ps, "out12"), 1);
	assert_int_equal(ir_portset_match(&ps, "out"), -1);
	assert_int_equal(ir_portset_match(&ps, "out01"), -1);
	assert_int_equal(ir_portset_match(&ps, "opt"), 2);
	ir_portset_free(&ps);
	assert_int_not_equal(ir_portset_parse(&ps, "a, a", err, sizeof err), 0);
	assert_int_not_equal(ir_portset_parse(&ps, "9x", err, sizeof err), 0);
}

static void test_loader_port_order_numeric(void **state)
{
	(void)state;
	assert_true(ipc__port_name_cmp("in2", "in10") < 0);
	assert_true(ipc__port_name_cmp("in10", "in9") > 0);
	assert_true(ipc__port_name_cmp("a", "b") < 0);
	assert_int_equal(ipc__port_name_cmp("in1", "in1"), 0);
}

static const char good[] =
	"[graph]\n"
	"buffer = 8M\n"
	"[process:p]\n"
	"[kernel:a]\n"
	"library = x.so\n"
	"function = src\n"
	"args = u64:3\n"
	"process = p\n"
	"  [kernel:b]\n"
	"library = x.so\n"
	"function = sq\n"
	"signature = i64(i64)\n"
	"[kernel:c]\n"
	"library = x.so\n"
	"function = sink\n"
	"[connections]\n"
	"connect = a.out -> b.in0\n"
	"connect = b.out -> c.in capacity=8 wait=spin\n";

static void test_loader_good_graph_resolves(void **state)
{
	(void)state;
	struct ir_graph g;
	assert_int_equal(load(good, &g, NULL), 0);
	assert_int_equal(g.nkernel, 3);
	assert_int_equal(g.nproc, 2); /* p and the implicit main */
	assert_int_equal(g.buffer, 8u << 20);
	assert_int_equal(g.conn[1].capacity, 8);
	assert_int_equal(g.conn[1].wait, IPC_WAIT_SPIN);
	/* batched: queues of all channels within half the buffer */
	assert_int_equal(g.conn[0].batch, IR_BATCH_DEFAULT);
	assert_int_equal(g.conn[0].capacity, (8u << 20) / 2 / 2 / (IR_BATCH_DEFAULT + 64));
	assert_int_equal(g.linger_ns, IR_LINGER_DEFAULT_US * 1000u);
	assert_true(g.kernel[1].func);
	assert_int_equal(g.kernel[1].nport, 2);
	assert_string_equal(g.kernel[1].port[0].name, "in0");
	assert_false(g.kernel[1].port[0].out);
	assert_string_equal(g.kernel[0].proc == 0 ? g.proc[0].name : "", "p");
	ir_graph_free(&g);
}

static void test_loader_errors_name_lines(void **state)
{
	(void)state;
	struct ir_graph g;
	int line;
	load("[graph]\nbuffer = 8M\nbufer = 1\n[kernel:a]\nlibrary = x\n"
	     "function = f\nfunction = g\n", &g, &line);
	assert_true(has_diag(&g, 3, "did you mean 'buffer'"));
	assert_true(has_diag(&g, 7, "set twice (first at line 6)"));
	ir_graph_free(&g);
	/* a long line is reported, and the next line still counts */
	char text[512] = "[graph]\nname = ";
	memset(text + strlen(text), 'x', 250);
	strcat(text, "\nbogus = 1\n");
	load(text, &g, &line);
	assert_true(has_diag(&g, 2, "characters long"));
	assert_true(has_diag(&g, 3, "unknown key 'bogus'"));
	ir_graph_free(&g);
}

static void test_loader_graph_checks_ports(void **state)
{
	(void)state;
	struct ir_graph g;
	load("[kernel:a]\nlibrary = x\nfunction = f\nout = o\n"
	     "[kernel:b]\nlibrary = x\nfunction = g\n"
	     "signature = void(i64, i64, i64)\n"
	     "[connections]\nconnect = a.o -> b.in0\nconnect = a.o -> b.in1\n"
	     "connect = a.p -> b.in3\n", &g, NULL);
	assert_true(has_diag(&g, 11, "output 'a.o' is connected twice"));
	assert_true(has_diag(&g, 12, "no output port 'p'"));
	assert_true(has_diag(&g, 5, "input 'b.in2' is never connected"));
	ir_graph_free(&g);
}

static void test_loader_defines_override(void **state)
{
	(void)state;
	struct ir_graph g;
	char *defs[] = {"buffer=2M", "bogus=1"};
	struct ir_load_opts o = {.load = false, .defines = defs, .ndefines = 2};
	memset(&g, 0, sizeof g);
	ir_load_mem(&g, "t.ini", good, strlen(good), &o);
	assert_int_equal(g.ndiag, 1);
	assert_int_equal(g.diag[0].line, 0);
	assert_non_null(strstr(g.diag[0].msg, "bogus"));
	assert_int_equal(g.buffer, 2u << 20);
	ir_graph_free(&g);
}

static const char *lookup_ab(void *ctx, const char *name)
{
	(void)ctx;
	return !strcmp(name, "A") ? "1" : !strcmp(name, "B") ? "" : NULL;
}

static void test_loader_params_expand(void **state)
{
	(void)state;
	char err[256], *out;
	assert_int_equal(ir_expand("x${A}y${B}z", lookup_ab, NULL, &out, err,
	                           sizeof err), 0);
	assert_string_equal(out, "x1yz");
	free(out);
	assert_int_equal(ir_expand("${C:-d e}/${A:-9}", lookup_ab, NULL, &out,
	                           err, sizeof err), 0);
	assert_string_equal(out, "d e/1");
	free(out);
	assert_int_equal(ir_expand("$${A} $x", lookup_ab, NULL, &out, err,
	                           sizeof err), 0);
	assert_string_equal(out, "${A} $x");
	free(out);
	assert_int_not_equal(ir_expand("${C}", lookup_ab, NULL, &out, err,
	                               sizeof err), 0);
	assert_non_null(strstr(err, "${C} is not set"));
	assert_int_not_equal(ir_expand("${A", lookup_ab, NULL, &out, err,
	                               sizeof err), 0);
	assert_int_not_equal(ir_expand("${1x}", lookup_ab, NULL, &out, err,
	                               sizeof err), 0);
}

static void test_loader_params_from_defines(void **state)
{
	(void)state;
	struct ir_graph g;
	const char *text = "[graph]\ncapacity = ${CAP}\nname = ${NM:-dflt}\n"
	                   "[kernel:a]\nlibrary = ${TOPDIR}/x.so\nfunction = f\n"
	                   "args = u64:${UNSET_PARAM_12}\n";
	char *defs[] = {"CAP=16", "wait=block"};
	struct ir_load_opts o = {.load = false, .defines = defs, .ndefines = 2};
	memset(&g, 0, sizeof g);
	ir_load_mem(&g, "/tmp/t.ini", text, strlen(text), &o);
	assert_true(has_diag(&g, 7, "${UNSET_PARAM_12} is not set"));
	assert_int_equal(g.ndiag, 1); /* nothing more about that args line */
	assert_int_equal(g.capacity, 16);
	assert_string_equal(g.name, "dflt");
	assert_string_equal(g.kernel[0].library.val, "/tmp/x.so");
	assert_int_equal(g.wait, IPC_WAIT_BLOCK);
	ir_graph_free(&g);
}

static void test_loader_liveness_cycles(void **state)
{
	(void)state;
	struct ir_graph g;
	/* a two-kernel cycle nothing feeds, and a self-loop */
	load("[kernel:a]\nlibrary = x\nfunction = f\nsignature = i64(i64)\n"
	     "[kernel:b]\nlibrary = x\nfunction = f\nsignature = i64(i64)\n"
	     "[kernel:c]\nlibrary = x\nfunction = f\nsignature = i64(i64)\n"
	     "[connections]\nconnect = a.out -> b.in0\nconnect = b.out -> a.in0\n"
	     "connect = c.out -> c.in0\n", &g, NULL);
	assert_true(has_diag(&g, 14, "kernels 'a', 'b' form a cycle that nothing "
	                     "outside it feeds"));
	assert_true(has_diag(&g, 16, "feeds kernel 'c' its own output"));
	ir_graph_free(&g);
	/* a cycle fed from outside (a feedback loop through a merge) is fine */
	assert_int_equal(load("[kernel:s]\nlibrary = x\nfunction = s\nout = out\n"
	     "[kernel:m]\nlibrary = x\nfunction = m\nin = in*\nout = out\n"
	     "[kernel:w]\nlibrary = x\nfunction = w\nin = in\nout = o*\n"
	     "[kernel:z]\nlibrary = x\nfunction = z\nin = in\n"
	     "[connections]\nconnect = s.out -> m.in0\nconnect = m.out -> w.in\n"
	     "connect = w.o0 -> m.in1\nconnect = w.o1 -> z.in\n", &g, NULL), 0);
	ir_graph_free(&g);
}

static size_t kernel_named(const struct ir_graph *g, const char *name)
{
	for (size_t i = 0; i < g->nkernel; i++)
		if (strcmp(g->kernel[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static void test_loader_replicas_expand(void **state)
{
	(void)state;
	struct ir_graph g;
	const char *text =
		"[process:p]\n"
		"[kernel:s]\nlibrary = x\nfunction = s\nout = out\n"
		"[kernel:w]\nlibrary = x\nfunction = f\nsignature = i64(i64)\n"
		"process = p\nreplicas = 3\nsplit = hash\norder = keep\n"
		"[kernel:z]\nlibrary = x\nfunction = z\nin = in\n"
		"[connections]\nconnect = s.out -> w.in0 capacity=8\n"
		"connect = w.out -> z.in\n";
	assert_int_equal(load(text, &g, NULL), 0);
	/* s, z, w#0..2, w#split, w#merge */
	assert_int_equal(g.nkernel, 7);
	size_t w0 = kernel_named(&g, "w#0"), w2 = kernel_named(&g, "w#2");
	size_t sp = kernel_named(&g, "w#split"), mg = kernel_named(&g, "w#merge");
	assert_true(w0 != SIZE_MAX && w2 != SIZE_MAX && sp != SIZE_MAX &&
	            mg != SIZE_MAX);
	assert_int_equal(kernel_named(&g, "w"), SIZE_MAX);
	assert_true(g.kernel[w2].seq && g.kernel[w2].func);
	assert_int_equal(g.kernel[w2].rep, 2);
	assert_string_equal(g.kernel[sp].function.val, "seq_split_hash");
	assert_string_equal(g.kernel[mg].function.val, "merge_ordered");
	assert_string_equal(g.proc[g.kernel[w2].proc].name, "p#2");
	assert_string_equal(g.proc[g.kernel[sp].proc].name, "p");
	/* 2 rewired + 3 in + 3 out + the route; capacities carried over */
	assert_int_equal(g.nconn, 9);
	for (size_t i = 0; i < g.nconn; i++)
		if (!strcmp(g.conn[i].tk, "w#1")) {
			assert_string_equal(g.conn[i].tp, "in0");
			assert_int_equal(g.conn[i].capacity, 8);
			assert_int_equal(g.conn[i].line, 19);
		}
	ir_graph_free(&g);

	/* errors: the value, split, order, order without replicas */
	load("[kernel:a]\nlibrary = x\nfunction = f\nreplicas = 0\n"
	     "[kernel:b]\nlibrary = x\nfunction = f\nreplicas = 2\nsplit = x\n"
	     "[kernel:c]\nlibrary = x\nfunction = f\norder = keep\n", &g, NULL);
	assert_true(has_diag(&g, 4, "replicas '0' must be a number from 1 to 64"));
	assert_true(has_diag(&g, 9, "split 'x' must be rr"));
	assert_true(has_diag(&g, 13, "'order' applies to replicated kernels"));
	ir_graph_free(&g);
	/* two outputs */
	load("[kernel:s]\nlibrary = x\nfunction = s\nout = out\n"
	     "[kernel:w]\nlibrary = x\nfunction = f\nin = in\nout = a, b\n"
	     "replicas = 2\n[kernel:z]\nlibrary = x\nfunction = z\nin = a, b\n"
	     "[connections]\nconnect = s.out -> w.in\nconnect = w.a -> z.a\n"
	     "connect = w.b -> z.b\n", &g, NULL);
	assert_true(has_diag(&g, 10, "kernel 'w' has 2 outputs (connected at lines "
	                     "17 and 18)"));
	ir_graph_free(&g);
}

static const char two_hosts[] =
	"[graph]\nhosts = head, worker\n"
	"[process:w]\nhost = worker\n"
	"[kernel:a]\nlibrary = x\nfunction = f\nout = o\n"
	"[kernel:b]\nlibrary = x\nfunction = g\nsignature = i64(i64)\n"
	"process = w\n"
	"[kernel:c]\nlibrary = x\nfunction = h\nin = i\n"
	"[connections]\nconnect = a.o -> b.in0 window=8\n"
	"connect = b.out -> c.i\n";

static void test_loader_hosts_resolve(void **state)
{
	(void)state;
	struct ir_graph g;
	assert_int_equal(load(two_hosts, &g, NULL), 0);
	assert_int_equal(g.nhost, 2);
	assert_string_equal(g.host[0], "head");
	assert_string_equal(g.host[1], "worker");
	/* w on worker; the implicit main on the first host */
	assert_string_equal(ir_proc_host(&g, g.kernel[1].proc), "worker");
	assert_string_equal(ir_proc_host(&g, g.kernel[0].proc), "head");
	assert_true(g.conn[0].bridged);
	assert_int_equal(g.conn[0].window, 8);
	assert_true(g.conn[1].bridged);
	assert_int_equal(g.conn[1].window, IR_WINDOW_DEFAULT);
	ir_graph_free(&g);
	/* without hosts: one host, nothing bridged */
	assert_int_equal(load(good, &g, NULL), 0);
	assert_int_equal(g.nhost, 0);
	assert_null(ir_proc_host(&g, 0));
	for (size_t i = 0; i < g.nconn; i++)
		assert_false(g.conn[i].bridged);
	ir_graph_free(&g);
}

static void test_loader_hosts_threads_one_process_per_host(void **state)
{
	(void)state;
	struct ir_graph g;
	struct ir_load_opts o = {.load = false, .threads = true};
	memset(&g, 0, sizeof g);
	assert_int_equal(ir_load_mem(&g, "t.ini", two_hosts, strlen(two_hosts), &o), 0);
	assert_int_equal(g.nproc, 2);
	assert_string_equal(g.proc[g.kernel[0].proc].name, "main");
	assert_string_equal(g.proc[g.kernel[1].proc].name, "main-worker");
	assert_true(g.conn[0].bridged);
	ir_graph_free(&g);
}

static void test_loader_hosts_errors_name_lines(void **state)
{
	(void)state;
	struct ir_graph g;
	load("[graph]\nhosts = a, b, a, 9x\n[process:p]\nhost = bb\n"
	     "[process:q]\nhost = zzz\ncpu = 1\n"
	     "[kernel:k]\nlibrary = x\nfunction = f\nprocess = p\nout = o\n"
	     "[kernel:m]\nlibrary = x\nfunction = f\nprocess = q\nin = i\n"
	     "[connections]\nconnect = k.o -> m.i window=0\n", &g, NULL);
	assert_true(has_diag(&g, 2, "host 'a' is listed twice"));
	assert_true(has_diag(&g, 2, "'9x' is not a valid host name"));
	assert_true(has_diag(&g, 4, "unknown host 'bb'; did you mean 'b'?"));
	assert_true(has_diag(&g, 6, "unknown host 'zzz' (hosts: a, b)"));
	assert_true(has_diag(&g, 7, "unknown key 'cpu' in [process:q] (it takes host, restart"));
	assert_true(has_diag(&g, 19, "window '0' must be a number of frames"));
	ir_graph_free(&g);
	/* host without hosts; window on an edge that stays on one host */
	load("[process:p]\nhost = a\n"
	     "[kernel:k]\nlibrary = x\nfunction = f\nprocess = p\nout = o\n"
	     "[kernel:m]\nlibrary = x\nfunction = f\nprocess = p\nin = i\n"
	     "[connections]\nconnect = k.o -> m.i window=2\n", &g, NULL);
	assert_true(has_diag(&g, 2, "add 'hosts = a, ...' under [graph]"));
	assert_true(has_diag(&g, 14, "window= applies to an edge between hosts"));
	ir_graph_free(&g);
	load("[graph]\nhosts = ,\n[kernel:k]\nlibrary = x\nfunction = f\n",
	     &g, NULL);
	assert_true(has_diag(&g, 2, "hosts is empty"));
	ir_graph_free(&g);
}

static void test_loader_fuzz_corpus_replays(void **state)
{
	(void)state;
	DIR *d = opendir("tests/fuzz/corpus");
	if (!d)
		skip();
	struct dirent *e;
	size_t n = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[512];
		snprintf(path, sizeof path, "tests/fuzz/corpus/%s", e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		char buf[1 << 16];
		size_t len = fread(buf, 1, sizeof buf, f);
		fclose(f);
		struct ir_graph g;
		memset(&g, 0, sizeof g);
		ir_load_mem(&g, path, buf, len, &noload);
		ir_graph_free(&g);
		n++;
	}
	closedir(d);
	assert_true(n > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loader_sizes_parse),
		cmocka_unit_test(test_loader_values_ranges),
		cmocka_unit_test(test_loader_signature_parse),
		cmocka_unit_test(test_loader_args_split),
		cmocka_unit_test(test_loader_portset_match),
		cmocka_unit_test(test_loader_port_order_numeric),
		cmocka_unit_test(test_loader_good_graph_resolves),
		cmocka_unit_test(test_loader_errors_name_lines),
		cmocka_unit_test(test_loader_graph_checks_ports),
		cmocka_unit_test(test_loader_params_expand),
		cmocka_unit_test(test_loader_params_from_defines),
		cmocka_unit_test(test_loader_liveness_cycles),
		cmocka_unit_test(test_loader_replicas_expand),
		cmocka_unit_test(test_loader_defines_override),
		cmocka_unit_test(test_loader_hosts_resolve),
		cmocka_unit_test(test_loader_hosts_threads_one_process_per_host),
		cmocka_unit_test(test_loader_hosts_errors_name_lines),
		cmocka_unit_test(test_loader_fuzz_corpus_replays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
