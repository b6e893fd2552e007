/* SPDX-License-Identifier: MIT */
/*
 * conf.h - libconfig groups read through tables of rows.
 *
 * A row (as Postfix's CONFIG_*_TABLE) names one setting of a group and
 * carries its rules: type, default (as text, parsed by the same parser as a
 * configured value), bounds, whether it is required, and where its value
 * goes in the component's struct (offsetof).  One generic loader checks a
 * group against its rows (unknown settings, wrong types, missing required
 * settings, values out of bounds), fills the struct and reports every
 * problem as "file:line: message" (the file is the one the setting came
 * from, so @include works).  One generic free and one generic printer work
 * from the same rows.
 *
 * What the rows cannot say (a value that must match another setting, a
 * list whose elements have their own syntax) stays in the component's own
 * load function; such rows have no field (WP_CONF_NOFIELD) and only their
 * type and, for groups, their sub-rows are checked here.
 *
 * Field types:  STRING, PATH -> char * (malloc'ed; "" when unset without a
 * default; a relative PATH starts in the config file's directory);  INT,
 * MODE, DURATION, SIZE -> int (bounds keep it in range);  BOOL -> bool;
 * ENDPOINT -> struct wp_endpoint;  STRINGS -> char ** (malloc'ed, NULL-
 * terminated).  GROUP, GROUPS, LIST and SCALAR have no field.
 */
#ifndef WP_CONF_H
#define WP_CONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/errors.h"

enum wp_conf_type {
    WP_CONF_STRING,
    WP_CONF_PATH, /* a string; relative to the config file's directory */
    WP_CONF_INT,
    WP_CONF_BOOL,
    WP_CONF_MODE,     /* an octal string: "0660" */
    WP_CONF_DURATION, /* seconds, or a string: "10s", "5m", "2h", "5d", "1w" */
    WP_CONF_SIZE,     /* bytes, or a string: "512", "64k", "50M", "1G" (powers of 1024) */
    WP_CONF_ENDPOINT, /* "unix:PATH", "inet:HOST:PORT", "inet6:[ADDR]:PORT" */
    WP_CONF_STRINGS,  /* array or list of strings, possibly empty */
    WP_CONF_GROUP,
    WP_CONF_GROUPS, /* list of groups */
    WP_CONF_LIST,   /* list of anything: the component checks the elements */
    WP_CONF_SCALAR, /* a string or a number: the component checks which */
};

#define WP_CONF_NOFIELD ((size_t)-1)
#define WP_CONF_REQUIRED 1u

struct wp_conf_row {
    const char *name; /* NULL ends a table */
    enum wp_conf_type type;
    size_t offset;      /* of the field in the struct, or WP_CONF_NOFIELD */
    const char *def;    /* the default as text (NULL: none); for rows without a field, shown only */
    long long min, max; /* INT, MODE, DURATION, SIZE: inclusive bounds */
    unsigned flags;     /* WP_CONF_REQUIRED */
    const struct wp_conf_row *sub; /* GROUP, GROUPS: the rows of each group */
};

/* Row constructors, so that tables read as tables. */
/* clang-format off */
#define WP_ROW_STRING(n, T, f, d) { n, WP_CONF_STRING, offsetof(T, f), d, 0, 0, 0, NULL }
#define WP_ROW_PATH(n, T, f, d) { n, WP_CONF_PATH, offsetof(T, f), d, 0, 0, 0, NULL }
#define WP_ROW_INT(n, T, f, d, lo, hi) { n, WP_CONF_INT, offsetof(T, f), d, lo, hi, 0, NULL }
#define WP_ROW_BOOL(n, T, f, d) { n, WP_CONF_BOOL, offsetof(T, f), d, 0, 0, 0, NULL }
#define WP_ROW_MODE(n, T, f, d) { n, WP_CONF_MODE, offsetof(T, f), d, 0, 0777, 0, NULL }
#define WP_ROW_DURATION(n, T, f, d, lo, hi) { n, WP_CONF_DURATION, offsetof(T, f), d, lo, hi, 0, NULL }
#define WP_ROW_SIZE(n, T, f, d, lo, hi) { n, WP_CONF_SIZE, offsetof(T, f), d, lo, hi, 0, NULL }
#define WP_ROW_ENDPOINT(n, T, f, d) { n, WP_CONF_ENDPOINT, offsetof(T, f), d, 0, 0, 0, NULL }
#define WP_ROW_STRINGS(n, T, f) { n, WP_CONF_STRINGS, offsetof(T, f), NULL, 0, 0, 0, NULL }
/* A row the component's load function reads itself (type checked here). */
#define WP_ROW_OWN(n, type, d, flags, sub) { n, type, WP_CONF_NOFIELD, d, 0, 0, flags, sub }
#define WP_ROW_END { NULL, 0, 0, NULL, 0, 0, 0, NULL }
/* clang-format on */

/* Read and parse a file; on a syntax error report it and return false. */
bool wp_conf_read(config_t *cfg, const char *path, struct wp_errors *err);

/* Where a setting came from. */
const char *wp_conf_file(const config_setting_t *s, const char *fallback);
int wp_conf_line(const config_setting_t *s);
/* The line of member name of group; if it is not set, the group's line;
 * 0 without a group. */
int wp_conf_member_line(const config_setting_t *group, const char *name);

/* Check a group against rows, recursively: unknown settings, wrong types,
 * missing required settings.  prefix names the group in messages. */
void wp_conf_check(const config_setting_t *group, const struct wp_conf_row *rows, const char *prefix,
                   const char *fallback_file, struct wp_errors *err);

/* Check one setting against its row (type, and sub-rows of groups). */
void wp_conf_check_setting(const config_setting_t *s, const struct wp_conf_row *row, const char *prefix,
                           const char *fallback_file, struct wp_errors *err);

/* Check group (NULL: absent, all defaults) against rows and fill conf:
 * each row with a field gets its configured value or its default, parsed
 * and checked against the bounds.  Messages name settings "prefix.name". */
void wp_conf_load(const config_setting_t *group, const struct wp_conf_row *rows, void *conf,
                  const char *prefix, const char *file, const char *basedir, struct wp_errors *err);
/* Free what wp_conf_load allocated in conf (fields set to NULL). */
void wp_conf_free(const struct wp_conf_row *rows, void *conf);

/* Print "prefix.name = value" for every row: fields from conf, rows
 * without a field from group as written (or their default).  With
 * changed_only, only values that differ from the default (compared after
 * parsing, so "600" and "10m" are the same).  basedir resolves PATH
 * defaults for the comparison. */
void wp_conf_print(FILE *out, const char *prefix, const struct wp_conf_row *rows, const void *conf,
                   const config_setting_t *group, const char *basedir, bool changed_only);

/* The parsers behind the types (text as written in a string value). */
bool wp_conf_parse_mode(const char *text, long long *mode);
bool wp_conf_parse_duration(const char *text, long long *seconds);
bool wp_conf_parse_size(const char *text, long long *bytes);
/* A value back as text, in the shortest unit that is exact ("600" -> "10m"). */
void wp_conf_format_duration(long long seconds, char *out, size_t size);
void wp_conf_format_size(long long bytes, char *out, size_t size);

/* A getter for groups read by hand (rules, list elements): a missing
 * setting yields def. */
const char *wp_conf_string(const config_setting_t *group, const char *name, const char *def);

#endif
