/* SPDX-License-Identifier: MIT */
/*
 * conf.c - schema checking and getters over libconfig.
 */
#include "config.h"

#include <string.h>

#include "lib/conf.h"

static const char *type_name(enum wp_conf_type t)
{
    switch (t) {
    case WP_CONF_STRING: return "a string";
    case WP_CONF_INT: return "an integer";
    case WP_CONF_BOOL: return "a boolean (true or false)";
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
        wp_error(err, config_error_file(cfg) ? config_error_file(cfg) : path,
                 config_error_line(cfg), "%s", config_error_text(cfg));
    return false;
}

const char *wp_conf_file(const config_setting_t *s, const char *fallback)
{
    const char *f = config_setting_source_file(s);
    return f ? f : fallback;
}

int wp_conf_line(const config_setting_t *s)
{
    return (int)config_setting_source_line(s);
}

static bool type_ok(const config_setting_t *s, enum wp_conf_type t)
{
    int have = config_setting_type(s);
    switch (t) {
    case WP_CONF_STRING: return have == CONFIG_TYPE_STRING;
    case WP_CONF_INT: return have == CONFIG_TYPE_INT || have == CONFIG_TYPE_INT64;
    case WP_CONF_BOOL: return have == CONFIG_TYPE_BOOL;
    case WP_CONF_GROUP: return have == CONFIG_TYPE_GROUP;
    case WP_CONF_STRINGS:
        if (have != CONFIG_TYPE_ARRAY && have != CONFIG_TYPE_LIST)
            return false;
        for (int i = 0; i < config_setting_length(s); i++)
            if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_STRING)
                return false;
        return true;
    case WP_CONF_LIST:
        return have == CONFIG_TYPE_LIST || have == CONFIG_TYPE_ARRAY;
    case WP_CONF_SCALAR:
        return have == CONFIG_TYPE_STRING || have == CONFIG_TYPE_INT || have == CONFIG_TYPE_INT64;
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

void wp_conf_check(const config_setting_t *group, const struct wp_conf_schema *schema,
                   const char *fallback_file, struct wp_errors *err)
{
    const char *gname = config_setting_name(group);
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct wp_conf_schema *k = schema;
        while (k->name && strcmp(k->name, name) != 0)
            k++;
        if (!k->name) {
            wp_error(err, wp_conf_file(s, fallback_file), wp_conf_line(s),
                     "unknown setting '%s'%s%s", name, gname ? " in " : "", gname ? gname : "");
            continue;
        }
        if (!type_ok(s, k->type)) {
            wp_error(err, wp_conf_file(s, fallback_file), wp_conf_line(s),
                     "'%s' must be %s", name, type_name(k->type));
            continue;
        }
        if (k->type == WP_CONF_GROUP)
            wp_conf_check(s, k->sub, fallback_file, err);
        else if (k->type == WP_CONF_GROUPS)
            for (int j = 0; j < config_setting_length(s); j++)
                wp_conf_check(config_setting_get_elem(s, (unsigned)j), k->sub, fallback_file, err);
    }
    for (const struct wp_conf_schema *k = schema; k->name; k++)
        if (k->required && !config_setting_get_member(group, k->name))
            wp_error(err, wp_conf_file(group, fallback_file), wp_conf_line(group),
                     "missing required setting '%s'%s%s", k->name, gname ? " in " : "",
                     gname ? gname : "");
}

const char *wp_conf_string(const config_setting_t *group, const char *name, const char *def)
{
    const char *v;
    if (group && config_setting_lookup_string(group, name, &v) == CONFIG_TRUE)
        return v;
    return def;
}

int wp_conf_int(const config_setting_t *group, const char *name, int def)
{
    int v;
    if (group && config_setting_lookup_int(group, name, &v) == CONFIG_TRUE)
        return v;
    return def;
}

bool wp_conf_bool(const config_setting_t *group, const char *name, bool def)
{
    int v;
    if (group && config_setting_lookup_bool(group, name, &v) == CONFIG_TRUE)
        return v != 0;
    return def;
}
