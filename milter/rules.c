/* SPDX-License-Identifier: MIT */
/*
 * rules.c - evaluating Server-wide Rules on one message (see rules.h): one
 * function per condition kind over the per-message view, the actions in
 * order, and the run-time check of the targets the rules name.  Loading
 * is rules_load.c's.
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

const char *const wp_rules_day_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const char *const wp_rules_month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* ---------------------------------------------------------------- evaluation */

/* One evaluation: the message's view and what the conditions found out. */
struct eval {
    const struct wp_rules_env *env;
    struct wp_view *v;
    const struct wp_view_route *temp; /* a Route condition met this TEMP route */
    bool have_tm;
    struct tm tm; /* the message's time, local, once asked for */
};

static bool pic_match(const struct cond *c, size_t i, const char *v, size_t vlen)
{
    return wp_picture_match(c->pics[i], c->piclens[i], v, vlen, NULL);
}

/* One value against the operation (negative operations negate). */
static bool test_value(const struct cond *c, const char *v)
{
    size_t vlen = strlen(v);
    bool any = false;
    for (size_t i = 0; i < c->npics && !any; i++)
        any = pic_match(c, i, v, vlen);
    switch (c->op) {
    case OP_IS:
    case OP_IN: return any;
    case OP_IS_NOT:
    case OP_NOT_IN: return !any;
    case OP_GT: return c->npics && strcmp(v, c->pics[0]) > 0;
    case OP_LT: return c->npics && strcmp(v, c->pics[0]) < 0;
    default: return false;
    }
}

static bool negative(const struct cond *c)
{
    return c->op == OP_IS_NOT || c->op == OP_NOT_IN;
}

/* A header with several addresses (From, To, ...): a positive operation
 * holds if some address matches, a negative one if none does; no address
 * at all meets only the negative operations (CommuniGate's rule). */
static bool test_list(const struct cond *c, const char *const *v, size_t n)
{
    if (negative(c)) {
        for (size_t i = 0; i < n; i++)
            if (!test_value(c, v[i]))
                return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (test_value(c, v[i]))
            return true;
    return false;
}

static bool test_any(const struct cond *c, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (test_value(c, v[i]))
            return true;
    return false;
}

static bool test_each(const struct cond *c, const char *const *v, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!test_value(c, v[i]))
            return false;
    return true;
}

/* ---- one function per condition kind */

static bool cond_header_addresses(const struct cond *c, struct eval *e, const char *name)
{
    size_t n;
    const char *const *v = wp_view_addresses(e->v, name, &n);
    return test_list(c, v, n);
}

static bool cond_from(const struct cond *c, struct eval *e)
{
    return cond_header_addresses(c, e, "From");
}
static bool cond_sender(const struct cond *c, struct eval *e)
{
    return cond_header_addresses(c, e, "Sender");
}
static bool cond_to(const struct cond *c, struct eval *e)
{
    return cond_header_addresses(c, e, "To");
}
static bool cond_cc(const struct cond *c, struct eval *e)
{
    return cond_header_addresses(c, e, "Cc");
}
static bool cond_reply_to(const struct cond *c, struct eval *e)
{
    return cond_header_addresses(c, e, "Reply-To");
}

static bool cond_to_cc(const struct cond *c, struct eval *e)
{
    size_t nto, ncc;
    const char *const *to = wp_view_addresses(e->v, "To", &nto);
    const char *const *cc = wp_view_addresses(e->v, "Cc", &ncc);
    if (c->kind == C_ANY_TO_CC)
        return test_any(c, to, nto) || test_any(c, cc, ncc);
    return nto + ncc > 0 && (nto == 0 || test_each(c, to, nto)) && (ncc == 0 || test_each(c, cc, ncc));
}

static bool cond_rcpt(const struct cond *c, struct eval *e)
{
    const struct wp_message *m = e->v->m;
    return c->kind == C_ANY_RCPT ? test_any(c, m->rcpts, m->nrcpts) : test_each(c, m->rcpts, m->nrcpts);
}

/* Any Route / Each Route: the route of each envelope recipient, as
 * "LOCAL()account@domain", "SMTP(queue)address", ...  A recipient whose
 * account source did not answer (TEMP) leaves the condition undecided: the
 * evaluation stops and the message is to be tempfailed (as waypost-policyd
 * does on TEMP), rather than judged on a made-up "ERROR()" route. */
