/* SPDX-License-Identifier: MIT */
/*
 * conf.h - libconfig files checked against a schema.
 *
 * A schema lists, for each group, the settings it may hold and their types.
 * wp_conf_check() walks the parsed file and reports every unknown setting,
 * wrong type and missing required setting as "file:line: message" (the file
 * is the one the setting came from, so @include works).  After a clean check
 * the component code reads values with the getters below, which fall back
 * to the defaults of defaults.h.
 */
#ifndef WP_CONF_H
#define WP_CONF_H

#include <libconfig.h>
#include <stdbool.h>

#include "lib/errors.h"

enum wp_conf_type {
    WP_CONF_STRING,
    WP_CONF_INT,
    WP_CONF_BOOL,
    WP_CONF_STRINGS, /* array or list of strings, possibly empty */
    WP_CONF_GROUP,
    WP_CONF_GROUPS,  /* list of groups */
    WP_CONF_LIST,    /* list of anything: the component checks the elements */
    WP_CONF_SCALAR,  /* a string or a number: the component checks which */
};

struct wp_conf_schema {
    const char *name; /* NULL ends a schema */
    enum wp_conf_type type;
    const struct wp_conf_schema *sub; /* for GROUP and GROUPS */
    bool required;
};

/* Read and parse a file; on a syntax error report it and return false. */
bool wp_conf_read(config_t *cfg, const char *path, struct wp_errors *err);

/* Check the group against the schema, recursively. */
void wp_conf_check(const config_setting_t *group, const struct wp_conf_schema *schema,
                   const char *fallback_file, struct wp_errors *err);

/* Where a setting came from. */
const char *wp_conf_file(const config_setting_t *s, const char *fallback);
int wp_conf_line(const config_setting_t *s);

/* Getters; a missing setting yields the default. */
const char *wp_conf_string(const config_setting_t *group, const char *name, const char *def);
int wp_conf_int(const config_setting_t *group, const char *name, int def);
bool wp_conf_bool(const config_setting_t *group, const char *name, bool def);

#endif
