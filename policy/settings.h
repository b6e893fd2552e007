/* SPDX-License-Identifier: MIT */
/*
 * settings.h - waypost-policyd's settings: the `policyd` group of
 * waypost.conf, as a section of the snapshot (state/snapshot.h).
 *
 * The rows say name, type, default and bounds of each setting; what rows
 * cannot say is checked in this module: the listen entries' syntax, and
 * the ETRN queues (which need the Router's held queues).
 */
#ifndef WP_POLICY_SETTINGS_H
#define WP_POLICY_SETTINGS_H

#include <stdbool.h>

#include "lib/endpoint.h"
#include "policy/etrn.h"
#include "policy/maps.h"
#include "state/snapshot.h"

enum wp_proto { WP_PROTO_SOCKETMAP, WP_PROTO_TCP, WP_PROTO_POLICY };

/* One policyd.listen entry: "socketmap:unix:PATH", "socketmap:inet:H:P",
 * "tcp:inet:H:P:MAP", "policy:unix:PATH", "policy:inet:H:P". */
struct wp_listen {
    enum wp_proto proto;
    struct wp_endpoint ep;
    enum wp_map map; /* tcp: the one map this port answers */
    char *text;      /* as written, for logs */
};

struct wp_policyd_conf {
    struct wp_listen *listen;
    size_t nlisten;
    int socket_mode;    /* unix sockets */
    char *socket_owner; /* "" keeps the owner */
    char *socket_group;
    char *user;    /* drop privileges to this user ("" stays) */
    char *pidfile; /* "" writes none */
    int threads;   /* 0: one per core */
    int max_connections;
    int idle_timeout;              /* seconds */
    int max_request;               /* bytes */
    bool io_uring;                 /* send a pass's answers in one io_uring submission */
    char *etrn_release;            /* as written; etrn.release is the parsed value */
    struct wp_etrn_conf etrn;      /* ETRN for held queues */
    char *metrics;                 /* "" off, else inet:HOST:PORT of the metrics endpoint */
    bool metrics_allow_remote;     /* a non-loopback metrics address is allowed */
    struct wp_endpoint metrics_ep; /* parsed metrics (when metrics is not "") */
};

extern const struct wp_conf_row wp_policyd_rows[];
extern const struct wp_section wp_policyd_section;
/* What waypost-policyd loads: its own section. */
extern const struct wp_section *const wp_policyd_sections[];

/* The policyd section of a snapshot that loaded it. */
const struct wp_policyd_conf *wp_policyd_conf(const struct wp_snapshot *s);

/* Is name one of the maps Waypost answers? */

#endif
