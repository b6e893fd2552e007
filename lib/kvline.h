/* SPDX-License-Identifier: MIT */
/*
 * kvline.h - one decision log line as "key=value" fields.
 *
 * The fields go out in the order the caller adds them (each daemon's
 * LOGGING section in its man page fixes that order).  A value that is
 * empty, or holds a space, '"', '\' or '=', is written in double quotes
 * with '"' and '\' escaped; every byte below 0x20 and 0x7f is written as
 * \xNN, so a hostile address or header never starts a new log line or
 * hides a field.  The line is cut (ending in "...") at WP_KVLINE_MAX bytes.
 */
#ifndef WP_KVLINE_H
#define WP_KVLINE_H

#include <stdbool.h>
#include <stddef.h>

#define WP_KVLINE_MAX 2048

struct wp_kvline {
    char buf[WP_KVLINE_MAX];
    size_t len;
    bool cut;
};

void wp_kvline_init(struct wp_kvline *l);
/* Append " key=value" (no leading space for the first field); value NULL
 * writes key="" like the empty string. */
void wp_kvline_add(struct wp_kvline *l, const char *key, const char *value);
/* The same with a printf-formatted value. */
void wp_kvline_addf(struct wp_kvline *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The line so far (always NUL-terminated). */
const char *wp_kvline_text(const struct wp_kvline *l);

#endif
