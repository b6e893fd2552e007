/* SPDX-License-Identifier: MIT */
/*
 * reply.c - automatic replies: composition (lib/submit.c sends them).
 */
#include "config.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/strbuf.h"
#include "lib/util.h"
#include "milter/reply.h"
#include "milter/view.h"

static bool has_header(const char *headers, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = headers; line < headers + len;) {
        if (wp_strnieq(line, name, n) && line[n] == ':')
            return true;
        const char *nl = memchr(line, '\n', (size_t)(headers + len - line));
        if (!nl)
            break;
        line = nl + 1;
    }
    return false;
}

static bool starts_header_block(const char *text)
{
    static const char *const starters[] = {"Subject:", "MIME-Version:", "Content-Type:"};
    for (size_t i = 0; i < sizeof(starters) / sizeof(starters[0]); i++)
        if (wp_strnieq(text, starters[i], strlen(starters[i])))
            return true;
    return false;
}

/* A reply to all goes to at most this many addresses: an automatic answer
 * must not become a way to send one message to thousands (backscatter). */
#define WP_REPLY_MAX_RCPTS 50

static void add_rcpt(struct wp_reply_message *rm, const char *addr, const char *from)
{
    if (!addr || !*addr || (from && wp_strieq(addr, from)) || rm->nrcpts >= WP_REPLY_MAX_RCPTS)
        return;
    for (size_t i = 0; i < rm->nrcpts; i++)
        if (wp_strieq(rm->rcpts[i], addr))
            return;
    rm->rcpts = wp_realloc(rm->rcpts, (rm->nrcpts + 1) * sizeof(char *));
    rm->rcpts[rm->nrcpts++] = wp_strdup(addr);
}

static void add_all(struct wp_reply_message *rm, struct wp_view *v, const char *name, const char *from)
{
    size_t n;
    const char *const *addrs = wp_view_addresses(v, name, &n);
    for (size_t i = 0; i < n; i++)
        add_rcpt(rm, addrs[i], from);
}

bool wp_reply_build(const struct wp_message *m, const struct wp_reply *r, const char *from,
                    struct wp_reply_message *out, const char **why)
{
    struct wp_view v;
    wp_view_init(&v, m, NULL);
    bool ok = wp_reply_build_view(&v, r, from, out, why);
    wp_view_free(&v);
    return ok;
}

bool wp_reply_build_view(struct wp_view *v, const struct wp_reply *r, const char *from,
                         struct wp_reply_message *out, const char **why)
{
    const struct wp_message *m = v->m;
    memset(out, 0, sizeof(*out));
    if (!wp_message_human(m)) {
        *why = "the message is not human-generated (bulk, list, auto-submitted or a bounce)";
        return false;
    }
    /* To the Reply-To addresses, else From, else the envelope sender. */
    add_all(out, v, "Reply-To", from);
    if (!out->nrcpts)
        add_all(out, v, "From", from);
    if (!out->nrcpts)
        add_rcpt(out, m->return_path, from);
    if (r->to_all) {
        add_all(out, v, "To", from);
        add_all(out, v, "Cc", from);
    }
    if (!out->nrcpts) {
        *why = "nobody to reply to";
        return false;
    }

    const char *text = r->text;
    const char *hdr = NULL, *body = text;
    size_t hlen = 0;
    if (text[0] == '+' || starts_header_block(text)) {
        if (text[0] == '+')
            text++;
        const char *blank = strstr(text, "\n\n");
        hdr = text;
        hlen = blank ? (size_t)(blank - text) + 1 : strlen(text);
        body = blank ? blank + 2 : "";
    }
    struct wp_strbuf b = {NULL, 0, 0};
    if (!hdr || !has_header(hdr, hlen, "From"))
        wp_strbuf_printf(&b, "From: <%s>\n", from);
    wp_strbuf_printf(&b, "To: ");
    for (size_t i = 0; i < out->nrcpts; i++)
        wp_strbuf_printf(&b, "%s<%s>", i ? ",\n " : "", out->rcpts[i]);
    wp_strbuf_puts(&b, "\n");
    if (!hdr || !has_header(hdr, hlen, "Subject")) {
        const char *subject = wp_view_subject(v);
        char *re = wp_strnieq(subject, "Re:", 3) ? wp_strdup(subject) : wp_asprintf("Re: %s", subject);
        char *enc = g_mime_utils_header_encode_text(NULL, re, NULL);
        wp_strbuf_printf(&b, "Subject: %s\n", enc ? enc : re);
        g_free(enc);
        free(re);
    }
    char date[64];
    wp_rfc5322_date(date, sizeof(date));
    time_t now = time(NULL);
    wp_strbuf_printf(&b, "Date: %s\n", date);
    const char *at = strchr(from, '@');
    wp_strbuf_printf(&b, "Message-ID: <%lld.%ld.%u@%s>\n", (long long)now, (long)getpid(), (unsigned)rand(),
                     at ? at + 1 : "waypost");
    const char *mid = wp_message_header(m, "Message-ID");
    if (mid) {
        while (*mid == ' ')
            mid++;
        wp_strbuf_printf(&b, "In-Reply-To: %s\nReferences: %s\n", mid, mid);
    }
    wp_strbuf_puts(&b, "Auto-Submitted: auto-replied\n");
    if (hdr) {
        wp_strbuf_add(&b, hdr, hlen);
        if (hlen && hdr[hlen - 1] != '\n')
            wp_strbuf_puts(&b, "\n"); /* "+Subject: x" alone: the next header went onto its line */
    }
    /* MIME-Version whenever the text has none: its own Content-Type counts
     * only with it (RFC 2045), and one of its own is not doubled. */
    if (!hdr || !has_header(hdr, hlen, "MIME-Version"))
        wp_strbuf_puts(&b, "MIME-Version: 1.0\n");
    if (!hdr || !has_header(hdr, hlen, "Content-Type"))
        wp_strbuf_puts(&b, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n");
    wp_strbuf_puts(&b, "\n");
    wp_strbuf_puts(&b, body);
    if (b.len && b.s[b.len - 1] != '\n')
        wp_strbuf_puts(&b, "\n");
    out->text = wp_strbuf_take(&b);
    return true;
}

void wp_reply_message_free(struct wp_reply_message *rm)
{
    free(rm->text);
    wp_strv_free(rm->rcpts, rm->nrcpts);
    memset(rm, 0, sizeof(*rm));
}
