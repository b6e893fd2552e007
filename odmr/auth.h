/* SPDX-License-Identifier: MIT */
/*
 * auth.h - SMTP AUTH for waypost-odmrd: credentials from a Dovecot
 * passwd-file, SASL PLAIN and CRAM-MD5 (RFC 2195).
 *
 * The passwd-file has Dovecot's format, "user:{SCHEME}data:uid:gid:..."
 * (only the first two fields are used; '#' lines and blank lines are
 * skipped).  Schemes:
 *   {PLAIN} {CLEARTEXT}         the password itself: PLAIN and CRAM-MD5
 *   {CRAM-MD5} {HMAC-MD5}       64 hex digits, Dovecot's precomputed HMAC-MD5
 *                               contexts (outer MD5 state, then inner, each
 *                               as four little-endian 32-bit words): CRAM-MD5
 *                               and PLAIN
 *   {SHA512-CRYPT} {SHA256-CRYPT} {MD5-CRYPT} {BLF-CRYPT} {CRYPT}, and no
 *   scheme at all (Dovecot's default for passwd-files): crypt(3); PLAIN only
 *   {SHA} {SHA1} {SSHA} {SHA256} {SSHA256} {SHA512} {SSHA512}: base64
 *                               digests (salted ones: digest + salt); PLAIN only
 * Any other scheme never matches (and is logged by the caller).
 * Comparisons of secrets are constant-time.
 */
#ifndef WP_AUTH_H
#define WP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define WP_CRAM_CONTEXT_LEN 32

/* The stored password field of user in the passwd-file text (malloc'ed),
 * or NULL if the user is not there. */
char *wp_passwd_find(const char *text, size_t len, const char *user);

/* Does password match the stored field?  (SASL PLAIN) */
bool wp_auth_check_plain(const char *stored, const char *password);

/* Can CRAM-MD5 be checked against this stored field? */
bool wp_auth_cram_capable(const char *stored);

/* Check a CRAM-MD5 answer: hex_digest is the 32 hex digits the client sent
 * for challenge. */
bool wp_auth_check_cram(const char *stored, const char *challenge, const char *hex_digest);

/* HMAC-MD5 contexts of a secret, as Dovecot stores them ({CRAM-MD5}). */
void wp_cram_context(const char *secret, unsigned char ctx[WP_CRAM_CONTEXT_LEN]);
/* HMAC-MD5(secret, challenge) from the contexts, as 32 lower-case hex digits. */
void wp_cram_digest(const unsigned char ctx[WP_CRAM_CONTEXT_LEN], const char *challenge, char hex[33]);

/* Base64 (RFC 4648, with padding).  decode returns the length, or -1 if the
 * text is not base64 or does not fit (out gets a NUL after the data). */
long wp_base64_decode(const char *in, unsigned char *out, size_t outsize);
void wp_base64_encode(const unsigned char *in, size_t len, char *out, size_t outsize);

/* Split a SASL PLAIN message "authzid\0authcid\0password".  An authzid
 * other than empty or the authcid itself is refused. */
bool wp_sasl_plain_split(const unsigned char *msg, size_t len, const char **user, const char **password);

#endif
