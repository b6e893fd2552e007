/* SPDX-License-Identifier: MIT */
/*
 * table.c - Router table parser and index (see table.h for the grammar).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "lib/defaults.h"
#include "router/table.h"
#include "lib/util.h"

static const struct {
    const char *name;
    enum wp_prefix prefix;
} prefixes[] = {
    {"Relay", WP_PFX_RELAY}, {"RelayAll", WP_PFX_RELAYALL}, {"NoRelay", WP_PFX_NORELAY},
    {"Mail", WP_PFX_MAIL},   {"Access", WP_PFX_ACCESS},     {"Signal", WP_PFX_SIGNAL},
};

const char *wp_prefix_name(enum wp_prefix p)
{
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (prefixes[i].prefix == p)
            return prefixes[i].name;
    return "";
}

bool wp_table_record_format(const struct wp_record *rec, char *out, size_t size)
{
    bool error = rec->target_kind == WP_TGT_ERROR;
    const char *target = rec->target_kind == WP_TGT_NULL ? "null" : error ? "error" : rec->target;
    int n =
        snprintf(out, size, "%s%s%s%.*s%s%.*s%s = %s%s%s", wp_prefix_name((enum wp_prefix)rec->prefix),
                 rec->prefix ? ":" : "", rec->local ? "<" : "", rec->local ? (int)rec->local_len : 0,
                 rec->local ? rec->local : "", rec->local ? "@" : "", (int)rec->domain_len, rec->domain,
                 rec->local ? ">" : "", target, error && rec->target[0] ? " " : "", error ? rec->target : "");
    return n >= 0 && (size_t)n < size;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Characters of a left-side domain picture. */
static bool pic_domain_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '*' || c == '[' || c == ']' || c == ':';
}

/* Bytes over 0x7F are UTF-8 here: the line was checked as a whole. */
static bool pic_local_char(char c)
{
    return (unsigned char)c >= 0x80 ||
           ((unsigned char)c > 0x20 && (unsigned char)c < 0x7f && !strchr("<>()[],;:\\\"@", c));
}

struct parse_ctx {
    struct wp_table *t;
    const char *fname;
    const char *main_domain;
    struct wp_errors *err;
    struct wp_record *recs; /* as parsed, pointing into the file buffer */
    uint32_t cap;
};

/* Check a target by expanding its stars with a harmless stand-in. */
static const char *check_target(const char *target, bool address, bool domain_level)
{
    char sample[WP_TABLE_LINE_MAX * 2];
    size_t o = 0;
    for (const char *c = target; *c && o + 2 < sizeof(sample); c++) {
        if (*c == '*')
            sample[o++] = 'x';
        else
            sample[o++] = *c;
    }
    sample[o] = '\0';
    if (address) {
        struct wp_address a;
        const char *why;
        if (!wp_address_parse(sample, o, WP_ADDR_HOSTPORT, &a, &why))
            return why;
        return NULL;
    }
    (void)domain_level;
    if (!wp_domain_valid(sample, true))
        return "invalid domain";
    return NULL;
}

static void add_record(struct parse_ctx *c, const struct wp_record *r)
{
    if (r->prefix == WP_PFX_NORELAY)
        c->t->has_norelay = true;
    if (c->t->nrecs == c->cap) {
        /* sized from the line count up front (see wp_table_parse): this only
         * runs if that guess was short */
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->recs = wp_realloc(c->recs, c->cap * sizeof(*r));
    }
    c->recs[c->t->nrecs++] = *r;
}

static size_t block_size(const struct wp_record *r)
{
    size_t n = sizeof(*r) + r->domain_len + 1;
    if (r->local)
        n += (size_t)r->local_len + 1;
    if (r->target)
        n += strlen(r->target) + 1;
    return (n + 7) & ~(size_t)7;
}

/* Copy the parsed records and their text into the arena (see table.h), in
 * table order; the file buffer is not needed after this. */
