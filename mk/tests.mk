# cmocka tests: tests/unit/test_<module>.c and tests/stress/<name>.c, one
# binary each, linked with libipc.a and tests/common/testutil.c.
#
#   UNIT_TESTS, STRESS_TESTS  run by `make test` under the four IPC_SHM/IPC_SEM
#                             combinations, and again by `make check` (ASan)
#   TSAN_TESTS                threaded tests that never fork (ThreadSanitizer
#                             cannot see synchronisation between processes)
#
# TSAN_TESTS names build/tsan paths outright: `make check` expands it in the
# top-level make (BUILD=build) and hands the paths to a BUILD=build/tsan make.
TSAN_BUILD ?= build/tsan

UNIT_NAMES   := heap buffer record segment channel ring takeover
UNIT_NAMES   += kernel_seq
UNIT_NAMES   += robust
UNIT_NAMES   += items
UNIT_NAMES   += integrity
STRESS_NAMES := stress_threads stress_procs stress_alloc stress_pingpong \
                stress_many stress_kill stress_items_kill
TSAN_NAMES   := unit/test_heap unit/test_ring unit/test_channel unit/test_record \
                unit/test_segment stress/stress_threads
TSAN_NAMES   += unit/test_kernel_seq unit/test_items

# Only the sources that exist, so a half-written suite still builds.
tu_have = $(patsubst tests/%.c,%,$(wildcard $(1:%=tests/%.c)))
LIB_UNIT_TESTS   := $(addprefix $(BUILD)/tests/,$(call tu_have,$(UNIT_NAMES:%=unit/test_%)))
LIB_STRESS_TESTS := $(addprefix $(BUILD)/tests/,$(call tu_have,$(STRESS_NAMES:%=stress/%)))
UNIT_TESTS   += $(LIB_UNIT_TESTS)
STRESS_TESTS += $(LIB_STRESS_TESTS)
TSAN_TESTS   += $(addprefix $(TSAN_BUILD)/tests/,$(call tu_have,$(TSAN_NAMES)))

TEST_CFLAGS  := -Iruntime/lib -Itests/common
TEST_LIBS    := -lcmocka -lrt
TEST_COMMON  := $(BUILD)/tests/common/testutil.o

$(BUILD)/tests/common/%.o: tests/common/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/unit/%: tests/unit/%.c $(TEST_COMMON) $(LIBIPC_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -MMD -MP $< $(TEST_COMMON) $(LIBIPC_A) \
	  $(TEST_LIBS) $(ALL_LDFLAGS) -o $@

$(BUILD)/tests/stress/%: tests/stress/%.c $(TEST_COMMON) $(LIBIPC_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -MMD -MP $< $(TEST_COMMON) $(LIBIPC_A) \
	  $(TEST_LIBS) $(ALL_LDFLAGS) -o $@

# `make tests`: build libipc's unit and stress tests only.
.PHONY: tests
tests: $(LIB_UNIT_TESTS) $(LIB_STRESS_TESTS)

# libFuzzer target for the shared segment image (tests/fuzz/fuzz_buffer.c):
# libipc's sources built into it with the fuzzer's sanitizers. `make fuzz`
# runs it, then the loader's (mk/ipcrun.mk); `make fuzz-short` runs both for
# FUZZ_SHORT seconds each, as .ci/run does.
FUZZ_BUFFER := $(BUILD)/fuzz/fuzz_buffer
FUZZ_SHORT  ?= 60
.PHONY: fuzz-buffer fuzz-short

$(FUZZ_BUFFER): tests/fuzz/fuzz_buffer.c $(LIB_SRC) $(wildcard runtime/lib/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -pthread -o $@ tests/fuzz/fuzz_buffer.c $(LIB_SRC)

fuzz-buffer: $(FUZZ_BUFFER)
	@mkdir -p $(BUILD)/fuzz/corpus-buffer
	$(FUZZ_BUFFER) -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	  $(BUILD)/fuzz/corpus-buffer

fuzz: fuzz-buffer

fuzz-short:
	@scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory fuzz FUZZ_TIME=$(FUZZ_SHORT)
