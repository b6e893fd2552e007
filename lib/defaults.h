/* SPDX-License-Identifier: MIT */
/*
 * defaults.h - every built-in default and hard limit of Waypost, in one place.
 *
 * A setting that is not in waypost.conf takes the value below; the man page
 * waypost.conf(5) lists the same values.  Limits are compile-time bounds on
 * what any input may make us hold in memory.
 */
#ifndef WP_DEFAULTS_H
#define WP_DEFAULTS_H

/* ---- limits on input ---- */
#define WP_ADDR_MAX 1024          /* longest address we accept, in bytes */
#define WP_LOCAL_MAX 512          /* longest local part (RFC 5321 says 64; real mail exceeds it) */
#define WP_DOMAIN_MAX 255         /* longest domain (RFC 1035) */
#define WP_TABLE_LINE_MAX 4096    /* longest Router table line */
#define WP_TABLE_FILE_MAX (1UL << 30) /* largest Router table file: 1 GiB */
#define WP_ERRORS_MAX 200         /* errors collected before we give up on a file */
#define WP_ROUTE_TEXT_MAX 512     /* longest error text of a route */
#define WP_ROUTE_STEPS_MAX 24     /* steps kept in a route trace */
#define WP_ROUTE_STEP_LEN 600     /* longest step line */
#define WP_HEADER_NAME_MAX 76     /* longest header field name we write */

/* ---- router ---- */
#define WP_ROUTER_REWRITES_MAX 10 /* rewrites before a route is a loop error */
#define WP_DEFAULT_ROUTER_TABLE "router.table"
#define WP_DEFAULT_MAIL_TO_UNKNOWN "Rejected"
#define WP_DEFAULT_ACCOUNT_CACHE_SECONDS 1   /* passwd-file re-stat and userdb cache lifetime */
#define WP_DEFAULT_USERDB_TIMEOUT_MS 1000    /* Dovecot auth-userdb answer timeout */
#define WP_USERDB_CACHE_MAX 10000            /* entries before the userdb cache is flushed */
#define WP_DEFAULT_RECIPIENT_DELIMITER "+"
#define WP_DEFAULT_UNIFIED_HEADER "X-Real-To" /* envelope recipients of a Unified Domain-Wide Account */

/* ---- waypost-policyd ---- */
#define WP_DEFAULT_SOCKET_MODE "0666"        /* Postfix processes run as postfix */
#define WP_DEFAULT_MAX_CONNECTIONS 1024
#define WP_DEFAULT_IDLE_TIMEOUT 600          /* s; Postfix's tcp client never hangs up */
#define WP_DEFAULT_MAX_REQUEST 10000         /* bytes; Postfix 3.12's socketmap query limit */
#define WP_TCP_REPLY_MAX 4096                /* tcp_table reply limit, LF included */
#define WP_DEFAULT_ETRN_RELEASE "trusted"    /* who may release a held queue: anyone, trusted, accounts */
#define WP_DEFAULT_POSTQUEUE "/usr/sbin/postqueue" /* run as postqueue -c config_directory -s DOMAIN */
#define WP_DEFAULT_ETRN_TIMEOUT 10           /* s for all postqueue runs of one ETRN */
#define WP_ETRN_OUTPUT_MAX 512               /* bytes of postqueue output kept for the log */

/* ---- waypost-milter ---- */
#define WP_DEFAULT_MILTER_LISTEN "unix:/run/waypost/milter.sock" /* unix: inet costs ~88 ms a message */
#define WP_DEFAULT_STORE_ADDRESS "%a+%m@%d"  /* Store in ~account/mailbox -> account+mailbox@domain */
#define WP_DEFAULT_REPLY_VIA "smtp:127.0.0.1:25"
#define WP_DEFAULT_MILTER_TIMEOUT 300        /* s */
#define WP_POSTFIX_HEADER_SIZE_LIMIT 102400 /* Postfix's header_size_limit default: longer fields are cut */

/* ---- waypost-odmrd ---- */
#define WP_DEFAULT_ODMR_LISTEN "inet:*:366"      /* RFC 2645's port "odmr" */
#define WP_DEFAULT_ODMR_SPOOL "/var/spool/waypost-odmr"
#define WP_DEFAULT_ODMR_MAX_CONNECTIONS 256
#define WP_DEFAULT_ODMR_TIMEOUT 300          /* s: a command, a reply, or a stalled transfer */
#define WP_DEFAULT_ODMR_MAX_MESSAGE 52428800 /* bytes of one message (50 MiB) */
#define WP_DEFAULT_ODMR_AUTH_DELAY 2         /* s before a failed AUTH is answered */
#define WP_DEFAULT_ODMR_EXPIRE "5d"          /* Postfix's maximal_queue_lifetime */
#define WP_DEFAULT_ODMR_DSN_VIA "sendmail:/usr/sbin/sendmail"
#define WP_ODMR_LINE_MAX 4096                /* command line incl. CRLF (AUTH PLAIN needs room) */
#define WP_ODMR_AUTH_FAILURES_MAX 3          /* failed AUTHs before the connection is closed */
#define WP_ODMR_BAD_COMMANDS_MAX 10          /* refused commands before the connection is closed */
#define WP_ODMR_PASSWD_FILE_MAX (16UL << 20) /* largest passwd-file we read */

/* ---- Postfix side ---- */
#define WP_DEFAULT_QUEUE_DIRECTORY "/var/spool/postfix"
#define WP_DEFAULT_CONFIG_DIRECTORY "/etc/postfix"
#define WP_DEFAULT_LOCAL_TRANSPORT "lmtp:unix:private/dovecot-lmtp"
#define WP_DEFAULT_RELAY_TRANSPORT "smtp"
#define WP_DEFAULT_HOLD_TRANSPORT "waypost-hold"
#define WP_DEFAULT_ODMR_TRANSPORT "lmtp:unix:/run/waypost/odmrd.sock"

/* ---- Dovecot shared mailboxes (imap section) ---- */
#define WP_DEFAULT_IMAP_MAIL_LOCATION "maildir:~/Maildir"
#define WP_DEFAULT_IMAP_ALIAS_PREFIX "Aliases/"   /* a namespace prefix: cannot be "" next to INBOX's */
#define WP_DEFAULT_IMAP_ACL_FILE "/etc/dovecot/waypost-global.acl"
#define WP_DEFAULT_IMAP_SHARED_DICT "file:/var/lib/dovecot/waypost/shared-mailboxes.db" /* dir: mail uid */
#define WP_IMAP_TEMPLATE_MARKER ".waypost-template" /* in the account's home: template applied */
#define WP_IMAP_ALIAS_DIR "waypost-aliases"         /* in the home: the aliases' virtual mailboxes */
#define WP_IMAP_SHARED_INDEX_DIR "waypost-shared"   /* in the home: private indexes of foreign mailboxes */
#define WP_IMAP_NAME_MAX 255                        /* longest mailbox name or alias we write */

/* ---- texts ---- */
#define WP_TEXT_UNKNOWN_USER "5.1.1 User unknown"
#define WP_TEXT_BOUNCE_UNKNOWN "5.1.1 User unknown; message bounced"
#define WP_TEXT_LOOP "5.4.6 Routing loop detected"
#define WP_TEXT_RELAY_DENIED "5.7.1 Relay access denied"

/* ---- logging ---- */
#define WP_DEFAULT_LOG_LEVEL "info"
#define WP_DEFAULT_LOG_FACILITY "mail"

#endif
