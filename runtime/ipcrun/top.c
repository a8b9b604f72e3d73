/*
 * `ipcrun status` and `ipcrun top`: the clients of the runs' status sockets
 * (status.h). Read-only: they ask, the run's supervisor answers; only runs
 * of this user are seen (the state folder is the user's, mode 0700, and
 * each run checks its peer's uid).
 *
 *   ipcrun status [--json]                 every run: name, topology, pid,
 *                                          age, state
 *   ipcrun status [--json] [-i S] RUN      one run: kernels, channels, rates
 *                                          measured over S seconds (0.5)
 *   ipcrun top [-d S] [-n N] RUN           the same, refreshed every S
 *                                          seconds (1) until q, Ctrl-C, the
 *                                          end of the run, or N screens
 *
 * RUN is a graph's name, or ipcrun's pid when two runs share a name.
 * Exit status: 0 (also when the run top watched ended); 1 no such run (or it
 * ended before status could ask); 2 bad command line.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ipcrun.h"

#define ASK_TIMEOUT_MS 2000

/* Ask the run behind socket path one request; its answer (malloc'd) in
 * *out. 0, -ECONNREFUSED / -ENOENT when the run is gone, or -errno. */
static int ask(const char *path, const char *req, char **out)
{
	*out = NULL;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	struct timeval tv = {.tv_sec = ASK_TIMEOUT_MS / 1000,
	                     .tv_usec = (ASK_TIMEOUT_MS % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
		int e = errno;
		close(fd);
		return -e;
	}
	char line[128];
	int n = snprintf(line, sizeof line, "%s\n", req);
	if (write(fd, line, (size_t)n) != n) {
		int e = errno;
		close(fd);
		return -e;
	}
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			close(fd);
			return -ENOMEM;
		}
		ssize_t got = read(fd, buf + len, cap - len - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			int e = got < 0 ? errno : 0;
			close(fd);
			if (e) {
				free(buf);
				return -e;
			}
			break;
		}
		len += (size_t)got;
		if (cap - len < 1024) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	buf[len] = 0;
	if (len == 0) {
		free(buf);
		return -ECONNRESET; /* it ended while we asked */
	}
	*out = buf;
	return 0;
}

struct run_ref {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *summary; /* the answer to "summary" */
	char name[IR_NAME_MAX + 1];
	int pid;
};

static bool sock_name(const char *n, int *pid)
{
	size_t l = strlen(n);
	return l > 12 && strcmp(n + l - 5, ".sock") == 0 &&
	       sscanf(n, "ipcrun.%d.", pid) == 1 && *pid > 0;
}

/* The runs of this user that answer; stale sockets of dead runs go. */
static size_t list_runs(struct run_ref **out)
{
	*out = NULL;
	char dir[PATH_MAX];
	if (ir_status_dir(dir, sizeof dir) < 0)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t n = 0;
	struct run_ref *v = NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid;
		if (!sock_name(e->d_name, &pid))
			continue;
		struct run_ref rr = {.pid = pid};
		if (snprintf(rr.path, sizeof rr.path, "%s/%s", dir, e->d_name) >=
		    (int)sizeof rr.path)
			continue;
		int rc = ask(rr.path, "summary", &rr.summary);
		if (rc == -ECONNREFUSED && kill(pid, 0) && errno == ESRCH) {
			unlink(rr.path); /* its ipcrun was killed */
			continue;
		}
		if (rc < 0)
			continue;
		sscanf(rr.summary, "%40[^\t]", rr.name);
		v = ir_xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = rr;
	}
	closedir(d);
	*out = v;
	return n;
}

static void free_runs(struct run_ref *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].summary);
	free(v);
}

