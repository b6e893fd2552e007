/* SPDX-License-Identifier: MIT */
/*
 * waypost-milter - CommuniGate Server-wide Rules on Postfix, as a milter.
 *
 *   waypost-milter [-c FILE] [-f] [-t]
 *
 * Collects the envelope and the headers of each message, runs the rules at
 * end of message on the snapshot the message started with, and applies the
 * outcome: reject (with the rule's text), discard, recipients added or
 * replaced, headers added, Subject tagged, replies injected through the
 * host MTA.  Then, for recipients of Unified Domain-Wide Accounts, the
 * envelope-recipient field (unified.h).  libmilter calls the callbacks
 * from many threads (Debian's builds from a pool of workers, a connection
 * not tied to one thread): everything a connection keeps is in its
 * private data, never in a thread's.
 *
 * Signals, as in every Waypost daemon (lib/daemon.h): SIGHUP and SIGUSR1
 * reload (a broken configuration keeps the old one), SIGTERM and SIGINT
 * stop.  libmilter would stop on SIGHUP: its own signal thread sigwaits for
 * SIGHUP, SIGTERM and SIGINT.  So smfi_main runs in a thread of its own,
 * started with those signals and SIGUSR1 blocked (every libmilter thread
 * inherits the mask), while the main thread keeps them unblocked, with the
 * skeleton's handlers.  Linux gives a process-directed signal to the main
 * thread whenever that thread can take it, which it always can, except in
 * the microseconds between one signal's arrival and its handler: only a
 * second signal inside that window could reach libmilter's thread.  The
 * main thread then reloads, or stops libmilter with smfi_stop().
 * Limits: at most WP_MILTER_MAX_RCPTS recipients and WP_MILTER_MAX_HEADER_BYTES
 * of headers are kept per message; beyond that the message is tempfailed
 * rather than judged on part of it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/daemon.h"
#include "lib/kvline.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/strbuf.h"
#include "lib/submit.h"
#include "milter/reply.h"
#include "milter/rules.h"
#include "state/snapshot.h"
#include "milter/unified.h"
#include "milter/view.h"
#include "lib/util.h"
#include "milter/settings.h"
#include "milter/stats.h"
#include "state/reload.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif
#define WP_MILTER_MAX_RCPTS 100000
#define WP_MILTER_MAX_HEADER_BYTES (16u << 20)

/* The one process-wide mutable thing: the daemon skeleton, which holds the
 * current snapshot (libmilter's callbacks have no argument of ours). */
static struct wp_daemon daemon_state;
/* The counters (milter.metrics set): beside daemon_state for the same
 * reason, libmilter's callbacks have no argument of ours. */
static struct wp_mstats stats_state;
static bool stats_on;

struct message {
    struct wp_snapshot *snap; /* the snapshot this message started with */
    char *return_path;
    char **rcpts; /* as received, without <> */
    size_t nrcpts;
    struct wp_header *headers;
    size_t nheaders;
    size_t header_bytes;
    size_t size;
    char *auth_user;
    bool too_big;
    bool size_from_mail; /* size came from SIZE=; do not add the body again */
};

struct connection {
    char client_addr[64];
    struct message *msg;
    bool noreply;              /* Postfix agreed not to wait for our answers before EOM */
    struct wp_mstats_map *map; /* the rule slots of the last message's rules (counters on) */
    struct timespec last;      /* when the last command came (counters on): timeouts */
};

/* A command came: note when (a close long after it is libmilter's timeout). */
static void touch(struct connection *c)
{
    if (c && stats_on)
        clock_gettime(CLOCK_MONOTONIC, &c->last);
}

static uint64_t ns_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec - (uint64_t)t0->tv_nsec;
}

static struct wp_snapshot *current_snapshot(void)
{
    return wp_daemon_current(&daemon_state);
}

static void message_free(struct message *m)
{
    if (!m)
        return;
    wp_snapshot_unref(m->snap);
    free(m->return_path);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    for (size_t i = 0; i < m->nheaders; i++) {
        free((char *)m->headers[i].name);
        free((char *)m->headers[i].value);
    }
    free(m->headers);
    free(m->auth_user);
    free(m);
}

static char *strip_brackets(const char *a)
{
    size_t n = strlen(a);
    if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
        return wp_strndup(a + 1, n - 2);
    return wp_strdup(a);
}

