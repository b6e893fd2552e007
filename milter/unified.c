/* SPDX-License-Identifier: MIT */
/*
 * unified.c - envelope recipients of Unified Domain-Wide Accounts as header
 * fields (see unified.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "milter/unified.h"

/* Does the field already list this address?  Addresses compare without
 * case: the same mailbox given twice in the envelope is listed once. */
static bool listed(const struct wp_unified_field *f, const char *address)
{
    size_t n = strlen(address);
    for (const char *p = f->value; (p = strchr(p, '<')) != NULL; p++)
        if (wp_strnieq(p + 1, address, n) && p[n + 1] == '>')
            return true;
    return false;
}

void wp_unified_fields(struct wp_view *v, const char *const *rcpts, size_t nrcpts,
                       struct wp_unified_fields *out)
{
    memset(out, 0, sizeof(*out));
    if (!v->router || !v->router->nunified)
        return;
    for (size_t i = 0; i < nrcpts; i++) {
        const struct wp_view_route *rt = wp_view_route(v, rcpts[i], true);
        if (rt->kind == WP_ROUTE_TEMP && !out->temp)
            out->temp = rt;
        if (!rt->unified)
            continue;
        struct wp_unified_field *f = NULL;
        for (size_t k = 0; k < out->n && !f; k++)
            if (wp_strieq(out->fields[k].name, rt->unified->header))
                f = &out->fields[k];
        if (!f) {
            out->fields = wp_realloc(out->fields, (out->n + 1) * sizeof(*out->fields));
            f = &out->fields[out->n++];
            memset(f, 0, sizeof(*f));
            f->name = rt->unified->header;
            f->cap = 256;
            f->value = wp_calloc(1, f->cap);
        }
        if (listed(f, rt->unified_rcpt))
            continue;
        size_t add = strlen(rt->unified_rcpt) + 5; /* ",\n\t<" ">" */
        while (f->len + add + 1 > f->cap)
            f->cap *= 2;
        f->value = wp_realloc(f->value, f->cap);
        f->len += (size_t)snprintf(f->value + f->len, f->cap - f->len, "%s<%s>", f->nrcpts ? ",\n\t" : "",
                                   rt->unified_rcpt);
        f->nrcpts++;
    }
}

void wp_unified_fields_free(struct wp_unified_fields *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->fields[i].value);
    free(f->fields);
    memset(f, 0, sizeof(*f));
}

size_t wp_unified_extra_rcpts(struct wp_view *v, const char *const *rcpts, size_t nrcpts, const char **out)
{
    if (!v->router || !v->router->nunified)
        return 0;
    struct kept {
        const char *account; /* the route's final address */
        const char *rcpt;
    } *kept = NULL;
    size_t nkept = 0, nout = 0;
    for (size_t i = 0; i < nrcpts; i++) {
        const struct wp_view_route *rt = wp_view_route(v, rcpts[i], true);
        if (!rt->unified || rt->kind != WP_ROUTE_LOCAL)
            continue;
        const struct kept *k = NULL;
        for (size_t j = 0; j < nkept && !k; j++)
            if (wp_strieq(kept[j].account, rt->address))
                k = &kept[j];
        if (!k) {
            kept = wp_realloc(kept, (nkept + 1) * sizeof(*kept));
            kept[nkept].account = rt->address; /* lives as long as the view */
            kept[nkept++].rcpt = rcpts[i];
        } else if (strcmp(k->rcpt, rcpts[i]) != 0) {
            out[nout++] = rcpts[i];
        }
    }
    free(kept);
    return nout;
}
