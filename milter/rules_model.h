/* SPDX-License-Identifier: MIT */
/*
 * rules_model.h - the loaded form of Server-wide Rules, shared by the
 * loader (rules_load.c: waypost.conf's "rules" list, CommuniGate's
 * spellings, the refused elements) and the evaluation (rules.c).  Nothing
 * outside milter/rules*.c sees it: rules.h is the interface.
 */
#ifndef WP_MILTER_RULES_MODEL_H
#define WP_MILTER_RULES_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "milter/rules.h"

enum cond_kind {
    C_FROM,
    C_SENDER,
    C_RETURN_PATH,
    C_TO,
    C_CC,
    C_REPLY_TO,
    C_ANY_TO_CC,
    C_EACH_TO_CC,
    C_ANY_RCPT,
    C_EACH_RCPT,
    C_ANY_ROUTE,
    C_EACH_ROUTE,
    C_SUBMIT_ADDR,
    C_SOURCE,
    C_SUBJECT,
    C_HEADER_FIELD,
    C_MESSAGE_SIZE,
    C_HUMAN,
    C_DATE,
    C_DAY,
    C_TIME,
};
enum op { OP_IS, OP_IS_NOT, OP_IN, OP_NOT_IN, OP_GT, OP_LT, OP_NONE };
enum act_kind {
    A_REJECT,
    A_DISCARD,
    A_STOP,
    A_MIRROR,
    A_REDIRECT,
    A_FORWARD,
    A_STORE,
    A_ADD_HEADER,
    A_TAG_SUBJECT,
    A_REPLY,
    A_REPLY_ALL,
};

/* "Sun" .. "Sat", as Current Day compares them. */
extern const char *const wp_rules_day_names[7];
/* "Jan" .. "Dec", CommuniGate's date spelling ("25 Dec 2004"). */
extern const char *const wp_rules_month_names[12];
/* Free Add Header's name/value pairs (an action's, or an outcome's). */
void wp_rules_fields_free(struct wp_field *f, size_t n);

struct cond {
    enum cond_kind kind;
    enum op op;
    char *field;   /* Header Field: the field name (of the first element) */
    char **fields; /* Header Field lists: each picture's own field name */
    char **pics;   /* is/is not: one; in/not in: the list */
    size_t *piclens;
    size_t npics;
    long long number; /* Message Size */
};

struct action {
    enum act_kind kind;
    char *text;   /* Reject/Tag/Reply/Add Header text */
    char **addrs; /* Mirror/Redirect/Forward/Store in */
    size_t naddrs;
    struct wp_field *fields; /* Add Header: the text's fields, split once at load */
    size_t nfields;
    char *file; /* where it was written, for `waypost check` */
    int line;
};

struct rule {
    char *name;
    char *key;    /* name and text, canonical: what its fire count is kept under */
    int priority; /* 1..9; 0 disabled */
    struct cond *conds;
    size_t nconds;
    struct action *acts;
    size_t nacts;
};

struct wp_rules {
    struct rule *rules; /* enabled rules, priority 9 first, ties in file order */
    size_t n;
    size_t ndisabled;
};

#endif