/* Ask only for what the rules use, and let Postfix stream everything before
 * the end of the message without waiting for an answer per step: fewer
 * round trips per message. */
static sfsistat on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
                             unsigned long *pf3)
{
    (void)f2;
    (void)f3;
    const unsigned long actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT;
    const unsigned long noreply =
        SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_BODY;
    unsigned long steps = SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NOEOH;
    struct wp_snapshot *s = current_snapshot();
    if (!wp_rules_need_body(wp_milter_conf(s)->rules))
        steps |= SMFIP_NOBODY;
    wp_snapshot_unref(s);
    struct connection *c = wp_calloc(1, sizeof(*c));
    c->noreply = (f1 & noreply) == noreply;
    if (c->noreply)
        steps |= noreply;
    touch(c);
    smfi_setpriv(ctx, c);
    *pf0 = actions & f0;
    *pf1 = steps & f1;
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

/* What a step that cannot change the outcome answers. */
static sfsistat step_done(const struct connection *c)
{
    return c && c->noreply ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
    (void)host;
    struct connection *c = smfi_getpriv(ctx);
    if (!c)
        c = wp_calloc(1, sizeof(*c));
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->sin_addr, c->client_addr,
                  sizeof(c->client_addr));
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->sin6_addr, c->client_addr,
                  sizeof(c->client_addr));
    touch(c);
    smfi_setpriv(ctx, c);
    return step_done(c);
}

static sfsistat on_envfrom(SMFICTX *ctx, char **argv)
{
    struct connection *c = smfi_getpriv(ctx);
    if (!c) {
        c = wp_calloc(1, sizeof(*c));
        smfi_setpriv(ctx, c);
    }
    touch(c);
    if (c->msg && stats_on) /* a new MAIL without an abort: the last transaction ended unfinished */
        wp_mstats_aborted(&stats_state);
    message_free(c->msg);
    struct message *m = wp_calloc(1, sizeof(*m));
    m->snap = current_snapshot();
    m->return_path = strip_brackets(argv[0] ? argv[0] : "");
    const char *auth = smfi_getsymval(ctx, "{auth_authen}");
    m->auth_user = wp_strdup(auth ? auth : "");
    /* SIZE= from MAIL FROM stands in for the size when the body is not sent. */
    for (int i = 1; argv[0] && argv[i]; i++)
        if (wp_strnieq(argv[i], "SIZE=", 5))
            m->size = (size_t)strtoull(argv[i] + 5, NULL, 10);
    m->size_from_mail = m->size > 0;
    c->msg = m;
    return step_done(c);
}

static sfsistat on_envrcpt(SMFICTX *ctx, char **argv)
{
    struct connection *c = smfi_getpriv(ctx);
    touch(c);
    if (!c || !c->msg)
        return step_done(c);
    struct message *m = c->msg;
    if (m->nrcpts >= WP_MILTER_MAX_RCPTS) {
        m->too_big = true;
        return step_done(c);
    }
    m->rcpts = wp_realloc(m->rcpts, (m->nrcpts + 1) * sizeof(char *));
    m->rcpts[m->nrcpts++] = strip_brackets(argv[0] ? argv[0] : "");
    return step_done(c);
}

static sfsistat on_header(SMFICTX *ctx, char *name, char *value)
{
    struct connection *c = smfi_getpriv(ctx);
    touch(c);
    if (!c || !c->msg)
        return step_done(c);
    struct message *m = c->msg;
    size_t n = strlen(name) + strlen(value) + 4;
    if (!m->size_from_mail)
        m->size += n;
    if (m->header_bytes + n > WP_MILTER_MAX_HEADER_BYTES) {
        m->too_big = true;
        return step_done(c);
    }
    m->header_bytes += n;
    m->headers = wp_realloc(m->headers, (m->nheaders + 1) * sizeof(*m->headers));
    m->headers[m->nheaders].name = wp_strdup(name);
    m->headers[m->nheaders].value = wp_strdup(value);
    m->nheaders++;
    return step_done(c);
}

static sfsistat on_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
    (void)chunk;
    struct connection *c = smfi_getpriv(ctx);
    touch(c);
    if (c && c->msg && !c->msg->size_from_mail)
        c->msg->size += len;
    return step_done(c);
}

