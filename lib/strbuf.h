/* SPDX-License-Identifier: MIT */
/*
 * strbuf.h - growing strings and string vectors.
 *
 * A struct wp_strbuf is a NUL-terminated string that grows as text is
 * appended (start it zeroed: { NULL, 0, 0 }); a formatted append is never
 * cut, however long.  A string vector is a malloc'ed array of malloc'ed
 * strings with its count beside it (char **v; size_t n).  Allocation
 * failure aborts, as everywhere in lib/util.h.
 */
#ifndef WP_STRBUF_H
#define WP_STRBUF_H

#include <stddef.h>

struct wp_strbuf {
    char *s; /* NULL until something is appended */
    size_t len, cap;
};

void wp_strbuf_add(struct wp_strbuf *b, const char *s, size_t n);
void wp_strbuf_puts(struct wp_strbuf *b, const char *s);
void wp_strbuf_printf(struct wp_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (malloc'ed, "" when nothing was appended); b is empty again. */
char *wp_strbuf_take(struct wp_strbuf *b);
void wp_strbuf_free(struct wp_strbuf *b);

/* Append s (taken over) to the vector *v of *n strings. */
void wp_strv_push(char ***v, size_t *n, char *s);
/* Free the n strings of v and v itself (v may be NULL). */
void wp_strv_free(char **v, size_t n);

#endif
