/* SPDX-License-Identifier: MIT */
/*
 * sections.c - the list of every component's section (see sections.h).
 */
#include "config.h"

#include "cli/sections.h"
#include "imap/settings.h"
#include "milter/settings.h"
#include "odmr/settings.h"
#include "policy/settings.h"

const struct wp_section *const wp_sections_all[] = {&wp_policyd_section, &wp_milter_section, &wp_odmr_section,
                                                    &wp_imap_section, NULL};