/* libmilter takes reply texts as format strings: double every '%'. */
static char *escape_percent(const char *s)
{
    size_t n = strlen(s), extra = 0;
    for (size_t i = 0; i < n; i++)
        extra += s[i] == '%';
    char *out = wp_malloc(n + extra + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        *o++ = s[i];
        if (s[i] == '%')
            *o++ = '%';
    }
    *o = '\0';
    return out;
}

/* A change libmilter refused (the connection is gone, or Postfix did not
 * grant the action): noted for the errors counter. */
static void change_done(int rc, bool *failed)
{
    if (rc != MI_SUCCESS)
        *failed = true;
}

static void apply_headers(SMFICTX *ctx, const struct wp_outcome *out, const struct message *m,
                          const struct wp_snapshot *s, bool *failed)
{
    for (size_t i = 0; i < out->nheaders; i++)
        change_done(smfi_addheader(ctx, out->add_headers[i].name, out->add_headers[i].value), failed);
    if (out->subject) {
        char *enc = g_mime_utils_header_encode_text(NULL, out->subject, NULL);
        bool had = false;
        for (size_t i = 0; i < m->nheaders && !had; i++)
            had = wp_strieq(m->headers[i].name, "Subject");
        if (had)
            change_done(smfi_chgheader(ctx, "Subject", 1, enc ? enc : out->subject), failed);
        else
            change_done(smfi_addheader(ctx, "Subject", enc ? enc : out->subject), failed);
        g_free(enc);
    }
    if (out->forwarded) {
        /* Forward to: a resent message (RFC 5322 3.6.6); Redirect leaves the headers alone. */
        char *from = wp_asprintf("<postmaster@%s>", s->router->main_domain);
        change_done(smfi_addheader(ctx, "Resent-From", from), failed);
        free(from);
        size_t len = 1;
        for (size_t i = 0; i < out->nadd; i++)
            len += strlen(out->add_rcpts[i]) + 4;
        char *to = wp_calloc(1, len);
        for (size_t i = 0; i < out->nadd; i++) {
            strcat(to, i ? ", <" : "<");
            strcat(to, out->add_rcpts[i]);
            strcat(to, ">");
        }
        change_done(smfi_addheader(ctx, "Resent-To", to), failed);
        free(to);
        char date[64];
        wp_rfc5322_date(date, sizeof(date));
        change_done(smfi_addheader(ctx, "Resent-Date", date), failed);
    }
}

/* Unified Domain-Wide Accounts: the envelope recipients of the unified
 * domains, in one field per header name at the top of the message.  The
 * recipients are those the message goes to after the rules (a Redirect
 * takes the original ones away, a Mirror to may add one).  Fields of that
 * name that came with the message are removed first: the customer's poller
 * trusts the field, so an outsider must not be able to add recipients by
 * writing one (deleted last to first, so that the indexes of the ones still
 * to go do not move).  Then each account keeps one recipient in the
 * envelope, so that it gets one copy however many there were (unified.h). */
static void unified_fields(struct wp_view *v, const struct wp_outcome *out, const struct message *m,
                           struct wp_unified_fields *uf)
{
    if (!v->router || !v->router->nunified)
        return; /* *uf stays empty */
    size_t n = 0;
    const char **rcpts = wp_calloc(m->nrcpts + out->nadd + 1, sizeof(*rcpts));
    for (size_t i = 0; !out->drop_recipients && i < m->nrcpts; i++)
        rcpts[n++] = m->rcpts[i];
    for (size_t i = 0; i < out->nadd; i++)
        rcpts[n++] = out->add_rcpts[i];
    wp_unified_fields(v, rcpts, n, uf);
    free(rcpts);
}