static bool move_to_arena(struct parse_ctx *c)
{
    struct wp_table *t = c->t;
    size_t total = 0;
    for (uint32_t i = 0; i < t->nrecs; i++)
        total += block_size(&c->recs[i]);
    if (total / 8 >= WP_NONE) {
        wp_error(c->err, c->fname, 0, "too many records");
        return false;
    }
    t->arena = wp_calloc_huge(total ? total : 8);
    t->ids = wp_malloc((t->nrecs ? t->nrecs : 1) * sizeof(*t->ids));
    size_t off = 0;
    for (uint32_t i = 0; i < t->nrecs; i++) {
        const struct wp_record *r = &c->recs[i];
        struct wp_record *b = (struct wp_record *)(void *)(t->arena + off);
        *b = *r;
        char *p = (char *)(b + 1);
        if (r->local) {
            memcpy(p, r->local, r->local_len);
            b->local = p;
            p += r->local_len;
            *p++ = '@';
        }
        memcpy(p, r->domain, r->domain_len);
        b->domain = p;
        p += r->domain_len;
        *p++ = '\0';
        if (r->target) {
            size_t n = strlen(r->target) + 1;
            memcpy(p, r->target, n);
            b->target = p;
        }
        t->ids[i] = (uint32_t)(off / 8);
        off += block_size(r);
    }
    return true;
}

/* While the index is built, records are still written (their chains). */
static struct wp_record *record_rw(struct wp_table *t, uint32_t id)
{
    return (struct wp_record *)wp_table_record(t, id);
}

/* The hash an exact address is filed under in addr_exact: from its local
 * part and its domain's forward hash, which lookups have at hand already.
 * Building, the loop check and lookups must all use this one. */
static uint64_t address_hash(const char *local, size_t llen, uint64_t dhash)
{
    return wp_hash_pair(wp_hash_fwd(local, llen), dhash);
}

