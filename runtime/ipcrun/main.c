/*
 * ipcrun's command line. See usage(), man/ipcrun.1 and config/README.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcrun.h"

static void usage(FILE *f)
{
	fputs(
"usage: ipcrun [options] topology.ini\n"
"       ipcrun [options] -       (the topology from standard input)\n"
"       ipcrun --gc\n"
"       ipcrun --list LIBRARY [KERNEL]\n"
"       ipcrun status [--json] [RUN]   running graphs of this user, or one\n"
"       ipcrun top [-d SECONDS] RUN    one run, refreshed like top(1)\n"
"\n"
"Run the graph of kernels a topology describes: one shared buffer, one\n"
"process per [process:NAME] (kernels without one share process 'main'), one\n"
"thread per kernel, one SPSC channel per connection.\n"
"\n"
"options:\n"
"  --check          validate the topology and print the resolved graph\n"
"                   (processes, threads, channels with ids and capacities);\n"
"                   start nothing\n"
"  --dot            print the graph in Graphviz dot; start nothing\n"
"  --stats          at the end, print per-channel records, bytes, high-water\n"
"                   mark and time blocked, and per-kernel CPU time (stderr)\n"
"  --progress       a live line of records/s per channel on stderr (the\n"
"                   default when stderr is a terminal; one line, cut to its\n"
"                   width); into a file, a plain line every 2 s\n"
"  --no-progress    no live line\n"
"  --threads        run every kernel as a thread of one kernel process\n"
"  -v, --verbose    print the run's buffer handle and process ids on stderr\n"
"  --host NAME      run only host NAME's part of a graph with [graph] hosts =\n"
"                   NAME@ADDRESS:PORT, ...; its edges to other hosts go over\n"
"                   ZeroMQ (libipcnet.so); start each host's part yourself\n"
"  -D key=value     override a [graph] key (name, buffer, shm, sem, capacity,\n"
"                   wait, stall_timeout, batch, linger, hosts, curve), or\n"
"                   set the parameter ${key} the topology uses (else taken\n"
"                   from the environment); may be repeated\n"
"  --gc             remove what crashed or killed runs left (shared memory,\n"
"                   semaphores) and exit; every run also does this first\n"
"  --list LIBRARY [KERNEL]\n"
"                   list the kernels of a kernel library (each with its\n"
"                   ports, argument types and description) and its other\n"
"                   exported functions, or only KERNEL, and exit; LIBRARY\n"
"                   is found as a topology's library is (a bare name:\n"
"                   IPC_KERNEL_PATH, <prefix>/lib, the system path)\n"
"  --version        print the version and exit\n"
"  -h, --help       print this help and exit\n"
"\n"
"exit status:\n"
"  0    every kernel returned 0\n"
"  1    a kernel failed (returned non-zero, crashed or was killed; each is\n"
"       named with its process and code or signal), or the run could not\n"
"       start (no memory for the buffer, fork failed), or the graph stalled:\n"
"       every kernel waited on a channel and nothing moved for stall_timeout\n"
"  2    bad command line or topology (every error is printed as\n"
"       file:line: error: ..., and nothing is started)\n"
"  130  stopped by SIGINT (Ctrl-C) and drained cleanly; 143 for SIGTERM,\n"
"       129 for SIGHUP, 138 for SIGUSR1 (what mpirun forwards to every\n"
"       rank). A second signal kills every kernel (same code), and\n"
"       so does ipcrun when nothing moves for 2 s after the first while\n"
"       every kernel waits on a channel, or for 10 s.\n"
"\n"
"environment:\n"
"  IPC_KERNEL_PATH   folders (':'-separated) searched for a bare library name\n"
"                    before ipcrun's own <prefix>/lib and the system path\n"
"  IPC_SHM, IPC_SEM  backend when the topology sets none (posix, sysv)\n"
"  IPCRUN_NET_TIMEOUT_MS  across hosts: a host silent this long aborts the\n"
"                    job (default 10000)\n"
"  IPCRUN_STATE_DIR  where runs are recorded for --gc and status\n"
"                    (default ${XDG_RUNTIME_DIR:-/tmp}/ipcrun-<uid>)\n"
"\n"
"examples (from the root of the project's source, which has config/):\n"
"  ipcrun --check config/demo.ini\n"
"  ipcrun --list libipckernels.so\n"
"  ipcrun -D shm=sysv --stats config/pipeline.ini\n"
"  ipcrun --gc\n"
"\n"
"Across hosts: with [graph] hosts = a, b, ... run it under mpirun -n <hosts>\n"
"(or srun): each rank runs its host's processes, and edges between hosts\n"
"are carried by MPI (README.md, \"Across machines\"). Without a launcher the\n"
"same file runs on this host alone.\n"
"\n"
"Whatever the exit path, no process, shared memory or semaphore of the run\n"
"is left behind. More in the manual: ipcrun(1); the topology format, every\n"
"key: ipc-topology(5); the library and the kernel API: libipc(3).\n", f);
}

enum {
	OPT_CHECK = 256, OPT_DOT, OPT_STATS, OPT_PROGRESS, OPT_NO_PROGRESS,
	OPT_THREADS, OPT_GC, OPT_VERSION, OPT_HOST,
	OPT_LIST,
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"check", no_argument, NULL, OPT_CHECK},
		{"dot", no_argument, NULL, OPT_DOT},
		{"stats", no_argument, NULL, OPT_STATS},
		{"progress", no_argument, NULL, OPT_PROGRESS},
		{"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
		{"threads", no_argument, NULL, OPT_THREADS},
		{"gc", no_argument, NULL, OPT_GC},
		{"version", no_argument, NULL, OPT_VERSION},
		{"help", no_argument, NULL, 'h'},
		{"verbose", no_argument, NULL, 'v'},
		{"list", required_argument, NULL, OPT_LIST},
		{"host", required_argument, NULL, OPT_HOST},
		{NULL, 0, NULL, 0},
	};
	/* subcommands, read-only on running graphs (top.c) */
	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return ir_status_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "top") == 0)
		return ir_top_main(argc - 1, argv + 1);
	bool check = false, dot = false, gc = false;
	int progress = -1;
	struct ir_run_opts ro = {0};
	struct ir_load_opts lo = {.load = true};
	char **defines = calloc((size_t)argc + 1, sizeof *defines);
	if (!defines)
		return IR_EXIT_FAILED;
	int c;
	while ((c = getopt_long(argc, argv, "+D:hv", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CHECK: check = true; break;
		case OPT_DOT: dot = true; break;
		case OPT_STATS: ro.stats = true; break;
		case OPT_PROGRESS: progress = 1; break;
		case OPT_NO_PROGRESS: progress = 0; break;
		case OPT_THREADS: lo.threads = true; break;
		case OPT_GC: gc = true; break;
		case 'v': ro.verbose = true; break;
		case 'D': defines[lo.ndefines++] = optarg; break;
		case OPT_LIST:
			free(defines);
			if (optind + 1 < argc) {
				fputs("ipcrun: --list takes a library and at most one "
				      "kernel name\n", stderr);
				return IR_EXIT_USAGE;
			}
			return ir_list_library(optarg, optind < argc ? argv[optind] :
			                       NULL, stdout);
		case OPT_HOST: lo.host = optarg; break;
		case OPT_VERSION:
			printf("ipcrun %s (libipc %d.%d)\n", IR_VERSION, IPC_VERSION_MAJOR,
			       IPC_VERSION_MINOR);
			free(defines);
			return IR_EXIT_OK;
		case 'h':
			usage(stdout);
			free(defines);
			return IR_EXIT_OK;
		default:
			fputs("ipcrun: try 'ipcrun --help'\n", stderr);
			free(defines);
			return IR_EXIT_USAGE;
		}
	}
	if (gc) {
		free(defines);
		if (optind != argc) {
			fputs("ipcrun: --gc takes no topology\n", stderr);
			return IR_EXIT_USAGE;
		}
		ir_gc_collect(true);
		return IR_EXIT_OK;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "ipcrun: %s\nusage: ipcrun [options] topology.ini "
		        "(ipcrun --help for more)\n", optind == argc ?
		        "no topology given" : "one topology at a time");
		free(defines);
		return IR_EXIT_USAGE;
	}
	lo.defines = defines;
	struct ir_graph g = {0};
	int code;
	if (ir_load_file(&g, argv[optind], &lo) < 0) {
		ir_diags_print(&g, stderr);
		if (g.ndiag)
			fprintf(stderr, "ipcrun: %zu error%s in %s; nothing was started\n",
			        g.ndiag, g.ndiag == 1 ? "" : "s",
			        g.file ? g.file : argv[optind]);
		code = IR_EXIT_USAGE;
		if (!check && !dot)
			ir_net_check(&g, false); /* the other hosts wait for this one */
	} else if (check || dot) {
		if (check)
			ir_print_check(&g, stdout);
		if (dot)
			ir_print_dot(&g, stdout);
		code = IR_EXIT_OK;
	} else if ((code = lo.host ? 0 : ir_net_check(&g, true)) == 0) {
		ro.progress = progress < 0 ? isatty(STDERR_FILENO) : progress;
		fflush(stdout);
		code = ir_run(&g, &ro);
	}
	ir_graph_free(&g);
	free(defines);
	return code;
}
