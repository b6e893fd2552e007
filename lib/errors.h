/* SPDX-License-Identifier: MIT */
/*
 * errors.h - a list of "file:line: message" diagnostics.
 *
 * Loaders (config, Router table, account files) report every problem they
 * find instead of stopping at the first, so that `waypost check` can show
 * them all at once.  The list is bounded by WP_ERRORS_MAX; past that one
 * last "too many errors" line is kept.  Warnings are kept apart: they do not
 * make a load fail.
 */
#ifndef WP_ERRORS_H
#define WP_ERRORS_H

#include <stdarg.h>
#include <stddef.h>

struct wp_errors {
    char **msgs;
    size_t count; /* errors */
    char **warns;
    size_t nwarn; /* warnings */
    int truncated;
};

void wp_errors_init(struct wp_errors *e);
void wp_errors_free(struct wp_errors *e);

/* Add "file:line: message"; line 0 leaves the line out. */
void wp_error(struct wp_errors *e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void wp_warning(struct wp_errors *e, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Move all messages of src to the end of dst (src is emptied). */
void wp_errors_move(struct wp_errors *dst, struct wp_errors *src);

#endif
