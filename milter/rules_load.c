/* SPDX-License-Identifier: MIT */
/*
 * rules_load.c - Server-wide Rules from waypost.conf's "rules" list into
 * the model of rules_model.h: conditions, operations and actions by name,
 * CommuniGate's spellings (priorities 0/Inactive, Highest, Lowest; long
 * day names; "25 Dec 2004" dates), addresses without a domain in the main
 * domain, and the CommuniGate elements Waypost refuses with the
 * replacement named.  Every problem is "file:line: message".
 */
#include "config.h"
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/cidr.h"
#include "lib/conf.h"
#include "lib/picture.h"
#include "lib/strbuf.h"
#include "router/router.h"
#include "lib/util.h"
#include "milter/rules.h"
#include "milter/view.h"
#include "milter/rules_model.h"

static const struct {
    const char *name;
    enum cond_kind kind;
} cond_names[] = {
    {"From", C_FROM},
    {"Sender", C_SENDER},
    {"Return-Path", C_RETURN_PATH},
    {"To", C_TO},
    {"Cc", C_CC},
    {"Reply-To", C_REPLY_TO},
    {"Any To or Cc", C_ANY_TO_CC},
    {"Each To or Cc", C_EACH_TO_CC},
    {"Any Recipient", C_ANY_RCPT},
    {"Each Recipient", C_EACH_RCPT},
    {"Any Route", C_ANY_ROUTE},
    {"Each Route", C_EACH_ROUTE},
    {"Submit Address", C_SUBMIT_ADDR},
    {"Source", C_SOURCE},
    {"Subject", C_SUBJECT},
    {"Header Field", C_HEADER_FIELD},
    {"Message Size", C_MESSAGE_SIZE},
    {"Human Generated", C_HUMAN},
    {"Current Date", C_DATE},
    {"Current Day", C_DAY},
    {"Current Time", C_TIME},
};
static const char *const op_names[] = {"is", "is not", "in", "not in", "greater than", "less than"};
static const struct {
    const char *name;
    enum act_kind kind;
    int param; /* 0 none, 1 required, 2 optional */
} act_names[] = {
    {"Reject with", A_REJECT, 2},
    {"Discard", A_DISCARD, 0},
    {"Stop Processing", A_STOP, 0},
    {"Mirror to", A_MIRROR, 1},
    {"Redirect to", A_REDIRECT, 1},
    {"Forward to", A_FORWARD, 1},
    {"Store in", A_STORE, 1},
    {"Add Header", A_ADD_HEADER, 1},
    {"Tag Subject", A_TAG_SUBJECT, 1},
    {"Reply with", A_REPLY, 1},
    {"Reply to All with", A_REPLY_ALL, 1},
};

/* CommuniGate conditions and actions without a faithful meaning at the
 * milter, and what does the job on the Postfix/Dovecot side.  A rule that
 * uses one is refused, naming the replacement; in a disabled rule (as
 * `waypost import cgp` writes such rules) it is a warning and the element
 * is left out, so the rest of the rules still load. */
struct instead {
    const char *name, *instead;
};
static const struct instead cond_instead[] = {
    {"Attachment", "Postfix mime_header_checks, or a content filter such as amavis"},
    {"Security", "Postfix's TLS settings (smtpd_tls_security_level, reject_plaintext_session)"},
    {"Existing Mailbox", "Dovecot Sieve mailboxexists"},
    {"Time of Day", "Current Time"},
};
static const struct instead act_instead[] = {
    {"ExternalFilter",
     "run the filter as a milter (DKIM signing: opendkim in smtpd_milters and non_smtpd_milters)"},
    {"Execute", "run the program as a Postfix content_filter or pipe(8) transport"},
    {"Mark", "Dovecot Sieve imap4flags (addflag) at delivery"},
    {"Remember 'From' in", "Dovecot Sieve vacation, which remembers whom it answered"},
    {"Accept Reply", "Dovecot Sieve vacation"},
    {"React with", "Dovecot Sieve vacation or reject"},
    {"Send Notification", "Dovecot Sieve enotify"},
    {"Write To Log", "Postfix header_checks with WARN"},
    {"FingerNotify", "none (obsolete); Dovecot's IMAP IDLE notifies clients"},
    {"Store Encrypted in", "Dovecot's mail-crypt plugin"},
    {"Copy attachments into", "a Postfix content_filter"},
    {"Accept Request", "none: a Signal (SIP) rule action"},
    {"Redirect Request", "none: a Signal (SIP) rule action"},
    {"Fork Request", "none: a Signal (SIP) rule action"},
};

