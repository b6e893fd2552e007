/* SPDX-License-Identifier: MIT */
/*
 * util.c - allocation, string and file helpers shared by every component.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/defaults.h"
#include "lib/util.h"

static void oom(void)
{
    fputs("waypost: out of memory\n", stderr);
    abort();
}

void *wp_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

void *wp_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

void *wp_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom();
    return q;
}

void *wp_calloc_huge(size_t size)
{
    const size_t huge = 2u << 20, line = 64;
    /* From 1 MB on, huge pages: a lookup's probes land anywhere in such an
     * array, and under a hypervisor a TLB miss costs a two-level page walk
     * (measured: a 100 000-record table's lookups about 5 % faster than with
     * huge pages only from 8 MB).  Below, cache-line aligned: hash slots are
     * sized to divide a line. */
    size_t align = size < huge / 2 ? line : huge;
    size_t rounded = size ? (size + align - 1) & ~(align - 1) : align;
    void *p = aligned_alloc(align, rounded);
    if (!p)
        oom();
    if (align == line) {
        memset(p, 0, rounded);
        return p;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE); /* before first touch: faults then map 2 MB pages */
#endif
    memset(p, 0, rounded);
    return p;
}

char *wp_strdup(const char *s)
{
    return wp_strndup(s, strlen(s));
}

char *wp_strndup(const char *s, size_t n)
{
    char *p = wp_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *wp_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom();
    char *p = wp_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

#define LOWER(c) (unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c))
#define LOWER4(c) LOWER(c), LOWER((c) + 1), LOWER((c) + 2), LOWER((c) + 3)
#define LOWER16(c) LOWER4(c), LOWER4((c) + 4), LOWER4((c) + 8), LOWER4((c) + 12)
#define LOWER64(c) LOWER16(c), LOWER16((c) + 16), LOWER16((c) + 32), LOWER16((c) + 48)
const unsigned char wp_lower_table[256] = {LOWER64(0), LOWER64(64), LOWER64(128), LOWER64(192)};
#undef LOWER64
#undef LOWER16
#undef LOWER4
#undef LOWER

void wp_str_lower(char *s)
{
    for (; *s; s++)
        *s = wp_lower(*s);
}

void wp_str_printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

bool wp_strieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (wp_lower(*a) != wp_lower(*b))
            return false;
    return *a == *b;
}

bool wp_strnieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (wp_lower(a[i]) != wp_lower(b[i]))
            return false;
        if (!a[i])
            return true;
    }
    return true;
}

bool wp_has_suffix_ci(const char *s, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);
    return len >= sl && wp_strnieq(s + len - sl, suffix, sl);
}

bool wp_header_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > WP_HEADER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f || name[i] == ':')
            return false;
    return true;
}

void wp_join(char *out, size_t size, const char *const parts[], size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(parts[i]);
        if (len > size - 1 - o)
            len = size - 1 - o;
        memcpy(out + o, parts[i], len);
        o += len;
    }
    out[o] = '\0';
}

bool wp_strlcpy(char *dst, const char *src, size_t size)
{
    size_t n = strlen(src);
    if (size == 0)
        return n == 0;
    if (n >= size) {
        memcpy(dst, src, size - 1);
        dst[size - 1] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

char *wp_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return wp_strdup(".");
    if (slash == path)
        return wp_strdup("/");
    return wp_strndup(path, (size_t)(slash - path));
}

char *wp_path_relative_to(const char *dir, const char *path)
{
    if (path[0] == '/' || !dir || !*dir)
        return wp_strdup(path);
    return wp_asprintf("%s/%s", dir, path);
}

char *wp_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((unsigned long long)st.st_size > max) {
        snprintf(err, errlen, "%s is too large (%lld bytes, limit %zu)", path, (long long)st.st_size, max);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    /* A large table stays in memory as the records' string store. */
    char *buf = cap >= (8u << 20) ? wp_calloc_huge(cap) : wp_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max) {
                snprintf(err, errlen, "%s grew past the limit of %zu bytes", path, max);
                free(buf);
                close(fd);
                return NULL;
            }
            cap *= 2;
            buf = wp_realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

void wp_rfc5322_date(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

uint64_t wp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int wp_write_files(const char *prog, const char *dir, const struct wp_outfile *files, size_t n, bool force)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
        return 1;
    }
    int clash = 0;
    for (size_t i = 0; i < n; i++) {
        char *p = wp_asprintf("%s/%s", dir, files[i].name);
        struct stat st;
        if (!force && lstat(p, &st) == 0) {
            fprintf(stderr, "%s: %s exists (--force replaces it)\n", prog, p);
            clash++;
        }
        free(p);
    }
    if (clash)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char *p = wp_asprintf("%s/%s", dir, files[i].name);
        char *tmp = wp_asprintf("%s/.%s.tmp", dir, files[i].name);
        FILE *f = fopen(tmp, "w");
        bool ok = f && fwrite(files[i].text, 1, files[i].len, f) == files[i].len &&
                  (!files[i].newline || fputc('\n', f) != EOF);
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok || rename(tmp, p) != 0) {
            fprintf(stderr, "%s: %s: %s\n", prog, p, strerror(errno));
            unlink(tmp);
            free(p);
            free(tmp);
            return 1;
        }
        free(p);
        free(tmp);
    }
    return 0;
}
