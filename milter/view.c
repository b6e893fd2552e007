/* SPDX-License-Identifier: MIT */
/*
 * view.c - the per-message view (see view.h) and the header helpers it is
 * made of.
 */
#include "config.h"

#include <gmime/gmime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/cidr.h"
#include "lib/strbuf.h"
#include "lib/strmap.h"
#include "lib/util.h"
#include "milter/view.h"

/* ---------------------------------------------------------------- header helpers */

const char *wp_message_header(const struct wp_message *m, const char *name)
{
    for (size_t i = 0; i < m->nheaders; i++)
        if (wp_strieq(m->headers[i].name, name))
            return m->headers[i].value;
    return NULL;
}

bool wp_message_human(const struct wp_message *m)
{
    if (!m->return_path[0])
        return false; /* bounces and notifications */
    for (size_t i = 0; i < m->nheaders; i++) {
        const char *n = m->headers[i].name, *v = m->headers[i].value;
        while (*v == ' ' || *v == '\t')
            v++;
        if (wp_strieq(n, "Auto-Submitted") && !wp_strnieq(v, "no", 2))
            return false;
        if (wp_strieq(n, "Precedence") &&
            (wp_strnieq(v, "bulk", 4) || wp_strnieq(v, "list", 4) || wp_strnieq(v, "junk", 4)))
            return false;
        if (wp_strieq(n, "List-Id") || wp_strieq(n, "List-Unsubscribe") || wp_strieq(n, "X-Autoreply") ||
            wp_strieq(n, "X-Autorespond") || wp_strieq(n, "Auto-Response-Suppress"))
            return false;
    }
    char local[WP_LOCAL_MAX + 1];
    wp_strlcpy(local, m->return_path, sizeof(local));
    char *at = strchr(local, '@');
    if (at)
        *at = '\0';
    return !wp_strieq(local, "MAILER-DAEMON") && !wp_strnieq(local, "owner-", 6) &&
           !strstr(local, "-request");
}

static void add_mailbox(InternetAddress *ia, char ***v, size_t *n)
{
    const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
    if (addr && *addr)
        wp_strv_push(v, n, wp_strdup(addr));
}

/* Mailbox addresses (groups flattened) of one field value, appended. */
static void parse_addresses(const char *value, char ***v, size_t *n)
{
    InternetAddressList *list = internet_address_list_parse(g_mime_parser_options_get_default(), value);
    if (!list)
        return;
    for (int k = 0; k < internet_address_list_length(list); k++) {
        InternetAddress *ia = internet_address_list_get_address(list, k);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            add_mailbox(ia, v, n);
        } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            InternetAddressList *members = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
            for (int j = 0; members && j < internet_address_list_length(members); j++) {
                InternetAddress *mb = internet_address_list_get_address(members, j);
                if (INTERNET_ADDRESS_IS_MAILBOX(mb))
                    add_mailbox(mb, v, n);
            }
        }
    }
    g_object_unref(list);
}

size_t wp_message_addresses(const struct wp_message *m, const char *name, char ***out)
{
    size_t n = 0;
    *out = NULL;
    for (size_t i = 0; i < m->nheaders; i++)
        if (wp_strieq(m->headers[i].name, name))
            parse_addresses(m->headers[i].value, out, &n);
    return n;
}

static void decode_piece(struct wp_strbuf *b, const char *raw, size_t len)
{
    char *piece = wp_strndup(raw, len);
    char *d = g_mime_utils_header_decode_text(g_mime_parser_options_get_default(), piece);
    wp_strbuf_puts(b, d ? d : piece);
    g_free(d);
    free(piece);
}

/* GMime before 3.2.14 joins adjacent base64 encoded words of one charset
 * and loses everything after the first word's '=' padding: "=?UTF-8?B?SGVsbG8=?=
 * =?UTF-8?B?V29ybGQ=?=" decoded as "Hello" (jstedfast/gmime#133), so Tag
 * Subject rewrote such a Subject truncated.  A padded word is complete on
 * its own: decode the text in pieces split after each padded base64 word
 * that another encoded word follows (the white space between goes). */