/* Parse one line (already terminated, comment not yet removed). */
static void parse_line(struct parse_ctx *c, char *line, size_t len, uint32_t lineno)
{
    struct wp_record r;
    memset(&r, 0, sizeof(r));
    r.line = lineno;
    r.next = WP_NONE;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            wp_error(c->err, c->fname, (int)lineno, "binary byte 0x%02x at column %zu", ch, i + 1);
            return;
        }
    }
    char *p = line;
    while (is_space(*p))
        p++;
    if (*p == '\0' || *p == ';')
        return;
    /* A ';' after white space starts a comment. */
    for (char *q = p + 1; *q; q++) {
        if (*q == ';' && is_space(q[-1])) {
            *q = '\0';
            break;
        }
    }
    char *end = p + strlen(p);
    while (end > p && is_space(end[-1]))
        *--end = '\0';
    /* UTF-8 is taken as Postfix with SMTPUTF8 takes it (local parts; the
     * domain checks below keep domains ASCII); other bytes over 0x7F are
     * refused. */
    for (char *q = p; *q; q++) {
        unsigned char b = (unsigned char)*q;
        if (b < 0x80)
            continue;
        size_t n = b >= 0xC2 && b <= 0xDF ? 1 : b >= 0xE0 && b <= 0xEF ? 2 : b >= 0xF0 && b <= 0xF4 ? 3 : 0;
        size_t k = 0;
        while (n && k < n && ((unsigned char)q[k + 1] & 0xC0) == 0x80)
            k++;
        if (!n || k != n) {
            wp_error(c->err, c->fname, (int)lineno,
                     "non-ASCII byte at column %zu that is not UTF-8 (only comments may hold them)",
                     (size_t)(q - line) + 1);
            return;
        }
        q += n;
    }

    /* Prefix. */
    if (*p != '<') {
        char *colon = p;
        while (*colon && *colon != ':' && *colon != '<' && *colon != '=' && !is_space(*colon))
            colon++;
        if (*colon == ':') {
            size_t n = (size_t)(colon - p);
            size_t i;
            for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
                if (strlen(prefixes[i].name) == n && wp_strnieq(p, prefixes[i].name, n))
                    break;
            if (i == sizeof(prefixes) / sizeof(prefixes[0])) {
                wp_error(c->err, c->fname, (int)lineno,
                         "unknown prefix '%.*s:' (Relay, RelayAll, NoRelay, Mail, Access, Signal)",
                         (int)(n > 40 ? 40 : n), p);
                return;
            }
            r.prefix = (uint8_t)prefixes[i].prefix;
            p = colon + 1;
            while (is_space(*p))
                p++;
        }
    }

    /* Left side. */
    char *lhs_end;
    if (*p == '<') {
        char *close = strchr(p, '>');
        if (!close) {
            wp_error(c->err, c->fname, (int)lineno, "unterminated '<' (missing '>')");
            return;
        }
        char *inner = p + 1;
        *close = '\0';
        char *at = strrchr(inner, '@');
        char *local = inner, *domain = NULL;
        size_t llen = at ? (size_t)(at - inner) : strlen(inner);
        if (at)
            domain = at + 1;
        if (llen == 0) {
            wp_error(c->err, c->fname, (int)lineno, "empty local part in '<>'");
            return;
        }
        for (size_t i = 0; i < llen; i++) {
            if (!pic_local_char(local[i]) && local[i] != '*') {
                wp_error(c->err, c->fname, (int)lineno, "invalid character '%c' in the local part", local[i]);
                return;
            }
        }
        size_t ls = wp_picture_stars(local, llen);
        if (ls > 1) {
            wp_error(c->err, c->fname, (int)lineno, "more than one '*' in the local part");
            return;
        }
        if (domain) {
            size_t dlen = strlen(domain);
            if (dlen == 0 || dlen > WP_DOMAIN_MAX) {
                wp_error(c->err, c->fname, (int)lineno, "empty or too long domain in '<>'");
                return;
            }
            for (char *q = domain; *q; q++) {
                if (!pic_domain_char(*q)) {
                    wp_error(c->err, c->fname, (int)lineno, "invalid character '%c' in the domain", *q);
                    return;
                }
            }
            if (wp_picture_stars(domain, dlen) > 1) {
                wp_error(c->err, c->fname, (int)lineno, "more than one '*' in the domain");
                return;
            }
            wp_str_lower(domain);
            if (domain[dlen - 1] == '.')
                domain[--dlen] = '\0';
            r.domain = domain;
            r.domain_len = (uint16_t)dlen;
            r.lhs_stars = (uint8_t)(ls + wp_picture_stars(domain, dlen));
        } else {
            r.domain = c->main_domain;
            r.domain_len = (uint16_t)strlen(c->main_domain);
            r.lhs_stars = (uint8_t)ls;
        }
        for (size_t i = 0; i < llen; i++)
            local[i] = wp_lower(local[i]);
        r.local = local;
        r.local_len = (uint16_t)llen;
        lhs_end = close + 1;
    } else {
        char *q = p;
        while (*q && !is_space(*q) && *q != '=')
            q++;
        size_t dlen = (size_t)(q - p);
        if (dlen == 0) {
            wp_error(c->err, c->fname, (int)lineno, "missing left side before '='");
            return;
        }
        if (dlen > WP_DOMAIN_MAX) {
            wp_error(c->err, c->fname, (int)lineno, "domain too long");
            return;
        }
        for (char *d = p; d < q; d++) {
            if (*d == '@' || *d == '>') {
                wp_error(c->err, c->fname, (int)lineno,
                         "address records need angle brackets: <local@domain>");
                return;
            }
            if (!pic_domain_char(*d)) {
                wp_error(c->err, c->fname, (int)lineno, "invalid character '%c' in the domain", *d);
                return;
            }
        }
        size_t ds = wp_picture_stars(p, dlen);
        if (ds > 1) {
            wp_error(c->err, c->fname, (int)lineno, "more than one '*' in the domain");
            return;
        }
        for (char *d = p; d < q; d++)
            *d = wp_lower(*d);
        if (p[dlen - 1] == '.')
            dlen--;
        r.domain = p;
        r.domain_len = (uint16_t)dlen;
        r.lhs_stars = (uint8_t)ds;
        lhs_end = q;
    }

    /* '=' and target. */
    char *q = lhs_end;
    while (is_space(*q))
        q++;
    if (*q != '=') {
        wp_error(c->err, c->fname, (int)lineno, "missing '=' after the left side");
        return;
    }
    q++;
    while (is_space(*q))
        q++;
    if (!*q) {
        wp_error(c->err, c->fname, (int)lineno, "missing target after '='");
        return;
    }
    if (wp_strieq(q, "null")) {
        r.target_kind = WP_TGT_NULL;
        r.target = NULL;
    } else if (wp_strnieq(q, "error", 5) && (q[5] == '\0' || is_space(q[5]))) {
        r.target_kind = WP_TGT_ERROR;
        q += 5;
        while (is_space(*q))
            q++;
        if (strlen(q) > WP_ROUTE_TEXT_MAX - 16) {
            wp_error(c->err, c->fname, (int)lineno, "error text too long");
            return;
        }
        r.target = q;
    } else {
        for (char *s = q; *s; s++) {
            if (is_space(*s)) {
                wp_error(c->err, c->fname, (int)lineno, "white space inside the target");
                return;
            }
        }
        size_t ts = wp_picture_stars(q, strlen(q));
        if (ts > r.lhs_stars) {
            wp_error(c->err, c->fname, (int)lineno, "the target has %zu '*' but the left side only %u", ts,
                     (unsigned)r.lhs_stars);
            return;
        }
        bool address = r.local != NULL || strchr(q, '@') != NULL;
        const char *why = check_target(q, address, r.local == NULL);
        if (why) {
            wp_error(c->err, c->fname, (int)lineno, "invalid target '%.80s': %s", q, why);
            return;
        }
        r.target_kind = address ? WP_TGT_ADDRESS : WP_TGT_DOMAIN;
        r.target = q;
    }
    add_record(c, &r);
}

