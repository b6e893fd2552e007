/* SPDX-License-Identifier: MIT */
/*
 * defaults.h - Waypost's hard limits, and the Router's construction defaults.
 *
 * The defaults of waypost.conf's settings live in the rows of the group
 * that owns them (state/snapshot.c, and settings.c of each component); the Router's defaults
 * below are also those of its construction API (a Router built without a
 * waypost.conf), and the router rows take them from here.  Limits are
 * compile-time bounds on what any input may make us hold in memory.
 */
#ifndef WP_DEFAULTS_H
#define WP_DEFAULTS_H

/* ---- limits on input ---- */
#define WP_ADDR_MAX 1024              /* longest address we accept, in bytes */
#define WP_LOCAL_MAX 512              /* longest local part (RFC 5321 says 64; real mail exceeds it) */
#define WP_DOMAIN_MAX 255             /* longest domain (RFC 1035) */
#define WP_TABLE_LINE_MAX 4096        /* longest Router table line */
#define WP_TABLE_FILE_MAX (1UL << 30) /* largest Router table file: 1 GiB */
#define WP_ERRORS_MAX 200             /* errors collected before we give up on a file */
#define WP_ROUTE_TEXT_MAX 512         /* longest error text of a route */
#define WP_ROUTE_STEPS_MAX 24         /* steps kept in a route trace */
#define WP_ROUTE_STEP_LEN 600         /* longest step line */
#define WP_HEADER_NAME_MAX 76         /* longest header field name we write */

/* ---- router ---- */
#define WP_ROUTER_REWRITES_MAX 10 /* rewrites before a route is a loop error */
#define WP_DEFAULT_MAIL_TO_UNKNOWN "Rejected"
#define WP_DEFAULT_ACCOUNT_CACHE_SECONDS 1 /* passwd-file re-stat and userdb cache lifetime */
#define WP_DEFAULT_USERDB_TIMEOUT_MS 1000  /* Dovecot auth-userdb answer timeout */
#define WP_USERDB_CACHE_MAX 10000          /* entries before the userdb cache is flushed */
#define WP_DEFAULT_RECIPIENT_DELIMITER "+"
#define WP_STR_(x) #x
#define WP_STR(x) WP_STR_(x) /* a number default as row text */
/* waypost-odmrd's control socket ("FLUSH queue"), which policyd's ETRN uses */
#define WP_ODMR_CONTROL_DEFAULT "/run/waypost/odmrd-control.sock"
#define WP_DEFAULT_UNIFIED_HEADER "X-Real-To" /* envelope recipients of a Unified Domain-Wide Account */

/* ---- waypost-policyd ---- */
#define WP_TCP_REPLY_MAX 4096  /* tcp_table reply limit, LF included */
#define WP_ETRN_OUTPUT_MAX 512 /* bytes of postqueue output kept for the log */

/* ---- waypost-milter ---- */
#define WP_POSTFIX_HEADER_SIZE_LIMIT 102400 /* Postfix's header_size_limit default: longer fields are cut */

/* ---- waypost-odmrd ---- */
#define WP_ODMR_LINE_MAX 4096                /* command line incl. CRLF (AUTH PLAIN needs room) */
#define WP_ODMR_AUTH_FAILURES_MAX 3          /* failed AUTHs before the connection is closed */
#define WP_ODMR_BAD_COMMANDS_MAX 10          /* refused commands before the connection is closed */
#define WP_ODMR_PASSWD_FILE_MAX (16UL << 20) /* largest passwd-file we read */

/* ---- Dovecot shared mailboxes (imap section) ---- */
#define WP_IMAP_TEMPLATE_MARKER ".waypost-template" /* in the account's home: template applied */
#define WP_IMAP_ALIAS_DIR "waypost-aliases"         /* in the home: the aliases' virtual mailboxes */
#define WP_IMAP_SHARED_INDEX_DIR "waypost-shared"   /* in the home: private indexes of foreign mailboxes */
#define WP_IMAP_NAME_MAX 255                        /* longest mailbox name or alias we write */

/* ---- texts ---- */
#define WP_TEXT_UNKNOWN_USER "5.1.1 User unknown"
#define WP_TEXT_BOUNCE_UNKNOWN "5.1.1 User unknown; message bounced"
#define WP_TEXT_LOOP "5.4.6 Routing loop detected"
#define WP_TEXT_RELAY_DENIED "5.7.1 Relay access denied"

#endif
