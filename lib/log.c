/* SPDX-License-Identifier: MIT */
/*
 * log.c - stderr or syslog logging with a level threshold.
 */
#include "config.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "lib/log.h"
#include "lib/util.h"

/* ident and to_syslog are written by wp_log_open() before threads exist and
 * read-only afterwards; level changes on reload (wp_log_set), hence atomic. */
static struct {
    char ident[64];
    bool to_syslog;
    atomic_int level;
} log_settings = {"waypost", false, WP_LOG_INFO};

static const char *const level_names[] = {"error", "warning", "notice", "info", "debug"};
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

static const struct {
    const char *name;
    int code;
} facilities[] = {
    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

bool wp_log_level_parse(const char *name, enum wp_log_level *out)
{
    for (int i = 0; i <= WP_LOG_DEBUG; i++) {
        if (wp_strieq(name, level_names[i])) {
            *out = (enum wp_log_level)i;
            return true;
        }
    }
    return false;
}

static int facility_code(const char *name)
{
    for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
        if (wp_strieq(name, facilities[i].name))
            return facilities[i].code;
    return -1;
}

bool wp_log_facility_valid(const char *name)
{
    return facility_code(name) >= 0;
}

bool wp_log_open(const char *ident, bool to_syslog, const char *facility, enum wp_log_level level)
{
    wp_strlcpy(log_settings.ident, ident, sizeof(log_settings.ident));
    log_settings.to_syslog = to_syslog;
    atomic_store_explicit(&log_settings.level, (int)level, memory_order_relaxed);
    if (to_syslog) {
        int code = facility_code(facility ? facility : "mail");
        if (code < 0)
            return false;
        openlog(log_settings.ident, LOG_PID | LOG_NDELAY, code);
    }
    return true;
}

bool wp_log_set(const char *facility, enum wp_log_level level)
{
    atomic_store_explicit(&log_settings.level, (int)level, memory_order_relaxed);
    if (!log_settings.to_syslog)
        return true;
    int code = facility_code(facility ? facility : "mail");
    if (code < 0)
        return false;
    openlog(log_settings.ident, LOG_PID | LOG_NDELAY, code); /* the same ident, the new facility */
    return true;
}

bool wp_log_enabled(enum wp_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_settings.level, memory_order_relaxed);
}

void wp_log(enum wp_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load_explicit(&log_settings.level, memory_order_relaxed))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Never let a hostile string forge log lines. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    if (log_settings.to_syslog)
        syslog(level_prio[level], "%s", msg);
    else
        fprintf(stderr, "%s: %s: %s\n", log_settings.ident, level_names[level], msg);
}
