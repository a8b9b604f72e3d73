# Manual pages and shell completion, installed by `make install`:
#   man/ipcrun.1, man/ipc-topology.5, man/libipc.3  -> PREFIX/share/man/manN/
#   completion/ipcrun -> PREFIX/share/bash-completion/completions/ipcrun
# Written in roff by hand; tests/integration/t_man.sh renders them (no
# warning from groff or man) and runs their examples.
MAN_PAGES := man/ipcrun.1 man/ipc-topology.5 man/libipc.3
MANDIR    := $(PREFIX)/share/man
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions

define MAN_INSTALL_CMDS

install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5
install -m 644 man/ipcrun.1 $(DESTDIR)$(MANDIR)/man1/ipcrun.1
install -m 644 man/libipc.3 $(DESTDIR)$(MANDIR)/man3/libipc.3
install -m 644 man/ipc-topology.5 $(DESTDIR)$(MANDIR)/man5/ipc-topology.5
install -d $(DESTDIR)$(BASHCOMPDIR)
install -m 644 completion/ipcrun $(DESTDIR)$(BASHCOMPDIR)/ipcrun

endef
define MAN_UNINSTALL_CMDS

rm -f $(DESTDIR)$(MANDIR)/man1/ipcrun.1 $(DESTDIR)$(MANDIR)/man3/libipc.3 \
      $(DESTDIR)$(MANDIR)/man5/ipc-topology.5 $(DESTDIR)$(BASHCOMPDIR)/ipcrun

endef
INSTALL_EXTRA   += $(MAN_INSTALL_CMDS)
UNINSTALL_EXTRA += $(MAN_UNINSTALL_CMDS)

# `make man-test`: render every page as the test does (groff and man warnings).
.PHONY: man-test
man-test:
	@for p in $(MAN_PAGES); do \
	  out=$$(groff -ww -z -man $$p 2>&1; MANWIDTH=80 man --warnings -l $$p 2>&1 >/dev/null); \
	  if [ -n "$$out" ]; then echo "$$p:"; echo "$$out"; exit 1; fi; \
	done; echo "man pages: no warnings"
