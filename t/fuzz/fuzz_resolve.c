/* SPDX-License-Identifier: MIT */
/* libFuzzer target: whole resolutions of arbitrary addresses through the
 * sample configuration (records, unwrapping, Mail to Unknown, next hops). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/snapshot.h"
#include "lib/util.h"
#include "cli/sections.h"

static struct wp_snapshot *snap;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *conf = getenv("WAYPOST_FUZZ_CONF");
    struct wp_errors err;
    wp_errors_init(&err);
    snap = wp_snapshot_load(conf ? conf : "conf/waypost.conf", wp_sections_all, &err);
    wp_errors_free(&err);
    if (!snap)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char addr[2048];
    if (size >= sizeof(addr))
        size = sizeof(addr) - 1;
    memcpy(addr, data, size);
    addr[size] = '\0';
    struct wp_trace trace;
    struct wp_route rt;
    struct wp_resolve_opts o = {size & 1, (size & 2) != 0};
    wp_resolve(snap->router, addr, &o, &rt, &trace);
    (void)wp_route_relay_permitted(&rt, o.trusted);
    return 0;
}
