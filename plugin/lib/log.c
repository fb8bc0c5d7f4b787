#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The process's one log destination, set in main and again on SIGHUP (the
 * agent's reload) while other threads log: each setting is an atomic of its
 * own, read once per line. A line logged during a reload may see some new
 * settings and some old, and goes to stderr or to syslog whole. */
static _Atomic int log_max = LOG_INFO;
static _Atomic bool log_syslog, log_mirror;
static _Atomic(const char *) log_ident;

static const char *const names[] = {"emerg",   "alert",	 "crit", "err",
				    "warning", "notice", "info", "debug"};

/* The connection to syslog opens before lines go there, and closes after
 * they stopped (glibc's openlog, syslog and closelog share a lock). */
void nf_log_setup(int max_level, bool use_syslog, const char *ident)
{
	bool was = log_syslog;
	log_ident = ident;
	log_max = max_level;
	if (use_syslog && !was)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = use_syslog;
	if (!use_syslog && was)
		closelog();
}

void nf_log_mirror_stderr(bool on)
{
	log_mirror = on;
}

int nf_log_level(const char *name, int *ret_level)
{
	for (int i = LOG_ERR; i <= LOG_DEBUG; i++)
		if (strcmp(name, names[i]) == 0) {
			*ret_level = i;
			return 0;
		}
	return -EINVAL;
}

static void vlog(int level, const char *fmt, va_list ap, int r)
{
	char buf[2048];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (r && n >= 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, ": %s", strerror(-r));
	/* One event, one line: a newline in a name (a registered id, a cgroup's)
	 * must not forge the next line. */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	bool to_syslog = log_syslog;
	if (to_syslog)
		syslog(level, "%s", buf);
	/* one write per line, so lines from threads do not interleave */
	if (!to_syslog)
		fprintf(stderr, "%s: %s\n", names[level & 7], buf);
	else if (log_mirror) {
		const char *ident = log_ident;
		fprintf(stderr, "%s[%d]: %s\n", ident, (int)getpid(), buf);
	}
}

void nf_log(int level, const char *fmt, ...)
{
	va_list ap;
	if (level > log_max)
		return;
	va_start(ap, fmt);
	vlog(level, fmt, ap, 0);
	va_end(ap);
}

int nf_log_errno(int level, int r, const char *fmt, ...)
{
	va_list ap;
	if (level > log_max)
		return r;
	va_start(ap, fmt);
	vlog(level, fmt, ap, r);
	va_end(ap);
	return r;
}

int nf_log_invalid(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (LOG_ERR <= log_max)
		vlog(LOG_ERR, fmt, ap, 0);
	va_end(ap);
	return -EINVAL;
}
