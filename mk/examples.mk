# Examples, built against the tree's libipc the way a user builds against an
# installed one:
#   $(BUILD)/examples/buffer_example   RaftLib/ipc's README example in C
#   $(BUILD)/lib/libmykernels.so       examples/kernels: a custom kernel library
# libmykernels.so sits beside libipckernels.so so that a topology names it
# bare (config/function.ini) whichever build folder ipcrun comes from; it is
# not installed. examples/kernels/Makefile is the standalone version a user
# copies (pkg-config); tests/integration/t_examples.sh runs it too.
EXAMPLES_BIN := $(BUILD)/examples/buffer_example
EXAMPLES_SO  := $(BUILD)/lib/libmykernels.so
ALL_TARGETS += $(EXAMPLES_BIN) $(EXAMPLES_SO)
INTEGRATION_DEPS += $(EXAMPLES_BIN) $(EXAMPLES_SO)

$(BUILD)/examples/buffer_example: examples/buffer_example.c $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< -L$(BUILD)/lib -lipc \
	  -Wl,-rpath,'$$ORIGIN/../lib' $(ALL_LDFLAGS)

$(EXAMPLES_SO): examples/kernels/mykernels.c $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -shared -fPIC -Wl,-z,defs -o $@ $< -L$(BUILD)/lib -lipc \
	  -Wl,-rpath,'$$ORIGIN' $(ALL_LDFLAGS)
