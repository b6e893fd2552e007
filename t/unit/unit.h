/* SPDX-License-Identifier: MIT */
/*
 * unit.h - shared bits of the Check unit tests.
 */
#ifndef WP_UNIT_H
#define WP_UNIT_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Path of a file in the source tree (tests may run from a build dir). */
static inline const char *srcpath(const char *rel)
{
    static char buf[4096];
    const char *top = getenv("top_srcdir");
    snprintf(buf, sizeof(buf), "%s/%s", top ? top : ".", rel);
    return buf;
}

#define UNIT_MAIN(suite_fn)                                                                                  \
    int main(void)                                                                                           \
    {                                                                                                        \
        SRunner *sr = srunner_create(suite_fn());                                                            \
        srunner_run_all(sr, CK_NORMAL);                                                                      \
        int failed = srunner_ntests_failed(sr);                                                              \
        srunner_free(sr);                                                                                    \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                                         \
    }

#endif