/* ---------------------------------------------------------------- index */

/* Append a record to the chain head/tail (table order). */
static void chain(struct wp_table *t, uint32_t *head, uint32_t *tail, uint32_t id)
{
    if (*head == WP_NONE)
        *head = id;
    else
        record_rw(t, *tail)->next = id;
    *tail = id;
}

static void mask_set(uint64_t *mask, unsigned bit)
{
    mask[(bit / 64) & 3] |= 1ULL << (bit % 64);
}

static bool mask_has(const uint64_t *mask, unsigned bit)
{
    return (mask[(bit / 64) & 3] >> (bit % 64)) & 1;
}

static void index_domain_picture(struct wp_table *t, struct wp_picture_map *suffix,
                                 struct wp_picture_map *prefix, struct wp_strmap_entry *any,
                                 const struct wp_record *r, uint32_t id)
{
    const char *star = memchr(r->domain, '*', r->domain_len);
    size_t pre = (size_t)(star - r->domain), suf = r->domain_len - pre - 1;
    struct wp_strmap_entry *e = any;
    if (suf > 0) {
        e = wp_strmap_put(&suffix->map, wp_hash_bwd(star + 1, suf), star + 1, suf);
        mask_set(suffix->lengths, (unsigned)suf);
        mask_set(suffix->edges, (unsigned char)wp_lower(star[1]));
    } else if (pre > 0) {
        e = wp_strmap_put(&prefix->map, wp_hash_fwd(r->domain, pre), r->domain, pre);
        mask_set(prefix->lengths, (unsigned)pre);
        mask_set(prefix->edges, (unsigned char)wp_lower(r->domain[pre - 1]));
    }
    chain(t, &e->head, &e->tail, id);
}

/* Warn about a second record with the same left side and prefix. */
static void warn_shadowed(struct parse_ctx *c, uint32_t head, const struct wp_record *r)
{
    for (uint32_t j = head; j != WP_NONE;) {
        const struct wp_record *earlier = wp_table_record(c->t, j);
        if (earlier->prefix == r->prefix)
            wp_warning(c->err, c->fname, (int)r->line, "same left side as line %u; the first record is used",
                       earlier->line);
        j = earlier->next;
    }
}

