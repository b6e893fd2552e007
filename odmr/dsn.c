/* SPDX-License-Identifier: MIT */
/*
 * dsn.c - build and inject the reports of dsn.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/submit.h"
#include "lib/util.h"
#include "odmr/dsn.h"
#include "odmr/settings.h"

#define DSN_HEADERS_MAX 65536 /* bytes of the original header block we quote */

/* "5.1.1" from a reply like "550 5.1.1 <u@d>: unknown", else a default. */
static void status_of(const char *why, bool expired, char *out, size_t size)
{
    if (expired || !why) {
        snprintf(out, size, "4.4.7");
        return;
    }
    const char *p = strlen(why) > 4 ? why + 4 : "";
    int a, b, c, n = 0;
    if (sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c, &n) == 3 && n > 0 && (a == 4 || a == 5) &&
        (p[n] == ' ' || p[n] == '\0'))
        snprintf(out, size, "5.%d.%d", b, c);
    else
        snprintf(out, size, "5.0.0");
}

static void human_duration(int s, char *out, size_t size)
{
    if (s % 86400 == 0)
        snprintf(out, size, "%d day%s", s / 86400, s == 86400 ? "" : "s");
    else if (s % 3600 == 0)
        snprintf(out, size, "%d hour%s", s / 3600, s == 3600 ? "" : "s");
    else
        snprintf(out, size, "%d second%s", s, s == 1 ? "" : "s");
}

char *wp_dsn_text(const char *hostname, const struct wp_spool_msg *m, const bool *which, char *const *why,
                  int expire_seconds)
{
    bool expired = why == NULL;
    struct wp_strbuf t = {NULL, 0, 0};
    char date[64], arrival[64], boundary[64], status[16], dur[64];
    wp_rfc5322_date(date, sizeof(date));
    struct tm tm;
    gmtime_r(&m->arrival, &tm);
    strftime(arrival, sizeof(arrival), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    unsigned char rnd[6] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        memset(rnd, 0, sizeof(rnd));
    snprintf(boundary, sizeof(boundary), "%s/%02x%02x%02x%02x%02x%02x", m->id, rnd[0], rnd[1], rnd[2], rnd[3],
             rnd[4], rnd[5]);
    human_duration(expire_seconds, dur, sizeof(dur));

    wp_strbuf_printf(&t, "From: Mail Delivery System <MAILER-DAEMON@%s>\n", hostname);
    wp_strbuf_printf(&t, "To: <%s>\n", m->sender);
    wp_strbuf_printf(&t, "Subject: Undelivered Mail Returned to Sender\n");
    wp_strbuf_printf(&t, "Date: %s\n", date);
    wp_strbuf_printf(&t, "Auto-Submitted: auto-replied\n");
    wp_strbuf_printf(&t, "MIME-Version: 1.0\n");
    wp_strbuf_printf(
        &t, "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"%s\"\n\n", boundary);
    wp_strbuf_printf(&t, "This is a MIME-encapsulated message.\n\n--%s\n", boundary);
    wp_strbuf_printf(&t, "Content-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n");
    wp_strbuf_printf(&t, "This is the mail system at host %s.\n\n", hostname);
    if (expired)
        wp_strbuf_printf(&t,
                         "Your message was held for a customer who collects mail on demand (ATRN),\n"
                         "and it was not collected within %s.  It has been returned to you.\n\n",
                         dur);
    else
        wp_strbuf_printf(&t, "Your message was held for a customer who collects mail on demand (ATRN).\n"
                             "When it was collected, the customer's mail server refused it.\n\n");
    for (size_t i = 0; i < m->nrcpts; i++)
        if (which[i])
            wp_strbuf_printf(&t, "<%s>: %s\n", m->rcpts[i],
                             expired  ? "not collected in time"
                             : why[i] ? why[i]
                                      : "refused");
    wp_strbuf_printf(
        &t, "\n--%s\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n",
        boundary);
    wp_strbuf_printf(&t, "Reporting-MTA: dns; %s\nX-Waypost-Queue-ID: %s/%s\nArrival-Date: %s\n", hostname,
                     m->queue, m->id, arrival);
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (!which[i])
            continue;
        const char *reason = expired ? NULL : why[i] ? why[i] : "550 refused";
        status_of(reason, expired, status, sizeof(status));
        wp_strbuf_printf(&t, "\nFinal-Recipient: rfc822; %s\nAction: failed\nStatus: %s\n", m->rcpts[i],
                         status);
        if (expired)
            wp_strbuf_printf(&t, "Diagnostic-Code: X-Waypost; not collected by ATRN within %s\n", dur);
        else
            wp_strbuf_printf(&t, "Remote-MTA: dns; %s\nDiagnostic-Code: smtp; %s\n", m->queue, reason);
    }
    wp_strbuf_printf(
        &t, "\n--%s\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n",
        boundary);
    /* The original header block, CRLF turned into LF. */
    const char *p = m->body ? m->body : "";
    size_t left = m->body ? m->body_len : 0, copied = 0;
    while (left > 0 && copied < DSN_HEADERS_MAX) {
        const char *nl = memchr(p, '\n', left);
        size_t n = nl ? (size_t)(nl - p) : left;
        size_t content = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
        if (content == 0)
            break;
        wp_strbuf_add(&t, p, content);
        wp_strbuf_add(&t, "\n", 1);
        copied += n + 1;
        if (!nl)
            break;
        p += n + 1;
        left -= n + 1;
    }
    wp_strbuf_printf(&t, "\n--%s--\n", boundary);
    return wp_strbuf_take(&t);
}

bool wp_dsn_return(const struct wp_snapshot *s, const char *hostname, const struct wp_spool_msg *m,
                   const bool *which, char *const *why, char *err, size_t errlen)
{
    bool expired = why == NULL;
    if (!m->sender[0]) {
        for (size_t i = 0; i < m->nrcpts; i++)
            if (which[i])
                wp_notice("%s/%s: <%s> %s; null sender, no report sent", m->queue, m->id, m->rcpts[i],
                          expired ? "expired" : "refused");
        return true;
    }
    char *text = wp_dsn_text(hostname, m, which, why, wp_odmr_conf(s)->expire);
    const char *const to[] = {m->sender};
    bool ok = wp_submit(wp_odmr_conf(s)->dsn_via, "", to, 1, text, err, errlen);
    if (ok)
        wp_info("%s/%s: sender non-delivery notification sent to <%s>", m->queue, m->id, m->sender);
    free(text);
    return ok;
}
