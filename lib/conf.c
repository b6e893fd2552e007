/* SPDX-License-Identifier: MIT */
/*
 * conf.c - the generic loader, free and printer over tables of rows.
 */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/conf.h"
#include "lib/endpoint.h"
#include "lib/util.h"

static const char *type_name(enum wp_conf_type t)
{
    switch (t) {
    case WP_CONF_STRING: return "a string";
    case WP_CONF_PATH: return "a string (a path)";
    case WP_CONF_INT: return "an integer";
    case WP_CONF_BOOL: return "a boolean (true or false)";
    case WP_CONF_MODE: return "a string (an octal mode like \"0660\")";
    case WP_CONF_DURATION: return "a number of seconds or a string like \"5m\"";
    case WP_CONF_SIZE: return "a number of bytes or a string like \"50M\"";
    case WP_CONF_ENDPOINT: return "a string (unix:PATH, inet:HOST:PORT or inet6:[ADDRESS]:PORT)";
    case WP_CONF_STRINGS: return "a list of strings [ \"...\", ... ]";
    case WP_CONF_GROUP: return "a group { ... }";
    case WP_CONF_GROUPS: return "a list of groups ( { ... }, ... )";
    case WP_CONF_LIST: return "a list ( ... )";
    case WP_CONF_SCALAR: return "a string or a number";
    }
    return "?";
}

bool wp_conf_read(config_t *cfg, const char *path, struct wp_errors *err)
{
    config_init(cfg);
    /* @include paths are taken relative to the main file's directory. */
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path) < sizeof(dir)) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
        config_set_include_dir(cfg, dir);
    }
    if (config_read_file(cfg, path) == CONFIG_TRUE)
        return true;
    if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
        wp_error(err, path, 0, "cannot read configuration file");
    else
        wp_error(err, config_error_file(cfg) ? config_error_file(cfg) : path, config_error_line(cfg), "%s",
                 config_error_text(cfg));
    return false;
}

const char *wp_conf_file(const config_setting_t *s, const char *fallback)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    return f ? f : fallback;
}

int wp_conf_line(const config_setting_t *s)
{
    return s ? (int)config_setting_source_line(s) : 0;
}

int wp_conf_member_line(const config_setting_t *g, const char *name)
{
    const config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
    return s ? wp_conf_line(s) : wp_conf_line(g);
}

const char *wp_conf_string(const config_setting_t *group, const char *name, const char *def)
{
    const char *v;
    if (group && config_setting_lookup_string(group, name, &v) == CONFIG_TRUE)
        return v;
    return def;
}

/* ---------------------------------------------------------------- parsers */

bool wp_conf_parse_mode(const char *text, long long *mode)
{
    char *end;
    if (!*text || *text == '-' || *text == '+' || *text == ' ')
        return false;
    long v = strtol(text, &end, 8);
    if (*end || v < 0 || v > 07777)
        return false;
    *mode = v;
    return true;
}

/* A number with an optional one-letter unit from units (multipliers in
 * mults); no sign, no spaces, no overflow past 2^53. */
static bool parse_unit(const char *text, const char *units, const long long *mults, long long *out)
{
    if (*text < '0' || *text > '9')
        return false;
    long long v = 0;
    const char *p = text;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > (1LL << 53))
            return false;
    }
    long long unit = 1;
    if (*p) {
        const char *u = strchr(units, *p);
        if (!u || p[1])
            return false;
        unit = mults[u - units];
    }
    if (v > (1LL << 53) / unit)
        return false;
    *out = v * unit;
    return true;
}

static const long long duration_mults[] = {1, 60, 3600, 86400, 7 * 86400};
static const long long size_mults[] = {1, 1024, 1024, 1024 * 1024, 1024 * 1024 * 1024};

bool wp_conf_parse_duration(const char *text, long long *seconds)
{
    return parse_unit(text, "smhdw", duration_mults, seconds);
}

bool wp_conf_parse_size(const char *text, long long *bytes)
{
    return parse_unit(text, "bkKMG", size_mults, bytes);
}

static void format_unit(long long v, const char *units, const long long *mults, size_t n, char *out,
                        size_t size)
{
    for (size_t i = n; i-- > 1;)
        if (v != 0 && v % mults[i] == 0) {
            snprintf(out, size, "%lld%c", v / mults[i], units[i]);
            return;
        }
    snprintf(out, size, "%lld", v);
}