static void build_index(struct parse_ctx *c)
{
    struct wp_table *t = c->t;
    size_t addresses = 0;
    for (uint32_t i = 0; i < t->nrecs; i++)
        addresses += wp_table_record(t, t->ids[i])->local != NULL;
    wp_strmap_init(&t->addr_exact, addresses);
    wp_strmap_init(&t->domains, t->nrecs - addresses);
    t->addr_any.head = t->addr_any.tail = WP_NONE;
    t->dom_any.head = t->dom_any.tail = WP_NONE;

    for (uint32_t i = 0; i < t->nrecs; i++) {
        uint32_t id = t->ids[i];
        struct wp_record *r = record_rw(t, id);
        bool dstar = memchr(r->domain, '*', r->domain_len) != NULL;
        uint64_t dhash = dstar ? 0 : wp_hash_fwd(r->domain, r->domain_len);
        if (r->local) {
            bool lstar = memchr(r->local, '*', r->local_len) != NULL;
            if (!lstar && !dstar) {
                size_t klen = (size_t)r->local_len + 1 + r->domain_len;
                struct wp_strmap_entry *e = wp_strmap_put(
                    &t->addr_exact, address_hash(r->local, r->local_len, dhash), r->local, klen);
                /* Every domain of an exact address is in the domains map, so
                 * that its filter rules out an address lookup (see below). */
                struct wp_strmap_entry *d = wp_strmap_put(&t->domains, dhash, r->domain, r->domain_len);
                if (r->prefix != WP_PFX_ACCESS && r->prefix != WP_PFX_SIGNAL)
                    d->flags |= WP_DOMAIN_MAIL_ADDRESSES;
                warn_shadowed(c, e->head, r);
                chain(t, &e->head, &e->tail, id);
            } else if (!dstar) {
                struct wp_strmap_entry *e = wp_strmap_put(&t->domains, dhash, r->domain, r->domain_len);
                chain(t, &e->head, &e->tail, id);
            } else {
                index_domain_picture(t, &t->addr_dsuffix, &t->addr_dprefix, &t->addr_any, r, id);
            }
        } else if (!dstar) {
            struct wp_strmap_entry *e = wp_strmap_put(&t->domains, dhash, r->domain, r->domain_len);
            warn_shadowed(c, e->head2, r);
            chain(t, &e->head2, &e->tail2, id);
        } else {
            index_domain_picture(t, &t->dom_suffix, &t->dom_prefix, &t->dom_any, r, id);
        }
    }
    wp_strmap_seal(&t->addr_exact);
    wp_strmap_seal(&t->domains);
    wp_strmap_seal(&t->addr_dsuffix.map);
    wp_strmap_seal(&t->addr_dprefix.map);
    wp_strmap_seal(&t->dom_suffix.map);
    wp_strmap_seal(&t->dom_prefix.map);
}

/* Warn about cycles among exact records ("<a@x> = b@x", "<b@x> = a@x"):
 * resolution would stop them with a loop error anyway, but an administrator
 * wants to hear at load time.  Wildcard records are not followed. */
static const struct wp_record *exact_target(const struct wp_table *t, const struct wp_record *r,
                                            const char *main_domain)
{
    if (r->target_kind != WP_TGT_ADDRESS && r->target_kind != WP_TGT_DOMAIN)
        return NULL;
    if (strchr(r->target, '*'))
        return NULL;
    char key[WP_LOCAL_MAX + WP_DOMAIN_MAX + 2];
    if (r->target_kind == WP_TGT_ADDRESS) {
        if (strchr(r->target, '%') || strchr(r->target, '!'))
            return NULL;
        if (strchr(r->target, '@'))
            snprintf(key, sizeof(key), "%s", r->target);
        else
            snprintf(key, sizeof(key), "%s@%s", r->target, main_domain);
    } else {
        if (r->local)
            return NULL;
        snprintf(key, sizeof(key), "%s", r->target);
    }
    size_t n = strlen(key);
    if (n && key[n - 1] == '.')
        key[--n] = '\0';
    const struct wp_strmap_entry *e;
    if (r->target_kind == WP_TGT_ADDRESS) {
        const char *at = strrchr(key, '@');
        if (!at)
            return NULL;
        size_t llen = (size_t)(at - key);
        e = wp_strmap_get(&t->addr_exact, address_hash(key, llen, wp_hash_fwd(at + 1, n - llen - 1)), key, n);
        return e ? wp_table_record(t, e->head) : NULL;
    }
    e = wp_strmap_get(&t->domains, wp_hash_fwd(key, n), key, n);
    return e && e->head2 != WP_NONE ? wp_table_record(t, e->head2) : NULL;
}

