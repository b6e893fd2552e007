/* SPDX-License-Identifier: MIT */
/*
 * check.c - the run-time pass of `waypost check`: resolve once what the
 * configuration names, and report what would fail for every message.
 *
 * Each Router record is probed with a sample address its left side matches
 * ('*' taken as "x"); a record shadowed by an earlier one for that sample is
 * not judged.  Reported: ERROR answers that no error record asked for
 * (loops, "host:port" without a relay suffix, bad rewrites), and UNKNOWN
 * answers where the address is fixed (no '*' on the left side): with a
 * wildcard, which names exist is data, not configuration.  Also probed:
 * each Mail to Unknown reroute, and each group member and forwarder target.
 * Account sources are asked as at run time (a TEMP answer is not judged).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "router/router.h"

/* Does the route fail for every message, whatever the data?  Sets *what. */
static bool fails(const struct wp_route *rt, bool fixed, const char **what)
{
    if (rt->kind == WP_ROUTE_ERROR && !rt->bounce &&
        !(rt->record && rt->record->target_kind == WP_TGT_ERROR && rt->text[0] &&
          strcmp(rt->text, WP_TEXT_LOOP) != 0)) {
        *what = "ERROR";
        return true;
    }
    if (rt->kind == WP_ROUTE_UNKNOWN && fixed) {
        *what = "UNKNOWN";
        return true;
    }
    return false;
}

static void sample(char *out, size_t size, const char *pic, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < size; i++)
        out[o++] = pic[i] == '*' ? 'x' : pic[i];
    out[o] = '\0';
}

static void check_records(const struct wp_router *r, struct wp_trace *trace, struct wp_errors *err)
{
    const struct wp_table *t = r->table;
    for (uint32_t i = 0; t && i < t->nrecs; i++) {
        const struct wp_record *rec = wp_table_record(t, t->ids[i]);
        if (rec->prefix == WP_PFX_SIGNAL || rec->target_kind == WP_TGT_NULL ||
            rec->target_kind == WP_TGT_ERROR)
            continue;
        char local[WP_LOCAL_MAX + 1] = "x", domain[WP_DOMAIN_MAX + 1], addr[WP_ADDR_MAX + 1];
        if (rec->local)
            sample(local, sizeof(local), rec->local, rec->local_len);
        sample(domain, sizeof(domain), rec->domain, rec->domain_len);
        snprintf(addr, sizeof(addr), "%s@%s", local, domain);
        struct wp_resolve_opts o = {true, rec->prefix == WP_PFX_ACCESS};
        struct wp_route rt;
        wp_resolve(r, addr, &o, &rt, trace);
        const struct wp_record *first = NULL;
        for (int k = 0; k < trace->nsteps && !first; k++)
            first = trace->steps[k].record;
        if (first != rec)
            continue; /* the sample is another record's */
        const char *what;
        if (fails(&rt, rec->lhs_stars == 0, &what)) {
            char text[WP_ROUTE_STEP_LEN];
            wp_table_record_format(rec, text, sizeof(text));
            wp_error(err, t->name, (int)rec->line, "%s: %s for %s at run time: %s", text, what, addr,
                     rt.text);
        }
    }
}

static void check_domains(const struct wp_router *r, struct wp_trace *trace, struct wp_errors *err)
{
    struct wp_resolve_opts o = {true, false};
    struct wp_route rt;
    const char *what;
    for (size_t i = 0; i < r->ndomains; i++) {
        const struct wp_domain *d = &r->domains[i];
        if (d->unknown == WP_UNKNOWN_REROUTE) {
            char addr[WP_ADDR_MAX + 1];
            snprintf(addr, sizeof(addr), "%s@%s", WP_ROUTER_PROBE_LOCAL, d->name);
            wp_resolve(r, addr, &o, &rt, trace);
            if (rt.unknown && fails(&rt, false, &what))
                wp_error(
                    err, d->file ? d->file : r->file, d->unknown_line,
                    "domain %s: mail_to_unknown \"Rerouted to %s\": %s for unknown names at run time: %s",
                    d->name, d->reroute, what, rt.text);
        }
        for (size_t g = 0; g < d->groups.n; g++) {
            const struct wp_group *grp = &d->groups.v[g];
            for (size_t m = 0; m < grp->nmembers; m++) {
                wp_resolve(r, grp->members[m], &o, &rt, trace);
                if (fails(&rt, true, &what))
                    wp_error(err, grp->file, grp->line, "%s %s: %s %s: %s at run time: %s",
                             grp->forwarder ? "forwarder" : "group", grp->address,
                             grp->forwarder ? "target" : "member", grp->members[m], what, rt.text);
            }
        }
    }
}

void wp_router_check(const struct wp_router *r, struct wp_errors *err)
{
    struct wp_trace *trace = wp_malloc(sizeof(*trace));
    check_records(r, trace, err);
    check_domains(r, trace, err);
    free(trace);
}
