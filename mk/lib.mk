# libipc: runtime/lib/*.c -> $(BUILD)/lib/libipc.{a,so}
LIB_SRC  := $(wildcard runtime/lib/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
LIBIPC_A := $(BUILD)/lib/libipc.a
LIBIPC_SO := $(BUILD)/lib/libipc.so
ALL_TARGETS += $(LIBIPC_A) $(LIBIPC_SO) $(BUILD)/lib/pkgconfig/ipc.pc

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -fno-semantic-interposition -MMD -MP -c $< -o $@

$(LIBIPC_A): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# runtime/lib/libipc.map exports exactly the public API (t_exports.sh checks).
LIBIPC_MAP := runtime/lib/libipc.map
$(LIBIPC_SO): $(LIB_OBJ) $(LIBIPC_MAP)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libipc.so.1 -Wl,--version-script=$(LIBIPC_MAP) -o $@.1 \
	  $(LIB_OBJ) $(ALL_LDFLAGS)
	ln -sf libipc.so.1 $@

$(BUILD)/lib/pkgconfig/ipc.pc: runtime/lib/ipc.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|1.0.0|g' $< > $@

install: all
	install -d $(DESTDIR)$(PREFIX)/include/ipc $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	           $(DESTDIR)$(PREFIX)/bin
	install -m 644 runtime/include/ipc/buffer.h runtime/include/ipc/kernel.h \
	           $(DESTDIR)$(PREFIX)/include/ipc/
	install -m 644 $(LIBIPC_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBIPC_SO).1 $(DESTDIR)$(PREFIX)/lib/
	ln -sf libipc.so.1 $(DESTDIR)$(PREFIX)/lib/libipc.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|1.0.0|g' runtime/lib/ipc.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/ipc.pc
	$(INSTALL_EXTRA)

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/ipc
	rm -f $(DESTDIR)$(PREFIX)/lib/libipc.a $(DESTDIR)$(PREFIX)/lib/libipc.so \
	      $(DESTDIR)$(PREFIX)/lib/libipc.so.1 $(DESTDIR)$(PREFIX)/lib/pkgconfig/ipc.pc
	$(UNINSTALL_EXTRA)
