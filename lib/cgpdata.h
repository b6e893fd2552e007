/* SPDX-License-Identifier: MIT */
/*
 * cgpdata.h - CommuniGate Pro's textual data format, parsed into a tree.
 *
 * CommuniGate writes its settings files and its CLI answers in one format
 * (Guide, "Data Formats", Data.html): strings (atoms or "quoted strings"
 * with \" \\ \r \n \e \t and \nnn escapes), data blocks [base64], arrays
 * (a, b, ...) and dictionaries {key = value; ...}, nested.  This module
 * reads that text into a small tree; `waypost import cgp` is its user.
 *
 * What we follow, and where we are more lenient than the documented syntax:
 * - Atoms: the Guide defines them as ASCII letters and digits, but the CLI
 *   itself writes domain names unquoted ("(mail.servername.com,
 *   client1.com)" in CLI.html), so an atom is any run of printable ASCII
 *   and UTF-8 bytes other than white space and ( ) { } [ ] = ; , " \.
 * - \e is "the system-independent End-Of-Line": we decode it to LF.
 *   \nnn is a three-digit decimal byte 1..255; a string cannot hold a zero
 *   byte (Data.html: "a string ... not containing a binary zero byte").
 * - Inside quoted strings only printable bytes and tab are accepted; bytes
 *   0x80..0xFF (UTF-8) pass through unchanged and unchecked.
 * - The last ';' before '}' may be left out; keys are case-sensitive and
 *   must be unique (Data.html: "Each key should be unique").
 * - White space is space, tab, CR and LF.  The v6 multi-line comment form
 *   is not read (its syntax is not in our copies of the Guide).
 * - The typed objects of later versions (#numbers, #T dates, #I[...]
 *   addresses) come through as atoms, text unchanged; XML objects <...> are
 *   an error.
 *
 * Limits (every input is hostile): nesting depth WP_CGP_DEPTH_MAX, at most
 * WP_CGP_NODES_MAX objects in one text; errors name "line:column" (1-based,
 * columns in bytes).
 */
#ifndef WP_CGPDATA_H
#define WP_CGPDATA_H

#include <stdbool.h>
#include <stddef.h>

#define WP_CGP_DEPTH_MAX 64
#define WP_CGP_NODES_MAX 2000000

enum wp_cgp_type { WP_CGP_STRING, WP_CGP_DATA, WP_CGP_ARRAY, WP_CGP_DICT };

struct wp_cgp {
    enum wp_cgp_type type;
    int line, col;         /* where the object starts in the text */
    bool quoted;           /* STRING: written as a quoted string */
    char *str;             /* STRING: decoded text; DATA: decoded bytes (both NUL-terminated) */
    size_t len;            /* bytes in str */
    struct wp_cgp **items; /* ARRAY: elements; DICT: values */
    char **keys;           /* DICT: keys, items[i] belongs to keys[i] */
    size_t n;              /* ARRAY, DICT: number of items */
};

/* Parse exactly one object from text (len bytes; white space around it is
 * allowed, anything else after it is an error).  NULL on error, with
 * "line:col: message" in err. */
struct wp_cgp *wp_cgp_parse(const char *text, size_t len, char *err, size_t errlen);
void wp_cgp_free(struct wp_cgp *v);

/* NULL unless v is a STRING. */
const char *wp_cgp_str(const struct wp_cgp *v);
/* Items of an ARRAY (0 for anything else) and the i-th one (NULL past the end). */
size_t wp_cgp_count(const struct wp_cgp *v);
const struct wp_cgp *wp_cgp_item(const struct wp_cgp *v, size_t i);
/* The value of key in a DICT (case-sensitive; NULL if absent or v is no DICT). */
const struct wp_cgp *wp_cgp_get(const struct wp_cgp *v, const char *key);
/* The same, with ASCII case ignored: settings names written by hand. */
const struct wp_cgp *wp_cgp_get_ci(const struct wp_cgp *v, const char *key);
const char *wp_cgp_type_name(enum wp_cgp_type t);

#endif
