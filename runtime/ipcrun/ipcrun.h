/*
 * ipcrun: the model of a topology and of a run, shared by every file of the
 * executable.
 *
 *   loader.c   INI text -> struct ir_graph (sections and keys, with lines)
 *   check.c    the whole-graph checks and the resolution of names
 *   values.c   types, numbers, sizes, args, signatures, port sets, hints
 *   libs.c     finding and loading kernel libraries, IPC_KERNEL specs
 *   suggest.c  "did you mean" for library and function names
 *   print.c    --check and --dot
 *   run.c      the supervisor: buffer, processes, signals, the end
 *   runner.c   inside a kernel process: threads, channel ends, crashes
 *   call.c     libffi calls of actor kernels and the function-kernel driver
 *   report.c   --stats, --progress and the failure report
 *   gc.c       the record of runs, and --gc
 *   term.c     the progress line on the terminal, kernels' output relay
 *   list.c     --list: the kernels and functions of a library
 *   status.c   what a run shows to `ipcrun status` / `top` (status.h)
 *   top.c      `ipcrun status` and `ipcrun top`, the clients
 *   hosts.c    [graph] hosts, host =, bridged edges; --host (ZeroMQ bridges)
 *   net.c      under mpirun/srun: this rank's part and its bridge process
 *   frame.c    the bridge's wire format (pure; also in ipcrun-net, libipcnet)
 *   net_mpi.c  ipcrun-net, the MPI bridge (a program of its own, mpicc)
 *   main.c     the command line
 *
 * Names: ir_<module>_<verb> across files, file-local static otherwise.
 */
#ifndef IPCRUN_H
#define IPCRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <ipc/buffer.h>
#include <ipc/kernel.h>

#include "kernel_impl.h"

#define IR_VERSION "1.0.0"

/* Limits, documented in config/README.md. */
#define IR_NAME_MAX 40       /* kernel, process and port names */
#define IR_MAX_KERNELS 256
#define IR_MAX_PROCESSES 64
#define IR_MAX_CONNS 1024
#define IR_MAX_ARGS 16       /* actor kernel args */
#define IR_MAX_PARAMS 8      /* function kernel parameters */
#define IR_CAPACITY_MAX (1u << 20)
#define IR_BATCH_MAX (16u << 20)     /* bytes per batch record */
#define IR_BATCH_DEFAULT 4096u       /* measured: see README, "When does a
                                        graph pay off?" */
#define IR_LINGER_DEFAULT_US 500u
#define IR_LINGER_MAX_US 10000000u
#define IR_LINE_MAX 199      /* inih's INI_MAX_LINE (200) less its NUL */
#define IR_MAX_HOSTS 64      /* [graph] hosts */
#define IR_WINDOW_DEFAULT 4  /* frames in flight per bridged edge */
#define IR_WINDOW_MAX 64

/* Exit codes, documented in ipcrun --help and config/README.md. */
#define IR_EXIT_OK 0
#define IR_EXIT_FAILED 1
#define IR_EXIT_USAGE 2

enum ir_type {
	IR_NONE = 0,
	IR_VOID,
	IR_BOOL,
	IR_I8, IR_I16, IR_I32, IR_I64,
	IR_U8, IR_U16, IR_U32, IR_U64,
	IR_F32, IR_F64,
	IR_STR,
};

struct ir_value {
	enum ir_type type;
	union {
		int64_t i;
		uint64_t u;
		double d;
	} v;
	char *s; /* IR_STR */
};

struct ir_diag {
	char *file; /* NULL: the command line */
	int line;
	char *msg;
	bool after; /* may follow from another error: printed after the others */
};

/* A set of port names a kernel is known to have: "a, b, c*, d?" where c*
 * stands for c0, c1, ... (at least one) and d? is optional. */
struct ir_portset {
	bool known;
	size_t n;
	char **name;
	char *mode; /* per name: 0 required, '*' numbered, '?' optional */
};

struct ir_port {
	char *name;
	bool out;
	size_t conn; /* index in g->conn */
};

/* A key of a section: its value (NULL when absent) and where it was set. */
struct ir_key {
	char *val;
	int line;     /* 0 with val set: from the command line (-D) */
};

