/* SPDX-License-Identifier: MIT */
/*
 * export.h - `waypost export cgp --host H ... -o DIR`: CommuniGate Pro's data
 * fetched over its CLI (PWD protocol) into the files `waypost import cgp`
 * reads (see waypost-import(8)).
 */
#ifndef WP_CLI_EXPORT_H
#define WP_CLI_EXPORT_H

/* argv[0] is "export"; returns the exit code (0, 1 errors, 2 usage). */
int wp_export_main(int argc, char **argv);

#endif
