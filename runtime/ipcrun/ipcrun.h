/*
 * ipcrun: the model of a topology and of a run, shared by every file of the
 * executable.
 *
 *   loader.c   INI text -> struct ir_graph (sections and keys, with lines)
 *   check.c    the whole-graph checks and the resolution of names
 *   values.c   types, numbers, sizes, args, signatures, port sets, hints
 *   libs.c     finding and loading kernel libraries, IPC_KERNEL specs
 *   print.c    --check and --dot
 *   run.c      the supervisor: buffer, processes, signals, the end
 *   runner.c   inside a kernel process: threads, channel ends, crashes
 *   call.c     libffi calls of actor kernels and the function-kernel driver
 *   report.c   --stats, --progress and the failure report
 *   gc.c       the record of runs, and --gc
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

struct ir_process {
	char *name;
	int line;       /* 0: the implicit "main" */
	size_t nkernel;
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
	struct ir_key gbatch, glinger;
	/* resolved */
	char *name;
	uint64_t buffer;
	enum ipc_shm_kind shm;   /* IPC_SHM_DEFAULT unless the topology says */
	enum ipc_sem_kind sem;
	uint32_t capacity;
	enum ipc_wait_mode wait;
	uint32_t batch;          /* default bytes per batch record (items) */
	uint64_t linger_ns;      /* longest a partly filled batch waits */
	bool threads;            /* --threads: every kernel in one process */

	struct ir_kernel *kernel;
	size_t nkernel;
	struct ir_process *proc;
	size_t nproc;
	struct ir_conn *conn;
	size_t nconn;
	struct ir_lib *lib;
	size_t nlib;

	struct ir_diag *diag;
	size_t ndiag, max_diag;
	bool diag_truncated;
};

struct ir_load_opts {
	bool load;                  /* dlopen libraries and check symbols */
	bool threads;               /* --threads */
	char *const *defines;       /* -D key=value, in order */
	size_t ndefines;
	size_t max_diags;           /* stop collecting after this many; 0: 50 */
};

/* loader.c */
void ir_diag(struct ir_graph *g, int line, const char *fmt, ...)
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

/* values.c */
const char *ir_type_name(enum ir_type t);
enum ir_type ir_type_parse(const char *s, size_t n);
size_t ir_type_size(enum ir_type t);
int ir_parse_uint(const char *s, uint64_t max, uint64_t *out);
int ir_parse_size(const char *s, uint64_t *out);
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

/* libs.c */
int ir_libs_resolve(struct ir_graph *g);
void ir_libs_close(struct ir_graph *g);
const char *ir_exe_dir(void);

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
};

struct ir_proc_rt {
	pid_t pid;
	int ctrl;          /* parent -> process: 'G' go, 'S' stop */
	int status;        /* process -> parent: text lines */
	char buf[4096];
	size_t len;
	bool ready, closed, reaped, setup_failed;
	bool killed;       /* SIGKILLed by ipcrun */
	int wstatus;
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
	char record[4096];               /* the run's record (gc.c) */
};

/* run.c */
int ir_run(struct ir_graph *g, const struct ir_run_opts *o);
uint64_t ir_now_ns(void);

/* runner.c: never returns */
void ir_runner_main(struct ir_run *r, size_t proc, int ctrl, int status)
	__attribute__((noreturn));

/* call.c */
int ir_call_actor(const struct ir_kernel *gk, struct ipc_kernel *k);
int ir_call_function(const struct ir_kernel *gk, struct ipc_kernel *k);

/* report.c */
void ir_report_progress(struct ir_run *r, bool final);
void ir_report_stats(const struct ir_run *r, FILE *f);
int ir_report_failures(const struct ir_run *r, FILE *f);

/* gc.c */
int ir_gc_record(struct ir_run *r);
void ir_gc_forget(struct ir_run *r);
int ir_gc_collect(bool verbose);

#endif