static char *decode_words(const char *raw)
{
    struct wp_strbuf b = {NULL, 0, 0};
    const char *seg = raw;
    for (const char *p = raw; (p = strstr(p, "=?")) != NULL;) {
        const char *q = memchr(p + 2, '?', strnlen(p + 2, 76));
        if (!q || (q[1] != 'B' && q[1] != 'b') || q[2] != '?') {
            p += 2;
            continue;
        }
        const char *end = strstr(q + 3, "?=");
        if (!end)
            break;
        const char *next = end + 2;
        while (*next == ' ' || *next == '\t' || *next == '\r' || *next == '\n')
            next++;
        if (end[-1] == '=' && next > end + 2 && strncmp(next, "=?", 2) == 0) {
            decode_piece(&b, seg, (size_t)(end + 2 - seg));
            seg = next;
        }
        p = end + 2;
    }
    decode_piece(&b, seg, strlen(seg));
    return wp_strbuf_take(&b);
}

char *wp_header_decode(const char *raw)
{
    while (*raw == ' ' || *raw == '\t')
        raw++;
    /* Plain ASCII without an encoded word (the usual case) is left as it is
     * by GMime's decoder: skip it.  8-bit text goes through it (it converts
     * from the fallback charsets). */
    bool plain = !strstr(raw, "=?");
    for (const unsigned char *p = (const unsigned char *)raw; plain && *p; p++)
        plain = *p < 0x80;
    char *out = plain ? wp_strdup(raw) : decode_words(raw);
    /* unfold */
    char *w = out;
    for (const char *r = out; *r; r++)
        if (*r != '\r' && *r != '\n')
            *w++ = *r;
    *w = '\0';
    return out;
}

/* ---------------------------------------------------------------- the view */

struct view_names {
    char *name;
    char **addrs;
    size_t n;
};

struct view_slot {
    uint64_t hash;
    char *address; /* NULL: empty */
    bool trusted;
    struct wp_view_route route;
};

void wp_view_init(struct wp_view *v, const struct wp_message *m, const struct wp_router *router)
{
    memset(v, 0, sizeof(*v));
    v->m = m;
    v->router = router;
    if (m) {
        v->authenticated = m->auth_user && m->auth_user[0];
        v->net_trusted = router && m->client_addr && m->client_addr[0] &&
                         wp_nets_contain(&router->trusted, m->client_addr);
    }
}

static void route_free(struct wp_view_route *r)
{
    free(r->text);
    free(r->address);
    free(r->reason);
    free(r->unified_rcpt);
}

void wp_view_free(struct wp_view *v)
{
    for (size_t i = 0; i < v->nnames; i++) {
        free(v->names[i].name);
        wp_strv_free(v->names[i].addrs, v->names[i].n);
    }
    free(v->names);
    if (v->decoded && v->m)
        for (size_t i = 0; i < v->m->nheaders; i++)
            free(v->decoded[i]);
    free(v->decoded);
    free(v->subject);
    for (size_t i = 0; i < v->nslots; i++)
        if (v->slots[i].address) {
            free(v->slots[i].address);
            route_free(&v->slots[i].route);
        }
    free(v->slots);
    memset(v, 0, sizeof(*v));
}

bool wp_view_client_trusted(const struct wp_view *v)
{
    return v->authenticated || v->net_trusted;
}

const char *const *wp_view_addresses(struct wp_view *v, const char *name, size_t *n)
{
    for (size_t i = 0; i < v->nnames; i++)
        if (wp_strieq(v->names[i].name, name)) {
            *n = v->names[i].n;
            return (const char *const *)v->names[i].addrs;
        }
    v->names = wp_realloc(v->names, (v->nnames + 1) * sizeof(*v->names));
    struct view_names *e = &v->names[v->nnames++];
    memset(e, 0, sizeof(*e));
    e->name = wp_strdup(name);
    for (size_t i = 0; v->m && i < v->m->nheaders; i++)
        if (wp_strieq(v->m->headers[i].name, name)) {
            parse_addresses(v->m->headers[i].value, &e->addrs, &e->n);
            v->counts.address_parses++;
        }
    *n = e->n;
    return (const char *const *)e->addrs;
}

const char *wp_view_decoded(struct wp_view *v, size_t i)
{
    if (!v->m || i >= v->m->nheaders)
        return "";
    if (!v->decoded)
        v->decoded = wp_calloc(v->m->nheaders, sizeof(*v->decoded));
    if (!v->decoded[i]) {
        v->decoded[i] = wp_header_decode(v->m->headers[i].value);
        v->counts.decodes++;
    }
    return v->decoded[i];
}