/* Names compare without case and without spaces ("ExternalFilter",
 * "External Filter"), as CommuniGate's own spellings vary. */
static bool same_name(const char *a, const char *b)
{
    for (;;) {
        while (*a == ' ')
            a++;
        while (*b == ' ')
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        if (wp_lower(*a++) != wp_lower(*b++))
            return false;
    }
}

/* The replacement for an element name of a table above, or NULL. */
#define INSTEAD(table, name) instead_of((table), sizeof(table) / sizeof((table)[0]), (name))
static const char *instead_of(const struct instead *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (same_name(t[i].name, name))
            return t[i].instead;
    return NULL;
}

const char *wp_rules_replacement(const char *name, bool action)
{
    return action ? INSTEAD(act_instead, name) : INSTEAD(cond_instead, name);
}

/* ---------------------------------------------------------------- loading */

/* The rule as one canonical text (name, priority, conditions, actions;
 * fields apart by \x1f): the same rule gives the same key at every load,
 * any change of it another. */
static char *rule_key(const struct rule *r)
{
    struct wp_strbuf b = {0};
    wp_strbuf_printf(&b, "%s\x1f%d", r->name, r->priority);
    for (size_t i = 0; i < r->nconds; i++) {
        const struct cond *c = &r->conds[i];
        wp_strbuf_printf(&b,
                         "\x1f"
                         "c%d.%d.%s.%lld",
                         (int)c->kind, (int)c->op, c->field ? c->field : "", c->number);
        for (size_t k = 0; k < c->npics; k++)
            wp_strbuf_printf(&b, "\x1f%s", c->pics[k]);
    }
    for (size_t i = 0; i < r->nacts; i++) {
        const struct action *a = &r->acts[i];
        wp_strbuf_printf(&b,
                         "\x1f"
                         "a%d.%s",
                         (int)a->kind, a->text ? a->text : "");
        for (size_t k = 0; k < a->naddrs; k++)
            wp_strbuf_printf(&b, "\x1f%s", a->addrs[k]);
    }
    return wp_strbuf_take(&b);
}

/* Split "a, b,c" into trimmed, non-empty items. */
static void split_list(const char *text, char ***out, size_t *n)
{
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > p)
            wp_strv_push(out, n, wp_strndup(p, (size_t)(e - p)));
        p = comma ? comma + 1 : end;
    }
}

static long long parse_size(const char *s, bool *ok)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* ERANGE and the K/M scaling are checked: a too large number used to load
     * as LLONG_MAX, and scaling it overflowed a signed integer (UB). */
    *ok = end != s && v >= 0 && errno != ERANGE;
    long long unit = 1;
    if (*end == 'K' || *end == 'k') {
        unit = 1024;
        end++;
    } else if (*end == 'M' || *end == 'm') {
        unit = 1024 * 1024;
        end++;
    }
    *ok = *ok && *end == '\0' && v <= LLONG_MAX / unit;
    return *ok ? v * unit : 0;
}

#define LOAD_ERROR(...) wp_error(err, wp_conf_file(s, file), wp_conf_line(s), __VA_ARGS__)

static const char *const long_day_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                             "Thursday", "Friday", "Saturday"};

/* "25 Dec 2004" (CommuniGate's spelling; also "25-Dec-2004") or
 * "2004-12-25" -> "2004-12-25"; false if it is neither. */
