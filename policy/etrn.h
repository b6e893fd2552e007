/* SPDX-License-Identifier: MIT */
/*
 * etrn.h - ETRN for held queues: who may release a queue, and which domains
 * Router records merged into it.
 *
 * A held queue is a next-hop name listed in router.hold_queues; its mail
 * waits in waypost-odmrd's spool (Postfix hands it over by LMTP).  When the
 * ETRN argument names a held queue, or a domain merged into one, and the
 * client may release the queue, waypost-policyd asks waypost-odmrd to
 * deliver that queue (etrnjob.c) and answers OK.  domains[] lists the
 * other domains merged into a queue named by the argument (for the log).
 *
 * Who may release a queue (policyd.etrn_release, per queue in
 * policyd.etrn_queues): "anyone"; "trusted" (a client in
 * router.trusted_networks or an authenticated one: the relay notion); or
 * "accounts" (only the SASL login names listed for the queue).
 *
 * Which domains Router records merged into a queue is the Router's walk
 * (wp_router_queue_domains in router/queues.c); it runs once per released
 * ETRN, on the worker that received it.
 */
#ifndef WP_ETRN_H
#define WP_ETRN_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/errors.h"
#include "router/router.h"

enum wp_etrn_release { WP_ETRN_ANYONE, WP_ETRN_TRUSTED, WP_ETRN_ACCOUNTS };

struct wp_etrn_queue {
    char *queue; /* lower case */
    enum wp_etrn_release release;
    char **accounts; /* SASL login names, compared case-insensitively */
    size_t naccounts;
};

struct wp_etrn_conf {
    enum wp_etrn_release release; /* queues not in the list below */
    struct wp_etrn_queue *queues;
    size_t nqueues;
    char *socket; /* waypost-odmrd's control socket (odmr.control_socket) */
    int timeout;  /* seconds odmrd may take to say the release started */
};

/* Read policyd.etrn_queues (group may be NULL) and parse release (the
 * policyd.etrn_release text); queues are checked against r's held queues.
 * socket and timeout are filled by the policyd rows beforehand. */
void wp_etrn_conf_load(const config_setting_t *group, const char *release, const char *path,
                       const struct wp_router *r, struct wp_etrn_conf *c, struct wp_errors *err);
void wp_etrn_conf_free(struct wp_etrn_conf *c);

enum wp_etrn_outcome {
    WP_ETRN_PASS,    /* not a held queue: Postfix answers as it always does */
    WP_ETRN_REFUSE,  /* answer with action (a 4xx/5xx reply) */
    WP_ETRN_RELEASE, /* have queue released, then answer action ("OK") */
};

#define WP_ETRN_ACTION_MAX 600
struct wp_etrn_decision {
    enum wp_etrn_outcome outcome;
    char action[WP_ETRN_ACTION_MAX];
    char name[WP_DOMAIN_MAX + 1];  /* the ETRN argument, normalised ("" if invalid) */
    char queue[WP_DOMAIN_MAX + 1]; /* the held queue it names or belongs to */
    char **domains;                /* RELEASE: merged domains other than name */
    size_t ndomains;
};

/* Decide one ETRN request (the policy attributes etrn_domain,
 * client_address and sasl_username; any may be hostile). */
void wp_etrn_decide(const struct wp_router *r, const struct wp_etrn_conf *c, const char *etrn_domain,
                    const char *client_address, const char *sasl_username, struct wp_etrn_decision *d);
void wp_etrn_decision_free(struct wp_etrn_decision *d);

#endif
