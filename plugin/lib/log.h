/* The log of numafollowd and numafollow-hook: stderr or syslog (facility
 * daemon, "IDENT[PID]: " lines), with syslog's levels (LOG_ERR...). */
#ifndef NF_LOG_H
#define NF_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Safe while other threads log (a reload on SIGHUP). IDENT must live for
 * the process: syslog keeps it. */
void nf_log_setup(int max_level, bool use_syslog, const char *ident);
/* With syslog, also writes each line to stderr as openlog's LOG_PERROR would:
 * for a program run by hand (the hook's --verbose). */
void nf_log_mirror_stderr(bool on);
/* The level's name ("err", "warning", "notice", "info", "debug") to LOG_*;
 * -EINVAL if unknown. */
int nf_log_level(const char *name, int *ret_level);
void nf_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs "<message>: <strerror(-R)>" and returns R (a -errno), for
 * `return nf_log_errno(LOG_ERR, r, "opening '%s'", path);`. */
int nf_log_errno(int level, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Logs bad input (a usage or config error, said as it is, at LOG_ERR) and
 * returns -EINVAL. */
int nf_log_invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
