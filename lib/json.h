/* SPDX-License-Identifier: MIT */
/*
 * json.h - write JSON strings safely (control bytes and quotes escaped,
 * invalid UTF-8 replaced), for machine-readable CLI output.
 */
#ifndef WP_JSON_H
#define WP_JSON_H

#include <stdio.h>

void wp_json_string(FILE *out, const char *s);

#endif
