/* SPDX-License-Identifier: MIT */
/*
 * reload.h - the configuration snapshot as the daemon skeleton sees it
 * (lib/daemon.h keeps it opaque): reload, reference, release, and the log
 * settings to apply after a reload.  The same hooks serve all three daemons.
 */
#ifndef WP_STATE_RELOAD_H
#define WP_STATE_RELOAD_H

#include "lib/daemon.h"

#include "state/snapshot.h"

/* The skeleton's hooks for a daemon that loads these sections (its own):
 * a reload validates exactly what its start did. */
struct wp_daemon_hooks wp_reload_hooks(const struct wp_section *const *sections);

#endif
