/* SPDX-License-Identifier: MIT */
/*
 * postconf.h - `waypost postconf`: Waypost's wiring merged into Postfix's
 * main.cf and master.cf (see postconf.c).
 */
#ifndef WP_CLI_POSTCONF_H
#define WP_CLI_POSTCONF_H

/* argv[0] is "postconf"; config is waypost.conf.  Exit status: 0 done (or
 * nothing to do), 1 configuration errors, conflicts or a failed postconf,
 * 2 usage errors. */
int wp_postconf_main(const char *config, int argc, char **argv);

#endif
