/* SPDX-License-Identifier: MIT */
/*
 * reload.c - the snapshot hooks of the daemon skeleton (see reload.h).
 */
#include "config.h"

#include "state/reload.h"
#include "state/snapshot.h"

static void *reload_load(const char *path, const void *ctx)
{
    return wp_snapshot_reload(path, ctx);
}

static void *reload_ref(void *conf)
{
    return wp_snapshot_ref(conf);
}

static void reload_unref(void *conf)
{
    wp_snapshot_unref(conf);
}

static void reload_log_settings(const void *conf, const char **facility, enum wp_log_level *level)
{
    const struct wp_snapshot *s = conf;
    *facility = s->log_facility;
    *level = s->log_level;
}

struct wp_daemon_hooks wp_reload_hooks(const struct wp_section *const *sections)
{
    struct wp_daemon_hooks h = {
        .reload = reload_load,
        .ref = reload_ref,
        .unref = reload_unref,
        .log_settings = reload_log_settings,
        .ctx = sections,
    };
    return h;
}
