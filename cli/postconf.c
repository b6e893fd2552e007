/* SPDX-License-Identifier: MIT */
/*
 * postconf.c - `waypost postconf`: Waypost's wiring in Postfix's main.cf
 * and master.cf.
 *
 *   waypost postconf [--chroot|--no-chroot]   print the postconf commands that
 *                                             merge Waypost into the running
 *                                             configuration
 *   waypost postconf --apply                  run them and reload Postfix
 *   waypost postconf --undo                   take out what --apply put in
 *   waypost postconf --fresh [--main|--master] the finished values for a Postfix
 *                                             with nothing of its own
 *
 * The merge reads the configuration in postfix.config_directory with
 * `postconf -c DIR` and adds Waypost's entries to what is there, keeping
 * every existing one:
 *   - Waypost's maps in front of relay_domains, relay_recipient_maps,
 *     virtual_alias_maps and transport_maps (Waypost answers "not found"
 *     for what is not its own, so the existing maps still decide the rest);
 *   - virtual_alias_domains keeps meaning what it meant: its default
 *     $virtual_alias_maps would make Waypost's virtual map a domain list;
 *   - check_policy_service before reject_unauth_destination (or
 *     defer_unauth_destination) in the first restriction list that holds
 *     it, and first in smtpd_etrn_restrictions;
 *   - the milter after the existing ones in smtpd_milters and
 *     non_smtpd_milters: the rules see mail from sendmail too, as
 *     CommuniGate's Enqueuer applies them to every message;
 *   - held queue names in fast_flush_domains (held mail itself waits in
 *     waypost-odmrd's spool, not in defer_transports: Postfix's flush
 *     would release every customer's deferred mail).
 * The policy service and the milter carry their own default_action
 * ({ endpoint, default_action=... }, Postfix >= 3.0), so the global
 * defaults other services rely on stay as they are.
 *
 * Every edit is textual: an existing value is kept character for character
 * around what is inserted, and an element already present (by its
 * endpoint) is not added again, so applying twice changes nothing.
 * --apply first records the original value of each parameter it changes
 * (and whether it was set at all) in DIR/waypost-postconf.saved; --undo
 * restores those, so `postconf -n` is exactly what it was.  A value edited
 * since --apply is instead only stripped of Waypost's elements (and said
 * so).  A Waypost domain that Postfix also lists in mydestination,
 * virtual_mailbox_domains or virtual_alias_domains is a conflict (Postfix
 * would deliver it itself and never ask Waypost): reported with the value
 * to set, and --apply refuses to run until it is resolved.
 *
 * Limits: postconf output up to 1 MiB; an entry hidden behind a
 * $parameter or inside a ${{...}} expression of an explicitly set value is
 * not found (the placement is then reported as impossible); domains listed
 * only in lookup tables are not checked for conflicts.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/postconf.h"
#include "lib/errors.h"
#include "lib/util.h"
#include "milter/settings.h"
#include "odmr/settings.h"
#include "policy/maps.h"
#include "policy/settings.h"
#include "state/snapshot.h"
#include "cli/sections.h"

#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/postconf.h"
#include "lib/errors.h"
#include "lib/util.h"
#include "milter/settings.h"
#include "odmr/settings.h"
#include "policy/maps.h"
#include "policy/settings.h"
#include "state/snapshot.h"
#include "cli/sections.h"

#include "cli/postconf_int.h"

/* ---------------------------------------------------------------- endpoints */

/* How a chrooted or plain Postfix process names a unix socket: relative to
 * the queue directory when it lies inside it (Postfix daemons run there,
 * chrooted or not), else absolute (unreachable from a chroot). */
const char *wp_pc_socket_path(const char *qdir, const char *path, bool chroot, bool *unreachable)
{
    size_t q = strlen(qdir);
    *unreachable = false;
    while (q > 1 && qdir[q - 1] == '/')
        q--;
    if (strncmp(path, qdir, q) == 0 && path[q] == '/')
        return path + q + 1;
    *unreachable = chroot;
    return path;
}

