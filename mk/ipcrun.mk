# ipcrun: runtime/ipcrun/*.c -> $(BUILD)/bin/ipcrun, linked against
# libipc.so with an rpath of $ORIGIN/../lib (right in build/ and installed),
# so that ipcrun and the kernel libraries it loads share one libipc.
#
# Also: the test kernels of the integration tests, the loader's unit test,
# the pipeline benchmark, the loader's fuzz target, and `make run`.

IPCRUN       := $(BUILD)/bin/ipcrun
# frame.c and net_*.c belong to the bridge helpers (mk/net.mk), not to ipcrun
IPCRUN_SRC   := $(filter-out runtime/ipcrun/frame.c runtime/ipcrun/net_%.c,\
                  $(wildcard runtime/ipcrun/*.c))
IPCRUN_OBJ   := $(IPCRUN_SRC:%.c=$(BUILD)/%.o)
IPCRUN_LIBS  := -linih -lffi -ldl
# the loader without the runtime: what the unit test and the fuzzer link
IPCRUN_LOADER_SRC := $(addprefix runtime/ipcrun/,loader.c check.c values.c libs.c print.c)
IPCRUN_LOADER_SRC += runtime/ipcrun/suggest.c runtime/ipcrun/restart.c
IPCRUN_LOADER_SRC += runtime/ipcrun/replicas.c
IPCRUN_LOADER_SRC += runtime/ipcrun/hosts.c
IPCRUN_LOADER_OBJ := $(IPCRUN_LOADER_SRC:%.c=$(BUILD)/%.o)

TESTKERNELS_SRC := $(wildcard tests/integration/kernels/*.c)
TESTKERNELS_SO  := $(BUILD)/tests/integration/libtestkernels.so
BENCHKERNELS_SO := $(BUILD)/bench/libbenchkernels.so
BENCH_PIPELINE  := $(BUILD)/bench/bench_pipeline
TEST_LOADER     := $(BUILD)/tests/unit/test_loader
FUZZ_LOADER     := $(BUILD)/fuzz/fuzz_loader

ALL_TARGETS      += $(IPCRUN)
UNIT_TESTS       += $(TEST_LOADER)
INTEGRATION_DEPS += $(IPCRUN) $(TESTKERNELS_SO)
BENCH_TARGETS    += $(BENCH_PIPELINE)

$(IPCRUN_OBJ) $(BUILD)/tests/unit/test_loader.o: ALL_CFLAGS += -Iruntime/lib

$(IPCRUN): $(IPCRUN_OBJ) $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(IPCRUN_OBJ) -L$(BUILD)/lib -lipc -Wl,-rpath,'$$ORIGIN/../lib' \
	  $(IPCRUN_LIBS) $(ALL_LDFLAGS)

# Kernel libraries: default visibility (the kernels are their API), PIC.
$(BUILD)/kpic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -MMD -MP -c $< -o $@

$(TESTKERNELS_SO): $(TESTKERNELS_SRC:%.c=$(BUILD)/kpic/%.o) $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(filter %.o,$^) -L$(BUILD)/lib -lipc \
	  -Wl,-rpath,'$$ORIGIN/../../lib' $(ALL_LDFLAGS) -lm

$(BENCHKERNELS_SO): $(BUILD)/kpic/tests/bench/bench_pipeline_kernels.o $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(filter %.o,$^) -L$(BUILD)/lib -lipc \
	  -Wl,-rpath,'$$ORIGIN/../lib' $(ALL_LDFLAGS)

$(BENCH_PIPELINE): $(BUILD)/tests/bench/bench_pipeline.o $(BENCHKERNELS_SO) $(IPCRUN)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(BUILD)/tests/bench/bench_pipeline.o $(ALL_LDFLAGS)

# replicas = 1 vs 2, order keep vs any (issue 12): a script, BUILD baked in
BENCH_REPLICAS := $(BUILD)/bench/bench_replicas
BENCH_TARGETS  += $(BENCH_REPLICAS)

$(BENCH_REPLICAS): tests/bench/bench_replicas.sh $(IPCRUN) $(TESTKERNELS_SO) \
                   $(BUILD)/lib/libipckernels.so
	@mkdir -p $(dir $@)
	sed 's|@BUILD@|$(abspath $(BUILD))|' $< >$@ && chmod +x $@

$(TEST_LOADER): $(BUILD)/tests/unit/test_loader.o $(IPCRUN_LOADER_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(BUILD)/tests/unit/test_loader.o $(IPCRUN_LOADER_OBJ) \
	  $(IPCRUN_LIBS) -lcmocka $(ALL_LDFLAGS)

# libFuzzer needs clang; its own sanitizer build of the loader.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
              -Iruntime/include -Iruntime/lib
FUZZ_TIME  ?= 30

$(FUZZ_LOADER): tests/fuzz/fuzz_loader.c $(IPCRUN_LOADER_SRC) runtime/ipcrun/ipcrun.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_loader.c $(IPCRUN_LOADER_SRC) \
	  $(IPCRUN_LIBS)

fuzz: $(FUZZ_LOADER)
	@mkdir -p $(BUILD)/fuzz/corpus
	$(FUZZ_LOADER) -max_total_time=$(FUZZ_TIME) -rss_limit_mb=1024 \
	  -dict=tests/fuzz/ini.dict $(BUILD)/fuzz/corpus tests/fuzz/corpus

RUN_INI ?= $(firstword $(wildcard config/demo.ini) tests/integration/ini/pipeline3.ini)

run: deps-run all
	$(IPCRUN) $(RUN_INI)

define IPCRUN_INSTALL_CMDS

install -d $(DESTDIR)$(PREFIX)/bin
install -m 755 $(IPCRUN) $(DESTDIR)$(PREFIX)/bin/ipcrun

endef
define IPCRUN_UNINSTALL_CMDS

rm -f $(DESTDIR)$(PREFIX)/bin/ipcrun

endef
INSTALL_EXTRA   += $(IPCRUN_INSTALL_CMDS)
UNINSTALL_EXTRA += $(IPCRUN_UNINSTALL_CMDS)

# The MPI bridge (runtime/ipcrun/net_mpi.c, net_edge.c, net_wait.c + frame.c) -> $(BUILD)/bin/ipcrun-net,
# a helper ipcrun execs under mpirun/srun. Built only where mpicc exists, so
# that ipcrun itself never needs MPI; `make test` installs Open MPI first.
MPICC        ?= $(shell command -v mpicc 2>/dev/null)
IPCRUN_NET   := $(BUILD)/bin/ipcrun-net
FRAME_OBJ    := $(BUILD)/runtime/ipcrun/frame.o
TEST_FRAME   := $(BUILD)/tests/unit/test_frame
FUZZ_FRAME   := $(BUILD)/fuzz/fuzz_frame
UNIT_TESTS   += $(TEST_FRAME)
ifneq ($(MPICC),)
ALL_TARGETS      += $(IPCRUN_NET)
INTEGRATION_DEPS += $(IPCRUN_NET)
endif

$(BUILD)/mpi/%.o: %.c
	@mkdir -p $(dir $@)
	OMPI_CC=$(CC) $(MPICC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

IPCRUN_NET_OBJ := $(BUILD)/mpi/runtime/ipcrun/net_mpi.o $(BUILD)/mpi/runtime/ipcrun/net_edge.o \
                  $(BUILD)/mpi/runtime/ipcrun/net_wait.o
$(IPCRUN_NET): $(IPCRUN_NET_OBJ) $(FRAME_OBJ) $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	OMPI_CC=$(CC) $(MPICC) -o $@ $(IPCRUN_NET_OBJ) $(FRAME_OBJ) \
	  -L$(BUILD)/lib -lipc -Wl,-rpath,'$$ORIGIN/../lib' $(ALL_LDFLAGS)

$(TEST_FRAME): $(BUILD)/tests/unit/test_frame.o $(FRAME_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcmocka $(ALL_LDFLAGS)

$(FUZZ_FRAME): tests/fuzz/fuzz_frame.c runtime/ipcrun/frame.c runtime/ipcrun/frame.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_frame.c runtime/ipcrun/frame.c

fuzz-frame: $(FUZZ_FRAME)
	@mkdir -p $(BUILD)/fuzz/corpus-frame
	$(FUZZ_FRAME) -max_total_time=$(FUZZ_TIME) -rss_limit_mb=1024 \
	  $(BUILD)/fuzz/corpus-frame tests/fuzz/corpus-frame
fuzz: fuzz-frame
.PHONY: fuzz-frame

define IPCRUN_NET_INSTALL_CMDS

if [ -x $(IPCRUN_NET) ]; then install -m 755 $(IPCRUN_NET) $(DESTDIR)$(PREFIX)/bin/ipcrun-net; fi

endef
define IPCRUN_NET_UNINSTALL_CMDS

rm -f $(DESTDIR)$(PREFIX)/bin/ipcrun-net

endef
INSTALL_EXTRA   += $(IPCRUN_NET_INSTALL_CMDS)
UNINSTALL_EXTRA += $(IPCRUN_NET_UNINSTALL_CMDS)
