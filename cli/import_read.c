/* SPDX-License-Identifier: MIT */
/*
 * import_read.c - the helpers of `waypost import cgp` (import_int.h): the
 * report and error lines, reading one CommuniGate file (one CLI answer)
 * through lib/cgpdata, name checks, and quoting for waypost.conf.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/address.h"
#include "lib/cgpdata.h"
#include "lib/errors.h"
#include "lib/util.h"
#include "router/table.h"
#include "cli/import_int.h"
#include "lib/strbuf.h"

void wp_imp_report(struct import *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    /* One item, one line, no terminal escapes: names come from the input. */
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = *p == '\n' || *p == '\r' || *p == '\t' ? ' ' : '?';
    wp_strv_push(&im->report, &im->nreport, s);
}

void wp_imp_error(struct import *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char msg[1024];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* names come from the input */
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    fprintf(stderr, "waypost import: %s\n", msg);
    im->errors++;
}

/* "an array", "a string": for messages. */
const char *wp_imp_type_name(enum wp_cgp_type t)
{
    switch (t) {
    case WP_CGP_STRING: return "a string";
    case WP_CGP_DATA: return "a data block";
    case WP_CGP_ARRAY: return "an array";
    case WP_CGP_DICT: return "a dictionary";
    }
    return "?";
}

int wp_imp_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Quote s as a libconfig string (which has \\ \" \n \r \t \f and \xNN). */
void wp_imp_put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < ' ' || *p == 0x7f)
                fprintf(f, "\\x%02x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* A domain name we are willing to write: letters, digits, '-', '_', '.'. */
bool wp_imp_good_domain(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WP_DOMAIN_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}

/* An account, forwarder or group name: CommuniGate object names. */
bool wp_imp_good_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WP_LOCAL_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.+", *p))
            return false;
    return true;
}

/* A target address or pattern for a Router record or a rule: printable,
 * no white space, nothing the table grammar reads as syntax. */
bool wp_imp_good_target(const char *s)
{
    if (!*s || strlen(s) > WP_LOCAL_MAX + WP_DOMAIN_MAX + 1)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || *p == ';' || *p == '"' || *p == '<' || *p == '>' || *p == ',')
            return false;
    return true;
}

char *wp_imp_lower(const char *s)
{
    char *d = wp_strdup(s);
    wp_str_lower(d);
    return d;
}

/* ---------------------------------------------------------------- input */

/* The path of a source file (first SOURCE directory holding it) or NULL. */
char *wp_imp_find_file(struct import *im, const char *name)
{
    for (size_t i = 0; i < im->nsources; i++) {
        char *p = wp_asprintf("%s/%s", im->sources[i], name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
            return p;
        free(p);
    }
    return NULL;
}

/* Read and parse one source file.  NULL if it is absent (*present false)
 * or broken (an error is counted). */
struct wp_cgp *wp_imp_read_cgp(struct import *im, const char *name, bool *present)
{
    *present = false;
    char *path = wp_imp_find_file(im, name);
    if (!path)
        return NULL;
    *present = true;
    wp_strv_push(&im->used, &im->nused, wp_strdup(name));
    char err[256];
    size_t len;
    char *text = wp_read_file(path, IMPORT_FILE_MAX, &len, err, sizeof(err));
    struct wp_cgp *v = NULL;
    if (!text) {
        wp_imp_error(im, "%s: %s", path, err);
    } else {
        v = wp_cgp_parse(text, len, err, sizeof(err));
        if (!v)
            wp_imp_error(im, "%s:%s", path, err);
    }
    free(text);
    free(path);
    return v;
}

/* An array of strings from a source file (sorted, lower case if fold).
 * Returns false if the file is absent. */
bool wp_imp_read_names(struct import *im, const char *name, bool fold, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    bool present;
    struct wp_cgp *v = wp_imp_read_cgp(im, name, &present);
    if (!v)
        return present;
    if (v->type == WP_CGP_DICT) {
        /* ListAccounts: {name = type; ...} */
        for (size_t i = 0; i < v->n; i++)
            wp_strv_push(out, n, fold ? wp_imp_lower(v->keys[i]) : wp_strdup(v->keys[i]));
    } else if (v->type == WP_CGP_ARRAY) {
        for (size_t i = 0; i < v->n; i++) {
            const char *s = wp_cgp_str(v->items[i]);
            if (s)
                wp_strv_push(out, n, fold ? wp_imp_lower(s) : wp_strdup(s));
            else
                wp_imp_error(im, "%s:%d:%d: a name was expected, found %s", name, v->items[i]->line,
                             v->items[i]->col, wp_imp_type_name(v->items[i]->type));
        }
    } else {
        wp_imp_error(im, "%s: an array of names was expected, found %s", name, wp_imp_type_name(v->type));
    }
    wp_cgp_free(v);
    if (*n > 1)
        qsort(*out, *n, sizeof(char *), wp_imp_cmp_str);
    return true;
}
