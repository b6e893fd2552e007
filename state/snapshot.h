/*
 * snapshot.h - one loaded waypost.conf: the immutable, refcounted state that
 * every daemon and the CLI work from.
 *
 * Loading checks the whole file against the schema (unknown settings,
 * wrong types), then builds each section.  Any error fails the load, and
 * the caller keeps whatever snapshot it had: a reload never leaves a daemon
 * half-configured.  Threads take a reference for the work they start and
 * drop it when done, so an old snapshot lives until its last user finishes.
 */
#ifndef WP_SNAPSHOT_H
#define WP_SNAPSHOT_H

#include <stdatomic.h>

#include "errors.h"
#include "log.h"
#include "router.h"

struct wp_snapshot {
    atomic_int refs;
    char *path;    /* the config file */
    char *basedir; /* its directory: relative paths start here */
    enum wp_log_level log_level;
    char *log_facility;
    struct wp_router *router;
};

struct wp_snapshot *wp_snapshot_load(const char *path, struct wp_errors *err);
struct wp_snapshot *wp_snapshot_ref(struct wp_snapshot *s);
void wp_snapshot_unref(struct wp_snapshot *s);

#endif
