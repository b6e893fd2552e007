/* SPDX-License-Identifier: MIT */
/*
 * rules.h - CommuniGate Server-wide Rules: the model, the loader and the
 * evaluation of one message.
 *
 * A rule has a name, a priority 9..1 (or "disabled"), conditions that must
 * all hold (checked in order) and actions run in order.  Rules run from
 * priority 9 down; ties keep file order.  Evaluation produces an outcome
 * (what the milter must do); it never talks to the MTA itself, so the same
 * code serves waypost-milter and `waypost rules --test`.
 *
 * Conditions: From, Sender, Return-Path, To, Cc, Reply-To, Any To or Cc,
 * Each To or Cc, Any Recipient, Each Recipient, Any Route, Each Route,
 * Submit Address, Source, Subject, Header Field, Message Size, Human
 * Generated, Current Date, Current Day, Current Time.
 * Operations: is, is not (pictures with '*'), in, not in (comma lists of
 * pictures), greater than, less than.
 * Actions: Reject with, Discard, Stop Processing, Mirror to, Redirect to,
 * Forward to, Store in, Add Header, Tag Subject, Reply with, Reply to All with.
 * Header addresses and encoded words are parsed with GMime, once per
 * message (view.h).  A Route condition that meets a recipient whose account
 * source did not answer (a TEMP route) makes the outcome a tempfail.
 */
#ifndef WP_RULES_H
#define WP_RULES_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/errors.h"

struct wp_router;
struct wp_rules;
struct wp_view;

/* Settings the rules need from elsewhere in the configuration. */
struct wp_rules_env {
    const struct wp_router *router; /* routes, trusted networks, main domain */
    const char *store_address;      /* "Store in" address form: %a account, %m mailbox, %d domain */
};

/* Load the top-level "rules" list (may be NULL: no rules). */
struct wp_rules *wp_rules_load(const config_setting_t *list, const char *file, const struct wp_rules_env *env,
                               struct wp_errors *err);
void wp_rules_free(struct wp_rules *r);
size_t wp_rules_count(const struct wp_rules *r);
/* The i-th enabled rule (evaluation order): name, priority, and its key
 * (name and canonical text, what its fire count is kept under). */
const char *wp_rules_name(const struct wp_rules *r, size_t i);
int wp_rules_priority(const struct wp_rules *r, size_t i);
const char *wp_rules_key(const struct wp_rules *r, size_t i);
/* Does any rule look at the message size (so the milter must see the body)? */
bool wp_rules_need_body(const struct wp_rules *r);

struct wp_header {
    const char *name;
    const char *value; /* as received (unfolded or not), possibly with encoded words */
};

/* One message as the rules see it. */
struct wp_message {
    const char *return_path;  /* envelope sender without <>; "" for the null sender */
    const char *const *rcpts; /* envelope recipients without <> */
    size_t nrcpts;
    const struct wp_header *headers;
    size_t nheaders;
    size_t size;             /* bytes */
    const char *client_addr; /* "" if unknown */
    const char *auth_user;   /* SASL login, "" if none */
    time_t now;
};

/* A header field to add: name and value apart (the value as written after
 * the blanks that follow the colon). */
struct wp_field {
    char *name;
    char *value;
};

struct wp_reply {
    char *text; /* the rule's text: optional header lines, empty line, body */
    bool to_all;
};

/* What the rules decided; filled by wp_rules_evaluate, freed by wp_outcome_free. */
struct wp_outcome {
    bool tempfail;       /* undecided (a TEMP route): nothing else in the outcome holds */
    char *tempfail_text; /* "4.3.0 text" */
    bool reject;
    char *reject_text; /* as written in the rule ("" for a default) */
    bool discard;
    bool drop_recipients; /* Redirect/Forward: the original recipients go */
    bool forwarded;       /* Forward: add Resent-* fields */
    char **add_rcpts;     /* Mirror, Redirect, Forward, Store in */
    size_t nadd;
    struct wp_field *add_headers;
    size_t nheaders;
    char *subject; /* new Subject after Tag Subject, or NULL */
    struct wp_reply *replies;
    size_t nreplies;
    char **fired;        /* names of the rules that fired, in order */
    size_t *fired_index; /* their indexes among the enabled rules (wp_rules_name(r, i)) */
    size_t nfired;
    char **log; /* one line per action taken, for --test and logs */
    size_t nlog;
};

/* Evaluate the rules on the message of a view (view.h), which keeps what
 * was parsed and resolved for the caller's later use (the unified-account
 * fields, the replies). */
void wp_rules_evaluate_view(const struct wp_rules *r, const struct wp_rules_env *env, struct wp_view *v,
                            struct wp_outcome *out);
/* The same on a view of its own. */
void wp_rules_evaluate(const struct wp_rules *r, const struct wp_rules_env *env, const struct wp_message *m,
                       struct wp_outcome *out);
void wp_outcome_free(struct wp_outcome *out);

/* The run-time pass of `waypost check`: every Store in target must route
 * to a local account, every Mirror/Redirect/Forward address must route
 * somewhere (not ERROR or UNKNOWN); errors with the action's file:line. */
/* For a CommuniGate condition (action false) or action Waypost does not
 * carry out: what does the job on the Postfix/Dovecot side, or NULL if the
 * name is none Waypost knows.  The loader refuses such elements naming it;
 * `waypost import cgp` reports them with it. */
const char *wp_rules_replacement(const char *name, bool action);

void wp_rules_check(const struct wp_rules *rs, const struct wp_router *r, struct wp_errors *err);

#endif