void wp_conf_format_duration(long long seconds, char *out, size_t size)
{
    format_unit(seconds, "smhdw", duration_mults, 5, out, size);
}

void wp_conf_format_size(long long bytes, char *out, size_t size)
{
    /* "bkKMG": skip the lower-case k when formatting (K is the same). */
    static const char units[] = {'b', 'k', 'M', 'G'};
    static const long long mults[] = {1, 1024, 1024 * 1024, 1024 * 1024 * 1024};
    format_unit(bytes, units, mults, 4, out, size);
}

/* ---------------------------------------------------------------- checking */

static bool type_ok(const config_setting_t *s, enum wp_conf_type t)
{
    int have = config_setting_type(s);
    bool num = have == CONFIG_TYPE_INT || have == CONFIG_TYPE_INT64;
    switch (t) {
    case WP_CONF_STRING:
    case WP_CONF_PATH:
    case WP_CONF_MODE:
    case WP_CONF_ENDPOINT: return have == CONFIG_TYPE_STRING;
    case WP_CONF_INT: return num;
    case WP_CONF_BOOL: return have == CONFIG_TYPE_BOOL;
    case WP_CONF_GROUP: return have == CONFIG_TYPE_GROUP;
    case WP_CONF_DURATION:
    case WP_CONF_SIZE:
    case WP_CONF_SCALAR: return num || have == CONFIG_TYPE_STRING;
    case WP_CONF_STRINGS:
        if (have != CONFIG_TYPE_ARRAY && have != CONFIG_TYPE_LIST)
            return false;
        for (int i = 0; i < config_setting_length(s); i++)
            if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_STRING)
                return false;
        return true;
    case WP_CONF_LIST: return have == CONFIG_TYPE_LIST || have == CONFIG_TYPE_ARRAY;
    case WP_CONF_GROUPS:
        if (have != CONFIG_TYPE_LIST)
            return false;
        for (int i = 0; i < config_setting_length(s); i++)
            if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_GROUP)
                return false;
        return true;
    }
    return false;
}

static const struct wp_conf_row *row_find(const struct wp_conf_row *rows, const char *name)
{
    for (; rows->name; rows++)
        if (strcmp(rows->name, name) == 0)
            return rows;
    return NULL;
}

void wp_conf_check_setting(const config_setting_t *s, const struct wp_conf_row *k, const char *prefix,
                           const char *fallback_file, struct wp_errors *err)
{
    const char *name = config_setting_name(s);
    if (!type_ok(s, k->type)) {
        wp_error(err, wp_conf_file(s, fallback_file), wp_conf_line(s), "'%s' must be %s", name,
                 type_name(k->type));
        return;
    }
    if (!k->sub)
        return;
    char *sub = wp_asprintf("%s%s%s", prefix ? prefix : "", prefix && *prefix ? "." : "", name);
    if (k->type == WP_CONF_GROUP)
        wp_conf_check(s, k->sub, sub, fallback_file, err);
    else if (k->type == WP_CONF_GROUPS)
        for (int j = 0; j < config_setting_length(s); j++)
            wp_conf_check(config_setting_get_elem(s, (unsigned)j), k->sub, sub, fallback_file, err);
    free(sub);
}

void wp_conf_check(const config_setting_t *group, const struct wp_conf_row *rows, const char *prefix,
                   const char *fallback_file, struct wp_errors *err)
{
    if (!group)
        return;
    const char *gname = config_setting_name(group);
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct wp_conf_row *k = row_find(rows, name);
        if (!k)
            wp_error(err, wp_conf_file(s, fallback_file), wp_conf_line(s), "unknown setting '%s'%s%s", name,
                     gname ? " in " : "", gname ? gname : "");
        else
            wp_conf_check_setting(s, k, prefix, fallback_file, err);
    }
    for (const struct wp_conf_row *k = rows; k->name; k++)
        if ((k->flags & WP_CONF_REQUIRED) && !config_setting_get_member(group, k->name))
            wp_error(err, wp_conf_file(group, fallback_file), wp_conf_line(group),
                     "missing required setting '%s'%s%s", k->name, gname ? " in " : "", gname ? gname : "");
}

/* ---------------------------------------------------------------- values */

