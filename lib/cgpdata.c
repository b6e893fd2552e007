/* SPDX-License-Identifier: MIT */
/*
 * cgpdata.c - CommuniGate Pro's textual data format (see cgpdata.h).
 *
 * A recursive-descent reader over a byte range: the recursion is bounded by
 * WP_CGP_DEPTH_MAX and the object count by WP_CGP_NODES_MAX, so a hostile
 * text costs at most linear time and memory proportional to its size.
 */
#include "config.h"

#include "lib/cgpdata.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

struct reader {
    const char *p, *end;
    int line, col;
    size_t nodes;
    char *err;
    size_t errlen;
    bool failed;
};

static void fail(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct reader *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* keys quoted in messages come from the input */
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            *p = '?';
    if (r->errlen)
        snprintf(r->err, r->errlen, "%d:%d: %s", r->line, r->col, msg);
}

static void advance(struct reader *r)
{
    if (*r->p == '\n') {
        r->line++;
        r->col = 1;
    } else {
        r->col++;
    }
    r->p++;
}

static void skip_space(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n'))
        advance(r);
}

static bool is_delim(unsigned char c)
{
    return c <= ' ' || c == 0x7f || strchr("(){}[]=;,\"\\<>", c) != NULL;
}

/* A growing byte buffer for decoded strings. */
struct buf {
    char *s;
    size_t len, cap;
};

static void buf_put(struct buf *b, char c)
{
    if (b->len + 1 >= b->cap) {
        b->cap = b->cap ? b->cap * 2 : 32;
        b->s = wp_realloc(b->s, b->cap);
    }
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

static struct wp_cgp *node(struct reader *r, enum wp_cgp_type t, int line, int col)
{
    if (++r->nodes > WP_CGP_NODES_MAX) {
        fail(r, "more than %d objects", WP_CGP_NODES_MAX);
        return NULL;
    }
    struct wp_cgp *v = wp_calloc(1, sizeof(*v));
    v->type = t;
    v->line = line;
    v->col = col;
    return v;
}

static struct wp_cgp *parse_quoted(struct reader *r)
{
    int line = r->line, col = r->col;
    advance(r); /* the opening quote */
    struct buf b = {NULL, 0, 0};
    buf_put(&b, 'x');
    b.len = 0;
    b.s[0] = '\0';
    for (;;) {
        if (r->p >= r->end) {
            r->line = line;
            r->col = col;
            fail(r, "unterminated quoted string");
            free(b.s);
            return NULL;
        }
        unsigned char c = (unsigned char)*r->p;
        if (c == '"') {
            advance(r);
            break;
        }
        if (c == '\\') {
            advance(r);
            if (r->p >= r->end)
                continue; /* reported as unterminated above */
            char e = *r->p;
            switch (e) {
            case '"':
            case '\\':
                buf_put(&b, e);
                advance(r);
                break;
            case 'r':
                buf_put(&b, '\r');
                advance(r);
                break;
            case 'n':
                buf_put(&b, '\n');
                advance(r);
                break;
            case 'e':
                buf_put(&b, '\n');
                advance(r);
                break;
            case 't':
                buf_put(&b, '\t');
                advance(r);
                break;
            default:
                if (e >= '0' && e <= '9') {
                    int v = 0, k = 0;
                    while (k < 3 && r->p < r->end && *r->p >= '0' && *r->p <= '9') {
                        v = v * 10 + (*r->p - '0');
                        advance(r);
                        k++;
                    }
                    if (k != 3) {
                        fail(r, "\\nnn takes three decimal digits");
                    } else if (v < 1 || v > 255) {
                        fail(r, "\\%03d is not a byte a string may hold (1..255)", v);
                    } else {
                        buf_put(&b, (char)v);
                        break;
                    }
                } else {
                    fail(r, "unknown escape '\\%c' in a quoted string", e >= ' ' && e < 0x7f ? e : '?');
                }
                free(b.s);
                return NULL;
            }
            continue;
        }
        if ((c < ' ' && c != '\t') || c == 0x7f) {
            fail(r, "control character 0x%02x in a quoted string", c);
            free(b.s);
            return NULL;
        }
        buf_put(&b, (char)c);
        advance(r);
    }
    struct wp_cgp *v = node(r, WP_CGP_STRING, line, col);
    if (!v) {
        free(b.s);
        return NULL;
    }
    v->quoted = true;
    v->str = b.s;
    v->len = b.len;
    return v;
}

static struct wp_cgp *parse_atom(struct reader *r)
{
    int line = r->line, col = r->col;
    const char *start = r->p;
    while (r->p < r->end && !is_delim((unsigned char)*r->p))
        advance(r);
    if (r->p == start) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '<')
            fail(r, "XML objects (<...>) are not read");
        else if (c < ' ' || c == 0x7f)
            fail(r, "unexpected control character 0x%02x", c);
        else
            fail(r, "unexpected '%c'", c);
        return NULL;
    }
    struct wp_cgp *v = node(r, WP_CGP_STRING, line, col);
    if (!v)
        return NULL;
    v->len = (size_t)(r->p - start);
    v->str = wp_strndup(start, v->len);
    return v;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static struct wp_cgp *parse_data(struct reader *r)
{
    int line = r->line, col = r->col;
    advance(r); /* [ */
    struct buf b = {NULL, 0, 0};
    buf_put(&b, 'x');
    b.len = 0;
    b.s[0] = '\0';
    unsigned acc = 0;
    int bits = 0, pad = 0;
    for (;;) {
        skip_space(r);
        if (r->p >= r->end) {
            r->line = line;
            r->col = col;
            fail(r, "unterminated data block");
            free(b.s);
            return NULL;
        }
        unsigned char c = (unsigned char)*r->p;
        if (c == ']') {
            advance(r);
            break;
        }
        if (c == '=') {
            pad++;
            advance(r);
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad) {
            fail(r, pad ? "data after '=' padding in a data block" : "'%c' is not base64 in a data block",
                 c >= ' ' && c < 0x7f ? c : '?');
            free(b.s);
            return NULL;
        }
        advance(r);
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf_put(&b, (char)((acc >> bits) & 0xff));
        }
    }
    if (pad > 2 || bits >= 6) {
        r->line = line;
        r->col = col;
        fail(r, "bad base64 length in a data block");
        free(b.s);
        return NULL;
    }
    struct wp_cgp *v = node(r, WP_CGP_DATA, line, col);
    if (!v) {
        free(b.s);
        return NULL;
    }
    v->str = b.s;
    v->len = b.len;
    return v;
}