/* The Postfix client syntax of a map endpoint, or NULL if none serves it. */
char *wp_pc_map_endpoint(const struct wp_snapshot *s, const char *qdir, const char *map, bool chroot,
                         bool *unreachable)
{
    const struct wp_policyd_conf *p = wp_policyd_conf(s);
    *unreachable = false;
    for (size_t i = 0; i < p->nlisten; i++) {
        const struct wp_listen *l = &p->listen[i];
        if (l->proto != WP_PROTO_SOCKETMAP)
            continue;
        if (l->ep.family == WP_EP_UNIX)
            return wp_asprintf("socketmap:unix:%s:%s",
                               wp_pc_socket_path(qdir, l->ep.path, chroot, unreachable), map);
        if (l->ep.family == WP_EP_INET)
            return wp_asprintf("socketmap:inet:%s:%d:%s", l->ep.host, l->ep.port, map);
        return wp_asprintf("socketmap:inet:[%s]:%d:%s", l->ep.host, l->ep.port, map);
    }
    for (size_t i = 0; i < p->nlisten; i++) {
        const struct wp_listen *l = &p->listen[i];
        if (l->proto == WP_PROTO_TCP && strcmp(wp_map_name(l->map), map) == 0)
            return wp_asprintf("tcp:%s:%d", l->ep.host, l->ep.port);
    }
    return NULL;
}

char *wp_pc_policy_endpoint(const struct wp_snapshot *s, const char *qdir, bool chroot, bool *unreachable)
{
    const struct wp_policyd_conf *p = wp_policyd_conf(s);
    *unreachable = false;
    for (size_t i = 0; i < p->nlisten; i++) {
        const struct wp_listen *l = &p->listen[i];
        if (l->proto != WP_PROTO_POLICY)
            continue;
        if (l->ep.family == WP_EP_UNIX)
            return wp_asprintf("unix:%s", wp_pc_socket_path(qdir, l->ep.path, chroot, unreachable));
        if (l->ep.family == WP_EP_INET)
            return wp_asprintf("inet:%s:%d", l->ep.host, l->ep.port);
        return wp_asprintf("inet:[%s]:%d", l->ep.host, l->ep.port);
    }
    return NULL;
}

char *wp_pc_milter_endpoint(const struct wp_snapshot *s, const char *qdir, bool chroot, bool *unreachable)
{
    const struct wp_endpoint *me = &wp_milter_conf(s)->listen;
    *unreachable = false;
    if (me->family == WP_EP_UNIX)
        return wp_asprintf("unix:%s", wp_pc_socket_path(qdir, me->path, chroot, unreachable));
    return wp_asprintf("inet:%s%s%s:%d", me->family == WP_EP_INET6 ? "[" : "", me->host,
                       me->family == WP_EP_INET6 ? "]" : "", me->port);
}

/* ---------------------------------------------------------------- --fresh */

/* The finished values for a Postfix with nothing of its own (the output of
 * earlier versions, used by the test harness to write a private main.cf). */
