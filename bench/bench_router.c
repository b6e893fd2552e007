/*
 * bench_router - Router resolution rate, load time and memory for a table
 * of N records.
 *
 *   bench_router N [SECONDS]
 *
 * Writes a table of N records (a mix of exact address, wildcard address,
 * exact domain and wildcard domain records, as a large Router table has),
 * loads it through the normal config path, then resolves a fixed set of
 * addresses that hit every kind of record (and some that miss) on one core
 * for SECONDS (default 2).  Prints one line of key=value figures; run.sh
 * compares sizes side by side.  Peak memory is the process's maximum RSS,
 * so run one size per process.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "snapshot.h"
#include "util.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long n = atol(argv[1]);
    double seconds = argc > 2 ? atof(argv[2]) : 2.0;
    char dir[] = "/tmp/wp-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char conf[256], table[256];
    snprintf(conf, sizeof(conf), "%s/w.conf", dir);
    snprintf(table, sizeof(table), "%s/r.table", dir);
    FILE *f = fopen(table, "w");
    for (long i = 0; i < n; i++) {
        switch (i % 10) {
        case 0: case 1: case 2: case 3: case 4:
            fprintf(f, "<user%ld@dom%ld.example> = user%ld@company.dom\n", i, i / 10, i);
            break;
        case 5: case 6: case 7:
            fprintf(f, "Relay:<*@wild%ld.example> = *%%wild%ld.example@host%ld.via\n", i, i, i / 100);
            break;
        case 8:
            fprintf(f, "dlevel%ld.example = host%ld.via\n", i, i / 100);
            break;
        default:
            fprintf(f, "*.sub%ld.example = hub%ld.example\n", i, i / 100);
            break;
        }
    }
    fclose(f);
    f = fopen(conf, "w");
    fprintf(f, "router: { table = \"r.table\"; main_domain = \"company.dom\";\n"
               "  domains = ( { name = \"company.dom\"; accounts = \"list:alice,bob\"; mail_to_unknown = \"Rejected\"; } ); };\n");
    fclose(f);

    double t0 = now_s();
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(conf, &err);
    double load = now_s() - t0;
    if (!s) {
        for (size_t i = 0; i < err.count; i++)
            fprintf(stderr, "%s\n", err.msgs[i]);
        return 1;
    }
    wp_errors_free(&err);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    /* Addresses spread over the whole table, and misses. */
    enum { NADDR = 4096 };
    char(*addrs)[128] = wp_malloc(NADDR * sizeof(*addrs));
    unsigned seed = 12345;
    for (int i = 0; i < NADDR; i++) {
        seed = seed * 1103515245u + 12345u;
        long k = (long)(seed >> 4) % (n > 0 ? n : 1);
        switch (i % 6) {
        case 0: snprintf(addrs[i], 128, "user%ld@dom%ld.example", k - k % 10, (k - k % 10) / 10); break;
        case 1: snprintf(addrs[i], 128, "someone@wild%ld.example", k - k % 10 + 6); break;
        case 2: snprintf(addrs[i], 128, "x@dlevel%ld.example", k - k % 10 + 8); break;
        case 3: snprintf(addrs[i], 128, "y@a.sub%ld.example", k - k % 10 + 9); break;
        case 4: snprintf(addrs[i], 128, "alice@company.dom"); break;
        default: snprintf(addrs[i], 128, "nobody%ld@miss.example", k); break;
        }
    }
    struct wp_resolve_opts o = { false, false };
    struct wp_route rt;
    rt.trace = NULL;
    long done = 0, kinds[8] = { 0 };
    double start = now_s(), elapsed;
    do {
        for (int i = 0; i < NADDR; i++) {
            wp_resolve(s->router, addrs[i], &o, &rt);
            kinds[rt.kind]++;
        }
        done += NADDR;
        elapsed = now_s() - start;
    } while (elapsed < seconds);
    printf("records=%ld load_s=%.3f rss_mb=%.1f resolutions=%ld seconds=%.2f per_s=%.0f ns_each=%.0f "
           "local=%ld relay=%ld unknown=%ld\n",
           n, load, (double)ru.ru_maxrss / 1024.0, done, elapsed, (double)done / elapsed,
           elapsed * 1e9 / (double)done, kinds[WP_ROUTE_LOCAL], kinds[WP_ROUTE_RELAY], kinds[WP_ROUTE_UNKNOWN]);
    wp_snapshot_unref(s);
    free(addrs);
    unlink(table);
    unlink(conf);
    rmdir(dir);
    return 0;
}