static void warn_loops(struct parse_ctx *c)
{
    const struct wp_table *t = c->t;
    for (uint32_t i = 0; i < t->nrecs; i++) {
        const struct wp_record *start = wp_table_record(t, t->ids[i]), *r = start;
        for (int steps = 0; steps <= WP_ROUTER_REWRITES_MAX; steps++) {
            r = exact_target(t, r, c->main_domain);
            if (!r)
                break;
            if (r == start) {
                wp_warning(c->err, c->fname, (int)start->line,
                           "rewrite loop: this record leads back to itself in %d step%s", steps + 1,
                           steps ? "s" : "");
                break;
            }
        }
    }
}

struct wp_table *wp_table_parse(char *buf, size_t len, const char *fname, const char *main_domain,
                                struct wp_errors *err)
{
    struct parse_ctx c;
    memset(&c, 0, sizeof(c));
    c.t = wp_calloc(1, sizeof(*c.t));
    const char *slash = strrchr(fname, '/');
    c.t->name = wp_strdup(slash ? slash + 1 : fname);
    c.fname = fname;
    c.main_domain = main_domain;
    c.err = err;
    size_t before = err->count;

    /* One record per line at most: size the records array once. */
    size_t lines = 1;
    for (const char *q = buf; (q = memchr(q, '\n', (size_t)(buf + len - q))) != NULL; q++)
        lines++;
    if (lines < UINT32_MAX) {
        c.cap = (uint32_t)lines;
        c.recs = wp_malloc(lines * sizeof(*c.recs));
    }

    char *p = buf, *end = buf + len;
    uint32_t lineno = 0;
    while (p < end) {
        lineno++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *lend = nl ? nl : end;
        size_t n = (size_t)(lend - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > WP_TABLE_LINE_MAX) {
            wp_error(err, fname, (int)lineno, "line too long (%zu bytes, limit %d)", n, WP_TABLE_LINE_MAX);
        } else {
            p[n] = '\0';
            parse_line(&c, p, n, lineno);
        }
        p = nl ? nl + 1 : end;
        if (err->truncated)
            break;
    }
    bool ok = err->count == before && move_to_arena(&c);
    free(c.recs);
    free(buf);
    if (!ok) {
        wp_table_free(c.t);
        return NULL;
    }
    build_index(&c);
    warn_loops(&c);
    return c.t;
}

struct wp_table *wp_table_load(const char *path, const char *main_domain, struct wp_errors *err)
{
    char why[512];
    size_t len;
    char *buf = wp_read_file(path, WP_TABLE_FILE_MAX, &len, why, sizeof(why));
    if (!buf) {
        wp_error(err, path, 0, "%s", why);
        return NULL;
    }
    return wp_table_parse(buf, len, path, main_domain, err);
}

void wp_table_free(struct wp_table *t)
{
    if (!t)
        return;
    wp_strmap_free(&t->addr_exact);
    wp_strmap_free(&t->domains);
    wp_strmap_free(&t->addr_dsuffix.map);
    wp_strmap_free(&t->addr_dprefix.map);
    wp_strmap_free(&t->dom_suffix.map);
    wp_strmap_free(&t->dom_prefix.map);
    free(t->ids);
    free(t->arena);
    free(t->name);
    free(t);
}

/* ---------------------------------------------------------------- lookup */

static bool applies(const struct wp_record *r, const struct wp_lookup_mode *m)
{
    switch (r->prefix) {
    case WP_PFX_ACCESS: return m->access;
    case WP_PFX_MAIL: return !m->access;
    case WP_PFX_SIGNAL: return false; /* kept for CommuniGate tables, never used for mail */
    case WP_PFX_NORELAY: return m->trusted;
    default: return true;
    }
}

struct candidate {
    uint32_t idx;
    struct wp_capture caps[2];
    size_t ncaps;
};

