/* SPDX-License-Identifier: MIT */
/*
 * util.h - memory and string helpers that never return NULL.
 *
 * Allocation failure is fatal (we log and abort): a daemon that runs out of
 * memory halfway through building a snapshot cannot do anything useful, and
 * Postfix tempfails while we are down.
 */
#ifndef WP_UTIL_H
#define WP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *wp_malloc(size_t n);
void *wp_calloc(size_t n, size_t size);
void *wp_realloc(void *p, size_t n);
/* Zeroed memory for a randomly accessed array (hash slots, table records):
 * from 1 MB on, placed on transparent huge pages where the kernel offers
 * them (rounded up to 2 MB), which spares most lookups a TLB miss; smaller
 * sizes aligned to a cache line.  Free with free(). */
void *wp_calloc_huge(size_t size);
char *wp_strdup(const char *s);
char *wp_strndup(const char *s, size_t n);
char *wp_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ASCII-only case folding: mail syntax is ASCII, and locales must not
 * matter.  A table: lookups fold every byte they hash or compare. */
extern const unsigned char wp_lower_table[256];
static inline char wp_lower(char c)
{
    return (char)wp_lower_table[(unsigned char)c];
}
void wp_str_lower(char *s);
/* Text from the other side made fit for a log line or a DSN: every control
 * character (CR, LF, NUL's neighbours, DEL) and every byte over 0x7e becomes
 * '?', in place. */
void wp_str_printable(char *s);
bool wp_strieq(const char *a, const char *b);
bool wp_strnieq(const char *a, const char *b, size_t n);
bool wp_has_suffix_ci(const char *s, size_t len, const char *suffix);

/* An RFC 5322 header field name: 1..WP_HEADER_NAME_MAX printable ASCII
 * characters other than ':' (len bytes of name). */
bool wp_header_name_valid(const char *name, size_t len);

/* Join n strings into out (size > 0), cut to fit like snprintf.  For
 * answers and addresses built on every lookup, where printf's format
 * machinery costs more than the copying.  WP_JOIN(out, size, s1, s2, ...). */
void wp_join(char *out, size_t size, const char *const parts[], size_t n);
#define WP_JOIN(out, size, ...)                                                                              \
    wp_join(out, size, (const char *const[]){__VA_ARGS__},                                                   \
            sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* Copy at most size-1 bytes and terminate; returns false if src was cut. */
bool wp_strlcpy(char *dst, const char *src, size_t size);

/* Directory part of a path ("." when there is none), and path joining:
 * a relative `path` is taken relative to `dir`.  Results are malloc'ed. */
char *wp_dirname(const char *path);
char *wp_path_relative_to(const char *dir, const char *path);

/* Read a whole file (at most max bytes) into a NUL-terminated buffer. */
char *wp_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* Files a command writes into an output directory as one set. */
struct wp_outfile {
    const char *name; /* in the directory */
    const char *text;
    size_t len;
    bool newline; /* write a '\n' after the text */
};
/* Write every file, or none: dir is created if missing, every name is
 * checked before the first is written (an existing file is an error
 * unless force), and each goes through a temporary name and rename(2).
 * Messages on standard error start with prog.  Returns 0, or 1. */
int wp_write_files(const char *prog, const char *dir, const struct wp_outfile *files, size_t n, bool force);

/* The current time as an RFC 5322 date ("Wed, 25 Nov 2026 12:00:00 +0000"). */
void wp_rfc5322_date(char *buf, size_t size);

/* Monotonic clock in milliseconds. */
uint64_t wp_now_ms(void);

#endif