static void *field(const struct wp_conf_row *r, void *conf)
{
    return (char *)conf + r->offset;
}

static const void *cfield(const struct wp_conf_row *r, const void *conf)
{
    return (const char *)conf + r->offset;
}

static bool numeric(enum wp_conf_type t)
{
    return t == WP_CONF_INT || t == WP_CONF_MODE || t == WP_CONF_DURATION || t == WP_CONF_SIZE;
}

/* A value of the row's type from text (a string value or a default) into
 * *num (numeric types) or *str (STRING, PATH: malloc'ed) or *ep.  False,
 * with *why, if the text does not parse. */
struct value {
    long long num;
    bool b;
    char *str;
    struct wp_endpoint ep;
};

static bool value_parse(const struct wp_conf_row *r, const char *text, const char *basedir, struct value *v,
                        const char **why)
{
    memset(v, 0, sizeof(*v));
    switch (r->type) {
    case WP_CONF_STRING: v->str = wp_strdup(text); return true;
    case WP_CONF_PATH: v->str = *text ? wp_path_relative_to(basedir, text) : wp_strdup(""); return true;
    case WP_CONF_INT: {
        char *end;
        long long n = strtoll(text, &end, 10);
        if (!*text || *end) {
            *why = "is not an integer";
            return false;
        }
        v->num = n;
        return true;
    }
    case WP_CONF_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
            v->b = text[0] == 't';
            return true;
        }
        *why = "is not true or false";
        return false;
    case WP_CONF_MODE: *why = "is not an octal mode"; return wp_conf_parse_mode(text, &v->num);
    case WP_CONF_DURATION:
        *why = "must be a duration: seconds, or a number with s, m, h, d or w";
        return wp_conf_parse_duration(text, &v->num);
    case WP_CONF_SIZE:
        *why = "must be a size: bytes, or a number with k, M or G";
        return wp_conf_parse_size(text, &v->num);
    case WP_CONF_ENDPOINT: return wp_endpoint_parse(text, &v->ep, why);
    default: *why = "has no value"; return false;
    }
}

static void format_num(const struct wp_conf_row *r, long long n, char *out, size_t size)
{
    if (r->type == WP_CONF_DURATION)
        wp_conf_format_duration(n, out, size);
    else if (r->type == WP_CONF_SIZE)
        wp_conf_format_size(n, out, size);
    else if (r->type == WP_CONF_MODE)
        snprintf(out, size, "0%03llo", n);
    else
        snprintf(out, size, "%lld", n);
}

static void value_store(const struct wp_conf_row *r, struct value *v, void *conf)
{
    void *f = field(r, conf);
    switch (r->type) {
    case WP_CONF_STRING:
    case WP_CONF_PATH:
        free(*(char **)f);
        *(char **)f = v->str;
        v->str = NULL;
        break;
    case WP_CONF_BOOL: *(bool *)f = v->b; break;
    case WP_CONF_ENDPOINT: *(struct wp_endpoint *)f = v->ep; break;
    default:
        if (numeric(r->type))
            *(int *)f = (int)v->num;
        break;
    }
}

/* The default into the field: every field holds a valid value afterwards,
 * even when the configured one was refused. */
static void store_default(const struct wp_conf_row *r, void *conf, const char *basedir)
{
    if (r->type == WP_CONF_STRINGS) {
        char **none = wp_calloc(1, sizeof(char *));
        *(char ***)field(r, conf) = none;
        return;
    }
    struct value v;
    const char *why;
    if (!value_parse(r,
                     r->def ? r->def
                            : (numeric(r->type)          ? "0"
                               : r->type == WP_CONF_BOOL ? "false"
                                                         : ""),
                     basedir, &v, &why))
        memset(&v, 0, sizeof(v)); /* a broken default: the row tests catch it */
    if ((r->type == WP_CONF_STRING || r->type == WP_CONF_PATH) && !v.str)
        v.str = wp_strdup("");
    value_store(r, &v, conf);
}