static bool date_iso(const char *in, char *out, size_t size)
{
    int y, m, d;
    char mon[4], tail;
    if (sscanf(in, "%d-%d-%d%c", &y, &m, &d, &tail) == 3) {
        if (y < 1900 || m < 1 || m > 12 || d < 1 || d > 31)
            return false;
        snprintf(out, size, "%04d-%02d-%02d", y, m, d);
        return true;
    }
    if (sscanf(in, "%d%*[ -]%3[A-Za-z]%*[ -]%d%c", &d, mon, &y, &tail) != 3 || d < 1 || d > 31 || y < 1900)
        return false;
    for (m = 0; m < 12; m++)
        if (wp_strieq(mon, wp_rules_month_names[m]))
            break;
    if (m == 12)
        return false;
    snprintf(out, size, "%04d-%02d-%02d", y, m + 1, d);
    return true;
}

/* Current Day / Current Date pictures in CommuniGate's spellings: long and
 * short day names ("Monday", "Mon"), dates as "25 Dec 2004" or ISO.  Each
 * is rewritten into the form the clock is compared in ("Mon",
 * "2004-12-25"); a picture without '*' in neither form could never match
 * and is refused. */
static bool normalize_clock(struct cond *c, const char *what, const config_setting_t *s, const char *file,
                            struct wp_errors *err)
{
    for (size_t i = 0; i < c->npics; i++) {
        char *p = c->pics[i];
        if (strchr(p, '*'))
            continue;
        char out[32];
        bool ok = false;
        if (c->kind == C_DAY) {
            for (int d = 0; d < 7 && !ok; d++)
                if (wp_strieq(p, long_day_names[d]) || wp_strieq(p, wp_rules_day_names[d])) {
                    snprintf(out, sizeof(out), "%s", wp_rules_day_names[d]);
                    ok = true;
                }
        } else {
            ok = date_iso(p, out, sizeof(out));
        }
        if (!ok) {
            LOAD_ERROR("%s '%s' never matches: %s", what, p,
                       c->kind == C_DAY ? "not a day name (Monday or Mon)"
                                        : "not a date (25 Dec 2004 or 2004-12-25)");
            return false;
        }
        free(c->pics[i]);
        c->pics[i] = wp_strdup(out);
    }
    return true;
}