static int postconf_fresh(const struct wp_snapshot *s, bool chroot, bool want_main, bool want_master)
{
    static const struct {
        const char *param, *map;
    } maps[] = {
        {"relay_domains", "relay"},
        {"relay_recipient_maps", "recipient"},
        {"virtual_alias_maps", "virtual"},
        {"transport_maps", "transport"},
    };
    const char *qdir = s->postfix.queue_directory;
    int missing = 0;
    if (!want_main)
        goto master;
    printf("# Postfix wiring for %s (%s Postfix).\n", s->path, chroot ? "chrooted" : "non-chrooted");
    printf("# main.cf: set with  postconf -e '...'  or paste.\n");
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        bool unreachable = false;
        char *ep = wp_pc_map_endpoint(s, qdir, maps[i].map, chroot, &unreachable);
        if (!ep) {
            printf("# %s: no policyd.listen endpoint serves the '%s' map\n", maps[i].param, maps[i].map);
            missing++;
            continue;
        }
        if (unreachable)
            printf("# warning: this socket is outside %s, a chrooted Postfix cannot reach it\n", qdir);
        printf("%s = %s\n", maps[i].param, ep);
        free(ep);
    }
    printf("# Waypost domains are relay domains; nothing is a virtual alias domain.\n");
    printf("virtual_alias_domains =\n");
    bool unreachable = false;
    char *pol = wp_pc_policy_endpoint(s, qdir, chroot, &unreachable);
    if (pol) {
        if (unreachable)
            printf("# warning: this socket is outside %s, a chrooted Postfix cannot reach it\n", qdir);
        printf("smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated,\n"
               "    check_policy_service %s, reject_unauth_destination\n",
               pol);
        /* The policy service first: a permit before it would skip the
         * merged-domain flushes. */
        printf(
            "# ETRN: waypost-policyd releases held queues (with their merged domains) to the\n"
            "# clients policyd.etrn_release allows and refuses the rest; other names: Postfix's default.\n");
        printf("smtpd_etrn_restrictions = check_policy_service %s\n", pol);
        printf("# A Waypost daemon that is down or slow must make Postfix try again later.\n");
        printf("smtpd_policy_service_default_action = %s\n", PC_POLICY_DEFAULT);
        free(pol);
    } else {
        printf("# no policyd.listen endpoint speaks the policy protocol: relaying cannot be checked\n");
        missing++;
    }
    /* The milter: a unix socket (an inet milter costs ~88 ms a message). */
    bool far = false;
    char *mil = wp_pc_milter_endpoint(s, qdir, chroot, &far);
    if (far)
        printf("# warning: this socket is outside %s, a chrooted Postfix cannot reach it\n", qdir);
    printf("smtpd_milters = %s\n", mil);
    free(mil);
    printf("# Mail that the rules could not see must not get through.\n");
    printf("milter_default_action = tempfail\n");
    /* ETRN and postqueue -s flush only domains listed here ("service
     * unavailable" otherwise): every Waypost domain, and held queue names
     * that are not one. */
    printf("fast_flush_domains = $relay_domains");
    const struct wp_strmap *held = &s->router->hold_queues;
    for (size_t i = 0; i < held->cap; i++)
        if (held->slots[i].key && !wp_router_routes_domain(s->router, held->slots[i].key))
            printf(", %s", held->slots[i].key);
    printf("\n");
    if (s->router->odmr_queues.count > 0 || s->router->hold_queues.count > 0) {
        /* The transport map answers HOLD and ODMR routes with
         * postfix.odmr_transport; waypost-odmrd listens where it points
         * (odmr.lmtp_listen). */
        printf("# %s queues go to waypost-odmrd over LMTP: transport %s, listening on %s\n",
               s->router->odmr_queues.count == 0   ? "Held"
               : s->router->hold_queues.count == 0 ? "ATRN"
                                                   : "Held and ATRN",
               s->postfix.odmr_transport, wp_odmr_conf(s)->lmtp_text);
        if (chroot && wp_odmr_conf(s)->lmtp.family == WP_EP_UNIX &&
            strncmp(s->postfix.odmr_transport, "lmtp:unix:/", 11) == 0) {
            wp_pc_socket_path(qdir, wp_odmr_conf(s)->lmtp.path, chroot, &far);
            if (far)
                printf("# warning: a chrooted lmtp client cannot reach %s: set postfix.odmr_transport to "
                       "\"lmtp:unix:private/waypost-odmr\" (under %s)\n",
                       wp_odmr_conf(s)->lmtp.path, qdir);
        }
    }
    if (!want_master)
        goto done;
    printf("\n");
master:
    printf("# master.cf: mail for held queues waits in this transport until ETRN.\n");
    printf("%-12s unix  -       -       %c       -       -       smtp\n", s->postfix.hold_transport,
           chroot ? 'y' : 'n');
done:
    return missing ? 1 : 0;
}

static void pc_usage(FILE *out)
{
    fputs("usage: waypost [-c FILE] postconf [--apply|--undo] [--chroot|--no-chroot]\n"
          "       waypost [-c FILE] postconf --fresh [--main|--master] [--chroot|--no-chroot]\n",
          out);
}

int wp_postconf_main(const char *config, int argc, char **argv)
{
    bool fresh = false, apply = false, undo = false, want_main = true, want_master = true;
    int chroot = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--main") == 0)
            want_master = false, fresh = true;
        else if (strcmp(argv[i], "--master") == 0)
            want_main = false, fresh = true;
        else if (strcmp(argv[i], "--fresh") == 0)
            fresh = true;
        else if (strcmp(argv[i], "--apply") == 0)
            apply = true;
        else if (strcmp(argv[i], "--undo") == 0)
            undo = true;
        else if (strcmp(argv[i], "--chroot") == 0)
            chroot = 1;
        else if (strcmp(argv[i], "--no-chroot") == 0)
            chroot = 0;
        else {
            pc_usage(stderr);
            return 2;
        }
    }
    if ((fresh && (apply || undo)) || (apply && undo) || (!want_main && !want_master)) {
        pc_usage(stderr);
        return 2;
    }
    struct wp_errors err;
    wp_errors_init(&err);
    struct wp_snapshot *s = wp_snapshot_load(config, wp_sections_all, &err);
    if (!s)
        for (size_t i = 0; i < err.count; i++)
            fprintf(stderr, "%s\n", err.msgs[i]);
    wp_errors_free(&err);
    if (!s)
        return 1;
    int rc;
    if (fresh) {
        rc = postconf_fresh(s, chroot < 0 ? s->postfix.chroot : chroot == 1, want_main, want_master);
        wp_snapshot_unref(s);
        return rc;
    }
    rc = wp_pcmerge_run(s, chroot, apply, undo);
    wp_snapshot_unref(s);
    return rc;
}
