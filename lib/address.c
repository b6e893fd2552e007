/* SPDX-License-Identifier: MIT */
/*
 * address.c - RFC 5321 address parsing with CommuniGate path folding.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "lib/address.h"
#include "lib/util.h"

/* Byte classes, looked up in a table: the parser and the formatter test
 * every byte of every address a lookup meets. */
enum { CLASS_LOCAL = 1, CLASS_DOMAIN = 2 };
/* Bytes that may stand unquoted in a local part.  We are a little more
 * liberal than RFC 5321's atext (UTF-8 for SMTPUTF8), never less safe. */
#define IS_LOCAL(c)                                                                                          \
    ((c) > 0x20 && (c) != 0x7f && (c) != '<' && (c) != '>' && (c) != '(' && (c) != ')' && (c) != '[' &&      \
     (c) != ']' && (c) != ',' && (c) != ';' && (c) != ':' && (c) != '\\' && (c) != '"')
/* Domain bytes: letters, digits, '-', '.', '_'. */
#define IS_DOMAIN(c)                                                                                         \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9') || (c) == '-' || \
     (c) == '.' || (c) == '_')
#define CLASS(c) ((IS_LOCAL(c) ? CLASS_LOCAL : 0) | (IS_DOMAIN(c) ? CLASS_DOMAIN : 0))
#define CLASS4(c) CLASS(c), CLASS((c) + 1), CLASS((c) + 2), CLASS((c) + 3)
#define CLASS16(c) CLASS4(c), CLASS4((c) + 4), CLASS4((c) + 8), CLASS4((c) + 12)
#define CLASS64(c) CLASS16(c), CLASS16((c) + 16), CLASS16((c) + 32), CLASS16((c) + 48)
static const unsigned char byte_class[256] = {CLASS64(0), CLASS64(64), CLASS64(128), CLASS64(192)};
#undef CLASS64
#undef CLASS16
#undef CLASS4
#undef CLASS
#undef IS_DOMAIN
#undef IS_LOCAL

static inline bool local_char_ok(unsigned char c)
{
    return (byte_class[c] & CLASS_LOCAL) != 0;
}

static inline bool domain_char_ok(unsigned char c)
{
    return (byte_class[c] & CLASS_DOMAIN) != 0;
}

bool wp_domain_ip_literal(const char *domain, char *ip, size_t ipsize)
{
    unsigned char bin[16];
    char tmp[WP_DOMAIN_MAX + 1];
    size_t len = strlen(domain);

    if (len >= sizeof(tmp))
        return false;
    if (domain[0] == '[') {
        const char *close = strchr(domain, ']');
        if (!close || close[1] != '\0')
            return false;
        size_t n = (size_t)(close - domain - 1);
        memcpy(tmp, domain + 1, n);
        tmp[n] = '\0';
        if (wp_strnieq(tmp, "IPv6:", 5)) {
            if (inet_pton(AF_INET6, tmp + 5, bin) != 1)
                return false;
            return ip ? wp_strlcpy(ip, tmp + 5, ipsize) : true;
        }
        if (inet_pton(AF_INET, tmp, bin) != 1)
            return false;
        return ip ? wp_strlcpy(ip, tmp, ipsize) : true;
    }
    /* A bare dotted quad; a host name rarely starts with a digit, and this
     * runs for every domain a lookup meets. */
    if (domain[0] >= '0' && domain[0] <= '9' && inet_pton(AF_INET, domain, bin) == 1)
        return ip ? wp_strlcpy(ip, domain, ipsize) : true;
    return false;
}

/* Digits from s to end form a port 1..65535. */
static bool port_valid(const char *s, const char *end)
{
    if (end <= s || end - s > 5)
        return false;
    long v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
    }
    return v >= 1 && v <= 65535;
}