static void apply_unified(SMFICTX *ctx, const struct wp_unified_fields *uf, const struct wp_outcome *out,
                          const struct message *m, struct wp_view *v, const char *qid, bool *failed)
{
    if (!v->router->nunified)
        return;
    for (size_t i = 0; i < uf->n; i++) {
        const struct wp_unified_field *f = &uf->fields[i];
        int forged = 0;
        for (size_t k = 0; k < m->nheaders; k++)
            forged += wp_strieq(m->headers[k].name, f->name);
        for (int idx = forged; idx >= 1; idx--)
            if (smfi_chgheader(ctx, (char *)f->name, idx, NULL) != MI_SUCCESS && (*failed = true))
                wp_warn("%s: could not remove a %s field that came with the message", qid, f->name);
        if (smfi_insheader(ctx, 0, (char *)f->name, f->value) != MI_SUCCESS && (*failed = true))
            wp_warn("%s: could not add the %s field", qid, f->name);
        else
            wp_info("%s: unified account: %s lists %zu recipient%s%s", qid, f->name, f->nrcpts,
                    f->nrcpts == 1 ? "" : "s", forged ? " (the message's own fields removed)" : "");
        if (f->len > WP_POSTFIX_HEADER_SIZE_LIMIT)
            wp_warn("%s: the %s field is longer than Postfix's default header_size_limit", qid, f->name);
    }
    if (out->drop_recipients)
        return; /* a Redirect or Forward removed them all already */
    const char **extra = wp_calloc(m->nrcpts + 1, sizeof(*extra));
    size_t nextra = wp_unified_extra_rcpts(v, (const char *const *)m->rcpts, m->nrcpts, extra);
    for (size_t i = 0; i < nextra; i++) {
        char *a = wp_asprintf("<%s>", extra[i]);
        if (smfi_delrcpt(ctx, a) != MI_SUCCESS && (*failed = true))
            wp_warn("%s: could not remove recipient %s (its account gets one more copy)", qid, a);
        free(a);
    }
    if (nextra)
        wp_info("%s: unified account: %zu recipient%s left the envelope (one copy per account)", qid, nextra,
                nextra == 1 ? "" : "s");
    free(extra);
}

/* 451 with the route's "4.x.y text" (an account source did not answer). */
static sfsistat tempfail_with(SMFICTX *ctx, const char *text, const char *qid, bool *failed)
{
    char dsn[16] = "4.3.0";
    const char *msg = text;
    size_t n = strcspn(text, " ");
    if (text[0] == '4' && text[1] == '.' && n < sizeof(dsn)) {
        memcpy(dsn, text, n);
        dsn[n] = '\0';
        msg = text + n;
        while (*msg == ' ')
            msg++;
    }
    char *esc = escape_percent(msg[0] ? msg : "Account lookup failed, try again later");
    if (smfi_setreply(ctx, "451", dsn, esc) != MI_SUCCESS && (*failed = true))
        wp_warn("%s: the reply text was refused by libmilter; Postfix sends its own", qid);
    free(esc);
    return SMFIS_TEMPFAIL;
}

/* The decision line of one message (waypost-milter(8), LOGGING): at info
 * for every message, also when no rule fired. */
static void log_message(const char *qid, const struct connection *c, const struct message *m,
                        const struct wp_outcome *out, sfsistat rc)
{
    struct wp_strbuf rules = {0};
    for (size_t i = 0; i < out->nfired; i++) {
        if (i)
            wp_strbuf_puts(&rules, ",");
        wp_strbuf_puts(&rules, out->fired[i]);
    }
    char *fired = wp_strbuf_take(&rules);
    struct wp_kvline l;
    wp_kvline_init(&l);
    wp_kvline_add(&l, "event", "message");
    wp_kvline_add(&l, "queue_id", qid);
    wp_kvline_add(&l, "client", c->client_addr);
    wp_kvline_add(&l, "sasl_username", m->auth_user);
    wp_kvline_add(&l, "sender", m->return_path);
    wp_kvline_addf(&l, "recipients", "%zu", m->nrcpts);
    wp_kvline_add(&l, "rules", fired);
    wp_kvline_add(&l, "result",
                  rc == SMFIS_TEMPFAIL  ? "tempfail"
                  : rc == SMFIS_REJECT  ? "reject"
                  : rc == SMFIS_DISCARD ? "discard"
                                        : "accept");
    wp_info("%s", wp_kvline_text(&l));
    free(fired);
}

static enum wp_mstats_result result_of(sfsistat rc)
{
    return rc == SMFIS_TEMPFAIL  ? WP_MR_TEMPFAIL
           : rc == SMFIS_REJECT  ? WP_MR_REJECT
           : rc == SMFIS_DISCARD ? WP_MR_DISCARD
                                 : WP_MR_ACCEPT;
}

/* The rules' answer to one message and its actions carried out; errors
 * and failed replies noted for the counters. */