static bool cond_route(const struct cond *c, struct eval *e)
{
    const struct wp_message *m = e->v->m;
    if (!e->env->router)
        return false; /* no routes: neither any nor each */
    bool any = false, each = m->nrcpts > 0;
    bool trusted = wp_view_client_trusted(e->v);
    for (size_t i = 0; i < m->nrcpts; i++) {
        const struct wp_view_route *r = wp_view_route(e->v, m->rcpts[i], trusted);
        if (r->kind == WP_ROUTE_TEMP) {
            e->temp = r;
            return false;
        }
        bool t = test_value(c, r->text);
        any |= t;
        each &= t;
    }
    return c->kind == C_ANY_ROUTE ? any : each;
}

static bool cond_return_path(const struct cond *c, struct eval *e)
{
    return test_value(c, e->v->m->return_path);
}

static bool cond_submit_addr(const struct cond *c, struct eval *e)
{
    const char *client = e->v->m->client_addr;
    if (!client[0])
        return negative(c);
    char addr[80];
    snprintf(addr, sizeof(addr), "[%s]", client);
    return test_value(c, addr);
}

/* The client's classes: authenticated (SASL), trusted (trusted networks). */
static bool cond_source(const struct cond *c, struct eval *e)
{
    const char *v[2];
    size_t n = 0;
    if (e->v->authenticated)
        v[n++] = "authenticated";
    if (e->v->net_trusted)
        v[n++] = "trusted";
    if (n == 0)
        v[n++] = "untrusted";
    return test_list(c, v, n);
}

static bool cond_subject(const struct cond *c, struct eval *e)
{
    return test_value(c, wp_view_subject(e->v));
}

static bool cond_header_field(const struct cond *c, struct eval *e)
{
    const struct wp_message *m = e->v->m;
    bool neg = negative(c);
    if (c->fields) {
        /* a list: each picture against its own field */
        for (size_t i = 0; i < m->nheaders; i++)
            for (size_t k = 0; k < c->npics; k++) {
                if (!wp_strieq(m->headers[i].name, c->fields[k]))
                    continue;
                const char *v = wp_view_decoded(e->v, i);
                if (pic_match(c, k, v, strlen(v)))
                    return !neg;
            }
        return neg;
    }
    for (size_t i = 0; i < m->nheaders; i++) {
        if (!wp_strieq(m->headers[i].name, c->field))
            continue;
        bool t = test_value(c, wp_view_decoded(e->v, i));
        if (neg && !t)
            return false;
        if (!neg && t)
            return true;
    }
    return neg;
}

static bool cond_size(const struct cond *c, struct eval *e)
{
    long long size = (long long)e->v->m->size;
    return c->op == OP_GT ? size > c->number : size < c->number;
}

static bool cond_human(const struct cond *c, struct eval *e)
{
    return wp_message_human(e->v->m) == (c->op == OP_IS);
}

static bool cond_clock(const struct cond *c, struct eval *e)
{
    if (!e->have_tm) {
        localtime_r(&e->v->m->now, &e->tm);
        e->have_tm = true;
    }
    const struct tm *tm = &e->tm;
    char v[32];
    if (c->kind == C_DATE)
        strftime(v, sizeof(v), "%Y-%m-%d", tm);
    else if (c->kind == C_TIME)
        strftime(v, sizeof(v), "%H:%M", tm);
    else
        snprintf(v, sizeof(v), "%s", wp_rules_day_names[tm->tm_wday]);
    if (c->op != OP_GT && c->op != OP_LT && c->kind == C_DATE) {
        /* pictures with '*' may be written in CommuniGate's "25 Dec 2004" */
        char cgp[32];
        snprintf(cgp, sizeof(cgp), "%d %s %d", tm->tm_mday, wp_rules_month_names[tm->tm_mon],
                 tm->tm_year + 1900);
        return negative(c) ? test_value(c, v) && test_value(c, cgp) : test_value(c, v) || test_value(c, cgp);
    }
    if (c->op != OP_GT && c->op != OP_LT)
        return test_value(c, v);
    if (c->kind == C_DAY) {
        int want = -1;
        for (int d = 0; d < 7; d++)
            if (c->npics && wp_strnieq(c->pics[0], wp_rules_day_names[d], 3))
                want = d;
        return want >= 0 && (c->op == OP_GT ? tm->tm_wday > want : tm->tm_wday < want);
    }
    /* Compared as numbers: as strings "14:30" came before "9:00" and
     * "2024-05-15" before "2024-5-1". */
    int a, b, d;
    long long want = -1, have;
    if (c->kind == C_TIME) {
        if (c->npics && sscanf(c->pics[0], "%d:%d", &a, &b) == 2 && a >= 0 && b >= 0)
            want = a * 60LL + b;
        have = tm->tm_hour * 60LL + tm->tm_min;
    } else {
        if (c->npics && sscanf(c->pics[0], "%d-%d-%d", &a, &b, &d) == 3 && a >= 0 && b >= 0 && d >= 0)
            want = a * 10000LL + b * 100LL + d;
        have = (tm->tm_year + 1900) * 10000LL + (tm->tm_mon + 1) * 100LL + tm->tm_mday;
    }
    return want >= 0 ? (c->op == OP_GT ? have > want : have < want) : test_value(c, v);
}