bool wp_domain_valid(const char *d, bool allow_hostport)
{
    size_t len = strlen(d);
    if (len == 0 || len > WP_DOMAIN_MAX)
        return false;
    if (d[0] == '[') {
        const char *close = strchr(d, ']');
        if (!close)
            return false;
        char lit[WP_DOMAIN_MAX + 1];
        size_t n = (size_t)(close - d + 1);
        memcpy(lit, d, n);
        lit[n] = '\0';
        char *colon = strchr(lit, ':');
        if (allow_hostport && colon && !wp_strnieq(lit + 1, "IPv6:", 5)) {
            /* "[ip:port]", one of CommuniGate's next-hop spellings */
            if (!port_valid(colon + 1, lit + n - 1))
                return false;
            colon[0] = ']';
            colon[1] = '\0';
        }
        if (!wp_domain_ip_literal(lit, NULL, 0))
            return false;
        d = close + 1;
        if (*d == '\0')
            return true;
        /* "[ip].via", "[ip]._via", "[ip].smtp" (and "[ip:port].via"): a
         * relay suffix straight after the literal, as CommuniGate writes
         * next hops; only in next-hop syntax, and only those suffixes. */
        if (allow_hostport && *d == '.')
            return wp_strieq(d, ".via") || wp_strieq(d, "._via") || wp_strieq(d, ".smtp");
        /* "[ip]:port" and "[ip]:port.via" only in next-hop syntax */
        if (!allow_hostport || *d != ':')
            return false;
        const char *pend = strchr(d, '.');
        if (!pend)
            pend = d + strlen(d);
        if (!port_valid(d + 1, pend))
            return false;
        return *pend == '\0' || domain_char_ok((unsigned char)pend[1]);
    }
    bool seen_colon = false;
    for (const char *p = d; *p; p++) {
        if (*p == ':' && allow_hostport && !seen_colon && p != d) {
            const char *pend = strchr(p, '.');
            if (!port_valid(p + 1, pend ? pend : p + strlen(p)))
                return false;
            seen_colon = true;
            continue;
        }
        if (!domain_char_ok((unsigned char)*p))
            return false;
        if (*p == '.' && (p == d || p[1] == '.'))
            return false;
    }
    return true;
}

/* Lower-case a domain in place, drop one trailing dot, and check it as
 * wp_domain_valid() does.  One pass settles the usual plain host name;
 * literals, host:port and anything odd go through wp_domain_valid(). */
static bool fold_domain(char *d, bool allow_hostport)
{
    bool plain = d[0] != '.';
    size_t n = 0;
    for (; d[n]; n++) {
        unsigned char c = (unsigned char)d[n];
        if (c >= 'A' && c <= 'Z')
            d[n] = (char)(c + 32);
        else if (c == '.' ? d[n + 1] == '.' : !domain_char_ok(c))
            plain = false;
    }
    if (d[n - 1] == '.')
        d[--n] = '\0';
    if (plain && n > 0 && n <= WP_DOMAIN_MAX)
        return true; /* removing a trailing dot cannot break a plain name */
    return wp_domain_valid(d, allow_hostport);
}

/* "h1!h2!user" -> "user%h2%h1" (the first hop ends up last). */
static bool fold_bang_path(char *local, size_t size)
{
    char out[WP_LOCAL_MAX + 1];
    size_t o = 0;
    const char *end = local + strlen(local);
    while (end > local) {
        const char *start = end;
        while (start > local && start[-1] != '!')
            start--;
        size_t n = (size_t)(end - start);
        if (o + n + 1 >= sizeof(out))
            return false;
        if (o)
            out[o++] = '%';
        memcpy(out + o, start, n);
        o += n;
        end = start > local ? start - 1 : local;
        if (start == local)
            break;
    }
    out[o] = '\0';
    return wp_strlcpy(local, out, size);
}