struct ir_kernel {
	char *name;
	int line;
	struct ir_key library, function, process, args, signature, in, out;
	struct ir_key replicas, split, order;  /* replicas.c */
	int rep;       /* -1; else this replica's index (NAME#rep) */
	bool seq;      /* a replica behind an ordered split: its input records
	                  carry a sequence header, its outputs must too */
	/* resolved by check.c */
	size_t proc;
	bool func;                     /* a function kernel (signature) */
	enum ir_type ret;
	enum ir_type param[IR_MAX_PARAMS];
	size_t nparam;
	struct ir_value arg[IR_MAX_ARGS];
	size_t narg;
	size_t lib;                    /* index in g->lib; SIZE_MAX: none */
	void *fn;                      /* the symbol */
	const struct ipc_kernel_spec *spec;
	struct ir_portset pin, pout;
	struct ir_port *port;          /* inputs, then outputs, each sorted */
	size_t nport, nin;
};

enum ir_restart { IR_RESTART_NO = 0, IR_RESTART_ON_FAILURE, IR_RESTART_ALWAYS };

struct ir_process {
	char *name;
	int line;       /* 0: the implicit "main" */
	size_t nkernel;
	/* restart policy (restart.c) */
	struct ir_key restart, restart_max, restart_window;
	enum ir_restart policy;
	unsigned rmax;          /* restarts allowed within rwindow_ms */
	uint64_t rwindow_ms;
	struct ir_key host; /* host = NAME (hosts.c) */
	size_t hidx;        /* resolved: index in g->host; 0 without hosts */
};

struct ir_conn {
	char *fk, *fp, *tk, *tp; /* from kernel.port -> to kernel.port */
	int line;
	uint32_t capacity;       /* resolved: the graph's unless given */
	enum ipc_wait_mode wait; /* resolved: the graph's unless given */
	uint32_t batch;          /* bytes per batch record, resolved: the graph's
	                            unless batch_set */
	bool batch_set;
	size_t from, to;         /* kernel indexes */
	uint64_t id;             /* channel id in the buffer */
	uint32_t window;         /* window=N: frames in flight when bridged; 0: default */
	bool bridged;            /* resolved: its ends are on different hosts */
	size_t hfrom, hto;       /* resolved: the hosts of its ends */
};

struct ir_lib {
	char *name;   /* as written */
	char *path;   /* as loaded */
	void *dl;
};

struct ir_graph {
	char *file;  /* as given */
	char *dir;   /* its folder, for relative library paths */
	int graph_line;
	struct ir_key gname, gbuffer, gshm, gsem, gcapacity, gwait;
	struct ir_key gstall;    /* stall_timeout */
	struct ir_key gbatch, glinger;
	/* resolved */
	char *name;
	uint64_t buffer;
	enum ipc_shm_kind shm;   /* IPC_SHM_DEFAULT unless the topology says */
	enum ipc_sem_kind sem;
	uint32_t capacity;
	enum ipc_wait_mode wait;
	uint64_t stall_ms;       /* stall_timeout: 0 off */
	uint32_t batch;          /* default bytes per batch record (items) */
	uint64_t linger_ns;      /* longest a partly filled batch waits */
	bool threads;            /* --threads: every kernel in one process */
	struct ir_key ghosts;    /* [graph] hosts = a, b, ... (hosts.c) */
	char **host;             /* resolved host names, in rank order */
	char **host_addr;        /* per host: "address:port" or NULL (--host) */
	size_t nhost;            /* 0: no hosts key (one host) */
	struct ir_key gcurve;    /* [graph] curve = DIR: CURVE keys (--host) */
	char *curve;
	bool by_host;            /* --host: only host `me` runs here */
	size_t me;

	struct ir_kernel *kernel;
	size_t nkernel;
	struct ir_process *proc;
	size_t nproc;
	struct ir_conn *conn;
	size_t nconn;
	struct ir_lib *lib;
	size_t nlib;

	/* parameters: -D NAME=value (also [graph] keys), ${TOPDIR} */
	char *const *defines;
	size_t ndefines;
	bool *define_used;
	char *topdir;            /* absolute, without a trailing '/' */
	int *quiet_line;         /* lines whose parameter failed: no more errors */
	size_t nquiet;

	struct ir_diag *diag;
	size_t ndiag, max_diag;
	bool diag_truncated;
	bool over_kernels, over_procs; /* "more than N" said (loader.c) */
};

