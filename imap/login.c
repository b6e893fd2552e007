/* SPDX-License-Identifier: MIT */
/*
 * login.c - waypost-imap-login, Dovecot's post-login helper: applies the
 * account template (imap.template of waypost.conf) at an account's first
 * IMAP login, then runs the imap process it was given.
 *
 *   waypost-imap-login [-c FILE] PROGRAM [ARG...]
 *
 * Dovecot (2.3 and 2.4 alike) runs it through "script-login -d HELPER -c
 * FILE" (see the fragment printed by "waypost dovecot"): as the mail user, with USER and HOME set
 * from the userdb and nothing else of the environment, standard input and
 * output connected to the IMAP client (so it never writes to stdout),
 * standard error going to Dovecot's log.  script-login passes its words
 * after the helper's path on, and appends the program that finishes the
 * login; the helper runs that.  FILE is waypost.conf (default:
 * SYSCONFDIR/waypost/waypost.conf); the mail user must be able to read it.
 *
 * A problem (unreadable config, a file it cannot write) is logged and the
 * login goes on without the template; the next login tries again.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap/dovecot.h"
#include "lib/errors.h"
#include "imap/template.h"

#ifndef WP_SYSCONFDIR
#define WP_SYSCONFDIR "/etc"
#endif

static void apply_template(const char *path)
{
    const char *home = getenv("HOME");
    const char *user = getenv("USER");
    if (!user)
        user = "?";
    if (!home || home[0] != '/') {
        fprintf(stderr, "waypost-imap-login: %s: no absolute HOME, account template not applied\n", user);
        return;
    }
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_imap_conf c;
    if (!wp_imap_conf_read(path, &c, &err)) {
        for (size_t i = 0; i < err.count; i++)
            fprintf(stderr, "waypost-imap-login: %s: %s\n", user, err.msgs[i]);
        fprintf(stderr, "waypost-imap-login: %s: account template not applied\n", user);
    } else {
        char why[512];
        if (wp_imap_template_apply(&c, home, why, sizeof(why)) < 0)
            fprintf(stderr, "waypost-imap-login: %s: account template not applied: %s\n", user, why);
    }
    wp_imap_conf_free(&c);
    wp_errors_free(&err);
}

int main(int argc, char **argv)
{
    const char *path = WP_SYSCONFDIR "/waypost/waypost.conf";
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-c") == 0) {
        path = argv[2];
        i = 3;
    }
    if (i >= argc) {
        fprintf(stderr,
                "usage: waypost-imap-login [-c FILE] PROGRAM [ARG...]  (run by Dovecot's script-login)\n");
        return 2;
    }
    apply_template(path);
    execvp(argv[i], argv + i);
    fprintf(stderr, "waypost-imap-login: cannot run %s: %s\n", argv[i], strerror(errno));
    return 1;
}