static sfsistat answer(SMFICTX *ctx, const struct connection *c, const struct message *m, const char *qid,
                       struct wp_view *view, struct wp_outcome *out, unsigned *errors,
                       unsigned *replies_failed)
{
    const struct wp_snapshot *s = m->snap;
    bool failed = false;
    wp_rules_evaluate_view(wp_milter_conf(s)->rules, &wp_milter_conf(s)->rules_env, view, out);
    for (size_t i = 0; i < out->nlog; i++)
        wp_info("%s: %s", qid, out->log[i]);
    struct wp_unified_fields uf = {NULL, 0, NULL};
    if (!out->tempfail && !out->reject && !out->discard)
        unified_fields(view, out, m, &uf);
    sfsistat rc = SMFIS_CONTINUE;
    if (out->tempfail) {
        wp_notice("%s: tempfail: %s", qid, out->tempfail_text);
        rc = tempfail_with(ctx, out->tempfail_text, qid, &failed);
        *errors |= 1u << WP_ME_SOURCE;
    } else if (uf.temp) {
        /* The unified field would miss a recipient: better later than wrong. */
        wp_notice("%s: tempfail: unified account of %s: %s", qid, uf.temp->address,
                  uf.temp->reason ? uf.temp->reason : "TEMP");
        rc = tempfail_with(ctx, uf.temp->reason ? uf.temp->reason : "", qid, &failed);
        *errors |= 1u << WP_ME_SOURCE;
    } else if (out->reject) {
        char *text =
            escape_percent(out->reject_text[0] ? out->reject_text : "Message rejected by a server-wide rule");
        if (smfi_setreply(ctx, "550", "5.7.1", text) != MI_SUCCESS && (failed = true))
            wp_warn("%s: the reply text was refused by libmilter; Postfix sends its own", qid);
        free(text);
        rc = SMFIS_REJECT;
    } else if (out->discard) {
        rc = SMFIS_DISCARD;
    } else {
        if (out->drop_recipients)
            for (size_t i = 0; i < m->nrcpts; i++) {
                char *a = wp_asprintf("<%s>", m->rcpts[i]);
                if (smfi_delrcpt(ctx, a) != MI_SUCCESS && (failed = true))
                    wp_warn("%s: could not remove recipient %s", qid, a);
                free(a);
            }
        for (size_t i = 0; i < out->nadd; i++) {
            char *a = wp_asprintf("<%s>", out->add_rcpts[i]);
            if (smfi_addrcpt(ctx, a) != MI_SUCCESS && (failed = true))
                wp_warn("%s: could not add recipient %s", qid, a);
            free(a);
        }
        apply_headers(ctx, out, m, s, &failed);
        apply_unified(ctx, &uf, out, m, view, qid, &failed);
        char *postmaster = wp_asprintf("postmaster@%s", s->router->main_domain);
        const char *from = m->nrcpts ? m->rcpts[0] : postmaster;
        for (size_t i = 0; i < out->nreplies; i++) {
            struct wp_reply_message rm;
            const char *why;
            if (!wp_reply_build_view(view, &out->replies[i], from, &rm, &why)) {
                wp_info("%s: no automatic reply: %s", qid, why);
                continue;
            }
            char err[512];
            if (wp_submit(wp_milter_conf(s)->reply_via, "", (const char *const *)rm.rcpts, rm.nrcpts, rm.text,
                          err, sizeof(err))) {
                wp_info("%s: automatic reply sent to %zu recipient%s", qid, rm.nrcpts,
                        rm.nrcpts == 1 ? "" : "s");
            } else {
                wp_warn("%s: automatic reply not sent: %s", qid, err);
                (*replies_failed)++;
            }
            wp_reply_message_free(&rm);
        }
        free(postmaster);
    }
    if (failed)
        *errors |= 1u << WP_ME_ACTION;
    log_message(qid, c, m, out, rc);
    wp_unified_fields_free(&uf);
    return rc;
}

