/* SPDX-License-Identifier: MIT */
/*
 * bench_router - Router resolution rate, load time and memory for a table
 * of N records.
 *
 *   bench_router N [SECONDS]
 *   bench_router --interleave SECONDS N1 N2 ...
 *
 * Writes a table of N records (a mix of exact address, wildcard address,
 * exact domain and wildcard domain records, as a large Router table has),
 * loads it through the normal config path, then resolves a fixed set of
 * addresses that hit every kind of record (and some that miss) on one core
 * for SECONDS (default 2).  Prints one line of key=value figures; run.sh
 * compares sizes side by side.  Peak memory is the process's maximum RSS,
 * so run one size per process for that figure.  --interleave loads every
 * size in one process and measures them in alternating 50 ms slices, so
 * that whatever else the machine does at the time weighs on all sizes
 * alike: that is the run to take the ratios from.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "state/snapshot.h"
#include "lib/util.h"
#include "cli/sections.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sized {
    long n;
    char dir[64];
    struct wp_snapshot *snap;
    char (*addrs)[128];
    double load_s;
    long done;
    double elapsed;
};

enum { NADDR = 4096 };

static bool prepare(struct sized *z)
{
    snprintf(z->dir, sizeof(z->dir), "/tmp/wp-bench-XXXXXX");
    if (!mkdtemp(z->dir))
        return false;
    char conf[256], table[256];
    snprintf(conf, sizeof(conf), "%s/w.conf", z->dir);
    snprintf(table, sizeof(table), "%s/r.table", z->dir);
    FILE *f = fopen(table, "w");
    long n = z->n;
    for (long i = 0; i < n; i++) {
        switch (i % 10) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4: fprintf(f, "<user%ld@dom%ld.example> = user%ld@company.dom\n", i, i / 10, i); break;
        case 5:
        case 6:
        case 7:
            fprintf(f, "Relay:<*@wild%ld.example> = *%%wild%ld.example@host%ld.via\n", i, i, i / 100);
            break;
        case 8: fprintf(f, "dlevel%ld.example = host%ld.via\n", i, i / 100); break;
        default: fprintf(f, "*.sub%ld.example = hub%ld.example\n", i, i / 100); break;
        }
    }
    fclose(f);
    f = fopen(conf, "w");
    fprintf(f, "router: { table = \"r.table\"; main_domain = \"company.dom\";\n"
               "  domains = ( { name = \"company.dom\"; accounts = \"list:alice,bob\"; mail_to_unknown = "
               "\"Rejected\"; } ); };\n");
    fclose(f);
    double t0 = now_s();
    struct wp_errors err;
    wp_errors_init(&err);
    z->snap = wp_snapshot_load(conf, wp_sections_all, &err);
    z->load_s = now_s() - t0;
    for (size_t i = 0; i < err.count; i++)
        fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    unlink(table);
    unlink(conf);
    rmdir(z->dir);
    if (!z->snap)
        return false;
    /* Addresses spread over the whole table, and misses. */
    z->addrs = wp_malloc(NADDR * sizeof(*z->addrs));
    unsigned seed = 12345;
    for (int i = 0; i < NADDR; i++) {
        seed = seed * 1103515245u + 12345u;
        long k = (long)(seed >> 4) % (n > 0 ? n : 1);
        switch (i % 6) {
        case 0: snprintf(z->addrs[i], 128, "user%ld@dom%ld.example", k - k % 10, (k - k % 10) / 10); break;
        case 1: snprintf(z->addrs[i], 128, "someone@wild%ld.example", k - k % 10 + 6); break;
        case 2: snprintf(z->addrs[i], 128, "x@dlevel%ld.example", k - k % 10 + 8); break;
        case 3: snprintf(z->addrs[i], 128, "y@a.sub%ld.example", k - k % 10 + 9); break;
        case 4: snprintf(z->addrs[i], 128, "alice@company.dom"); break;
        default: snprintf(z->addrs[i], 128, "nobody%ld@miss.example", k); break;
        }
    }
    return true;
}

/* Resolve addresses for about `seconds`; adds to z->done and z->elapsed. */
static void measure(struct sized *z, double seconds)
{
    struct wp_resolve_opts o = {false, false};
    struct wp_route rt;
    double start = now_s(), elapsed;
    long done = 0;
    do {
        for (int i = 0; i < NADDR; i++)
            wp_resolve(z->snap->router, z->addrs[i], &o, &rt, NULL);
        done += NADDR;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    z->done += done;
    z->elapsed += elapsed;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--interleave") == 0) {
        double seconds = atof(argv[2]);
        int nz = argc - 3;
        struct sized *zs = wp_calloc((size_t)nz, sizeof(*zs));
        for (int i = 0; i < nz; i++) {
            zs[i].n = atol(argv[3 + i]);
            if (!prepare(&zs[i]))
                return 1;
        }
        for (double spent = 0; spent < seconds; spent += 0.05)
            for (int i = 0; i < nz; i++)
                measure(&zs[i], 0.05);
        for (int i = 0; i < nz; i++)
            printf("interleaved records=%ld per_s=%.0f ns_each=%.0f ratio_to_first=%.2f\n", zs[i].n,
                   (double)zs[i].done / zs[i].elapsed, zs[i].elapsed * 1e9 / (double)zs[i].done,
                   ((double)zs[i].done / zs[i].elapsed) / ((double)zs[0].done / zs[0].elapsed));
        return 0;
    }
    if (argc < 2)
        return 2;
    struct sized z;
    memset(&z, 0, sizeof(z));
    z.n = atol(argv[1]);
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    if (!prepare(&z))
        return 1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (seconds > 0)
        measure(&z, seconds);
    printf("records=%ld load_s=%.3f rss_mb=%.1f resolutions=%ld seconds=%.2f per_s=%.0f ns_each=%.0f\n", z.n,
           z.load_s, (double)ru.ru_maxrss / 1024.0, z.done, z.elapsed,
           z.elapsed > 0 ? (double)z.done / z.elapsed : 0, z.done ? z.elapsed * 1e9 / (double)z.done : 0);
    wp_snapshot_unref(z.snap);
    free(z.addrs);
    return 0;
}
