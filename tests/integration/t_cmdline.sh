#!/bin/bash
# The command line's tools and checks:
#  - `ipcrun --list libipckernels.so` lists every stock kernel (every
#    IPC_KERNEL in kernels/*.c) with its doc string, ports and arg types; a
#    library with a function kernel lists that function too; a library that
#    is not there, or not a library, is exit 2;
#  - a `library` that is a FIFO or a device is exit 2 at once (dlopen would
#    block on a FIFO forever), naming file:line;
#  - a `function` that is a variable is exit 2, naming file:line and the fix;
#  - more than 256 kernels is said once;
#  - a failed kernel's outputs are aborted, as the documents say.
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib_ipcrun.sh

echo "t_cmdline ($BUILD)"
KLIB=$PWD/$BUILD/lib

# --- --list -------------------------------------------------------------
"$IPCRUN" --list libipckernels.so >"$T/list.out" 2>"$T/list.err"
check "--list libipckernels.so: exit 0 ($?)" test $? -eq 0
want=$(sed -n 's/^IPC_KERNEL(\([a-z_0-9]*\),.*/\1/p' kernels/*.c | sort)
got=$(sed -n 's/^  \([a-z_0-9]*\)$/\1/p' "$T/list.out" | sort)
check "--list libipckernels.so: every stock kernel, nothing else ($(wc -w <<<"$want") kernels)" \
	test -n "$want" -a "$want" = "$got"
check "--list: says how many" grep -qx "$(wc -w <<<"$want") kernels with an IPC_KERNEL spec (actor kernels):" "$T/list.out"
# entry KERNEL: its block of the listing, on one line
entry() { grep -A5 -x "  $1" "$T/list.out" | sed '/^$/q' | tr -s ' ' | tr '\n' '|'; }
has() { grep -qF -- "$2" <<<"$1"; }
# its doc string as kernels/sources.c gives it to IPC_KERNEL
doc=$(grep -A1 '^IPC_KERNEL(seq_source,' kernels/sources.c | sed -n '2s/^[[:space:]]*"\(.*\)");$/\1/p')
check "--list: seq_source's doc ('$doc'), ports and args" \
	has "$(entry seq_source)" " $doc| in: none| out: out| args: u64|"
check "--list: a numbered output port is spelled out" \
	has "$(entry split_rr)" "| in: in| out: out0, out1, ... (at least one)| args: none|"
check "--list: two args" has "$(entry blob_source)" "| args: u64, u64|"

"$IPCRUN" --list "$KLIB/libmykernels.so" >"$T/my.out" 2>&1
check "--list libmykernels.so: the kernel with a spec" grep -qx '  running_sum' "$T/my.out"
check "--list libmykernels.so: the function kernel, as a function" \
	has "$(grep -A1 '^1 other exported function' "$T/my.out")" "
  square"

"$IPCRUN" --list libipckernels.so top_sink >"$T/one.out" 2>&1
check "--list LIBRARY KERNEL: that kernel only" \
	test "$(grep -c '^  [a-z]' "$T/one.out")" -eq 1 -a "$(grep -c '^  top_sink$' "$T/one.out")" -eq 1
"$IPCRUN" --list libipckernels.so top_snk >"$T/typo.out" 2>"$T/typo.err"
check "--list LIBRARY typo: exit 2 ($?)" test $? -eq 2
check "--list LIBRARY typo: the closest name" \
	grep -qF "has no kernel or function 'top_snk'; did you mean 'top_sink'?" "$T/typo.err"

"$IPCRUN" --list libnothere.so >"$T/none.out" 2>"$T/none.err"
check "--list of a missing library: exit 2 ($?)" test $? -eq 2
check "--list of a missing library: says so" grep -q "cannot load library 'libnothere.so'" "$T/none.err"
"$IPCRUN" --list "$PWD/README.md" >/dev/null 2>&1
check "--list of a text file: exit 2 ($?)" test $? -eq 2

# --- library: a FIFO, a device ----------------------------------------------
mkfifo "$T/fifo.so"
cat >"$T/fifo.ini" <<EOF
[kernel:src]
library = libipckernels.so
function = seq_source
args = u64:3

[kernel:sink]
library = ./fifo.so
function = discard_sink

[connections]
connect = src.out -> sink.in
EOF
start=$(now_ms)
timeout 20 "$IPCRUN" --check "$T/fifo.ini" >"$T/fifo.out" 2>"$T/fifo.err"
rc=$?
ms=$(( $(now_ms) - start ))
check "--check, library a FIFO: exit 2 ($rc)" test "$rc" -eq 2
check "--check, library a FIFO: at once ($ms ms < 5000)" test "$ms" -lt 5000
check "--check, library a FIFO: file:line, what it is" \
	grep -q "fifo.ini:7: error: cannot load library './fifo.so': .*fifo.so is a FIFO, not a shared library file" "$T/fifo.err"

sed 's|\./fifo.so|/dev/zero|' "$T/fifo.ini" >"$T/dev.ini"
timeout 20 "$IPCRUN" --check "$T/dev.ini" >/dev/null 2>"$T/dev.err"
check "--check, library a device: exit 2 ($?)" test $? -eq 2
check "--check, library a device: says so" grep -q "dev.ini:7: error: .*/dev/zero is a device" "$T/dev.err"

# --- function: a variable ---------------------------------------------------
sed 's|\./fifo.so|libipckernels.so|; s|function = discard_sink|function = ipc_kernel_spec_discard_sink|' \
	"$T/fifo.ini" >"$T/data.ini"
"$IPCRUN" --check "$T/data.ini" >/dev/null 2>"$T/data.err"
check "function a variable: exit 2 ($?)" test $? -eq 2
check "function a variable: file:line, what it is and the fix" \
	grep -q "data.ini:8: error: 'ipc_kernel_spec_discard_sink' in library 'libipckernels.so' is a variable.*not a function; .*ipcrun --list libipckernels.so" "$T/data.err"

# --- more than 256 kernels: said once ---------------------------------------
for ((i = 0; i < 260; i++)); do
	printf '[kernel:k%d]\nlibrary = libipckernels.so\nfunction = discard_sink\n' "$i"
done >"$T/many.ini"
"$IPCRUN" --check "$T/many.ini" >/dev/null 2>"$T/many.err"
check "260 kernels: exit 2 ($?)" test $? -eq 2
check "260 kernels: 'more than 256 kernels' said once ($(grep -c 'more than' "$T/many.err"))" \
	test "$(grep -c 'more than 256 kernels: \[kernel:k256\]' "$T/many.err")" -eq 1 \
	-a "$(grep -c 'more than' "$T/many.err")" -eq 1


# --- what the documents say of a failed kernel: its outputs are aborted -----
# (README.md, config/README.md, kernels/README.md, ipc-topology(5)): a source
# that fails makes every kernel below see IPC_TX_ABORTED, not a clean end,
# so the sink three steps down prints no result.
cat >"$T/abort.ini" <<EOF
[process:p2]
[kernel:read]
library = libipckernels.so
function = file_lines
args = str:$T/nonexistent
[kernel:words]
library = libipckernels.so
function = tokenize
process = p2
[kernel:count]
library = libipckernels.so
function = keyed_count
[kernel:top]
library = libipckernels.so
function = top_sink
args = 3
[connections]
connect = read.out -> words.in
connect = words.out -> count.in
connect = count.out -> top.in
EOF
run_ipcrun abort "$T/abort.ini"
check "a failed source: exit 1 ($RC)" test "$RC" -eq 1
for k in words count top; do
	check "a failed source: '$k' below it sees its input aborted" \
		grep -q "^$k: an input was aborted" "$T/abort.err"
done
check "a failed source: the sink printed no result" test ! -s "$T/abort.out"
check_clean "$H" "a failed source"

finish