/* The run named (or with the pid) want; prints why not and returns -1. */
static int find_run(const char *want, struct run_ref *out)
{
	struct run_ref *v;
	size_t n = list_runs(&v), hit = SIZE_MAX, hits = 0;
	char *end;
	long pid = strtol(want, &end, 10);
	for (size_t i = 0; i < n; i++) {
		if ((*end == 0 && pid == v[i].pid) || strcmp(v[i].name, want) == 0) {
			hit = i;
			hits++;
		}
	}
	if (hits == 1) {
		*out = v[hit];
		out->summary = NULL;
		free_runs(v, n);
		return 0;
	}
	if (hits > 1) {
		fprintf(stderr, "ipcrun: %zu runs are named '%s'; give one's pid:", hits,
		        want);
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].name, want) == 0)
				fprintf(stderr, " %d", v[i].pid);
		fputc('\n', stderr);
	} else {
		fprintf(stderr, "ipcrun: no run '%s' of this user is running", want);
		if (n) {
			fputs(" (running:", stderr);
			for (size_t i = 0; i < n; i++)
				fprintf(stderr, " %s [%d]", v[i].name, v[i].pid);
			fputc(')', stderr);
		}
		fputc('\n', stderr);
	}
	free_runs(v, n);
	return -1;
}

static int term_cols(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 100;
}

static int term_rows(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int list_all(bool json)
{
	struct run_ref *v;
	size_t n = list_runs(&v);
	if (json) {
		fputs("[", stdout);
		size_t shown = 0;
		for (size_t i = 0; i < n; i++) {
			char *a;
			if (ask(v[i].path, "summary-json", &a) < 0)
				continue;
			a[strcspn(a, "\n")] = 0;
			printf("%s\n  %s", shown++ ? "," : "", a);
			free(a);
		}
		puts(shown ? "\n]" : "]");
	} else if (n == 0) {
		puts("no runs");
	} else {
		printf("%-20s %-32s %8s %8s %-10s %7s %8s\n", "NAME", "TOPOLOGY", "PID",
		       "AGE", "STATE", "KERNELS", "RESTARTS");
		for (size_t i = 0; i < n; i++) {
			char name[64] = "", topo[PATH_MAX] = "", state[32] = "";
			int pid = 0;
			double age = 0;
			unsigned nk = 0, rs = 0;
			if (sscanf(v[i].summary, "%63[^\t]\t%4095[^\t]\t%d\t%lf\t%31[^\t]\t%u\t%u",
			           name, topo, &pid, &age, state, &nk, &rs) != 7)
				continue;
			char ages[32];
			if (age >= 3600)
				snprintf(ages, sizeof ages, "%.0fh%02.0fm", age / 3600,
				         (double)((long)age % 3600 / 60));
			else if (age >= 60)
				snprintf(ages, sizeof ages, "%.0fm%02lds", (double)((long)age / 60),
				         (long)age % 60);
			else
				snprintf(ages, sizeof ages, "%.0fs", age);
			printf("%-20s %-32s %8d %8s %-10s %7u %8u\n", name, topo, pid, ages,
			       state, nk, rs);
		}
	}
	free_runs(v, n);
	return 0;
}

int ir_status_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"json", no_argument, NULL, 'j'},
		{"interval", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	double interval = 0.5;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ji:h", lo, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'i':
			interval = strtod(optarg, NULL);
			if (!(interval >= 0.2 && interval <= 60)) {
				fputs("ipcrun status: --interval takes 0.2 to 60 seconds\n", stderr);
				return IR_EXIT_USAGE;
			}
			break;
		case 'h':
			puts("usage: ipcrun status [--json]            every run of this user\n"
			     "       ipcrun status [--json] [-i S] RUN one run (its name or pid):\n"
			     "         kernels' states, channels' records/s, bytes/s, fill and\n"
			     "         time blocked, measured over S seconds (default 0.5)");
			return IR_EXIT_OK;
		default:
			fputs("ipcrun: try 'ipcrun status --help'\n", stderr);
			return IR_EXIT_USAGE;
		}
	}
	if (optind == argc)
		return list_all(json);
	if (optind + 1 != argc) {
		fputs("ipcrun status: one run at a time\n", stderr);
		return IR_EXIT_USAGE;
	}
	struct run_ref rr;
	if (find_run(argv[optind], &rr) < 0)
		return IR_EXIT_FAILED;
	char *a = NULL;
	if (ask(rr.path, "sample", &a) < 0)
		goto gone;
	free(a);
	sleep_ms((long)(interval * 1000));
	char req[32];
	if (json)
		snprintf(req, sizeof req, "json");
	else
		snprintf(req, sizeof req, "text %d", isatty(STDOUT_FILENO) ? term_cols() : 100);
	if (ask(rr.path, req, &a) < 0)
		goto gone;
	fputs(a, stdout);
	free(a);
	return IR_EXIT_OK;
