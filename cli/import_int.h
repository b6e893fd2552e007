/* SPDX-License-Identifier: MIT */
/*
 * import_int.h - what the parts of `waypost import cgp` share: the run's
 * state (sources, files read, report lines, errors) and the helpers that
 * read CommuniGate's files and write configuration text (import_read.c).
 * import.c drives the run and writes domains and the Router table;
 * import_rules.c turns Server-wide Rules into Waypost's rules.
 */
#ifndef WP_CLI_IMPORT_INT_H
#define WP_CLI_IMPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/cgpdata.h"

#define IMPORT_FILE_MAX (64u << 20)

struct import {
    char **sources;
    size_t nsources;
    char **used; /* file names read, for the "not read" report */
    size_t nused;
    char **report;
    size_t nreport;
    int errors;
    char *main_domain;
};

/* A line of IMPORT-REPORT (control bytes from the input made harmless). */
void wp_imp_report(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error on standard error: the run writes no file. */
void wp_imp_error(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "an array", "a string": a data type for messages. */
const char *wp_imp_type_name(enum wp_cgp_type t);
/* qsort() order of strings. */
int wp_imp_cmp_str(const void *a, const void *b);
/* s as a quoted libconfig string. */
void wp_imp_put_str(FILE *f, const char *s);
/* Checks of names from the input before they become file names or settings. */
bool wp_imp_good_domain(const char *s);
bool wp_imp_good_name(const char *s);
bool wp_imp_good_target(const char *s);
/* A lower-case copy. */
char *wp_imp_lower(const char *s);
/* The path of a source file of this name in one of the sources, or NULL. */
char *wp_imp_find_file(struct import *im, const char *name);
/* One source file parsed (NULL on an error, said; *present false if missing). */
struct wp_cgp *wp_imp_read_cgp(struct import *im, const char *name, bool *present);
/* A file holding an array (or dictionary) of names: the names. */
bool wp_imp_read_names(struct import *im, const char *name, bool fold, char ***out, size_t *n);
/* The Server-wide Rules (GetServerMailRules or Rules.settings) as the
 * "rules" list of waypost.conf, written to out; the rest to the report. */
void wp_imp_rules(struct import *im, FILE *out);

#endif
