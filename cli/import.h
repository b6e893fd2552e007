/* SPDX-License-Identifier: MIT */
/*
 * import.h - `waypost import cgp SOURCE... -o DIR`: a Waypost configuration
 * from CommuniGate Pro's own data (see waypost-import(8)).
 */
#ifndef WP_CLI_IMPORT_H
#define WP_CLI_IMPORT_H

/* argv[0] is "import"; returns the exit code (0, 1 errors, 2 usage). */
int wp_import_main(int argc, char **argv);

#endif
