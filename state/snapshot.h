/* SPDX-License-Identifier: MIT */
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

#include "lib/endpoint.h"
#include "imap/dovecot.h"
#include "lib/errors.h"
#include "policy/etrn.h"
#include "lib/log.h"
#include "router/router.h"
#include "milter/rules.h"

enum wp_proto { WP_PROTO_SOCKETMAP, WP_PROTO_TCP, WP_PROTO_POLICY };

/* One policyd.listen entry: "socketmap:unix:PATH", "socketmap:inet:H:P",
 * "tcp:inet:H:P:MAP", "policy:unix:PATH", "policy:inet:H:P". */
struct wp_listen {
    enum wp_proto proto;
    struct wp_endpoint ep;
    int map;      /* tcp: the one map this port answers (enum wp_map) */
    char *text;   /* as written, for logs */
};

struct wp_policyd_conf {
    struct wp_listen *listen;
    size_t nlisten;
    int socket_mode;      /* unix sockets */
    char *socket_owner;   /* "" keeps the owner */
    char *socket_group;
    char *user;           /* drop privileges to this user ("" stays) */
    char *pidfile;        /* "" writes none */
    int threads;          /* 0: one per core */
    int max_connections;
    int idle_timeout;     /* seconds */
    int max_request;      /* bytes */
    bool io_uring;        /* send a pass's answers in one io_uring submission */
    struct wp_etrn_conf etrn; /* ETRN for held queues */
};

/* Names on the Postfix side: what the transport map answers. */
struct wp_postfix_conf {
    char *queue_directory;
    char *config_directory;
    char *local_transport;  /* LOCAL routes, e.g. "lmtp:unix:private/dovecot-lmtp" */
    char *relay_transport;  /* RELAY routes: "smtp" */
    char *hold_transport;   /* HOLD routes: listed in defer_transports */
    char *odmr_transport;   /* ODMR routes */
    bool chroot;            /* smtpd/cleanup/trivial-rewrite run chrooted */
};

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
};

/* waypost-odmrd: the ATRN provider (waypost-odmrd(8)). */
struct wp_odmr_listen {
    struct wp_endpoint ep;
    bool tls;   /* "tls:" prefix: TLS from the first byte (the "odmrs" style) */
    char *text; /* as written, for logs */
};

struct wp_odmr_account {
    char *user;     /* the login name in passwd_file */
    char **queues;  /* queue names (lower case) this account may release */
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
    char *spool;        /* absolute */
    char *passwd_file;  /* absolute; "" means nobody can log in */
    char *tls_cert;     /* absolute; "" offers no STARTTLS */
    char *tls_key;
    char *hostname;     /* greeting and EHLO name; "" means gethostname() */
    struct wp_odmr_account *accounts;
    size_t naccounts;
    int max_connections;
    int timeout;            /* seconds */
    int max_message_size;   /* bytes */
    int auth_failure_delay; /* seconds */
    int expire;             /* seconds a message waits before it is returned */
    char *dsn_via;          /* "smtp:HOST:PORT" or "sendmail:PATH" */
};

struct wp_snapshot {
    atomic_int refs;
    char *path;    /* the config file */
    char *basedir; /* its directory: relative paths start here */
    enum wp_log_level log_level;
    char *log_facility;
    struct wp_router *router;
    struct wp_policyd_conf policyd;
    struct wp_postfix_conf postfix;
    struct wp_milter_conf milter;
    struct wp_imap_conf imap;
    struct wp_odmr_conf odmr;
    struct wp_rules *rules;
    struct wp_rules_env rules_env; /* points into this snapshot */
};

struct wp_snapshot *wp_snapshot_load(const char *path, struct wp_errors *err);
/* A daemon's first load: the path made absolute (reloads must work after
 * chdir("/"); *abs receives it, malloc'ed), warnings and errors printed on
 * standard error. */
struct wp_snapshot *wp_snapshot_load_startup(const char *path, char **abs);
/* A daemon's reload: warnings and errors go to the log; NULL (after
 * logging that the old configuration stays) if the new one is broken. */
struct wp_snapshot *wp_snapshot_reload(const char *path);
/* The account's entry in odmr.accounts, or NULL. */
const struct wp_odmr_account *wp_odmr_account_find(const struct wp_snapshot *s, const char *user);
/* Parse a duration: a number of seconds, or a number with s, m, h, d or w. */
bool wp_duration_parse(const char *text, int *seconds);

struct wp_snapshot *wp_snapshot_ref(struct wp_snapshot *s);
void wp_snapshot_unref(struct wp_snapshot *s);

#endif
