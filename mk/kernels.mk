# Stock kernels: kernels/*.c -> $(BUILD)/lib/libipckernels.so, installed to
# PREFIX/lib beside libipc. Built hidden; only the kernels and their
# ipc_kernel_spec_* symbols are exported. -z defs: every symbol a kernel uses
# must come from libipc or libc.
KERNELS_SRC := $(wildcard kernels/*.c)
KERNELS_OBJ := $(KERNELS_SRC:%.c=$(BUILD)/pic/%.o)
KERNELS_SO  := $(BUILD)/lib/libipckernels.so
ALL_TARGETS += $(KERNELS_SO)
INTEGRATION_DEPS += $(KERNELS_SO)

$(KERNELS_SO): $(KERNELS_OBJ) $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-z,defs -o $@ $(KERNELS_OBJ) -L$(BUILD)/lib -lipc \
	  -Wl,-rpath,'$$ORIGIN' $(ALL_LDFLAGS)

define KERNELS_INSTALL_CMDS

install -m 755 $(KERNELS_SO) $(DESTDIR)$(PREFIX)/lib/libipckernels.so

endef
define KERNELS_UNINSTALL_CMDS

rm -f $(DESTDIR)$(PREFIX)/lib/libipckernels.so

endef
INSTALL_EXTRA   += $(KERNELS_INSTALL_CMDS)
UNINSTALL_EXTRA += $(KERNELS_UNINSTALL_CMDS)