static struct wp_cgp *parse_value(struct reader *r, int depth);

static void push_item(struct wp_cgp *v, struct wp_cgp *item, char *key, size_t *cap)
{
    if (v->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        v->items = wp_realloc(v->items, *cap * sizeof(*v->items));
        if (v->type == WP_CGP_DICT)
            v->keys = wp_realloc(v->keys, *cap * sizeof(*v->keys));
    }
    v->items[v->n] = item;
    if (v->type == WP_CGP_DICT)
        v->keys[v->n] = key;
    v->n++;
}

static struct wp_cgp *parse_array(struct reader *r, int depth)
{
    struct wp_cgp *v = node(r, WP_CGP_ARRAY, r->line, r->col);
    if (!v)
        return NULL;
    advance(r); /* ( */
    size_t cap = 0;
    skip_space(r);
    if (r->p < r->end && *r->p == ')') {
        advance(r);
        return v;
    }
    for (;;) {
        struct wp_cgp *item = parse_value(r, depth + 1);
        if (!item)
            break;
        push_item(v, item, NULL, &cap);
        skip_space(r);
        if (r->p >= r->end) {
            r->line = v->line;
            r->col = v->col;
            fail(r, "unterminated array");
            break;
        }
        if (*r->p == ')') {
            advance(r);
            return v;
        }
        if (*r->p != ',') {
            fail(r, "',' or ')' expected in an array");
            break;
        }
        advance(r);
    }
    wp_cgp_free(v);
    return NULL;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A key that appears twice, or NULL: sorted copies of the keys, so that a
 * hostile dictionary of a million keys costs n log n, not n squared. */
static const char *duplicate_key(const struct wp_cgp *v)
{
    if (v->n < 2)
        return NULL;
    char **k = wp_malloc(v->n * sizeof(*k));
    memcpy(k, v->keys, v->n * sizeof(*k));
    qsort(k, v->n, sizeof(*k), cmp_keys);
    const char *dup = NULL;
    for (size_t i = 1; i < v->n && !dup; i++)
        if (strcmp(k[i - 1], k[i]) == 0)
            dup = k[i];
    free(k);
    return dup;
}

static struct wp_cgp *parse_dict(struct reader *r, int depth)
{
    struct wp_cgp *v = node(r, WP_CGP_DICT, r->line, r->col);
    if (!v)
        return NULL;
    advance(r); /* { */
    size_t cap = 0;
    for (;;) {
        skip_space(r);
        if (r->p >= r->end) {
            r->line = v->line;
            r->col = v->col;
            fail(r, "unterminated dictionary");
            break;
        }
        if (*r->p == '}') {
            const char *dup = duplicate_key(v);
            if (!dup) {
                advance(r);
                return v;
            }
            r->line = v->line;
            r->col = v->col;
            fail(r, "key '%.64s' appears twice in a dictionary", dup);
            break;
        }
        struct wp_cgp *key = *r->p == '"' ? parse_quoted(r) : parse_atom(r);
        if (!key)
            break;
        skip_space(r);
        if (r->p >= r->end || *r->p != '=') {
            if (r->p >= r->end)
                fail(r, "'=' expected after a dictionary key, found the end");
            else
                fail(r, "'=' expected after a dictionary key");
            wp_cgp_free(key);
            break;
        }
        advance(r);
        struct wp_cgp *val = parse_value(r, depth + 1);
        if (!val) {
            wp_cgp_free(key);
            break;
        }
        char *k = key->str;
        key->str = NULL;
        wp_cgp_free(key);
        push_item(v, val, k, &cap);
        skip_space(r);
        if (r->p < r->end && *r->p == ';') {
            advance(r);
        } else if (r->p < r->end && *r->p != '}') {
            fail(r, "';' expected after a dictionary value");
            break;
        }
    }
    wp_cgp_free(v);
    return NULL;
}

static struct wp_cgp *parse_value(struct reader *r, int depth)
{
    if (depth > WP_CGP_DEPTH_MAX) {
        fail(r, "nested more than %d levels deep", WP_CGP_DEPTH_MAX);
        return NULL;
    }
    skip_space(r);
    if (r->p >= r->end) {
        fail(r, "an object was expected, found the end");
        return NULL;
    }
    switch (*r->p) {
    case '"': return parse_quoted(r);
    case '[': return parse_data(r);
    case '(': return parse_array(r, depth);
    case '{': return parse_dict(r, depth);
    default: return parse_atom(r);
    }
}

struct wp_cgp *wp_cgp_parse(const char *text, size_t len, char *err, size_t errlen)
{
    struct reader r = {text, text + len, 1, 1, 0, err, errlen, false};
    if (errlen)
        err[0] = '\0';
    struct wp_cgp *v = parse_value(&r, 0);
    if (v) {
        skip_space(&r);
        if (r.p < r.end) {
            fail(&r, "text after the end of the object");
            wp_cgp_free(v);
            v = NULL;
        }
    }
    return v;
}

void wp_cgp_free(struct wp_cgp *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        wp_cgp_free(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

const char *wp_cgp_str(const struct wp_cgp *v)
{
    return v && v->type == WP_CGP_STRING ? v->str : NULL;
}

size_t wp_cgp_count(const struct wp_cgp *v)
{
    return v && v->type == WP_CGP_ARRAY ? v->n : 0;
}

const struct wp_cgp *wp_cgp_item(const struct wp_cgp *v, size_t i)
{
    return v && v->type == WP_CGP_ARRAY && i < v->n ? v->items[i] : NULL;
}

const struct wp_cgp *wp_cgp_get(const struct wp_cgp *v, const char *key)
{
    if (!v || v->type != WP_CGP_DICT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return v->items[i];
    return NULL;
}

const struct wp_cgp *wp_cgp_get_ci(const struct wp_cgp *v, const char *key)
{
    if (!v || v->type != WP_CGP_DICT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (wp_strieq(v->keys[i], key))
            return v->items[i];
    return NULL;
}

const char *wp_cgp_type_name(enum wp_cgp_type t)
{
    switch (t) {
    case WP_CGP_STRING: return "string";
    case WP_CGP_DATA: return "data block";
    case WP_CGP_ARRAY: return "array";
    case WP_CGP_DICT: return "dictionary";
    }
    return "?";
}
