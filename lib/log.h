/* SPDX-License-Identifier: MIT */
/*
 * log.h - logging to stderr or syslog, with levels.
 *
 * wp_log_open() is called before any thread starts (the ident and the
 * destination are fixed from then on); wp_log_set() applies a reloaded
 * configuration's level and syslog facility while threads run.  These are
 * the only process-wide settings outside the config snapshot, because
 * logging must work before a snapshot exists and while a reload fails.
 */
#ifndef WP_LOG_H
#define WP_LOG_H

#include <stdbool.h>

enum wp_log_level { WP_LOG_ERR = 0, WP_LOG_WARNING, WP_LOG_NOTICE, WP_LOG_INFO, WP_LOG_DEBUG };

/* ident: program name; to_syslog: false logs to stderr; facility: syslog facility name. */
bool wp_log_open(const char *ident, bool to_syslog, const char *facility, enum wp_log_level level);

/* A reload's log.level and log.facility (the facility matters under syslog
 * only).  Safe while other threads log: the level is one atomic word, and
 * glibc serialises openlog() with syslog().  False: unknown facility (the
 * level is applied all the same). */
bool wp_log_set(const char *facility, enum wp_log_level level);

/* Parse "error", "warning", "notice", "info", "debug". */
bool wp_log_level_parse(const char *name, enum wp_log_level *out);
bool wp_log_facility_valid(const char *name);

void wp_log(enum wp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether a line at level would be logged: lets a caller skip building one. */
bool wp_log_enabled(enum wp_log_level level);
#define wp_err(...) wp_log(WP_LOG_ERR, __VA_ARGS__)
#define wp_warn(...) wp_log(WP_LOG_WARNING, __VA_ARGS__)
#define wp_notice(...) wp_log(WP_LOG_NOTICE, __VA_ARGS__)
#define wp_info(...) wp_log(WP_LOG_INFO, __VA_ARGS__)
#define wp_debug(...) wp_log(WP_LOG_DEBUG, __VA_ARGS__)

#endif
