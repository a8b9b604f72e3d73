# The ZeroMQ bridge kernels (kernels/net/ipcnet.c + the frame codec) ->
# $(BUILD)/lib/libipcnet.so, and ipcnet-keygen (CURVE key pairs). Their own
# library with their own dependency (libzmq3-dev): built only where
# pkg-config finds libzmq; ipcrun loads libipcnet.so only for --host.
ZMQ_LIBS := $(shell pkg-config --libs libzmq 2>/dev/null)
IPCNET_SO := $(BUILD)/lib/libipcnet.so
IPCNET_KEYGEN := $(BUILD)/bin/ipcnet-keygen
ifneq ($(ZMQ_LIBS),)
ALL_TARGETS      += $(IPCNET_SO) $(IPCNET_KEYGEN)
INTEGRATION_DEPS += $(IPCNET_SO) $(IPCNET_KEYGEN)
endif

$(IPCNET_SO): $(BUILD)/kpic/kernels/net/ipcnet.o $(BUILD)/kpic/runtime/ipcrun/frame.o $(LIBIPC_SO)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-z,defs -o $@ $(filter %.o,$^) -L$(BUILD)/lib -lipc \
	  $(ZMQ_LIBS) -Wl,-rpath,'$$ORIGIN' $(ALL_LDFLAGS)

$(IPCNET_KEYGEN): kernels/net/keygen.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ZMQ_LIBS) $(ALL_LDFLAGS)

define IPCNET_INSTALL_CMDS

if [ -f $(IPCNET_SO) ]; then install -m 755 $(IPCNET_SO) $(DESTDIR)$(PREFIX)/lib/libipcnet.so; fi
if [ -f $(IPCNET_KEYGEN) ]; then install -m 755 $(IPCNET_KEYGEN) $(DESTDIR)$(PREFIX)/bin/ipcnet-keygen; fi

endef
define IPCNET_UNINSTALL_CMDS

rm -f $(DESTDIR)$(PREFIX)/lib/libipcnet.so $(DESTDIR)$(PREFIX)/bin/ipcnet-keygen

endef
INSTALL_EXTRA   += $(IPCNET_INSTALL_CMDS)
UNINSTALL_EXTRA += $(IPCNET_UNINSTALL_CMDS)
