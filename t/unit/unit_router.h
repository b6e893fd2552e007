/* SPDX-License-Identifier: MIT */
/*
 * unit_router.h - the sample Router table (conf/router.table) as a Router
 * of its own, without waypost.conf, for the unit tests that need records.
 */
#ifndef WP_UNIT_ROUTER_H
#define WP_UNIT_ROUTER_H

#include "router/router.h"
#include "unit.h"

/* Load the sample table into r and finish it; every error fails the test. */
static inline void unit_router_load_sample(struct wp_router *r)
{
    struct wp_errors err;
    wp_errors_init(&err);
    wp_router_load_table(r, srcpath("conf/router.table"), &err);
    wp_router_finish(r, &err);
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    ck_assert_uint_eq(err.count, 0);
    wp_errors_free(&err);
}

/* The Router of domain company.dom and the sample table alone.  Free with
 * wp_router_free. */
static inline struct wp_router *unit_sample_router(void)
{
    struct wp_router *r = wp_router_new("company.dom", "test", NULL);
    unit_router_load_sample(r);
    return r;
}

#endif
