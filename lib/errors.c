/* SPDX-License-Identifier: MIT */
/*
 * errors.c - bounded list of "file:line: message" diagnostics.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/defaults.h"
#include "lib/errors.h"
#include "lib/util.h"

void wp_errors_init(struct wp_errors *e)
{
    memset(e, 0, sizeof(*e));
}

void wp_errors_free(struct wp_errors *e)
{
    for (size_t i = 0; i < e->count; i++)
        free(e->msgs[i]);
    for (size_t i = 0; i < e->nwarn; i++)
        free(e->warns[i]);
    free(e->msgs);
    free(e->warns);
    memset(e, 0, sizeof(*e));
}

static char *format_diag(const char *file, int line, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (file && line > 0)
        return wp_asprintf("%s:%d: %s", file, line, msg);
    if (file)
        return wp_asprintf("%s: %s", file, msg);
    return wp_strdup(msg);
}

static void push(char ***list, size_t *n, char *msg)
{
    *list = wp_realloc(*list, (*n + 1) * sizeof(**list));
    (*list)[(*n)++] = msg;
}

void wp_error(struct wp_errors *e, const char *file, int line, const char *fmt, ...)
{
    if (e->count >= WP_ERRORS_MAX) {
        if (!e->truncated) {
            e->truncated = 1;
            push(&e->msgs, &e->count, wp_asprintf("%s: too many errors, giving up", file ? file : "waypost"));
        }
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = format_diag(file, line, fmt, ap);
    va_end(ap);
    push(&e->msgs, &e->count, msg);
}

void wp_warning(struct wp_errors *e, const char *file, int line, const char *fmt, ...)
{
    if (e->nwarn >= WP_ERRORS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = format_diag(file, line, fmt, ap);
    va_end(ap);
    push(&e->warns, &e->nwarn, msg);
}

void wp_errors_move(struct wp_errors *dst, struct wp_errors *src)
{
    for (size_t i = 0; i < src->count; i++)
        push(&dst->msgs, &dst->count, src->msgs[i]);
    for (size_t i = 0; i < src->nwarn; i++)
        push(&dst->warns, &dst->nwarn, src->warns[i]);
    free(src->msgs);
    free(src->warns);
    dst->truncated |= src->truncated;
    memset(src, 0, sizeof(*src));
}