const char *wp_view_subject(struct wp_view *v)
{
    if (!v->subject) {
        for (size_t i = 0; v->m && i < v->m->nheaders && !v->subject; i++)
            if (wp_strieq(v->m->headers[i].name, "Subject"))
                v->subject = wp_strdup(wp_view_decoded(v, i));
        if (!v->subject)
            v->subject = wp_strdup("");
    }
    return v->subject;
}

/* Exact bytes (FNV-1a): two spellings of an address are two routes, as
 * the Route condition shows the address as written. */
static uint64_t route_hash(const char *address, bool trusted)
{
    uint64_t h = WP_HASH_INIT ^ (uint64_t)trusted;
    for (const unsigned char *p = (const unsigned char *)address; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h | 1; /* never 0 */
}

static void route_fill(struct wp_view_route *vr, const struct wp_router *r, const char *address, bool trusted)
{
    struct wp_route rt;
    struct wp_resolve_opts o = {trusted, false};
    wp_resolve(r, address, &o, &rt, NULL);
    memset(vr, 0, sizeof(*vr));
    vr->kind = rt.kind;
    switch (rt.kind) {
    case WP_ROUTE_LOCAL: vr->text = wp_asprintf("LOCAL()%s@%s", rt.account, rt.domain); break;
    case WP_ROUTE_RELAY:
    case WP_ROUTE_HOLD: vr->text = wp_asprintf("SMTP(%s)%s", rt.queue, rt.address); break;
    case WP_ROUTE_ODMR: vr->text = wp_asprintf("ODMR(%s)%s", rt.queue, rt.address); break;
    case WP_ROUTE_DISCARD: vr->text = wp_asprintf("DISCARD()%s", rt.address); break;
    case WP_ROUTE_GROUP: vr->text = wp_asprintf("GROUP()%s", rt.address); break;
    default: vr->text = wp_asprintf("ERROR()%s", address); break;
    }
    vr->address = wp_strdup(rt.address);
    if (rt.kind == WP_ROUTE_ERROR || rt.kind == WP_ROUTE_UNKNOWN || rt.kind == WP_ROUTE_TEMP)
        vr->reason = wp_strdup(rt.text);
    vr->unified = rt.unified;
    if (rt.unified)
        vr->unified_rcpt = wp_strdup(rt.unified_rcpt);
}

static struct view_slot *slot_find(struct view_slot *slots, size_t nslots, uint64_t h, const char *address,
                                   bool trusted)
{
    for (size_t i = (size_t)h & (nslots - 1);; i = (i + 1) & (nslots - 1)) {
        struct view_slot *s = &slots[i];
        if (!s->address || (s->hash == h && s->trusted == trusted && strcmp(s->address, address) == 0))
            return s;
    }
}

const struct wp_view_route *wp_view_route(struct wp_view *v, const char *address, bool trusted)
{
    if (!v->router)
        return NULL;
    /* A trusted client's routes are the trusted routes: one lookup serves both. */
    trusted = trusted || wp_view_client_trusted(v);
    uint64_t h = route_hash(address, trusted);
    if (v->nslots) {
        struct view_slot *s = slot_find(v->slots, v->nslots, h, address, trusted);
        if (s->address)
            return &s->route;
    }
    if ((v->nroutes + 1) * 2 > v->nslots) {
        size_t cap = v->nslots ? v->nslots * 2 : 16;
        struct view_slot *slots = wp_calloc(cap, sizeof(*slots));
        for (size_t i = 0; i < v->nslots; i++)
            if (v->slots[i].address)
                *slot_find(slots, cap, v->slots[i].hash, v->slots[i].address, v->slots[i].trusted) =
                    v->slots[i];
        free(v->slots);
        v->slots = slots;
        v->nslots = cap;
    }
    struct view_slot *s = slot_find(v->slots, v->nslots, h, address, trusted);
    s->hash = h;
    s->address = wp_strdup(address);
    s->trusted = trusted;
    route_fill(&s->route, v->router, address, trusted);
    v->nroutes++;
    v->counts.resolves++;
    return &s->route;
}