static void load_row(const struct wp_conf_row *r, const config_setting_t *s, void *conf, const char *prefix,
                     const char *file, const char *basedir, struct wp_errors *err)
{
    store_default(r, conf, basedir);
    if (!s || !type_ok(s, r->type))
        return; /* a wrong type is reported by wp_conf_check */
    const char *sfile = wp_conf_file(s, file);
    int line = wp_conf_line(s);
    if (r->type == WP_CONF_STRINGS) {
        char ***f = field(r, conf);
        int n = config_setting_length(s);
        free(*f);
        *f = wp_calloc((size_t)n + 1, sizeof(char *));
        for (int i = 0; i < n; i++)
            (*f)[i] = wp_strdup(config_setting_get_string_elem(s, (unsigned)i));
        return;
    }
    struct value v;
    char text[64];
    const char *shown;
    int type = config_setting_type(s);
    if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
        memset(&v, 0, sizeof(v));
        v.num = config_setting_get_int64(s);
        snprintf(text, sizeof(text), "%lld", v.num);
        shown = text;
    } else if (type == CONFIG_TYPE_BOOL) {
        memset(&v, 0, sizeof(v));
        v.b = config_setting_get_bool(s) != 0;
        shown = v.b ? "true" : "false";
    } else {
        const char *why;
        shown = config_setting_get_string(s);
        if (!value_parse(r, shown, basedir, &v, &why)) {
            if (r->type == WP_CONF_ENDPOINT)
                wp_error(err, sfile, line, "%s.%s '%s': %s", prefix, r->name, shown, why);
            else
                wp_error(err, sfile, line, "%s.%s '%s' %s", prefix, r->name, shown, why);
            return;
        }
    }
    if (numeric(r->type)) {
        char bound[32];
        if (v.num < r->min) {
            format_num(r, r->min, bound, sizeof(bound));
            wp_error(err, sfile, line, "%s.%s = %s is below the minimum %s", prefix, r->name, shown, bound);
            return;
        }
        if (v.num > r->max) {
            format_num(r, r->max, bound, sizeof(bound));
            wp_error(err, sfile, line, "%s.%s = %s is above the maximum %s", prefix, r->name, shown, bound);
            return;
        }
    }
    value_store(r, &v, conf);
}

void wp_conf_load(const config_setting_t *group, const struct wp_conf_row *rows, void *conf,
                  const char *prefix, const char *file, const char *basedir, struct wp_errors *err)
{
    wp_conf_check(group, rows, prefix, file, err);
    for (const struct wp_conf_row *r = rows; r->name; r++)
        if (r->offset != WP_CONF_NOFIELD)
            load_row(r, group ? config_setting_get_member(group, r->name) : NULL, conf, prefix, file, basedir,
                     err);
}

void wp_conf_free(const struct wp_conf_row *rows, void *conf)
{
    for (const struct wp_conf_row *r = rows; r->name; r++) {
        if (r->offset == WP_CONF_NOFIELD)
            continue;
        void *f = field(r, conf);
        if (r->type == WP_CONF_STRING || r->type == WP_CONF_PATH) {
            free(*(char **)f);
            *(char **)f = NULL;
        } else if (r->type == WP_CONF_STRINGS) {
            char **v = *(char ***)f;
            for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
            free(v);
            *(char ***)f = NULL;
        }
    }
}

/* ---------------------------------------------------------------- printing */

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

/* A setting in libconfig's own syntax, on one line. */
static void print_setting(FILE *out, const config_setting_t *s)
{
    int n;
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT: fprintf(out, "%d", config_setting_get_int(s)); break;
    case CONFIG_TYPE_INT64: fprintf(out, "%lld", config_setting_get_int64(s)); break;
    case CONFIG_TYPE_FLOAT: fprintf(out, "%g", config_setting_get_float(s)); break;
    case CONFIG_TYPE_BOOL: fputs(config_setting_get_bool(s) ? "true" : "false", out); break;
    case CONFIG_TYPE_STRING: print_string(out, config_setting_get_string(s)); break;
    case CONFIG_TYPE_ARRAY:
    case CONFIG_TYPE_LIST: {
        bool array = config_setting_type(s) == CONFIG_TYPE_ARRAY;
        n = config_setting_length(s);
        fputs(array ? "[" : "(", out);
        for (int i = 0; i < n; i++) {
            fputs(i ? ", " : " ", out);
            print_setting(out, config_setting_get_elem(s, (unsigned)i));
        }
        fputs(n ? (array ? " ]" : " )") : (array ? "]" : ")"), out);
        break;
    }
    case CONFIG_TYPE_GROUP:
        n = config_setting_length(s);
        fputs("{", out);
        for (int i = 0; i < n; i++) {
            const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
            fprintf(out, " %s = ", config_setting_name(m));
            print_setting(out, m);
            fputs(";", out);
        }
        fputs(n ? " }" : "}", out);
        break;
    default: break;
    }
}