struct ir_load_opts {
	bool load;                  /* dlopen libraries and check symbols */
	bool threads;               /* --threads */
	char *const *defines;       /* -D key=value, in order */
	size_t ndefines;
	size_t max_diags;           /* stop collecting after this many; 0: 50 */
	const char *host;           /* --host NAME: run only that host's part */
};

/* loader.c */
void ir_diag(struct ir_graph *g, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An error that another one may cause (a port "never connected" because
 * its connection named a misspelt kernel): printed after the others. */
void ir_diag_after(struct ir_graph *g, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ir_diags_print(const struct ir_graph *g, FILE *f);
int ir_parse(struct ir_graph *g, const char *file, const char *text, size_t len);
int ir_load_file(struct ir_graph *g, const char *path,
                 const struct ir_load_opts *o);
int ir_load_mem(struct ir_graph *g, const char *file, const char *text,
                size_t len, const struct ir_load_opts *o);
void ir_graph_free(struct ir_graph *g);

/* check.c */
int ir_check(struct ir_graph *g, const struct ir_load_opts *o);

/* replicas.c: kernels with `replicas = N` become NAME#0..NAME#N-1 behind an
 * inserted split (NAME#split) and merge (NAME#merge); before the checks. */
#define IR_MAX_REPLICAS 64
void ir_replicas_expand(struct ir_graph *g);

/* values.c */
const char *ir_type_name(enum ir_type t);
enum ir_type ir_type_parse(const char *s, size_t n);
size_t ir_type_size(enum ir_type t);
int ir_parse_uint(const char *s, uint64_t max, uint64_t *out);
int ir_parse_size(const char *s, uint64_t *out);
/* A duration: a number with an optional unit ms, s (the default) or m, e.g.
 * 500ms, 5s, 2.5, 1m, into milliseconds. -1 when malformed or over a day. */
int ir_parse_duration_ms(const char *s, uint64_t *out);
int ir_parse_value(enum ir_type t, const char *s, struct ir_value *out,
                   const char **why);
int ir_parse_signature(const char *s, enum ir_type *ret, enum ir_type *param,
                       size_t *n, char *err, size_t errlen);
struct ir_arg_token {
	char *type;  /* NULL: untyped */
	char *value; /* unquoted */
};
int ir_split_args(const char *s, struct ir_arg_token **out, size_t *n,
                  char *err, size_t errlen);
void ir_free_args(struct ir_arg_token *a, size_t n);
int ir_portset_parse(struct ir_portset *ps, const char *s, char *err,
                     size_t errlen);
void ir_portset_free(struct ir_portset *ps);
/* Index of the entry port matches (c* matches c0, c12, ...), or -1. */
int ir_portset_match(const struct ir_portset *ps, const char *port);
void ir_portset_format(const struct ir_portset *ps, char *out, size_t len);
bool ir_name_ok(const char *s);
const char *ir_suggest(const char *word, const char *const *cand, size_t n);
char *ir_strdup(const char *s);
char *ir_strndup(const char *s, size_t n);
char *ir_trim(char *s);
void *ir_xrealloc(void *p, size_t n);
/* Parameters: the value of NAME, or NULL when it is not set. */
typedef const char *(*ir_param_lookup)(void *ctx, const char *name);
bool ir_param_name_ok(const char *s, size_t n);
/* in with every ${NAME} / ${NAME:-default} replaced (and $${ read as a
 * literal ${) into *out (malloc'd). -1 with a message in err when a
 * parameter is malformed or not set. */
int ir_expand(const char *in, ir_param_lookup look, void *ctx, char **out,
              char *err, size_t errlen);

/* libs.c */
int ir_libs_resolve(struct ir_graph *g);
/* Load library name as a topology in folder dir ("" or ending in '/') would:
 * a '/' makes it a path, a bare name is searched for. Only a regular file is
 * loaded. *path: the file loaded (malloc'd); NULL and why on failure. */
void *ir_libs_open(const char *dir, const char *name, char **path, char *why,
                   size_t whylen);
void ir_libs_close(struct ir_graph *g);
const char *ir_exe_dir(void);

/* list.c: ipcrun --list LIBRARY [NAME] (only that kernel or function); the
 * exit code */
int ir_list_library(const char *name, const char *only, FILE *f);
/* suggest.c: "did you mean" for libs.c; out (len bytes) holds the hint,
 * returned, or NULL when nothing is close */
const char *ir_suggest_function(void *dl, const char *name, char *out,
                                size_t len);
const char *ir_suggest_library(const struct ir_graph *g, const char *name,
                               char *out, size_t len);
/* hosts.c: [graph] hosts, host = on processes, bridged edges */
void ir_hosts_check(struct ir_graph *g);
void ir_hosts_collapse(struct ir_graph *g);
void ir_hosts_free(struct ir_graph *g);
int ir_hosts_localize(struct ir_graph *g, const char *me);
const char *ir_proc_host(const struct ir_graph *g, size_t proc);

/* print.c */
void ir_print_check(const struct ir_graph *g, FILE *f);
void ir_print_dot(const struct ir_graph *g, FILE *f);
void ir_format_size(uint64_t n, char *out, size_t len);

/* ---- runs ---- */

enum ir_kstate {
	IR_K_PENDING = 0, /* not returned (yet) */
	IR_K_RETURNED,    /* returned rc */
	IR_K_CRASHED,     /* its thread took signal signo */
	IR_K_LOST,        /* its process died of something else */
};

struct ir_kernel_rt {
	enum ir_kstate state;
	int rc;
	int signo;
	uint64_t cpu_ns;
	struct ipc__port_stats *pst; /* per port, as ir_kernel.port */
	bool setup_failed;
	/* failure reports (report.c): root causes first, by time */
	bool peer;         /* a port ended because its peer died or failed */
	bool has_addr;     /* addr is the fault address */
	uint64_t addr;
	uint64_t t_fail;   /* monotonic ns of the failure, 0: unknown */
	char where[160];   /* function+offset (library) of a crash, or "" */
	bool remote;                 /* runs on another host (net.c) */
};

struct ir_proc_rt {
	pid_t pid;
	int ctrl;          /* parent -> process: 'G' go, 'S' stop */
	int status;        /* process -> parent: text lines */
	char buf[4096];
	size_t len;
	bool ready, closed, reaped, setup_failed;
	bool killed;       /* SIGKILLed by ipcrun */
	bool remote;       /* placed on another host: not started here (net.c) */
	int wstatus;
	/* restart policies (run.c) */
	unsigned restarts;     /* times it was started again */
	uint64_t lost;         /* records lost in its deaths */
	bool restarting;       /* started again, not running its kernels yet */
	uint64_t *rtimes;      /* when it was restarted (monotonic ns) */
};

/* net.c: this host's bridge process (ipcrun-net) under an MPI launcher */
struct ir_net_rt {
	bool on;           /* hosts, a launcher, and this is rank `rank` */
	int rank;
	pid_t pid;
	int ctrl, status;  /* pipes to and from the bridge */
	char buf[1024];
	size_t len;
	bool ready, told, reaped, said, peer_stop, final_told;
	uint8_t told_by[IR_MAX_HOSTS / 8]; /* hosts whose stop was reported */
	int verdict;       /* start barrier: 0 waiting, 1 go, -1 a host cannot */
};

struct ir_run_opts {
	bool stats;
	bool progress;
	bool verbose;  /* the run's handle and processes on stderr */
};

struct ir_run {
	struct ir_graph *g;
	struct ir_run_opts o;
	pid_t parent;                    /* ipcrun's pid */
	char handle[IPC_HANDLE_MAX + 1];
	struct ipc_buffer_opts bopts;
	struct ipc_buffer *buf;
	struct ir_kernel_rt *krt;
	struct ir_proc_rt *prt;
	uint64_t t_start, t_go, t_end;   /* monotonic ns */
	int stop_signal;                 /* first SIGINT/SIGTERM/SIGHUP */
	int interrupts;
	bool stopping, killed, failed;
	uint64_t kill_at;                /* 0, or when to SIGKILL survivors */
	/* --progress */
	uint64_t *prog_sent;
	uint64_t prog_t;
	bool prog_shown;
	/* term.c: the progress line's terminal and the kernels' output relay */
	bool prog_tty;                   /* stderr is a terminal */
	bool out_bol, err_bol;           /* the relayed streams are at a line start */
	int relay[2], relay_w[2];        /* kernels' stdout, stderr: -1 if direct */
	char prog_text[1024];            /* the line last shown, uncut */
	char record[4096];               /* the run's record (gc.c) */
	struct ir_status *status;        /* status.c */
	/* the watchdog (run.c): per kernel, shared with the kernel processes:
	 * 0 running, port index + 1 while it waits on that port, IR_WATCH_DONE
	 * once it returned */
	ipc_a32 *watch;
	uint64_t moved;                  /* records sent + received, all channels */
	uint64_t moved_at;               /* when that last changed */
	uint64_t stop_at;                /* when the first signal came */
	bool stalled;
	bool escalated;                  /* killed: not draining after a signal */
	struct ir_net_rt net;            /* net.c */
};

#define IR_WATCH_DONE 0xffffffffu
#define IR_STALL_DEFAULT_MS 5000
/* After a first Ctrl-C: how long the graph may go without moving a record
 * before ipcrun gives up draining it and kills it: while every running
 * kernel waits on a channel, and whatever the kernels do. */
#define IR_DRAIN_STALL_MS 2000
#define IR_DRAIN_IDLE_MS 10000

/* run.c */
int ir_run(struct ir_graph *g, const struct ir_run_opts *o);
uint64_t ir_now_ns(void);

/* runner.c: never returns */
void ir_runner_main(struct ir_run *r, size_t proc, int ctrl, int status)
	__attribute__((noreturn));

/* net.c */
int ir_net_launcher(int *rank, int *size);
int ir_net_check(const struct ir_graph *g, bool loaded);
void ir_net_setup(struct ir_run *r);
const char *ir_net_host(const struct ir_run *r);
int ir_net_spawn(struct ir_run *r, int sfd);
int ir_net_gate(struct ir_run *r, bool bad, bool ready);
void ir_net_stop(struct ir_run *r);
void ir_net_read(struct ir_run *r);
bool ir_net_reap(struct ir_run *r, pid_t pid, int ws);
void ir_net_final(struct ir_run *r, bool local_done);
bool ir_net_done(const struct ir_run *r);
void ir_net_kill(struct ir_run *r);
int ir_net_exit(const struct ir_run *r, int code);

/* call.c */
int ir_call_actor(const struct ir_kernel *gk, struct ipc_kernel *k);
int ir_call_function(const struct ir_kernel *gk, struct ipc_kernel *k);

/* report.c */
void ir_report_progress(struct ir_run *r, bool final);
void ir_report_stats(const struct ir_run *r, FILE *f);
int ir_report_failures(const struct ir_run *r, FILE *f);
void ir_report_restarts(const struct ir_run *r, FILE *f);

/* status.c: the counters segment and the run's status socket (status.h);
 * top.c: `ipcrun status` and `ipcrun top` */
int ir_status_start(struct ir_run *r);
void ir_status_collect(struct ir_run *r);
void ir_status_unlist(struct ir_run *r);
void ir_status_stop(struct ir_run *r);
int ir_status_fd(const struct ir_run *r);
int ir_status_timeout(struct ir_run *r, uint64_t now);
void ir_status_serve(struct ir_run *r);
int ir_status_dir(char *out, size_t len);
int ir_status_main(int argc, char **argv);
int ir_top_main(int argc, char **argv);

/* restart.c: restart policies of [process:NAME] */
void ir_restart_resolve(struct ir_graph *g);
const char *ir_restart_name(enum ir_restart p);

/* term.c: the progress line on a terminal (or a plain line in a file), and
 * the relay of kernels' output through ipcrun while that line is shown */
struct pollfd;
#define IR_PROGRESS_PLAIN_MS 2000 /* a plain progress line this often */
void ir_term_setup(struct ir_run *r);    /* before forking */
void ir_term_child(struct ir_run *r);    /* in a kernel process, after fork */
size_t ir_term_pollfds(const struct ir_run *r, struct pollfd *pf); /* <= 2 */
void ir_term_poll(struct ir_run *r, const struct pollfd *pf, size_t n);
void ir_term_clear(struct ir_run *r);    /* before ipcrun writes to stderr */
void ir_term_show(struct ir_run *r, const char *text);
void ir_term_end(struct ir_run *r);      /* every kernel process is gone */
/* Cut line to fit cols columns, with an ellipsis; its new length. */
size_t ir_term_fit(char *line, size_t cols);

/* gc.c */
int ir_gc_record(struct ir_run *r);
void ir_gc_forget(struct ir_run *r);
int ir_gc_collect(bool verbose);

#endif