static bool load_cond(const config_setting_t *s, const char *file, bool disabled, struct cond *c,
                      struct wp_errors *err)
{
    memset(c, 0, sizeof(*c));
    int n = config_setting_length(s);
    if ((config_setting_type(s) != CONFIG_TYPE_LIST && config_setting_type(s) != CONFIG_TYPE_ARRAY) ||
        n < 1 || n > 3) {
        LOAD_ERROR("a condition is a list (\"Condition\", \"operation\", \"parameter\")");
        return false;
    }
    const char *v[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n; i++) {
        v[i] = config_setting_get_string_elem(s, (unsigned)i);
        if (!v[i]) {
            LOAD_ERROR("condition elements must be strings");
            return false;
        }
    }
    size_t k = 0;
    while (k < sizeof(cond_names) / sizeof(cond_names[0]) && !wp_strieq(v[0], cond_names[k].name))
        k++;
    if (k == sizeof(cond_names) / sizeof(cond_names[0])) {
        const char *instead = INSTEAD(cond_instead, v[0]);
        if (instead && disabled)
            wp_warning(err, wp_conf_file(s, file), wp_conf_line(s),
                       "condition '%s' left out of this disabled rule: Waypost does not test it -> %s", v[0],
                       instead);
        else if (instead)
            LOAD_ERROR("condition '%s': Waypost does not test it -> %s", v[0], instead);
        else
            LOAD_ERROR("unknown condition '%s'", v[0]);
        return false;
    }
    c->kind = cond_names[k].kind;
    if (c->kind == C_HUMAN) {
        /* ("Human Generated") or ("Human Generated", "is"|"is not"[, ...]) */
        c->op = OP_IS;
        if (n >= 2) {
            if (wp_strieq(v[1], "is not"))
                c->op = OP_IS_NOT;
            else if (!wp_strieq(v[1], "is")) {
                LOAD_ERROR("Human Generated takes no operation, or 'is' / 'is not'");
                return false;
            }
        }
        return true;
    }
    if (n != 3) {
        LOAD_ERROR("condition '%s' needs an operation and a parameter", v[0]);
        return false;
    }
    size_t o = 0;
    while (o < 6 && !wp_strieq(v[1], op_names[o]))
        o++;
    if (o == 6) {
        LOAD_ERROR("unknown operation '%s' (is, is not, in, not in, greater than, less than)", v[1]);
        return false;
    }
    c->op = (enum op)o;
    bool numeric = c->kind == C_MESSAGE_SIZE;
    bool ordered = numeric || c->kind == C_DATE || c->kind == C_DAY || c->kind == C_TIME;
    if ((c->op == OP_GT || c->op == OP_LT) && !ordered) {
        LOAD_ERROR("'%s' cannot be used with '%s'", v[1], v[0]);
        return false;
    }
    if (numeric && c->op != OP_GT && c->op != OP_LT) {
        LOAD_ERROR("Message Size takes 'greater than' or 'less than'");
        return false;
    }
    const char *param = v[2];
    if (c->kind == C_HEADER_FIELD) {
        const char *colon = strchr(param, ':');
        if (!colon || colon == param) {
            LOAD_ERROR("Header Field takes \"Field-Name: picture\"");
            return false;
        }
        c->field = wp_strndup(param, (size_t)(colon - param));
        param = colon + 1;
        while (*param == ' ')
            param++;
    }
    if (numeric) {
        bool ok;
        c->number = parse_size(param, &ok);
        if (!ok) {
            LOAD_ERROR("'%s' is not a size (a number, with K or M)", param);
            return false;
        }
        return true;
    }
    if (c->op == OP_IN || c->op == OP_NOT_IN)
        split_list(param, &c->pics, &c->npics);
    else
        wp_strv_push(&c->pics, &c->npics, wp_strdup(param));
    if (c->kind == C_HEADER_FIELD) {
        /* CommuniGate's lists: each element "Name: picture" names its own
         * field; an element without a name keeps the one before it. */
        c->fields = wp_calloc(c->npics + 1, sizeof(char *));
        const char *cur = c->field;
        for (size_t i = 0; i < c->npics; i++) {
            char *colon = i ? strchr(c->pics[i], ':') : NULL;
            if (colon && colon > c->pics[i] &&
                wp_header_name_valid(c->pics[i], (size_t)(colon - c->pics[i]))) {
                char *name = wp_strndup(c->pics[i], (size_t)(colon - c->pics[i]));
                const char *rest = colon + 1;
                while (*rest == ' ')
                    rest++;
                char *pic = wp_strdup(rest);
                free(c->pics[i]);
                c->pics[i] = pic;
                c->fields[i] = name;
                cur = name;
            } else {
                c->fields[i] = wp_strdup(cur);
            }
        }
    }
    if ((c->kind == C_DAY || c->kind == C_DATE) && !normalize_clock(c, v[0], s, file, err))
        return false;
    c->piclens = wp_calloc(c->npics + 1, sizeof(*c->piclens));
    for (size_t i = 0; i < c->npics; i++) {
        c->piclens[i] = strlen(c->pics[i]);
        if (wp_picture_stars(c->pics[i], strlen(c->pics[i])) > WP_PICTURE_STARS) {
            LOAD_ERROR("too many '*' in '%s'", c->pics[i]);
            return false;
        }
    }
    return true;
}

static void free_cond(struct cond *c)
{
    wp_strv_free(c->fields, c->fields ? c->npics : 0);
    free(c->field);
    free(c->piclens);
    wp_strv_free(c->pics, c->npics);
}