static bool (*const cond_fns[])(const struct cond *, struct eval *) = {
    [C_FROM] = cond_from,
    [C_SENDER] = cond_sender,
    [C_RETURN_PATH] = cond_return_path,
    [C_TO] = cond_to,
    [C_CC] = cond_cc,
    [C_REPLY_TO] = cond_reply_to,
    [C_ANY_TO_CC] = cond_to_cc,
    [C_EACH_TO_CC] = cond_to_cc,
    [C_ANY_RCPT] = cond_rcpt,
    [C_EACH_RCPT] = cond_rcpt,
    [C_ANY_ROUTE] = cond_route,
    [C_EACH_ROUTE] = cond_route,
    [C_SUBMIT_ADDR] = cond_submit_addr,
    [C_SOURCE] = cond_source,
    [C_SUBJECT] = cond_subject,
    [C_HEADER_FIELD] = cond_header_field,
    [C_MESSAGE_SIZE] = cond_size,
    [C_HUMAN] = cond_human,
    [C_DATE] = cond_clock,
    [C_DAY] = cond_clock,
    [C_TIME] = cond_clock,
};
_Static_assert(sizeof(cond_fns) / sizeof(cond_fns[0]) == C_TIME + 1, "a function for every condition kind");

/* ---- actions */

static void outlog(struct wp_outcome *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outlog(struct wp_outcome *out, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    wp_strv_push(&out->log, &out->nlog, wp_strdup(buf));
}

static void add_rcpts(struct wp_outcome *out, const struct action *a)
{
    for (size_t i = 0; i < a->naddrs; i++) {
        bool dup = false;
        for (size_t k = 0; k < out->nadd && !dup; k++)
            dup = wp_strieq(out->add_rcpts[k], a->addrs[i]);
        if (!dup)
            wp_strv_push(&out->add_rcpts, &out->nadd, wp_strdup(a->addrs[i]));
    }
}

/* Run a rule's actions; true when one of them ends the evaluation. */
static bool run_actions(const struct rule *r, struct wp_view *v, struct wp_outcome *out)
{
    for (size_t k = 0; k < r->nacts; k++) {
        const struct action *a = &r->acts[k];
        switch (a->kind) {
        case A_REJECT:
            out->reject = true;
            free(out->reject_text);
            out->reject_text = wp_strdup(a->text);
            outlog(out, "%s: Reject with \"%s\"", r->name, a->text);
            return true;
        case A_DISCARD:
            out->discard = true;
            outlog(out, "%s: Discard", r->name);
            return true;
        case A_STOP: outlog(out, "%s: Stop Processing", r->name); return true;
        case A_MIRROR:
            add_rcpts(out, a);
            outlog(out, "%s: Mirror to %zu address%s", r->name, a->naddrs, a->naddrs == 1 ? "" : "es");
            break;
        case A_REDIRECT:
        case A_FORWARD:
            out->drop_recipients = true;
            out->forwarded |= a->kind == A_FORWARD;
            add_rcpts(out, a);
            outlog(out, "%s: %s to %zu address%s", r->name, a->kind == A_FORWARD ? "Forward" : "Redirect",
                   a->naddrs, a->naddrs == 1 ? "" : "es");
            break;
        case A_STORE:
            add_rcpts(out, a);
            outlog(out, "%s: Store in %s (as %s)", r->name, a->text, a->addrs[0]);
            break;
        case A_ADD_HEADER:
            out->add_headers =
                wp_realloc(out->add_headers, (out->nheaders + a->nfields) * sizeof(*out->add_headers));
            for (size_t i = 0; i < a->nfields; i++) {
                out->add_headers[out->nheaders].name = wp_strdup(a->fields[i].name);
                out->add_headers[out->nheaders].value = wp_strdup(a->fields[i].value);
                out->nheaders++;
            }
            outlog(out, "%s: Add Header %s", r->name, a->text);
            break;
        case A_TAG_SUBJECT: {
            const char *cur = out->subject ? out->subject : wp_view_subject(v);
            if (!strstr(cur, a->text)) {
                char *tagged = wp_asprintf("%s %s", a->text, cur);
                free(out->subject);
                out->subject = tagged;
                outlog(out, "%s: Tag Subject %s", r->name, a->text);
            }
            break;
        }
        case A_REPLY:
        case A_REPLY_ALL:
            out->replies = wp_realloc(out->replies, (out->nreplies + 1) * sizeof(*out->replies));
            out->replies[out->nreplies].text = wp_strdup(a->text);
            out->replies[out->nreplies].to_all = a->kind == A_REPLY_ALL;
            out->nreplies++;
            outlog(out, "%s: %s", r->name, a->kind == A_REPLY ? "Reply with" : "Reply to All with");
            break;
        }
    }
    return false;
}

void wp_rules_evaluate_view(const struct wp_rules *rs, const struct wp_rules_env *env, struct wp_view *v,
                            struct wp_outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct eval e = {.env = env, .v = v};
    for (size_t i = 0; rs && i < rs->n; i++) {
        const struct rule *r = &rs->rules[i];
        bool all = true;
        for (size_t k = 0; k < r->nconds && all; k++)
            all = cond_fns[r->conds[k].kind](&r->conds[k], &e);
        if (e.temp) {
            /* Undecided: what fired before must not take effect either. */
            wp_outcome_free(out);
            out->tempfail = true;
            out->tempfail_text = wp_strdup(e.temp->reason && e.temp->reason[0]
                                               ? e.temp->reason
                                               : "4.3.0 Account lookup failed, try again later");
            outlog(out, "%s: a Route condition met a temporary failure (%s): tempfail", r->name,
                   e.temp->text);
            return;
        }
        if (!all)
            continue;
        wp_strv_push(&out->fired, &out->nfired, wp_strdup(r->name));
        out->fired_index = wp_realloc(out->fired_index, out->nfired * sizeof(*out->fired_index));
        out->fired_index[out->nfired - 1] = i;
        if (run_actions(r, v, out))
            break;
    }
}

void wp_rules_evaluate(const struct wp_rules *rs, const struct wp_rules_env *env, const struct wp_message *m,
                       struct wp_outcome *out)
{
    struct wp_view v;
    wp_view_init(&v, m, env->router);
    wp_rules_evaluate_view(rs, env, &v, out);
    wp_view_free(&v);
}

void wp_outcome_free(struct wp_outcome *out)
{
    free(out->reject_text);
    free(out->tempfail_text);
    wp_strv_free(out->add_rcpts, out->nadd);
    wp_rules_fields_free(out->add_headers, out->nheaders);
    free(out->subject);
    for (size_t i = 0; i < out->nreplies; i++)
        free(out->replies[i].text);
    free(out->replies);
    wp_strv_free(out->fired, out->nfired);
    free(out->fired_index);
    wp_strv_free(out->log, out->nlog);
    memset(out, 0, sizeof(*out));
}

/* ---------------------------------------------------------------- check */

void wp_rules_check(const struct wp_rules *rs, const struct wp_router *r, struct wp_errors *err)
{
    if (!rs || !r)
        return;
    struct wp_resolve_opts o = {true, false};
    struct wp_route rt;
    for (size_t i = 0; i < rs->n; i++) {
        const struct rule *ru = &rs->rules[i];
        for (size_t k = 0; k < ru->nacts; k++) {
            const struct action *a = &ru->acts[k];
            if (a->kind != A_STORE && a->kind != A_MIRROR && a->kind != A_REDIRECT && a->kind != A_FORWARD)
                continue;
            const char *name = a->kind == A_STORE      ? "Store in"
                               : a->kind == A_MIRROR   ? "Mirror to"
                               : a->kind == A_REDIRECT ? "Redirect to"
                                                       : "Forward to";
            for (size_t n = 0; n < a->naddrs; n++) {
                wp_resolve(r, a->addrs[n], &o, &rt, NULL);
                if (rt.kind == WP_ROUTE_TEMP)
                    continue;
                if (a->kind == A_STORE && rt.kind != WP_ROUTE_LOCAL)
                    wp_error(err, a->file, a->line,
                             "rule '%s': Store in %s is delivered as %s, which routes %s%s%s, not to a local "
                             "account (milter.store_address, router.recipient_delimiter?)",
                             ru->name, a->text, a->addrs[n], wp_route_kind_name(rt.kind),
                             rt.text[0] ? ": " : "", rt.text);
                else if (a->kind != A_STORE &&
                         (rt.kind == WP_ROUTE_UNKNOWN || (rt.kind == WP_ROUTE_ERROR && !rt.bounce)))
                    wp_error(err, a->file, a->line, "rule '%s': %s %s: %s at run time: %s", ru->name, name,
                             a->addrs[n], wp_route_kind_name(rt.kind), rt.text);
            }
        }
    }
}
