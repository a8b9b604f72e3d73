# Benchmarks (tests/bench/): `make bench` builds BENCH_TARGETS and runs each in
# turn through scripts/run-bench.sh, which also writes $(BUILD)/bench.txt.
# Never part of `make test`. Built with the normal flags (-O2), linked with
# libipc.a.
#
#   bench_alloc    64-byte records: libipc vs glibc malloc, one thread and
#                  across threads (issue 2)
#   bench_channel  records/s and GB/s, 8 B .. 1 MiB, threads and processes,
#                  spin and hybrid, vs pipe and UNIX socket (issue 3)
#   bench_latency  ping-pong one-way latency, idle CPU of a blocked
#                  consumer, 2^20 four-byte records between processes (issue 3)
#
# Environment: IPC_BENCH_SECONDS (per run, default 0.3), IPC_BENCH_RUNS (3).
BENCH_DIR    := $(BUILD)/tests/bench
BENCH_NAMES  := bench_alloc bench_channel bench_latency
BENCH_COMMON := $(BENCH_DIR)/bench_util.o $(BENCH_DIR)/bench_ipc.o
BENCH_BINS   := $(BENCH_NAMES:%=$(BENCH_DIR)/%)
BENCH_TARGETS += $(BENCH_BINS)

$(BENCH_BINS): $(BENCH_DIR)/%: $(BENCH_DIR)/%.o $(BENCH_COMMON) $(LIBIPC_A)
	$(CC) $< $(BENCH_COMMON) $(LIBIPC_A) $(ALL_LDFLAGS) -o $@

# Across hosts (issue 13): bench_hosts.sh runs the same graph on one host and
# on two MPI ranks (TCP on loopback) and raw MPI (bench_mpi) in one sitting,
# and prints ratios. Only where mpicc exists.
ifneq ($(shell command -v mpicc 2>/dev/null),)
BENCH_MPI := $(BENCH_DIR)/bench_mpi
$(BENCH_MPI): tests/bench/bench_mpi.c
	@mkdir -p $(dir $@)
	OMPI_CC=$(CC) mpicc $(CSTD) -O2 -o $@ $<
tests/bench/bench_hosts.sh: $(BENCH_MPI) $(IPCRUN_NET) $(TESTKERNELS_SO) $(BENCHKERNELS_SO)
BENCH_TARGETS += tests/bench/bench_hosts.sh
endif

# Items (issue 10): bench_items runs tests/bench/bench_items.sh, which times
# the demo, a 3-stage function pipeline, 8-byte items between processes and
# trickle latency against their plain alternatives (wc_plain, fn_loop,
# pipe_items), then bench_kapi (kernel API vs raw library, same run).
BENCH_ITEMS_BINS := $(BUILD)/bench/wc_plain $(BUILD)/bench/fn_loop \
                    $(BUILD)/bench/pipe_items $(BUILD)/bench/bench_kapi
BENCH_TARGETS += $(BUILD)/bench/bench_items

$(BUILD)/bench/wc_plain $(BUILD)/bench/pipe_items: $(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@

$(BUILD)/bench/fn_loop: tests/bench/fn_loop.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -ldl -o $@

$(BUILD)/bench/bench_kapi: tests/bench/bench_kapi.c $(LIBIPC_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iruntime/lib $< $(LIBIPC_A) $(ALL_LDFLAGS) -o $@

$(BUILD)/bench/bench_items: tests/bench/bench_items.sh $(BENCH_ITEMS_BINS) \
                            $(BENCHKERNELS_SO) $(IPCRUN) $(KERNELS_SO)
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec "%s/tests/bench/bench_items.sh" "%s" "$$@"\n' \
	  "$(CURDIR)" "$(BUILD)" >$@
	chmod +x $@
