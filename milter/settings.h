/* SPDX-License-Identifier: MIT */
/*
 * settings.h - waypost-milter's settings: the `milter` group and the
 * top-level `rules` list of waypost.conf, as a section of the snapshot
 * (state/snapshot.h).
 *
 * The rows say name, type, default and bounds of each milter setting; the
 * rules are loaded here too (rules.h), once the Router is built, since
 * their conditions and "Store in" actions resolve through it.
 */
#ifndef WP_MILTER_SETTINGS_H
#define WP_MILTER_SETTINGS_H

#include <stdbool.h>

#include "lib/endpoint.h"
#include "milter/rules.h"
#include "state/snapshot.h"

struct wp_milter_conf {
    struct wp_endpoint listen;
    int socket_mode;
    char *socket_owner;
    char *socket_group;
    char *user;
    char *pidfile;
    char *store_address; /* "Store in" delivery address: %a account, %m mailbox, %d domain */
    char *reply_via;     /* "smtp:HOST:PORT" or "sendmail:PATH" */
    int timeout;         /* seconds libmilter waits for Postfix */
    char *metrics;       /* "" off, else inet:HOST:PORT of the metrics endpoint */
    bool metrics_allow_remote;
    struct wp_endpoint metrics_ep; /* parsed metrics */
    struct wp_rules *rules;
    struct wp_rules_env rules_env; /* points into this snapshot */
};

extern const struct wp_conf_row wp_milter_rows[];
extern const struct wp_section wp_milter_section;
/* What waypost-milter loads: its own section. */
extern const struct wp_section *const wp_milter_sections[];

/* The milter section of a snapshot that loaded it. */
const struct wp_milter_conf *wp_milter_conf(const struct wp_snapshot *s);

#endif