/* Scan one chain for the first applicable match; keep it if it precedes the best so far. */
static void scan_chain(const struct wp_table *t, uint32_t head, const char *local, size_t llen,
                       const char *domain, size_t dlen, const struct wp_lookup_mode *m,
                       struct candidate *best)
{
    for (uint32_t i = head; i != WP_NONE && i < best->idx; i = wp_table_record(t, i)->next) {
        const struct wp_record *r = wp_table_record(t, i);
        if (!applies(r, m))
            continue;
        struct wp_capture lc[1], dc[1], got[2] = {{NULL, 0}, {NULL, 0}};
        size_t n = 0;
        if (r->local) {
            if (!wp_picture_match(r->local, r->local_len, local, llen, lc))
                continue;
            if (memchr(r->local, '*', r->local_len))
                got[n++] = lc[0];
        }
        if (!wp_picture_match(r->domain, r->domain_len, domain, dlen, dc))
            continue;
        if (memchr(r->domain, '*', r->domain_len))
            got[n++] = dc[0];
        best->idx = i;
        best->caps[0] = got[0];
        best->caps[1] = got[1];
        best->ncaps = n;
        return;
    }
}

/* Scan the chains of a pair of wildcard-domain maps under the keys the
 * domain can match (every suffix, then every prefix, that the maps' length
 * and edge masks allow), then the lone "*" records. */
static void scan_domain_pictures(const struct wp_table *t, const struct wp_picture_map *suffix,
                                 const struct wp_picture_map *prefix, const struct wp_strmap_entry *any,
                                 const char *local, size_t llen, const char *domain, size_t dlen,
                                 const struct wp_lookup_mode *m, struct candidate *best)
{
    uint64_t h = WP_HASH_INIT;
    if (suffix->map.count) {
        for (size_t i = dlen; i > 0; i--) {
            h = wp_hash_step(h, domain[i - 1]);
            size_t len = dlen - i + 1;
            if (len > 255 || !mask_has(suffix->lengths, (unsigned)len) ||
                !mask_has(suffix->edges, (unsigned char)wp_lower(domain[i - 1])))
                continue;
            const struct wp_strmap_entry *e = wp_strmap_get(&suffix->map, h, domain + i - 1, len);
            if (e)
                scan_chain(t, e->head, local, llen, domain, dlen, m, best);
        }
    }
    if (prefix->map.count) {
        h = WP_HASH_INIT;
        for (size_t i = 0; i < dlen; i++) {
            h = wp_hash_step(h, domain[i]);
            if (i + 1 > 255 || !mask_has(prefix->lengths, (unsigned)(i + 1)) ||
                !mask_has(prefix->edges, (unsigned char)wp_lower(domain[i])))
                continue;
            const struct wp_strmap_entry *e = wp_strmap_get(&prefix->map, h, domain, i + 1);
            if (e)
                scan_chain(t, e->head, local, llen, domain, dlen, m, best);
        }
    }
    scan_chain(t, any->head, local, llen, domain, dlen, m, best);
}

static const struct wp_record *found(const struct wp_table *t, const struct candidate *best,
                                     struct wp_capture caps[2], size_t *ncaps)
{
    caps[0] = best->caps[0];
    caps[1] = best->caps[1];
    *ncaps = best->ncaps;
    return wp_table_record(t, best->idx);
}

const struct wp_record *wp_table_lookup(const struct wp_table *t, const char *local, const char *domain,
                                        const struct wp_lookup_mode *m, struct wp_capture caps[2],
                                        size_t *ncaps)
{
    size_t dlen = strlen(domain);
    return wp_table_lookup_hashed(t, local, strlen(local), domain, dlen, wp_hash_fwd(domain, dlen), m, caps,
                                  ncaps);
}