/* "~account/mailbox" or "~account@domain/mailbox" -> the delivery address. */
static char *store_address(const char *target, const struct wp_rules_env *env, const char **why)
{
    if (target[0] != '~') {
        *why = "Store in takes a foreign mailbox name ~account/mailbox";
        return NULL;
    }
    const char *slash = strchr(target, '/');
    if (!slash || slash == target + 1 || !slash[1]) {
        *why = "Store in takes ~account/mailbox";
        return NULL;
    }
    char account[WP_LOCAL_MAX + 1], domain[WP_DOMAIN_MAX + 1];
    size_t an = (size_t)(slash - target - 1);
    if (an > WP_LOCAL_MAX) {
        *why = "account name too long";
        return NULL;
    }
    memcpy(account, target + 1, an);
    account[an] = '\0';
    char *at = strchr(account, '@');
    if (at) {
        *at = '\0';
        wp_strlcpy(domain, at + 1, sizeof(domain));
    } else {
        wp_strlcpy(domain, env->router ? env->router->main_domain : "localhost", sizeof(domain));
    }
    char out[WP_ADDR_MAX + 1];
    size_t o = 0;
    for (const char *f = env->store_address; *f && o + 1 < sizeof(out); f++) {
        const char *ins = NULL;
        if (*f == '%' && f[1]) {
            f++;
            ins = *f == 'a' ? account : *f == 'm' ? slash + 1 : *f == 'd' ? domain : *f == '%' ? "%" : NULL;
            if (!ins) {
                *why = "milter.store_address knows %a, %m, %d";
                return NULL;
            }
            size_t n = strlen(ins);
            if (o + n + 1 >= sizeof(out)) {
                *why = "address too long";
                return NULL;
            }
            memcpy(out + o, ins, n);
            o += n;
        } else {
            out[o++] = *f;
        }
    }
    out[o] = '\0';
    struct wp_address a;
    if (!wp_address_parse(out, o, 0, &a, why))
        return NULL;
    return wp_strdup(out);
}