bool wp_address_parse(const char *in, size_t len, unsigned flags, struct wp_address *out, const char **why)
{
    char hops[WP_LOCAL_MAX + 1];
    size_t nhops = 0;
    const char *p = in, *end = in + len;

    /* Not memset: the buffers are long and only their starts matter. */
    hops[0] = '\0';
    out->local[0] = out->domain[0] = '\0';
    out->routed = false;
    if (len > WP_ADDR_MAX) {
        *why = "address too long";
        return false;
    }
    if (memchr(in, '\0', len)) {
        *why = "NUL byte in address";
        return false;
    }
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p < end && *p == '<') {
        if (end[-1] != '>' || end - p < 2) {
            *why = "unbalanced angle bracket";
            return false;
        }
        p++;
        end--;
    }
    if (p == end) {
        *why = "empty address";
        return false;
    }

    /* Source route "@h1,@h2:" : keep the hops, first hop becomes the domain. */
    if (*p == '@') {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!colon) {
            *why = "source route without ':'";
            return false;
        }
        const char *h = p;
        while (h < colon) {
            if (*h != '@') {
                *why = "malformed source route";
                return false;
            }
            const char *comma = memchr(h, ',', (size_t)(colon - h));
            const char *hend = comma ? comma : colon;
            size_t n = (size_t)(hend - h - 1);
            if (n == 0 || nhops + n + 2 > sizeof(hops)) {
                *why = "malformed source route";
                return false;
            }
            if (nhops)
                hops[nhops++] = '\n'; /* separator, never a valid domain byte */
            memcpy(hops + nhops, h + 1, n);
            nhops += n;
            hops[nhops] = '\0';
            h = comma ? comma + 1 : colon;
        }
        p = colon + 1;
        out->routed = true;
    }

    /* Local part: quoted string or everything before the last '@'. */
    size_t lo = 0;
    const char *at = NULL;
    if (!(flags & WP_ADDR_RAW_LOCAL) && p < end && *p == '"') {
        const char *q = p + 1;
        for (; q < end && *q != '"'; q++) {
            if (*q == '\\' && q + 1 < end)
                q++;
            unsigned char c = (unsigned char)*q;
            if (c < 0x20 || c == 0x7f) {
                *why = "control character in quoted local part";
                return false;
            }
            if (lo >= WP_LOCAL_MAX) {
                *why = "local part too long";
                return false;
            }
            out->local[lo++] = *q;
        }
        if (q >= end) {
            *why = "unterminated quoted local part";
            return false;
        }
        q++;
        if (q < end && *q != '@') {
            *why = "text after quoted local part";
            return false;
        }
        at = q < end ? q : NULL;
    } else {
        /* Everything before the last '@'.  A raw local part (rebuilt by the
         * Router from one it parsed before) may hold any byte but controls. */
        bool raw = (flags & WP_ADDR_RAW_LOCAL) != 0;
        for (const char *q = end; q > p; q--)
            if (q[-1] == '@') {
                at = q - 1;
                break;
            }
        const char *lend = at ? at : end;
        for (const char *q = p; q < lend; q++) {
            unsigned char ch = (unsigned char)*q;
            if (raw ? (ch < 0x20 || ch == 0x7f) : (!local_char_ok(ch) && ch != '@')) {
                *why = raw ? "control character in local part" : "invalid character in local part";
                return false;
            }
            if (lo >= WP_LOCAL_MAX) {
                *why = "local part too long";
                return false;
            }
            out->local[lo++] = *q;
        }
    }
    out->local[lo] = '\0';
    if (lo == 0) {
        *why = "empty local part";
        return false;
    }

    /* Domain. */
    if (at) {
        size_t dn = (size_t)(end - at - 1);
        if (dn == 0) {
            *why = "empty domain";
            return false;
        }
        if (dn > WP_DOMAIN_MAX) {
            *why = "domain too long";
            return false;
        }
        memcpy(out->domain, at + 1, dn);
        out->domain[dn] = '\0';
    }

    /* '@' inside the local part ("u@d"@us, u@d@us) means the same as '%'. */
    for (char *c = out->local; *c; c++) {
        if (*c == '@') {
            *c = '%';
            out->routed = true;
        }
    }
    if (!(flags & WP_ADDR_RAW_LOCAL) && strchr(out->local, '!')) {
        out->routed = true;
        size_t bl = strlen(out->local);
        if (out->local[0] == '!' || out->local[bl - 1] == '!' || strstr(out->local, "!!")) {
            *why = "malformed ! path";
            return false;
        }
        if (!at) {
            /* "zzzz!yyyy!xxxx": the first hop is the domain. */
            char *bang = strchr(out->local, '!');
            size_t dn = (size_t)(bang - out->local);
            if (dn == 0 || dn > WP_DOMAIN_MAX) {
                *why = "malformed ! path";
                return false;
            }
            memcpy(out->domain, out->local, dn);
            out->domain[dn] = '\0';
            memmove(out->local, bang + 1, strlen(bang + 1) + 1);
            at = bang; /* a domain now exists */
        }
        if (!fold_bang_path(out->local, sizeof(out->local))) {
            *why = "local part too long";
            return false;
        }
        size_t fl = strlen(out->local);
        if (!fl || strstr(out->local, "%%") || out->local[0] == '%' || out->local[fl - 1] == '%') {
            *why = "malformed ! path";
            return false;
        }
    }
    if (strchr(out->local, '%'))
        out->routed = true;

    /* Source-route hops: "@h1,@h2:local@dom" -> "local%dom%h2@h1". */
    if (nhops) {
        char *h = hops;
        char *last = strrchr(hops, '\n');
        /* append hops from last to second, then the first becomes the domain */
        while (last) {
            size_t ll = strlen(out->local), hl = strlen(last + 1);
            if (ll + 1 + strlen(out->domain) + hl + 2 > WP_LOCAL_MAX) {
                *why = "local part too long";
                return false;
            }
            if (out->domain[0]) {
                out->local[ll++] = '%';
                memcpy(out->local + ll, out->domain, strlen(out->domain) + 1);
            }
            wp_strlcpy(out->domain, last + 1, sizeof(out->domain));
            *last = '\0';
            last = strrchr(hops, '\n');
        }
        size_t ll = strlen(out->local);
        if (out->domain[0]) {
            if (ll + 1 + strlen(out->domain) > WP_LOCAL_MAX) {
                *why = "local part too long";
                return false;
            }
            out->local[ll++] = '%';
            memcpy(out->local + ll, out->domain, strlen(out->domain) + 1);
        }
        if (!wp_strlcpy(out->domain, h, sizeof(out->domain))) {
            *why = "domain too long";
            return false;
        }
    }

    if (out->domain[0] && !fold_domain(out->domain, (flags & WP_ADDR_HOSTPORT) != 0)) {
        *why = "invalid domain";
        return false;
    }
    return true;
}

bool wp_address_format(const char *local, const char *domain, char *out, size_t outsize)
{
    /* One pass decides the quoting: a byte that may not stand bare, or a
     * dot at either end or next to another. */
    bool quote = local[0] == '.';
    size_t o = 0, n = 0;
    for (char prev = '\0'; local[n]; prev = local[n++])
        if (!local_char_ok((unsigned char)local[n]) || local[n] == '@' || (local[n] == '.' && prev == '.'))
            quote = true;
    if (n > 0 && local[n - 1] == '.')
        quote = true;
#define PUT(ch)                                                                                              \
    do {                                                                                                     \
        if (o + 1 >= outsize)                                                                                \
            return false;                                                                                    \
        out[o++] = (char)(ch);                                                                               \
    } while (0)
    if (quote)
        PUT('"');
    for (const char *c = local; *c; c++) {
        if (quote && (*c == '"' || *c == '\\'))
            PUT('\\');
        PUT(*c);
    }
    if (quote)
        PUT('"');
    if (domain && domain[0]) {
        PUT('@');
        for (const char *c = domain; *c; c++)
            PUT(*c);
    }
#undef PUT
    out[o] = '\0';
    return true;
}
