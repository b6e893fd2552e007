/* SPDX-License-Identifier: MIT */
/*
 * strbuf.c - growing strings and string vectors (see strbuf.h).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "lib/util.h"

void wp_strbuf_add(struct wp_strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = wp_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void wp_strbuf_puts(struct wp_strbuf *b, const char *s)
{
    wp_strbuf_add(b, s, strlen(s));
}

void wp_strbuf_printf(struct wp_strbuf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        wp_strbuf_add(b, tmp, (size_t)n);
        return;
    }
    /* Longer than tmp (a huge Subject or reason): format it whole.  Cutting
     * it lost the line's LF, and the next header was glued onto the cut line. */
    char *big = wp_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    wp_strbuf_add(b, big, (size_t)n);
    free(big);
}

char *wp_strbuf_take(struct wp_strbuf *b)
{
    char *s = b->s ? b->s : wp_strdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void wp_strbuf_free(struct wp_strbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

void wp_strv_push(char ***v, size_t *n, char *s)
{
    *v = wp_realloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = s;
}

void wp_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
