/*
 * libFuzzer target for ipcrun's topology loader: any bytes go through the
 * INI reader, inih and the whole-graph checks (libraries are not loaded);
 * a graph that passes is printed as --check and --dot would. `make fuzz`
 * runs it for FUZZ_TIME seconds from tests/fuzz/corpus.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../runtime/ipcrun/ipcrun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	if (!sink)
		sink = fopen("/dev/null", "w");
	struct ir_load_opts o = {.load = false, .max_diags = 20};
	struct ir_graph g;
	memset(&g, 0, sizeof g);
	if (ir_load_mem(&g, "fuzz/t.ini", (const char *)data, size, &o) == 0 && sink) {
		ir_print_check(&g, sink);
		ir_print_dot(&g, sink);
	} else if (sink) {
		ir_diags_print(&g, sink);
	}
	ir_graph_free(&g);
	return 0;
}
