/* SPDX-License-Identifier: MIT */
/*
 * postconf_int.h - what the parts of `waypost postconf` share: Waypost's
 * endpoints as Postfix names them (postconf.c), running Postfix's tools
 * and editing Postfix's list values textually (pclist.c), and the merge
 * into the running configuration with --apply and --undo (pcmerge.c).
 */
#ifndef WP_CLI_POSTCONF_INT_H
#define WP_CLI_POSTCONF_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "state/snapshot.h"

#define PC_OUT_MAX (1024 * 1024)
#define PC_SAVED "waypost-postconf.saved"
#define PC_POLICY_DEFAULT "451 4.3.5 Waypost policy service unavailable"

/* ---------------------------------------------------------------- endpoints (postconf.c) */
const char *wp_pc_socket_path(const char *qdir, const char *path, bool chroot, bool *unreachable);
char *wp_pc_map_endpoint(const struct wp_snapshot *s, const char *qdir, const char *map, bool chroot,
                         bool *unreachable);
char *wp_pc_policy_endpoint(const struct wp_snapshot *s, const char *qdir, bool chroot, bool *unreachable);
char *wp_pc_milter_endpoint(const struct wp_snapshot *s, const char *qdir, bool chroot, bool *unreachable);

/* ---------------------------------------------------------------- tools and list values (pclist.c) */
const char *wp_pclist_program(const char *name, char *buf, size_t size);
int wp_pclist_run(char *const argv[], char **out, bool quiet);
bool wp_pclist_sep(char c);
bool wp_pclist_next(const char *v, size_t *pos, size_t *start, size_t *end);
bool wp_pclist_elem_is(const char *v, size_t s, size_t e, const char *w);
bool wp_pclist_find(const char *v, const char *w, const char *follow, size_t *fs, size_t *fe);
char *wp_pclist_cut(const char *v, size_t s, size_t e);
char *wp_pclist_remove_all(const char *v, const char *w, const char *follow);
bool wp_pclist_blank(const char *v);
char *wp_pclist_prepend(const char *v, const char *elem);
char *wp_pclist_append(const char *v, const char *elem);

/* ---------------------------------------------------------------- the merge (pcmerge.c) */
/* Print (or with apply, run) the postconf commands that merge Waypost into
 * postfix.config_directory; undo takes out what --apply put in.  chroot:
 * 1 or 0 as given, -1 to read it from master.cf.  Returns the exit status. */
int wp_pcmerge_run(const struct wp_snapshot *s, int chroot, bool apply, bool undo);

#endif