static bool load_action(const config_setting_t *s, const char *file, const struct wp_rules_env *env,
                        bool disabled, struct action *a, struct wp_errors *err)
{
    memset(a, 0, sizeof(*a));
    int n = config_setting_length(s);
    if ((config_setting_type(s) != CONFIG_TYPE_LIST && config_setting_type(s) != CONFIG_TYPE_ARRAY) ||
        n < 1 || n > 2) {
        LOAD_ERROR("an action is a list (\"Action\", \"parameter\")");
        return false;
    }
    const char *name = config_setting_get_string_elem(s, 0);
    const char *param = n == 2 ? config_setting_get_string_elem(s, 1) : NULL;
    if (!name || (n == 2 && !param)) {
        LOAD_ERROR("action elements must be strings");
        return false;
    }
    size_t k = 0;
    while (k < sizeof(act_names) / sizeof(act_names[0]) && !wp_strieq(name, act_names[k].name))
        k++;
    if (k == sizeof(act_names) / sizeof(act_names[0])) {
        const char *instead = INSTEAD(act_instead, name);
        if (instead && disabled)
            wp_warning(err, wp_conf_file(s, file), wp_conf_line(s),
                       "action '%s' left out of this disabled rule: Waypost does not carry it out -> %s",
                       name, instead);
        else if (instead)
            LOAD_ERROR("action '%s': Waypost does not carry it out -> %s", name, instead);
        else
            LOAD_ERROR("unknown action '%s'", name);
        return false;
    }
    a->kind = act_names[k].kind;
    if (act_names[k].param == 1 && (!param || !*param)) {
        LOAD_ERROR("action '%s' needs a parameter", name);
        return false;
    }
    if (act_names[k].param == 0 && param) {
        LOAD_ERROR("action '%s' takes no parameter", name);
        return false;
    }
    a->file = wp_strdup(wp_conf_file(s, file));
    a->line = wp_conf_line(s);
    const char *why;
    switch (a->kind) {
    case A_MIRROR:
    case A_REDIRECT:
    case A_FORWARD:
        split_list(param, &a->addrs, &a->naddrs);
        if (a->naddrs == 0) {
            LOAD_ERROR("action '%s' needs addresses", name);
            return false;
        }
        for (size_t i = 0; i < a->naddrs; i++) {
            struct wp_address ad;
            if (!wp_address_parse(a->addrs[i], strlen(a->addrs[i]), 0, &ad, &why)) {
                LOAD_ERROR("'%s' is not an address: %s", a->addrs[i], why);
                return false;
            }
            if (!ad.domain[0]) {
                /* "Redirect to postmaster": in the main domain, as the
                 * Router reads an address without a domain. */
                if (!env->router) {
                    LOAD_ERROR("'%s' is not an address: no domain", a->addrs[i]);
                    return false;
                }
                char full[WP_ADDR_MAX + 1];
                if (!wp_address_format(ad.local, env->router->main_domain, full, sizeof(full))) {
                    LOAD_ERROR("'%s': address too long", a->addrs[i]);
                    return false;
                }
                free(a->addrs[i]);
                a->addrs[i] = wp_strdup(full);
            }
        }
        break;
    case A_STORE: {
        char *addr = store_address(param, env, &why);
        if (!addr) {
            LOAD_ERROR("Store in '%s': %s", param, why);
            return false;
        }
        wp_strv_push(&a->addrs, &a->naddrs, addr);
        a->text = wp_strdup(param);
        break;
    }
    case A_ADD_HEADER:
        for (const char *line = param; *line;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line) : strlen(line);
            const char *colon = memchr(line, ':', len);
            if (!colon || colon == line) {
                LOAD_ERROR("Add Header takes \"Field: value\" lines");
                return false;
            }
            if (!wp_header_name_valid(line, (size_t)(colon - line))) {
                LOAD_ERROR("bad header field name in Add Header");
                return false;
            }
            /* Name and value apart from here on: the milter hands them to
             * libmilter as they are, never joined and split again.  The
             * value starts after the blanks that follow the colon. */
            const char *value = colon + 1;
            while (value < line + len && (*value == ' ' || *value == '\t'))
                value++;
            a->fields = wp_realloc(a->fields, (a->nfields + 1) * sizeof(*a->fields));
            a->fields[a->nfields].name = wp_strndup(line, (size_t)(colon - line));
            a->fields[a->nfields].value = wp_strndup(value, (size_t)(line + len - value));
            a->nfields++;
            line = nl ? nl + 1 : line + len;
        }
        a->text = wp_strdup(param);
        break;
    default: a->text = wp_strdup(param ? param : ""); break;
    }
    if (a->kind == A_REJECT) {
        for (const char *c = a->text; *c; c++)
            if (*c == '\r' || *c == '\n') {
                LOAD_ERROR("the Reject with text must be one line");
                return false;
            }
    }
    return true;
}

void wp_rules_fields_free(struct wp_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].value);
    }
    free(f);
}

static void free_action(struct action *a)
{
    wp_rules_fields_free(a->fields, a->nfields);
    free(a->file);
    free(a->text);
    wp_strv_free(a->addrs, a->naddrs);
}

static void free_rule(struct rule *r)
{
    free(r->key);
    for (size_t i = 0; i < r->nconds; i++)
        free_cond(&r->conds[i]);
    for (size_t i = 0; i < r->nacts; i++)
        free_action(&r->acts[i]);
    free(r->conds);
    free(r->acts);
    free(r->name);
}

/* A priority as CommuniGate writes it: 1..9 (9 runs first), 0 or
 * "Inactive" (never runs; our "disabled" too), "Highest" 9, "Lowest" 1,
 * and numbers written as strings. */
static bool parse_priority(const config_setting_t *p, int *prio)
{
    if (config_setting_type(p) == CONFIG_TYPE_INT) {
        *prio = config_setting_get_int(p);
        return *prio >= 0 && *prio <= 9;
    }
    if (config_setting_type(p) != CONFIG_TYPE_STRING)
        return false;
    const char *t = config_setting_get_string(p);
    if (wp_strieq(t, "disabled") || wp_strieq(t, "Inactive"))
        *prio = 0;
    else if (wp_strieq(t, "Highest"))
        *prio = 9;
    else if (wp_strieq(t, "Lowest"))
        *prio = 1;
    else if (t[0] >= '0' && t[0] <= '9' && t[1] == '\0')
        *prio = t[0] - '0';
    else
        return false;
    return true;
}

