/* SPDX-License-Identifier: MIT */
/*
 * log.h - logging to stderr or syslog, with levels.
 *
 * wp_log_open() is called once, before any thread starts; after that the
 * logging settings are read-only (they are the only process-wide settings
 * outside the config snapshot, because logging must work before a snapshot
 * exists and while a reload fails).
 */
#ifndef WP_LOG_H
#define WP_LOG_H

#include <stdbool.h>

enum wp_log_level { WP_LOG_ERR = 0, WP_LOG_WARNING, WP_LOG_NOTICE, WP_LOG_INFO, WP_LOG_DEBUG };

/* ident: program name; to_syslog: false logs to stderr; facility: syslog facility name. */
bool wp_log_open(const char *ident, bool to_syslog, const char *facility, enum wp_log_level level);

/* Parse "error", "warning", "notice", "info", "debug". */
bool wp_log_level_parse(const char *name, enum wp_log_level *out);
bool wp_log_facility_valid(const char *name);

void wp_log(enum wp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define wp_err(...) wp_log(WP_LOG_ERR, __VA_ARGS__)
#define wp_warn(...) wp_log(WP_LOG_WARNING, __VA_ARGS__)
#define wp_notice(...) wp_log(WP_LOG_NOTICE, __VA_ARGS__)
#define wp_info(...) wp_log(WP_LOG_INFO, __VA_ARGS__)
#define wp_debug(...) wp_log(WP_LOG_DEBUG, __VA_ARGS__)

#endif