static bool value_equal(const struct wp_conf_row *r, const void *conf, const struct value *d)
{
    const void *f = cfield(r, conf);
    switch (r->type) {
    case WP_CONF_STRING:
    case WP_CONF_PATH: return strcmp(*(char *const *)f, d->str ? d->str : "") == 0;
    case WP_CONF_BOOL: return *(const bool *)f == d->b;
    case WP_CONF_ENDPOINT: {
        const struct wp_endpoint *e = f;
        return e->family == d->ep.family && e->port == d->ep.port && strcmp(e->path, d->ep.path) == 0 &&
               strcmp(e->host, d->ep.host) == 0;
    }
    case WP_CONF_STRINGS: return (*(char **const *)f)[0] == NULL;
    default: return *(const int *)f == d->num;
    }
}

static void print_value(FILE *out, const struct wp_conf_row *r, const void *conf)
{
    const void *f = cfield(r, conf);
    char buf[64];
    switch (r->type) {
    case WP_CONF_STRING:
    case WP_CONF_PATH: fputs(*(char *const *)f, out); break;
    case WP_CONF_BOOL: fputs(*(const bool *)f ? "true" : "false", out); break;
    case WP_CONF_ENDPOINT: {
        const struct wp_endpoint *e = f;
        if (e->family == WP_EP_UNIX)
            fprintf(out, "unix:%s", e->path);
        else if (e->family == WP_EP_INET6)
            fprintf(out, "inet6:[%s]:%d", e->host, e->port);
        else
            fprintf(out, "inet:%s:%d", e->host, e->port);
        break;
    }
    case WP_CONF_STRINGS: {
        char *const *v = *(char **const *)f;
        fputs("[", out);
        for (size_t i = 0; v[i]; i++) {
            fputs(i ? ", " : " ", out);
            print_string(out, v[i]);
        }
        fputs(v[0] ? " ]" : "]", out);
        break;
    }
    default:
        format_num(r, *(const int *)f, buf, sizeof(buf));
        fputs(buf, out);
        break;
    }
}

void wp_conf_print(FILE *out, const char *prefix, const struct wp_conf_row *rows, const void *conf,
                   const config_setting_t *group, const char *basedir, bool changed_only)
{
    for (const struct wp_conf_row *r = rows; r->name; r++) {
        const config_setting_t *s = group ? config_setting_get_member(group, r->name) : NULL;
        if (r->offset == WP_CONF_NOFIELD) {
            if (changed_only && !s)
                continue;
            fprintf(out, "%s%s%s =", prefix, *prefix ? "." : "", r->name);
            if (s) {
                fputc(' ', out);
                print_setting(out, s);
            } else if (r->def) {
                fprintf(out, " %s", r->def);
            } else if (r->type == WP_CONF_STRINGS) {
                fputs(" []", out);
            } else if (r->type == WP_CONF_GROUPS || r->type == WP_CONF_LIST) {
                fputs(" ()", out);
            } else if (r->type == WP_CONF_GROUP) {
                fputs(" {}", out);
            }
            fputc('\n', out);
            continue;
        }
        if (changed_only) {
            struct value d;
            const char *why;
            bool same;
            if (r->type == WP_CONF_STRINGS) {
                same = value_equal(r, conf, NULL);
            } else {
                const char *def = r->def ? r->def
                                         : (numeric(r->type)          ? "0"
                                            : r->type == WP_CONF_BOOL ? "false"
                                                                      : "");
                same = value_parse(r, def, basedir, &d, &why) && value_equal(r, conf, &d);
                free(d.str);
            }
            if (same)
                continue;
        }
        fprintf(out, "%s%s%s =", prefix, *prefix ? "." : "", r->name);
        if (r->type == WP_CONF_STRINGS || r->type == WP_CONF_BOOL || numeric(r->type) ||
            r->type == WP_CONF_ENDPOINT || **(char *const *)cfield(r, conf))
            fputc(' ', out);
        print_value(out, r, conf);
        fputc('\n', out);
    }
}
