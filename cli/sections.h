/* SPDX-License-Identifier: MIT */
/*
 * sections.h - every component's section: what `waypost` (check, show and
 * the rest), the benchmarks and the tests load, so that `waypost check`
 * validates exactly what the daemons validate, through the same code.
 */
#ifndef WP_CLI_SECTIONS_H
#define WP_CLI_SECTIONS_H

#include "state/snapshot.h"

/* NULL-terminated: policyd, milter, odmr, imap. */
extern const struct wp_section *const wp_sections_all[];

#endif
