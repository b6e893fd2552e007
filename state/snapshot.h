/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h - one loaded waypost.conf: the immutable, refcounted state that
 * every daemon and the CLI work from.
 *
 * state/ owns what every program needs: the file's path and directory, the
 * log, the Postfix side and the Router.  Each component (policy/, milter/,
 * odmr/, imap/) owns its own settings as a section: its struct, its rows,
 * its checks beyond the rows, its free; a program passes the sections it
 * uses to wp_snapshot_load and reads them back through the component's
 * accessor (wp_policyd_conf(s), ...).  A top-level group of a component the
 * program did not register is accepted without being looked at (a daemon
 * checks only its own section; `waypost check` registers all of them, so it
 * validates exactly what the daemons validate); an unknown top-level name
 * is an error everywhere.
 *
 * Loading checks the whole file against the rows (unknown settings, wrong
 * types, bounds), then builds the Router and the sections.  Any error
 * fails the load, and the caller keeps whatever snapshot it had: a reload
 * never leaves a daemon half-configured.  Threads take a reference for the
 * work they start and drop it when done, so an old snapshot lives until its
 * last user finishes.
 */
#ifndef WP_SNAPSHOT_H
#define WP_SNAPSHOT_H

#include <stdatomic.h>
#include <stdio.h>

#include "lib/conf.h"
#include "lib/errors.h"
#include "lib/log.h"
#include "router/router.h"

/* Names on the Postfix side: what the transport map answers. */
struct wp_postfix_conf {
    char *queue_directory;
    char *config_directory;
    char *local_transport; /* LOCAL routes, e.g. "lmtp:unix:private/dovecot-lmtp" */
    char *relay_transport; /* RELAY routes: "smtp" */
    char *hold_transport;  /* HOLD routes: listed in defer_transports */
    char *odmr_transport;  /* ODMR routes */
    bool chroot;           /* smtpd/cleanup/trivial-rewrite run chrooted */
};

/* The log group. */
struct wp_log_conf {
    char *level;
    char *facility;
};

/* The router group as written (the Router itself is built from it). */
struct wp_router_conf {
    char *table; /* absolute; "" for none */
    char *main_domain;
    char **trusted_networks; /* NULL-terminated lists */
    char **own_addresses;
    char **hold_queues;
    char **odmr_queues;
    char *recipient_delimiter; /* "" or one character */
    int account_cache_seconds;
    int userdb_timeout_ms;
};

enum wp_section_id {
    WP_SECTION_POLICYD,
    WP_SECTION_MILTER,
    WP_SECTION_ODMR,
    WP_SECTION_IMAP,
    WP_SECTION_MAX
};

struct wp_snapshot;

struct wp_section {
    const char *name; /* top-level group in waypost.conf */
    enum wp_section_id id;
    size_t size;                    /* sizeof the component's struct */
    const struct wp_conf_row *rows; /* filled by the generic loader */
    /* Further top-level settings the section owns and reads in load (the
     * milter's "rules"); NULL or ended by WP_ROW_END. */
    const struct wp_conf_row *top;
    /* Checks and derived fields beyond the rows (may be NULL); s has the
     * path, basedir, log and postfix, not yet the Router. */
    void (*load)(void *conf, const config_setting_t *group, const config_setting_t *root,
                 const struct wp_snapshot *s, struct wp_errors *err);
    /* What needs the Router (may be NULL): runs only when everything
     * before loaded cleanly. */
    void (*link)(void *conf, const config_setting_t *group, const config_setting_t *root,
                 const struct wp_snapshot *s, struct wp_errors *err);
    /* Frees what load and link allocated beyond the rows (may be NULL). */
    void (*free)(void *conf);
};

struct wp_snapshot {
    atomic_int refs;
    char *path;    /* the config file */
    char *basedir; /* its directory: relative paths start here */
    enum wp_log_level log_level;
    char *log_facility;
    struct wp_log_conf log;
    struct wp_router_conf router_conf;
    struct wp_router *router;
    struct wp_postfix_conf postfix;
    const struct wp_section *sections[WP_SECTION_MAX]; /* those loaded */
    void *section[WP_SECTION_MAX];                     /* their structs, NULL if not loaded */
};

/* The top-level names every program accepts: state's own groups and every
 * component's (registered or not). */
extern const char *const wp_snapshot_top_names[];

/* sections: NULL-terminated list of the sections this program validates and uses. */
struct wp_snapshot *wp_snapshot_load(const char *path, const struct wp_section *const *sections,
                                     struct wp_errors *err);
/* A daemon's first load: the path made absolute (reloads must work after
 * chdir("/"); *abs receives it, malloc'ed), warnings and errors printed on
 * standard error. */
struct wp_snapshot *wp_snapshot_load_startup(const char *path, const struct wp_section *const *sections,
                                             char **abs);
/* A daemon's reload: warnings and errors go to the log; NULL (after
 * logging that the old configuration stays) if the new one is broken. */
struct wp_snapshot *wp_snapshot_reload(const char *path, const struct wp_section *const *sections);

/* A section's struct, or NULL if the program did not load it. */
const void *wp_snapshot_section(const struct wp_snapshot *s, enum wp_section_id id);

/* `waypost show`: "group.name = value" for state's groups and every loaded
 * section; with changed_only, only settings that differ from the default.
 * root is the parsed file (for list and group settings, shown as written). */
void wp_snapshot_print(FILE *out, const struct wp_snapshot *s, const config_setting_t *root,
                       bool changed_only);

/* The rows of state's own groups (for the row tests). */
extern const struct wp_conf_row wp_log_rows[];
extern const struct wp_conf_row wp_postfix_rows[];
extern const struct wp_conf_row wp_router_rows[];

struct wp_snapshot *wp_snapshot_ref(struct wp_snapshot *s);
void wp_snapshot_unref(struct wp_snapshot *s);

#endif
