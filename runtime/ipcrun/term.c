/*
 * The terminal during a run: the --progress line and what kernels write.
 *
 * On a terminal the progress line is one line: cut to the terminal's width
 * (with an ellipsis), redrawn in place with "\r...\033[K", and erased before
 * anything else is written to that terminal. Kernels run in other processes,
 * so ipcrun cannot know when they write; when the line is shown, their
 * standard output (if it is the same terminal as stderr) and their standard
 * error go through pipes that ipcrun relays: it erases the line, copies what
 * came, and draws the line again below it once the terminal is at the start
 * of a line (not while a kernel has written half a line). Kernel processes
 * keep line-buffered standard output, as they would have on the terminal.
 *
 * When stderr is not a terminal (a file, a pipe), --progress prints a plain
 * line every IR_PROGRESS_PLAIN_MS, with no carriage return or escape code,
 * and nothing is relayed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipcrun.h"

/* The relay's streams: kernels' stdout and stderr. */
static const int relay_fd[2] = {STDOUT_FILENO, STDERR_FILENO};

static void draw(struct ir_run *r);

static bool same_terminal(int a, int b)
{
	struct stat sa, sb;
	if (!isatty(a) || !isatty(b) || fstat(a, &sa) || fstat(b, &sb))
		return false;
	return sa.st_rdev == sb.st_rdev;
}

void ir_term_setup(struct ir_run *r)
{
	for (int i = 0; i < 2; i++)
		r->relay[i] = r->relay_w[i] = -1;
	r->out_bol = r->err_bol = true;
	r->prog_tty = r->o.progress && isatty(STDERR_FILENO);
	if (!r->prog_tty)
		return;
	for (int i = 0; i < 2; i++) {
		if (i == 0 && !same_terminal(STDOUT_FILENO, STDERR_FILENO))
			continue;
		int p[2];
		if (pipe2(p, O_CLOEXEC) != 0)
			continue; /* then that stream goes straight to the terminal */
		fcntl(p[0], F_SETFL, O_NONBLOCK);
		r->relay[i] = p[0];
		r->relay_w[i] = p[1];
	}
}

void ir_term_child(struct ir_run *r)
{
	for (int i = 0; i < 2; i++) {
		if (r->relay_w[i] < 0)
			continue;
		close(r->relay[i]);
		dup2(r->relay_w[i], relay_fd[i]);
		close(r->relay_w[i]);
	}
	if (r->relay_w[0] >= 0)
		setvbuf(stdout, NULL, _IOLBF, 0); /* as on the terminal */
}

/* ipcrun keeps the pipes' write ends until the end, so that a kernel
 * process forked later (a restart) can be given them too. */
static void close_writers(struct ir_run *r)
{
	for (int i = 0; i < 2; i++)
		if (r->relay_w[i] >= 0) {
			close(r->relay_w[i]);
			r->relay_w[i] = -1;
		}
}

void ir_term_clear(struct ir_run *r)
{
	if (r->prog_shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	r->prog_shown = false;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the terminal is gone: nothing better to do */
		p += w;
		n -= (size_t)w;
	}
}

/* Copy what is waiting on relay i; false once it has ended. */
static bool relay_once(struct ir_run *r, int i)
{
	char buf[16384];
	ssize_t n = read(r->relay[i], buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return true;
	if (n <= 0) {
		close(r->relay[i]);
		r->relay[i] = -1;
		return false;
	}
	bool shown = r->prog_shown;
	ir_term_clear(r);
	fflush(relay_fd[i] == STDOUT_FILENO ? stdout : stderr);
	write_all(relay_fd[i], buf, (size_t)n);
	*(i == 0 ? &r->out_bol : &r->err_bol) = buf[n - 1] == '\n';
	if (shown)
		draw(r); /* under what was written, when that ended a line */
	return true;
}

size_t ir_term_pollfds(const struct ir_run *r, struct pollfd *pf)
{
	size_t n = 0;
	for (int i = 0; i < 2; i++)
		if (r->relay[i] >= 0)
			pf[n++] = (struct pollfd){.fd = r->relay[i], .events = POLLIN};
	return n;
}

void ir_term_poll(struct ir_run *r, const struct pollfd *pf, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		if (!pf[j].revents)
			continue;
		for (int i = 0; i < 2; i++)
			if (r->relay[i] == pf[j].fd)
				relay_once(r, i);
	}
}

void ir_term_end(struct ir_run *r)
{
	/* Every kernel process is gone: copy what they left in the pipes
	 * (ipcrun, and maybe a process a kernel started, still hold the write
	 * ends: read only what is there), then erase the line. */
	r->prog_text[0] = 0; /* nothing to draw again */
	for (int i = 0; i < 2; i++) {
		for (int rounds = 0; r->relay[i] >= 0 && rounds < 4096; rounds++) {
			struct pollfd pf = {.fd = r->relay[i], .events = POLLIN};
			if (poll(&pf, 1, 0) <= 0 || !relay_once(r, i))
				break;
		}
		if (r->relay[i] >= 0) {
			close(r->relay[i]);
			r->relay[i] = -1;
		}
	}
	close_writers(r);
	ir_term_clear(r);
}

/* "…" where the terminal takes UTF-8, as the C library would decide from
 * the environment (ipcrun does not call setlocale: kernels inherit the C
 * locale). */
static const char *ellipsis(void)
{
	const char *v = NULL;
	const char *names[] = {"LC_ALL", "LC_CTYPE", "LANG"};
	for (size_t i = 0; i < sizeof names / sizeof *names && !v; i++) {
		v = getenv(names[i]);
		if (v && !*v)
			v = NULL;
	}
	if (v && (strcasestr(v, "utf-8") || strcasestr(v, "utf8")))
		return "\xe2\x80\xa6";
	return "...";
}

size_t ir_term_fit(char *line, size_t cols)
{
	/* the last column is left free: a line that fills it leaves some
	 * terminals waiting to wrap, and the next "\r" lands a line lower */
	size_t len = strlen(line);
	if (cols < 2)
		cols = 2;
	size_t max = cols - 1;
	if (len <= max)
		return len;
	const char *e = ellipsis();
	size_t ecols = e[0] == '.' ? 3 : 1;
	size_t keep = max > ecols ? max - ecols : 0;
	/* names and figures are ASCII: one byte is one column; line holds
	 * more than max bytes, so the ellipsis (at most 3) fits */
	if (max <= ecols)
		e = "";
	memcpy(line + keep, e, strlen(e) + 1);
	return strlen(line);
}

void ir_term_show(struct ir_run *r, const char *text)
{
	if (!r->prog_tty) {
		fprintf(stderr, "ipcrun: %s\n", text);
		fflush(stderr);
		return;
	}
	snprintf(r->prog_text, sizeof r->prog_text, "%s", text);
	draw(r);
}

static void draw(struct ir_run *r)
{
	if (!r->out_bol || !r->err_bol || !r->prog_text[0])
		return; /* a kernel is in the middle of a line */
	size_t cols = 80;
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		cols = ws.ws_col;
	char line[sizeof r->prog_text];
	snprintf(line, sizeof line, "%s", r->prog_text);
	ir_term_fit(line, cols);
	fprintf(stderr, "\r%s\033[K", line);
	fflush(stderr);
	r->prog_shown = true;
}