static sfsistat on_eom(SMFICTX *ctx)
{
    /* The latency counted: from here (Postfix's end of message) to the
     * answer, all of Waypost's work on the message. */
    struct timespec t0;
    if (stats_on)
        clock_gettime(CLOCK_MONOTONIC, &t0);
    struct connection *c = smfi_getpriv(ctx);
    touch(c);
    if (!c || !c->msg)
        return SMFIS_CONTINUE;
    struct message *m = c->msg;
    c->msg = NULL;
    const char *qid = smfi_getsymval(ctx, "i");
    if (!qid)
        qid = "NOQUEUE";
    if (stats_on && (!c->map || c->map->rules != wp_milter_conf(m->snap)->rules)) {
        /* The first message of the connection, or the first after a
         * reload: the only time a message takes the slots' lock. */
        wp_mstats_map_put(&stats_state, c->map);
        c->map = wp_mstats_map_get(&stats_state, m->snap);
    }
    unsigned errors = 0, replies_failed = 0;
    sfsistat rc;
    if (m->too_big) {
        wp_warn("%s: more recipients or header bytes than a rule evaluation may hold: tempfail", qid);
        smfi_setreply(ctx, "452", "4.3.1", "Too many recipients or headers for the rules");
        rc = SMFIS_TEMPFAIL;
        errors |= 1u << WP_ME_OVERSIZED;
        struct wp_outcome none = {0}; /* no rule looked at it; its decision line says so */
        log_message(qid, c, m, &none, rc);
        if (stats_on)
            wp_mstats_message(&stats_state, c->map, result_of(rc), ns_since(&t0), errors, 0, NULL);
        touch(c); /* the idle time runs from the answer */
        message_free(m);
        return rc;
    }
    struct wp_message wm = {
        .return_path = m->return_path,
        .rcpts = (const char *const *)m->rcpts,
        .nrcpts = m->nrcpts,
        .headers = m->headers,
        .nheaders = m->nheaders,
        .size = m->size,
        .client_addr = c->client_addr,
        .auth_user = m->auth_user,
        .now = time(NULL),
    };
    /* One view for the rules, the unified fields and the replies: each
     * header parsed and each recipient routed once. */
    struct wp_view view;
    wp_view_init(&view, &wm, m->snap->router);
    struct wp_outcome out;
    rc = answer(ctx, c, m, qid, &view, &out, &errors, &replies_failed);
    if (stats_on)
        wp_mstats_message(&stats_state, c->map, result_of(rc), ns_since(&t0), errors, replies_failed, &out);
    touch(c); /* the idle time runs from the answer */
    wp_outcome_free(&out);
    wp_view_free(&view);
    message_free(m);
    return rc;
}

/* The transaction ends without an end of message: Postfix aborted it, or
 * libmilter did before closing (the connection failed or timed out). */
static sfsistat on_abort(SMFICTX *ctx)
{
    struct connection *c = smfi_getpriv(ctx);
    if (c) {
        if (c->msg && stats_on)
            wp_mstats_aborted(&stats_state);
        message_free(c->msg);
        c->msg = NULL;
    }
    return SMFIS_CONTINUE;
}