const struct wp_record *wp_table_lookup_hashed(const struct wp_table *t, const char *local, size_t llen,
                                               const char *domain, size_t dlen, uint64_t dhash,
                                               const struct wp_lookup_mode *m, struct wp_capture caps[2],
                                               size_t *ncaps)
{
    struct candidate best = {WP_NONE, {{NULL, 0}, {NULL, 0}}, 0};
    char key[WP_LOCAL_MAX + WP_DOMAIN_MAX + 2];

    /* In a large table each probe below is a cache miss: start loading the
     * domain's and the address's entries before waiting for either, so that
     * their misses overlap.  (Doing the same for the wildcard-domain keys
     * measured slower: most of those keys are absent, and loading their
     * slots only pushes useful lines out of the cache.) */
    uint64_t ahash = address_hash(local, llen, dhash);
    wp_strmap_prefetch(&t->domains, dhash);
    wp_strmap_prefetch(&t->addr_exact, ahash);

    /* 1. exact address, unless the domains map's filter rules out that any
     * exact address has this domain (its filter word is the same for every
     * address of a domain, so a busy domain keeps it in cache).  When the
     * address is there, the domain's entry is not needed. */
    if (llen + 1 + dlen < sizeof(key) && wp_strmap_may_contain(&t->domains, dhash)) {
        memcpy(key, local, llen);
        key[llen] = '@';
        memcpy(key + llen + 1, domain, dlen);
        const struct wp_strmap_entry *e = wp_strmap_get(&t->addr_exact, ahash, key, llen + 1 + dlen);
        if (e)
            scan_chain(t, e->head, local, llen, domain, dlen, m, &best);
    }
    if (best.idx != WP_NONE)
        return found(t, &best, caps, ncaps);
    /* 2. wildcard address: filed under the exact domain or the domain picture */
    const struct wp_strmap_entry *d = wp_strmap_get(&t->domains, dhash, domain, dlen);
    if (d && d->head != WP_NONE)
        scan_chain(t, d->head, local, llen, domain, dlen, m, &best);
    scan_domain_pictures(t, &t->addr_dsuffix, &t->addr_dprefix, &t->addr_any, local, llen, domain, dlen, m,
                         &best);
    /* 3. exact domain */
    if (best.idx == WP_NONE && d && d->head2 != WP_NONE)
        scan_chain(t, d->head2, NULL, 0, domain, dlen, m, &best);
    /* 4. wildcard domain */
    if (best.idx == WP_NONE)
        scan_domain_pictures(t, &t->dom_suffix, &t->dom_prefix, &t->dom_any, NULL, 0, domain, dlen, m, &best);
    if (best.idx == WP_NONE)
        return NULL;
    return found(t, &best, caps, ncaps);
}

/* ---------------------------------------------------------------- domains */

static bool chain_mentions(const struct wp_table *t, uint32_t head, const char *domain, size_t dlen)
{
    for (uint32_t i = head; i != WP_NONE; i = wp_table_record(t, i)->next) {
        const struct wp_record *r = wp_table_record(t, i);
        if (r->prefix == WP_PFX_ACCESS || r->prefix == WP_PFX_SIGNAL)
            continue;
        if (wp_picture_match(r->domain, r->domain_len, domain, dlen, NULL))
            return true;
    }
    return false;
}

static bool pictures_mention(const struct wp_table *t, const struct wp_picture_map *suffix,
                             const struct wp_picture_map *prefix, const struct wp_strmap_entry *any,
                             const char *domain, size_t dlen)
{
    uint64_t h = WP_HASH_INIT;
    for (size_t i = dlen; suffix->map.count && i > 0; i--) {
        h = wp_hash_step(h, domain[i - 1]);
        const struct wp_strmap_entry *e = wp_strmap_get(&suffix->map, h, domain + i - 1, dlen - i + 1);
        if (e && chain_mentions(t, e->head, domain, dlen))
            return true;
    }
    h = WP_HASH_INIT;
    for (size_t i = 0; prefix->map.count && i < dlen; i++) {
        h = wp_hash_step(h, domain[i]);
        const struct wp_strmap_entry *e = wp_strmap_get(&prefix->map, h, domain, i + 1);
        if (e && chain_mentions(t, e->head, domain, dlen))
            return true;
    }
    return chain_mentions(t, any->head, domain, dlen);
}

bool wp_table_mentions_domain(const struct wp_table *t, const char *domain)
{
    size_t n = strlen(domain);
    const struct wp_strmap_entry *d = wp_strmap_get(&t->domains, wp_hash_fwd(domain, n), domain, n);
    if (d && ((d->flags & WP_DOMAIN_MAIL_ADDRESSES) || chain_mentions(t, d->head, domain, n) ||
              chain_mentions(t, d->head2, domain, n)))
        return true;
    return pictures_mention(t, &t->addr_dsuffix, &t->addr_dprefix, &t->addr_any, domain, n) ||
           pictures_mention(t, &t->dom_suffix, &t->dom_prefix, &t->dom_any, domain, n);
}
