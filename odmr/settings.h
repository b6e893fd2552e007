/* SPDX-License-Identifier: MIT */
/*
 * settings.h - waypost-odmrd's settings: the `odmr` group of waypost.conf,
 * as a section of the snapshot (state/snapshot.h).
 *
 * The rows say name, type, default and bounds of each setting; this module
 * checks what they cannot: the listen entries ("tls:" prefix), the LMTP
 * intake derived from postfix.odmr_transport, TLS files that go together,
 * the host name and the accounts with their queues.
 */
#ifndef WP_ODMR_SETTINGS_H
#define WP_ODMR_SETTINGS_H

#include <stdbool.h>

#include "lib/endpoint.h"
#include "state/snapshot.h"

struct wp_odmr_listen {
    struct wp_endpoint ep;
    bool tls;   /* "tls:" prefix: TLS from the first byte (the "odmrs" style) */
    char *text; /* as written, for logs */
};

struct wp_odmr_account {
    char *user;    /* the login name in passwd_file */
    char **queues; /* queue names (lower case) this account may release */
    size_t nqueues;
};

struct wp_odmr_conf {
    struct wp_endpoint lmtp; /* intake from Postfix: from postfix.odmr_transport unless lmtp_listen is set */
    char *lmtp_text;
    struct wp_odmr_listen *listen; /* the customer side */
    size_t nlisten;
    int socket_mode;
    char *socket_owner;
    char *socket_group;
    char *user;
    char *pidfile;
    char *spool;       /* absolute */
    char *passwd_file; /* absolute; "" means nobody can log in */
    char *tls_cert;    /* absolute; "" offers no STARTTLS */
    char *tls_key;
    char *hostname; /* greeting and EHLO name; "" means gethostname() */
    struct wp_odmr_account *accounts;
    size_t naccounts;
    int max_connections;        /* customer connections, all customer endpoints together */
    int lmtp_max_connections;   /* the intake's own: customers cannot take them */
    int max_connections_per_ip; /* customer connections from one address; 0: no limit */
    int auth_timeout;           /* seconds from the greeting to a successful AUTH */
    bool auth_penalty;          /* AUTH failures delay the address's next attempts (anvil.h) */
    int timeout;                /* seconds */
    int max_message_size;       /* bytes */
    int auth_failure_delay;     /* seconds */
    int expire;                 /* seconds a message waits before it is returned */
    char *dsn_via;              /* "smtp:HOST:PORT" or "sendmail:PATH" */
    char *control_socket; /* unix socket for "FLUSH queue" (policyd's ETRN, waypost queue flush); "" none */
    int control_mode;
    int smtp_port;     /* held-queue delivery to a next hop without a port (MX or host) */
    char *dns_servers; /* "" = resolv.conf; else "IP[:PORT],..." (tests point it at their DNS server) */
    char *metrics;     /* "" off, else inet:HOST:PORT of the metrics endpoint */
    bool metrics_allow_remote;
    struct wp_endpoint metrics_ep;
};

extern const struct wp_conf_row wp_odmr_rows[];
extern const struct wp_section wp_odmr_section;
/* What waypost-odmrd loads: its own section. */
extern const struct wp_section *const wp_odmr_sections[];

/* The odmr section of a snapshot that loaded it. */
const struct wp_odmr_conf *wp_odmr_conf(const struct wp_snapshot *s);

/* The account's entry in odmr.accounts, or NULL. */
const struct wp_odmr_account *wp_odmr_account_find(const struct wp_snapshot *s, const char *user);

#endif
