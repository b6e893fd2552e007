/* SPDX-License-Identifier: MIT */
/*
 * stats.h - `waypost stats [--json] [--top N]`: what the running daemons
 * decided, read from their metrics endpoints (policyd.metrics): top Router
 * records by hits, the migration drain (Mail to Unknown reroutes per
 * domain in the last hour, day and in total), requests and reload status.
 */
#ifndef WP_CLI_STATS_H
#define WP_CLI_STATS_H

/* argv[0] is "stats"; returns the exit code (0; 1 a daemon did not answer
 * or no endpoint is configured; 2 usage). */
int wp_stats_main(const char *config, int argc, char **argv);

/* ---- the parser, for the unit tests */
struct wp_sample {
    char *name;
    char *labels[8][2]; /* name, unescaped value */
    int nlabels;
    double value;
};
/* Parse Prometheus text; returns the number of samples (*out malloc'ed),
 * lines that do not parse are skipped. */
size_t wp_stats_parse(const char *text, struct wp_sample **out);
void wp_stats_samples_free(struct wp_sample *s, size_t n);
const char *wp_sample_label(const struct wp_sample *s, const char *name);

#endif