struct wp_rules *wp_rules_load(const config_setting_t *list, const char *file, const struct wp_rules_env *env,
                               struct wp_errors *err)
{
    struct wp_rules *rs = wp_calloc(1, sizeof(*rs));
    size_t before = err->count;
    int n = list ? config_setting_length(list) : 0;
    struct rule *all = wp_calloc((size_t)n + 1, sizeof(*all));
    size_t nall = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        const config_setting_t *s = g;
        struct rule *r = &all[nall];
        const char *name = wp_conf_string(g, "name", NULL);
        if (!name || !*name) {
            LOAD_ERROR("a rule needs a name");
            continue;
        }
        r->name = wp_strdup(name);
        const config_setting_t *p = config_setting_get_member(g, "priority");
        if (!p) {
            r->priority = 5;
        } else if (!parse_priority(p, &r->priority)) {
            s = p;
            LOAD_ERROR(
                "rule '%s': priority must be 0..9, \"disabled\", \"Inactive\", \"Highest\" or \"Lowest\"",
                name);
        }
        const config_setting_t *data = config_setting_get_member(g, "data");
        for (int k = 0; data && k < config_setting_length(data); k++) {
            r->conds = wp_realloc(r->conds, (r->nconds + 1) * sizeof(*r->conds));
            if (load_cond(config_setting_get_elem(data, (unsigned)k), file, r->priority == 0,
                          &r->conds[r->nconds], err))
                r->nconds++;
            else
                free_cond(&r->conds[r->nconds]);
        }
        const config_setting_t *acts = config_setting_get_member(g, "action");
        for (int k = 0; acts && k < config_setting_length(acts); k++) {
            r->acts = wp_realloc(r->acts, (r->nacts + 1) * sizeof(*r->acts));
            if (load_action(config_setting_get_elem(acts, (unsigned)k), file, env, r->priority == 0,
                            &r->acts[r->nacts], err))
                r->nacts++;
            else
                free_action(&r->acts[r->nacts]);
        }
        nall++;
    }
    if (err->count > before) {
        for (size_t i = 0; i < nall; i++)
            free_rule(&all[i]);
        free(all);
        free(rs);
        return NULL;
    }
    for (size_t i = 0; i < nall; i++)
        all[i].key = rule_key(&all[i]);
    /* Priority 9 first; a stable pass per priority keeps file order for ties. */
    rs->rules = wp_calloc(nall + 1, sizeof(*rs->rules));
    for (int prio = 9; prio >= 1; prio--)
        for (size_t i = 0; i < nall; i++)
            if (all[i].priority == prio)
                rs->rules[rs->n++] = all[i];
    for (size_t i = 0; i < nall; i++)
        if (all[i].priority == 0) {
            free_rule(&all[i]);
            rs->ndisabled++;
        }
    free(all);
    return rs;
}

void wp_rules_free(struct wp_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free_rule(&r->rules[i]);
    free(r->rules);
    free(r);
}

size_t wp_rules_count(const struct wp_rules *r)
{
    return r ? r->n : 0;
}

const char *wp_rules_name(const struct wp_rules *r, size_t i)
{
    return r->rules[i].name;
}

int wp_rules_priority(const struct wp_rules *r, size_t i)
{
    return r->rules[i].priority;
}

const char *wp_rules_key(const struct wp_rules *r, size_t i)
{
    return r->rules[i].key;
}

bool wp_rules_need_body(const struct wp_rules *r)
{
    for (size_t i = 0; r && i < r->n; i++)
        for (size_t k = 0; k < r->rules[i].nconds; k++)
            if (r->rules[i].conds[k].kind == C_MESSAGE_SIZE)
                return true;
    return false;
}