gone:
	fprintf(stderr, "ipcrun: run '%s' (pid %d) ended\n", rr.name, rr.pid);
	return IR_EXIT_FAILED;
}

static volatile sig_atomic_t top_quit;

static void on_quit(int sig)
{
	(void)sig;
	top_quit = 1;
}

int ir_top_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"delay", required_argument, NULL, 'd'},
		{"iterations", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	double delay = 1;
	long iters = -1;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:n:h", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			delay = strtod(optarg, NULL);
			if (!(delay >= 0.2 && delay <= 60)) {
				fputs("ipcrun top: -d takes 0.2 to 60 seconds\n", stderr);
				return IR_EXIT_USAGE;
			}
			break;
		case 'n':
			iters = strtol(optarg, NULL, 10);
			if (iters < 1) {
				fputs("ipcrun top: -n takes a count of screens, 1 or more\n", stderr);
				return IR_EXIT_USAGE;
			}
			break;
		case 'h':
			puts("usage: ipcrun top [-d SECONDS] [-n SCREENS] RUN\n"
			     "  RUN's kernels and channels, refreshed every SECONDS (1), the\n"
			     "  bottleneck (a full channel whose consumer is busy) in reverse\n"
			     "  video; q or Ctrl-C quits; it also ends with the run");
			return IR_EXIT_OK;
		default:
			fputs("ipcrun: try 'ipcrun top --help'\n", stderr);
			return IR_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fputs("usage: ipcrun top [-d SECONDS] [-n SCREENS] RUN\n", stderr);
		return IR_EXIT_USAGE;
	}
	struct run_ref rr;
	if (find_run(argv[optind], &rr) < 0)
		return IR_EXIT_FAILED;
	bool tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
	struct termios old, raw;
	if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
		raw = old;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, no cursor */
	} else {
		tty = false;
	}
	signal(SIGINT, on_quit);
	signal(SIGTERM, on_quit);
	int code = IR_EXIT_OK;
	bool ended = false;
	long shown = 0;
	char *a = NULL;
	if (ask(rr.path, "sample", &a) < 0)
		ended = true;
	free(a);
	for (long i = 0; !ended && !top_quit && (iters < 0 || i < iters); i++) {
		/* wait for the delay, or a key */
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		if (poll(&p, tty ? 1 : 0, (int)(delay * 1000)) > 0) {
			char k = 0;
			if (read(STDIN_FILENO, &k, 1) == 1 && (k == 'q' || k == 'Q'))
				break;
		}
		if (top_quit)
			break;
		char req[48];
		snprintf(req, sizeof req, "top %d %d", term_cols(), term_rows() - 2);
		if (ask(rr.path, req, &a) < 0) {
			ended = true;
			break;
		}
		shown++;
		if (tty)
			fputs("\033[H\033[2J", stdout);
		time_t now = time(NULL); /* the clock shown: not a wait */
		char ts[16];
		strftime(ts, sizeof ts, "%H:%M:%S", localtime(&now));
		printf("ipcrun top - %s - every %.1fs%s\n", ts, delay, tty ? ", q quits" : "");
		fputs(a, stdout);
		if (!tty)
			putchar('\n');
		fflush(stdout);
		free(a);
		a = NULL;
	}
	if (tty) {
		fputs("\033[?25h\033[?1049l", stdout);
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
	}
	/* a run watched to its end is not an error; one gone before the first
	 * screen is, as for status */
	if (ended) {
		fprintf(stderr, "ipcrun: run '%s' (pid %d) ended\n", rr.name, rr.pid);
		if (!shown)
			code = IR_EXIT_FAILED;
	}
	return code;
}
