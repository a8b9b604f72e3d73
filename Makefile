# libipc + ipcrun. GNU make; every object goes under $(BUILD).
#
#   make            build libipc, ipcrun, the stock kernels and the examples
#   make run        build and run config/demo.ini
#   make test       build and run every test under the four shm/semaphore backends
#   make check      the same suite built with ASan+UBSan, and the threaded tests with TSan
#   make bench      benchmarks (never part of test)
#   make lint       cppcheck and clang-tidy
#   make fuzz       libFuzzer targets: the segment image, the topology loader
#                   (FUZZ_TIME s each; make fuzz-short: FUZZ_SHORT s, for CI)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       install what the tests need (scripts/deps.sh test); every
#                   target that compiles checks its own first; DEPS=no skips
#
# Each part of the tree keeps its rules in mk/<part>.mk.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
SAN     ?=

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-unused-parameter
CSTD    := -std=c11 -D_GNU_SOURCE
OPT     ?= -O2 -g
ifeq ($(CI),true)
WERROR  ?= -Werror
endif
SANFLAGS :=
ifeq ($(SAN),asan)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
ifeq ($(SAN),tsan)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
endif
CFLAGS  ?= $(OPT)
ALL_CFLAGS = $(CSTD) $(CFLAGS) $(WARN) $(WERROR) $(SANFLAGS) -pthread -Iruntime/include
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS) -pthread

# Parts append to these.
ALL_TARGETS :=
UNIT_TESTS  :=
STRESS_TESTS :=
TSAN_TESTS  :=
INTEGRATION_DEPS :=
BENCH_TARGETS :=

.PHONY: all run test check valgrind bench lint fuzz fuzz-short install uninstall clean deps deps-run \
        test-unit test-integration
.DEFAULT_GOAL := all

# Dependencies: every goal that compiles checks first, through
# scripts/deps.sh, that what it needs is there (pkg-config or a compile
# probe; silent when it is), installs the missing Debian packages as root,
# and otherwise stops naming them and the command. Once per make command,
# before any rule runs (sub-makes see IPC_DEPS_DONE); `make DEPS=no` skips
# it. DEPS_SET_<goal> says which
# set a goal needs (default: build); DEPS_NONE lists goals that compile
# nothing.
DEPS ?= yes
DEPS_NONE := clean uninstall deps deps-run help
DEPS_SET_test := test
DEPS_SET_check := test
DEPS_SET_tests := test
DEPS_SET_valgrind := valgrind
DEPS_SET_fuzz := fuzz
DEPS_SET_lint := lint
DEPS_SET_man-test := man
deps_sets := $(sort $(foreach g,$(or $(MAKECMDGOALS),all),\
               $(if $(filter $(DEPS_NONE),$(g)),,$(or $(DEPS_SET_$(g)),build))))
ifeq ($(DEPS)$(IPC_DEPS_DONE),yes)
ifneq ($(deps_sets),)
ifeq ($(findstring n,$(firstword -$(MAKEFLAGS))),)
deps_rc := $(shell scripts/deps.sh $(deps_sets) >&2; echo $$?)
ifneq ($(deps_rc),0)
$(error missing dependencies (above); or skip this check with DEPS=no)
endif
endif
endif
endif
export IPC_DEPS_DONE := 1

include mk/lib.mk
-include mk/kernels.mk
-include mk/ipcrun.mk
-include mk/examples.mk
-include mk/tests.mk
-include mk/bench.mk
-include mk/man.mk
-include mk/net.mk

all: $(ALL_TARGETS)

deps:
	@scripts/deps.sh test

deps-run:
	@scripts/deps.sh run

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# Tests: unit and stress binaries under each backend combination, then the
# integration tests. scripts/run-tests.sh prints "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all $(UNIT_TESTS) $(STRESS_TESTS) $(INTEGRATION_DEPS)
	@scripts/run-tests.sh $(BUILD) "$(UNIT_TESTS) $(STRESS_TESTS)"

check: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=asan test
	@$(MAKE) --no-print-directory BUILD=build/tsan SAN=tsan $(TSAN_TESTS)
	@TSAN_OPTIONS=halt_on_error=1 IPC_TEST_TSAN=1 scripts/run-tests.sh build/tsan "$(TSAN_TESTS)" unit-only

# Memcheck: the unit tests under valgrind, in one backend combination (the
# memory a test touches does not depend on it); any error or definite leak
# fails. Not part of CI's sanitizer run (ASan/UBSan/TSan above), slower.
VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite --child-silent-after-fork=yes
valgrind:
	@scripts/deps.sh valgrind
	@$(MAKE) --no-print-directory all $(UNIT_TESTS)
	@IPC_COMBOS=posix:posix IPC_TEST_WRAP="$(VALGRIND)" \
		scripts/run-tests.sh $(BUILD) "$(UNIT_TESTS)" unit-only

bench: deps all $(BENCH_TARGETS)
	@scripts/run-bench.sh $(BUILD) "$(BENCH_TARGETS)"

lint:
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	  --suppress=missingIncludeSystem -Iruntime/include runtime kernels examples
	clang-tidy --quiet $(wildcard runtime/lib/*.c) -- $(CSTD) -Iruntime/include

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