static sfsistat on_close(SMFICTX *ctx)
{
    struct connection *c = smfi_getpriv(ctx);
    if (c) {
        if (stats_on) {
            if (c->msg) /* a QUIT amid a transaction, or libmilter closing an idle one: no abort came */
                wp_mstats_aborted(&stats_state);
            /* libmilter does not say why a connection ends: an idle one
             * it closed (its pool looks every 10 minutes) and one Postfix
             * ended after that long idle both count (waypost-milter(8)). */
            if (c->last.tv_sec && ns_since(&c->last) >= (uint64_t)stats_state.timeout * 1000000000u)
                wp_mstats_timeout(&stats_state);
            wp_mstats_map_put(&stats_state, c->map);
        }
        message_free(c->msg);
        free(c);
        smfi_setpriv(ctx, NULL);
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc milter_desc = {
    .xxfi_name = "waypost-milter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT,
    .xxfi_connect = on_connect,
    .xxfi_envfrom = on_envfrom,
    .xxfi_envrcpt = on_envrcpt,
    .xxfi_header = on_header,
    .xxfi_body = on_body,
    .xxfi_eom = on_eom,
    .xxfi_abort = on_abort,
    .xxfi_close = on_close,
    .xxfi_negotiate = on_negotiate,
};

/* ------------------------------------------------------------ life */

/* smfi_main in its own thread (see the header comment); its end wakes the
 * main thread, which may be waiting for signals. */
struct smfi_run {
    int rc;
};

/* smfi_stop() blocks until libmilter's listener lets go of its lock: called
 * here while the main thread pokes the listener awake. */
static void *stop_thread(void *arg)
{
    (void)arg;
    smfi_stop();
    return NULL;
}

static void *smfi_thread(void *arg)
{
    struct smfi_run *run = arg;
    run->rc = smfi_main();
    wp_daemon_wake(&daemon_state);
    return NULL;
}

/* Wake libmilter's accept loop.  smfi_stop() waits for the listener's lock,
 * which the listener holds through its poll() (seconds); a connection ends
 * the poll at once. */
static void poke_listener(const struct wp_endpoint *ep)
{
    int fd = -1;
    if (ep->family == WP_EP_UNIX) {
        fd = wp_unix_connect(ep->path);
    } else {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = ep->family == WP_EP_INET6 ? AF_INET6 : AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        char port[8];
        snprintf(port, sizeof(port), "%d", ep->port);
        const char *host =
            strcmp(ep->host, "*") == 0 ? (ep->family == WP_EP_INET6 ? "::1" : "127.0.0.1") : ep->host;
        if (getaddrinfo(host, port, &hints, &res) == 0) {
            fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
                close(fd);
                fd = -1;
            }
            freeaddrinfo(res);
        }
    }
    if (fd >= 0)
        close(fd);
}

/* libmilter's address syntax: "unix:PATH", "inet:PORT@HOST", "inet6:PORT@HOST". */
static char *libmilter_conn(const struct wp_endpoint *ep)
{
    if (ep->family == WP_EP_UNIX)
        return wp_asprintf("unix:%s", ep->path);
    return wp_asprintf("%s:%d@%s", ep->family == WP_EP_INET6 ? "inet6" : "inet", ep->port, ep->host);
}

int main(int argc, char **argv)
{
    struct wp_daemon_args args;
    int rc0 = wp_daemon_args("waypost-milter", WP_SYSCONFDIR "/waypost/waypost.conf", argc, argv, &args);
    if (rc0 >= 0)
        return rc0;
    wp_daemon_hold_signals(); /* before the (maybe long) first load */
    wp_log_open("waypost-milter", false, NULL, WP_LOG_INFO);
    char *path = NULL;
    struct wp_snapshot *snap = wp_snapshot_load_startup(args.config, wp_milter_sections, &path);
    if (!snap || args.test_only) {
        if (snap)
            printf("%s: OK (%zu rules)\n", path, wp_rules_count(wp_milter_conf(snap)->rules));
        wp_snapshot_unref(snap);
        free(path);
        return snap ? 0 : 1;
    }
    const struct wp_milter_conf *mc = wp_milter_conf(snap); /* the endpoint: fixed until restart */
    struct wp_daemon_conf dc = {mc->pidfile, mc->user, mc->socket_mode, mc->socket_owner, mc->socket_group};
    struct wp_daemon *d = &daemon_state;
    struct wp_daemon_hooks hooks = wp_reload_hooks(wp_milter_sections);
    wp_daemon_init(d, "waypost-milter", path, args.foreground, &hooks, wp_snapshot_ref(snap), &dc);
    char why[512];
    char *conn = libmilter_conn(&mc->listen);
    int rc = 1;
    int metrics_fd = -1;
    struct wp_metricsd *metricsd = NULL;
    /* The lock first: a second instance must not touch the socket (libmilter
     * removes whatever is at the path before it binds). */
    /* Signals from the start: a SIGHUP during start-up waits in the pipe
     * for the loop instead of killing the daemon. */
    int sigfd = wp_daemon_signals(d);
    if (sigfd < 0)
        goto out;
    if (!wp_daemon_lock(d, why, sizeof(why))) {
        fprintf(stderr, "waypost-milter: %s\n", why);
        goto out;
    }
    if (mc->listen.family == WP_EP_UNIX && !wp_daemon_socket_free(mc->listen.path, why, sizeof(why))) {
        fprintf(stderr, "waypost-milter: cannot listen on %s: %s\n", conn, why);
        goto out;
    }
    if (smfi_setconn(conn) != MI_SUCCESS || smfi_settimeout(mc->timeout) != MI_SUCCESS ||
        smfi_register(milter_desc) != MI_SUCCESS || smfi_opensocket(true) != MI_SUCCESS) {
        fprintf(stderr, "waypost-milter: cannot listen on %s\n", conn);
        goto out;
    }
    /* libmilter creates the socket with the process umask: set what we were told. */
    if (mc->listen.family == WP_EP_UNIX && !wp_daemon_adopt_socket(d, mc->listen.path, why, sizeof(why))) {
        fprintf(stderr, "waypost-milter: %s\n", why);
        goto out;
    }
    if (mc->metrics[0]) {
        metrics_fd = wp_metricsd_bind(&mc->metrics_ep, mc->metrics_allow_remote, why, sizeof(why));
        if (metrics_fd < 0) {
            fprintf(stderr, "waypost-milter: cannot listen on %s: %s\n", mc->metrics, why);
            goto out;
        }
        wp_mstats_init(&stats_state, d, mc->timeout);
        stats_on = true;
    }
    if (!wp_daemon_detach(d, why, sizeof(why)) || !wp_daemon_drop(d, why, sizeof(why))) {
        wp_err("%s", why);
        goto out;
    }
    if (metrics_fd >= 0) {
        metricsd = wp_metricsd_start(metrics_fd, wp_mstats_render, NULL, &stats_state, why, sizeof(why));
        if (!metricsd) {
            wp_err("%s", why);
            goto out;
        }
        metrics_fd = -1;
        wp_notice("metrics on http://%s/metrics", mc->metrics + 5);
    }
    g_mime_init();

    /* libmilter's threads, its signal thread among them, start with our
     * signals blocked; the main thread takes them (see the header comment). */
    sigset_t ours, old;
    sigemptyset(&ours);
    sigaddset(&ours, SIGHUP);
    sigaddset(&ours, SIGUSR1);
    sigaddset(&ours, SIGTERM);
    sigaddset(&ours, SIGINT);
    pthread_sigmask(SIG_BLOCK, &ours, &old);
    struct smfi_run run = {MI_FAILURE};
    pthread_t smfi;
    int e = pthread_create(&smfi, NULL, smfi_thread, &run);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        wp_err("cannot start the milter thread: %s", strerror(e));
        goto out;
    }
    wp_notice("ready on %s: %zu rules", conn, wp_rules_count(wp_milter_conf(snap)->rules));
    wp_daemon_ready(d, "ready on %s: %zu rules", conn, wp_rules_count(wp_milter_conf(snap)->rules));
    bool stopping = false, ended = false;
    pthread_t stopper;
    while (!ended) {
        struct pollfd pfd = {sigfd, POLLIN, 0};
        int n = poll(&pfd, 1, stopping ? 50 : -1);
        if (n < 0 && errno != EINTR) {
            wp_err("poll: %s", strerror(errno));
            break;
        }
        if (stopping)
            poke_listener(&mc->listen);
        int sig;
        enum wp_daemon_event ev;
        while ((ev = wp_daemon_next_signal(d, &sig)) != WP_DAEMON_NONE) {
            if (ev == WP_DAEMON_RELOAD && !stopping) {
                struct wp_snapshot *s = wp_daemon_reload(d);
                if (stats_on)
                    wp_mstats_reload(&stats_state, s != NULL);
                if (s)
                    wp_notice("reloaded %s: %zu rules", path, wp_rules_count(wp_milter_conf(s)->rules));
            } else if (ev == WP_DAEMON_STOP && sig != 0 && !stopping) {
                wp_notice("stopping on signal %d", sig);
                int err = pthread_create(&stopper, NULL, stop_thread, NULL);
                if (err != 0) {
                    wp_err("cannot stop libmilter: %s", strerror(err));
                    continue;
                }
                stopping = true;
                poke_listener(&mc->listen);
            } else if (ev == WP_DAEMON_STOP && sig == 0) {
                ended = true;
            }
        }
    }
    if (!ended && !stopping) /* we cannot wait for signals: stop (libmilter's select ends within 5 s) */
        stopping = pthread_create(&stopper, NULL, stop_thread, NULL) == 0;
    pthread_join(smfi, NULL);
    if (stopping)
        pthread_join(stopper, NULL);
    if (!stopping)
        wp_err("libmilter stopped on its own");
    rc = run.rc == MI_SUCCESS && stopping ? 0 : 1;
    wp_notice("stopped");
out:
    wp_metricsd_stop(metricsd);
    if (metrics_fd >= 0)
        close(metrics_fd);
    free(conn);
    wp_snapshot_unref(snap);
    rc = wp_daemon_end(d, rc);
    free(path);
    return rc;
}
